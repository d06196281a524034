/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Hand-built test frames. Each builder appends one header at the end of the
 * frame and remembers where the IP and L4 headers start; pkt_finish() then
 * fills the length fields (IPv4 tot_len and checksum, IPv6 payload_len, UDP
 * length) from what was appended, so that padding (pkt_pad) and truncation
 * (pkt_cut), done afterwards, are not taken into the headers.
 */
#ifndef TM_PKT_H
#define TM_PKT_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define PKT_MAX 9216 /* up to XDP multi-buffer frames */
#define PKT_ETH_IP 0x0800
#define PKT_ETH_ARP 0x0806
#define PKT_ETH_8021Q 0x8100
#define PKT_ETH_8021AD 0x88A8
#define PKT_ETH_IPV6 0x86DD

struct pkt {
	uint8_t d[PKT_MAX];
	size_t len;
	size_t l3;       /* IP header offset; 0: none */
	size_t l4;       /* L4 header offset; 0: none */
	int family;      /* 4 or 6 */
	int udp;         /* the L4 header is UDP: its length field is set */
};

static inline uint8_t *pkt_put(struct pkt *p, size_t n)
{
	uint8_t *at = p->d + p->len;

	memset(at, 0, n);
	p->len += n;
	return at;
}

static inline void pkt_be16(uint8_t *at, uint16_t v)
{
	at[0] = v >> 8;
	at[1] = v & 0xff;
}

static inline void pkt_addr(int af, const char *text, void *to)
{
	memset(to, 0, af == AF_INET ? 4 : 16);
	if (text)
		inet_pton(af, text, to);
}

/* Ethernet header: fixed MACs, the ethertype of what follows. */
static inline void pkt_eth(struct pkt *p, uint16_t ethertype)
{
	static const uint8_t macs[12] = { 0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02 };
	uint8_t *h = pkt_put(p, 14);

	memcpy(h, macs, 12);
	pkt_be16(h + 12, ethertype);
}

/* One VLAN tag (after an Ethernet header whose ethertype was the TPID):
 * the TCI, then the ethertype of what follows. */
static inline void pkt_vlan(struct pkt *p, uint16_t vid, uint16_t ethertype)
{
	uint8_t *h = pkt_put(p, 4);

	pkt_be16(h, vid & 0x0fff);
	pkt_be16(h + 2, ethertype);
}

/* IPv4 header of ihl words (options: NOPs); frag is the frag_off field
 * (flags 0x2000 = MF, offset in 8-byte units). */
static inline void pkt_ipv4(struct pkt *p, const char *src, const char *dst, uint8_t proto,
			    uint16_t frag, uint8_t ihl)
{
	uint8_t *h = pkt_put(p, ihl < 5 ? 20 : ihl * 4u);

	p->l3 = h - p->d;
	p->family = 4;
	h[0] = 0x40 | (ihl & 0x0f);
	pkt_be16(h + 4, 0x1234);
	pkt_be16(h + 6, frag);
	h[8] = 64;
	h[9] = proto;
	pkt_addr(AF_INET, src, h + 12);
	pkt_addr(AF_INET, dst, h + 16);
	for (unsigned int i = 20; i < ihl * 4u; i++)
		h[i] = 1; /* NOP option */
}

static inline void pkt_ipv6(struct pkt *p, const char *src, const char *dst, uint8_t nexthdr)
{
	uint8_t *h = pkt_put(p, 40);

	p->l3 = h - p->d;
	p->family = 6;
	h[0] = 0x60;
	h[6] = nexthdr;
	h[7] = 64;
	pkt_addr(AF_INET6, src, h + 8);
	pkt_addr(AF_INET6, dst, h + 24);
}

/* An 8-byte IPv6 extension header: hop-by-hop or destination options
 * (PadN), routing (segments left 0), or fragment (frag6: offset << 3 | M). */
static inline void pkt_ipv6_ext(struct pkt *p, uint8_t type, uint8_t next, uint16_t frag6)
{
	uint8_t *h = pkt_put(p, 8);

	h[0] = next;
	if (type == 44) {
		pkt_be16(h + 2, frag6);
		h[7] = 0x42; /* identification */
	} else if (type == 0 || type == 60) {
		h[2] = 1; /* PadN, 4 bytes */
		h[3] = 4;
	}
}

static inline void pkt_payload(struct pkt *p, size_t n, uint8_t fill)
{
	memset(pkt_put(p, n), fill, n);
}

/* TCP header of doff words (options: NOPs), ACK set, then payload. */
static inline void pkt_tcp(struct pkt *p, uint16_t sport, uint16_t dport, uint8_t doff,
			   size_t payload)
{
	uint8_t *h = pkt_put(p, doff * 4u);

	p->l4 = h - p->d;
	pkt_be16(h, sport);
	pkt_be16(h + 2, dport);
	h[12] = doff << 4;
	h[13] = 0x10;
	pkt_be16(h + 14, 65535);
	for (unsigned int i = 20; i < doff * 4u; i++)
		h[i] = 1;
	pkt_payload(p, payload, 'x');
}

static inline void pkt_udp(struct pkt *p, uint16_t sport, uint16_t dport, size_t payload)
{
	uint8_t *h = pkt_put(p, 8);

	p->l4 = h - p->d;
	p->udp = 1;
	pkt_be16(h, sport);
	pkt_be16(h + 2, dport);
	pkt_payload(p, payload, 'u');
}

/* ICMP or ICMPv6 message with an id (echo request 8/128, reply 0/129). */
static inline void pkt_icmp(struct pkt *p, uint8_t type, uint16_t id, size_t payload)
{
	uint8_t *h = pkt_put(p, 8);

	p->l4 = h - p->d;
	h[0] = type;
	pkt_be16(h + 4, id);
	pkt_be16(h + 6, 1);
	pkt_payload(p, payload, 'i');
}

/* ARP request body (after an Ethernet header of type 0x0806). */
static inline void pkt_arp(struct pkt *p)
{
	uint8_t *h = pkt_put(p, 28);

	pkt_be16(h, 1);
	pkt_be16(h + 2, PKT_ETH_IP);
	h[4] = 6;
	h[5] = 4;
	pkt_be16(h + 6, 1);
	pkt_addr(AF_INET, "192.0.2.7", h + 14);
	pkt_addr(AF_INET, "127.0.0.1", h + 24);
}

static inline uint16_t pkt_csum(const uint8_t *h, size_t n)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(h[i] << 8 | h[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Length fields from what was built. */
static inline void pkt_finish(struct pkt *p)
{
	uint8_t *ip = p->d + p->l3;

	if (p->family == 4) {
		pkt_be16(ip + 2, (uint16_t)(p->len - p->l3));
		pkt_be16(ip + 10, 0);
		pkt_be16(ip + 10, pkt_csum(ip, (ip[0] & 0x0f) * 4u));
	} else if (p->family == 6) {
		pkt_be16(ip + 4, (uint16_t)(p->len - p->l3 - 40));
	}
	if (p->udp)
		pkt_be16(p->d + p->l4 + 4, (uint16_t)(p->len - p->l4));
}

/* Ethernet padding of a short frame, up to min bytes. */
static inline void pkt_pad(struct pkt *p, size_t min)
{
	if (p->len < min)
		pkt_put(p, min - p->len);
}

static inline void pkt_cut(struct pkt *p, size_t len)
{
	if (len < p->len)
		p->len = len;
}

/* Write val to a /proc/sys file (the test's own netns for net.*). */
static inline int pkt_sysctl_set(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		err = -errno;
	close(fd);
	return err;
}

/*
 * A network namespace of our own, with lo up (so that 127.0.0.1 and ::1
 * are local). *netns gets its inode: what the programs read as the netns of
 * the device a test run uses.
 */
static inline int pkt_enter_netns(uint32_t *netns)
{
	struct ifreq ifr = { 0 };
	struct stat st = { 0 };
	int fd, err = 0;

	if (unshare(CLONE_NEWNET))
		return -errno;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		err = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (!err && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		err = -errno;
	close(fd);
	if (!err && stat("/proc/self/ns/net", &st))
		err = -errno;
	*netns = (uint32_t)st.st_ino;
	return err;
}

#endif /* TM_PKT_H */
