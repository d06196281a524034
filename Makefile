# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# taskmeter: BPF objects -> skeleton -> collector, client and tests.
# Everything generated goes under $(BUILD). Quiet unless V=1.

BUILD     ?= build
CLANG     ?= clang
BPFTOOL   ?= bpftool
PROTOC_C  ?= protoc-c
CC        ?= cc
ARCH      := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/;s/ppc64le/powerpc/;s/s390x/s390/')
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux

CFLAGS    ?= -O2 -g
WARN      := -Wall -Wextra -Werror
CPPFLAGS  += -Iinclude -Icollector -I$(BUILD)
ALL_CFLAGS = -std=gnu11 $(CFLAGS) $(WARN) $(CPPFLAGS)
LDLIBS    += -lxdp -lbpf -lelf -lz -lprotobuf-c -lmnl -lsystemd
BPF_CFLAGS := -g -O2 --target=bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -std=gnu11 -Wall -Werror \
	-Iinclude -I$(BUILD) -Ibpf

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:
.SECONDARY:
.PHONY: all clean deps bench-deps test check run bench man install uninstall \
	deploy-deps image-test image-clean fuzz fuzzers fuzz-bins FORCE

BPF_SRCS   := $(wildcard bpf/*.bpf.c)
# Standalone objects with skeletons of their own (they share the main
# object's maps by fd): XDP, which libxdp loads, and TC.
BPF_SOLO   := xdp tc
SOLO_SKELS := $(patsubst %,$(BUILD)/taskmeter_%.skel.h,$(BPF_SOLO))
# maps.bpf.o defines what the others declare extern: libbpf 1.1's linker
# needs the definitions first.
BPF_OBJS   := $(BUILD)/maps.bpf.o $(filter-out $(BUILD)/maps.bpf.o \
	$(patsubst %,$(BUILD)/%.bpf.o,$(BPF_SOLO)),$(patsubst bpf/%.bpf.c,$(BUILD)/%.bpf.o,$(BPF_SRCS)))
PROTO_C    := $(BUILD)/taskmeter.pb-c.c
PROTO_H    := $(BUILD)/taskmeter.pb-c.h
PROTO_O    := $(BUILD)/taskmeter.pb-c.o
# The schema's field numbers as macros, for the tags the collector writes by hand.
PROTO_FIELDS := $(BUILD)/taskmeter.fields.h

# Collector modules shared by the daemon, the client and the unit tests.
LIB_SRCS   := collector/config.c collector/procfs.c collector/frame.c collector/log.c \
	collector/cgroups.c collector/sockdiag.c collector/nlsock.c collector/netlink.c \
	collector/clsact.c collector/bpfmaps.c \
	collector/util.c collector/store.c collector/meta.c collector/encode.c collector/export.c \
	collector/pin.c collector/args.c
LIB_OBJS   := $(patsubst collector/%.c,$(BUILD)/%.o,$(LIB_SRCS)) $(PROTO_O)
DAEMON_SRCS := collector/taskmeterd.c collector/bpfload.c collector/mapio.c collector/mapsize.c \
	collector/ifaces.c collector/ifattach.c
DAEMON_OBJS := $(patsubst collector/%.c,$(BUILD)/%.o,$(DAEMON_SRCS))
# taskmeter prom: series logic, frame adapter and exposition writer (unit
# tested), and the HTTP/poll loop that only the client links.
PROM_SRCS  := collector/prom_series.c collector/prom_adapt.c collector/prom_text.c
PROM_OBJS  := $(patsubst collector/%.c,$(BUILD)/%.o,$(PROM_SRCS))
# The client's pure modules (no curses) are also in the unit tests.
CLIENT_LIB_SRCS := collector/render.c collector/client.c collector/topview.c
CLIENT_SRCS := collector/taskmeter.c collector/top.c collector/topui.c collector/prom.c \
	$(CLIENT_LIB_SRCS)
CLIENT_OBJS := $(patsubst collector/%.c,$(BUILD)/%.o,$(CLIENT_SRCS)) $(PROM_OBJS)
CLIENT_LIB_OBJS := $(patsubst collector/%.c,$(BUILD)/%.o,$(CLIENT_LIB_SRCS))
# Only the client draws on terminals.
CURSES_LIBS := $(shell pkg-config --libs ncursesw 2>/dev/null || echo -lncursesw -ltinfo)
UNIT_SRCS  := $(wildcard tests/unit/*.c)
UNIT_OBJS  := $(patsubst tests/unit/%.c,$(BUILD)/unit/%.o,$(UNIT_SRCS))
PACKET_SRCS := $(wildcard tests/packet/*.c)
PACKET_OBJS := $(patsubst tests/packet/%.c,$(BUILD)/packet/%.o,$(PACKET_SRCS))
TEST_BPF   := $(patsubst tests/bpf/%.bpf.c,$(BUILD)/tests/%.bpf.o,$(wildcard tests/bpf/*.bpf.c))
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
TOOL_SRCS  := $(wildcard tests/tools/*.c)
TOOLS      := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRCS))

all: $(BUILD)/taskmeterd $(BUILD)/taskmeter $(BUILD)/unit_tests $(TOOLS) $(TEST_BPF) \
	$(if $(PACKET_SRCS),$(BUILD)/packet_tests)

# vmlinux.h through a temp file and cmp, so an unchanged kernel rebuilds nothing.
$(BUILD)/vmlinux.h: | $(BUILD)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

$(BUILD)/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.bpf.h) include/taskmeter.h $(BUILD)/vmlinux.h | $(BUILD)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/taskmeter.skel.h: $(BPF_OBJS)
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen object $(BUILD)/taskmeter.linked.o $(BPF_OBJS)
	$(Q)$(BPFTOOL) gen skeleton $(BUILD)/taskmeter.linked.o name taskmeter_bpf > $@

$(BUILD)/taskmeter_%.skel.h: $(BUILD)/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen object $(BUILD)/$*.linked.o $<
	$(Q)$(BPFTOOL) gen skeleton $(BUILD)/$*.linked.o name taskmeter_$* > $@

$(PROTO_C) $(PROTO_H) &: proto/taskmeter.proto | $(BUILD)
	$(call msg,PROTOC,$<)
	$(Q)$(PROTOC_C) --proto_path=proto --c_out=$(BUILD) $<

$(PROTO_FIELDS): proto/taskmeter.proto proto/fields.awk | $(BUILD)
	$(call msg,GEN,$@)
	$(Q)awk -f proto/fields.awk $< > $@

$(PROTO_O): $(PROTO_C) $(PROTO_H)
	$(call msg,CC,$@)
	$(Q)$(CC) -std=gnu11 $(CFLAGS) -Wall $(CPPFLAGS) -c $< -o $@

$(BUILD)/%.o: collector/%.c $(wildcard collector/*.h) include/taskmeter.h $(PROTO_H) \
		$(PROTO_FIELDS) | $(BUILD)
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/bpfload.o $(BUILD)/taskmeterd.o $(BUILD)/ifaces.o $(BUILD)/mapio.o $(BUILD)/ifattach.o \
		$(BUILD)/mapsize.o: $(BUILD)/taskmeter.skel.h $(SOLO_SKELS)
$(BUILD)/bpfload.o $(BUILD)/taskmeterd.o $(BUILD)/taskmeter.o: $(BUILD)/tm_build.h

# Version and map-layout hash: pinned state made by a build with another
# layout of the shared structs and maps is never read as ours. Rewritten
# only when it changes.
TM_VERSION_BASE := 0.2.0
# The source's git describe; given from outside where there is no .git
# (the container build).
TM_GIT_DESC ?=
$(BUILD)/tm_build.h: include/taskmeter.h bpf/taskmeter.bpf.h FORCE | $(BUILD)
	$(Q)v='$(TM_GIT_DESC)'; [ -n "$$v" ] || v=$$(git describe --always --dirty 2>/dev/null || echo unknown); \
	abi=$$(cat include/taskmeter.h bpf/taskmeter.bpf.h | sha256sum | cut -c1-16); \
	printf '#define TM_VERSION "%s (%s)"\n#define TM_ABI_HASH 0x%sull\n' \
		"$(TM_VERSION_BASE)" "$$v" "$$abi" > $@.tmp; \
	if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
FORCE:

$(BUILD)/taskmeterd: $(DAEMON_OBJS) $(LIB_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/taskmeter: $(CLIENT_OBJS) $(LIB_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -lmicrohttpd $(CURSES_LIBS) -o $@

$(BUILD)/unit/%.o: tests/unit/%.c $(wildcard tests/unit/*.h) $(wildcard collector/*.h) $(PROTO_H) \
		$(PROTO_FIELDS) | $(BUILD)
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit -c $< -o $@

$(BUILD)/unit_tests: $(UNIT_OBJS) $(LIB_OBJS) $(CLIENT_LIB_OBJS) $(PROM_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

# Table-driven packet tests: the real programs through BPF_PROG_TEST_RUN.
$(BUILD)/packet/%.o: tests/packet/%.c $(wildcard tests/packet/*.h) $(wildcard tests/unit/*.h) \
		$(BUILD)/taskmeter.skel.h $(SOLO_SKELS) include/taskmeter.h | $(BUILD)
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit -Itests/packet -c $< -o $@

$(BUILD)/packet_tests: $(PACKET_OBJS) $(BUILD)/unit/main.o $(LIB_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

# BPF programs the tests use as bystanders (e.g. another TC program).
$(BUILD)/tests/%.bpf.o: tests/bpf/%.bpf.c $(BUILD)/vmlinux.h | $(BUILD)
	@mkdir -p $(dir $@)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# libFuzzer harnesses, one per parser (tests/fuzz/fuzz_<target>.c). Built by
# `make fuzzers` with clang into $(BUILD)/fuzz, the collector modules
# instrumented for coverage, everything under ASan and UBSan.
FUZZ_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=all
FUZZ_TIME  ?= 60
$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) $(LIB_OBJS) $(BUILD)/render.o
	$(call msg,FUZZ,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -Itests/fuzz $< $(LIB_OBJS) $(BUILD)/render.o \
		$(LDLIBS) -o $@

fuzz-bins: $(patsubst tests/fuzz/%.c,$(BUILD)/%,$(FUZZ_SRCS))

# fuzz_frame decides how the stream is split between read(2) calls.
$(BUILD)/fuzz_frame: LDLIBS += -Wl,--wrap=read

fuzzers:
	$(Q)$(MAKE) --no-print-directory $(if $(filter 1,$(V)),,-s) BUILD=$(BUILD)/fuzz CC=$(CLANG) \
		CFLAGS="$(FUZZ_CFLAGS)" fuzz-bins

# Every harness for FUZZ_TIME seconds (FUZZ=NAME picks by name), corpus
# seeded from tests/fuzz/corpus; crashes are kept in $(BUILD)/fuzz/crashes.
fuzz: deps
	$(Q)$(MAKE) --no-print-directory fuzzers
	$(Q)tests/fuzz/run.sh -t $(FUZZ_TIME) -b $(BUILD)/fuzz $(FUZZ)

$(BUILD)/tools/%: tests/tools/%.c | $(BUILD)
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $< -o $@ -lpthread

$(BUILD):
	$(Q)mkdir -p $@

# ---- man pages, from --help (help2man) ----
MAN_PAGES := $(BUILD)/man/taskmeterd.8 $(BUILD)/man/taskmeter.1
man: $(MAN_PAGES)

$(BUILD)/man/taskmeterd.8: $(BUILD)/taskmeterd collector/taskmeterd.h2m
	@mkdir -p $(dir $@)
	$(call msg,MAN,$@)
	$(Q)help2man --no-info --no-discard-stderr --section 8 --version-string "$(TM_VERSION_BASE)" \
		--name "per-process network accounting with eBPF: the collector" \
		--include collector/taskmeterd.h2m --output $@ ./$(BUILD)/taskmeterd

# Every command's --help (`taskmeter help` lists them) goes in a COMMANDS
# section, so a new command is documented as soon as it exists.
$(BUILD)/man/taskmeter.h2m: $(BUILD)/taskmeter collector/taskmeter.h2m
	@mkdir -p $(dir $@)
	$(Q)cp collector/taskmeter.h2m $@.tmp; printf '[COMMANDS]\n' >> $@.tmp; \
	for c in $$(./$(BUILD)/taskmeter help | sed -n '/^commands:/,$$s/^  \([a-z][a-z-]*\) .*/\1/p'); do \
		[ "$$c" = help ] && continue; \
		printf '.SS "taskmeter %s"\n.nf\n' "$$c" >> $@.tmp; \
		./$(BUILD)/taskmeter help "$$c" | sed 's/\\/\\e/g; s/^[.'"'"']/\\\&&/' >> $@.tmp; \
		printf '.fi\n' >> $@.tmp; \
	done; mv $@.tmp $@

$(BUILD)/man/taskmeter.1: $(BUILD)/taskmeter $(BUILD)/man/taskmeter.h2m
	$(call msg,MAN,$@)
	$(Q)help2man --no-info --section 1 --version-string "$(TM_VERSION_BASE)" \
		--name "read taskmeterd's per-process network accounting stream" \
		--include $(BUILD)/man/taskmeter.h2m --output $@ ./$(BUILD)/taskmeter

# ---- make install / uninstall ----
# PREFIX for the programs, man pages, units and sysusers.d (systemd reads
# /usr/local/lib/systemd/system and /usr/local/lib/sysusers.d too); the
# config always goes to /etc/taskmeter, where the programs look for it.
# An existing config is never overwritten: the new one is installed next
# to it as taskmeter.conf.new. Without DESTDIR the taskmeter group is
# created (systemd-sysusers, else groupadd); with DESTDIR that is left to
# the package's scripts.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
SBINDIR     ?= $(PREFIX)/sbin
MANDIR      ?= $(PREFIX)/share/man
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
CONFDIR     := /etc/taskmeter
UNITS       := taskmeterd.service taskmeter-prom.service

# The installed config: the shipped one with the socket's group set.
$(BUILD)/taskmeter.conf.installed: configs/taskmeter.conf | $(BUILD)
	$(Q)sed 's/^socket_group = ""$$/socket_group = taskmeter/' $< > $@.tmp
	$(Q)grep -q '^socket_group = taskmeter$$' $@.tmp && mv $@.tmp $@

define install_file # mode, source, destination
	$(Q)install -D -m $(1) $(2) $(DESTDIR)$(3)
	@printf '  %-8s %s\n' INSTALL "$(DESTDIR)$(3)"
endef

install: $(BUILD)/taskmeterd $(BUILD)/taskmeter $(MAN_PAGES) $(BUILD)/taskmeter.conf.installed
	$(call install_file,0755,$(BUILD)/taskmeterd,$(SBINDIR)/taskmeterd)
	$(call install_file,0755,$(BUILD)/taskmeter,$(BINDIR)/taskmeter)
	$(call install_file,0644,$(BUILD)/man/taskmeterd.8,$(MANDIR)/man8/taskmeterd.8)
	$(call install_file,0644,$(BUILD)/man/taskmeter.1,$(MANDIR)/man1/taskmeter.1)
	$(Q)for u in $(UNITS); do \
		sed 's|/usr/local/sbin/|$(SBINDIR)/|; s|/usr/local/bin/|$(BINDIR)/|' configs/$$u > $(BUILD)/$$u; \
	done
	$(call install_file,0644,$(BUILD)/taskmeterd.service,$(UNITDIR)/taskmeterd.service)
	$(call install_file,0644,$(BUILD)/taskmeter-prom.service,$(UNITDIR)/taskmeter-prom.service)
	$(call install_file,0644,configs/taskmeter.sysusers,$(SYSUSERSDIR)/taskmeter.conf)
	$(Q)conf=$(DESTDIR)$(CONFDIR)/taskmeter.conf; \
	if [ ! -e $$conf ]; then \
		install -D -m 0644 $(BUILD)/taskmeter.conf.installed $$conf; \
		printf '  %-8s %s\n' INSTALL $$conf; \
	elif cmp -s $(BUILD)/taskmeter.conf.installed $$conf; then \
		printf '  %-8s %s (unchanged)\n' KEEP $$conf; \
	else \
		install -m 0644 $(BUILD)/taskmeter.conf.installed $$conf.new; \
		printf '  %-8s %s.new (%s exists and differs: kept, merge by hand)\n' INSTALL $$conf $$conf; \
	fi
	$(Q)if [ -n "$(DESTDIR)" ]; then :; \
	elif command -v systemd-sysusers >/dev/null && [ -d /run/systemd/system ]; then \
		systemd-sysusers $(SYSUSERSDIR)/taskmeter.conf; \
	elif ! getent group taskmeter >/dev/null; then \
		groupadd --system taskmeter && echo "  GROUP    taskmeter (groupadd)"; \
	fi
	@[ -n "$(DESTDIR)" ] || echo "Now: systemctl daemon-reload && systemctl enable --now taskmeterd taskmeter-prom"

# Removes what install installed; a config that was changed stays (and
# so does the taskmeter group: groupdel taskmeter).
uninstall: $(BUILD)/taskmeter.conf.installed
	$(Q)for f in $(SBINDIR)/taskmeterd $(BINDIR)/taskmeter $(MANDIR)/man8/taskmeterd.8 \
		$(MANDIR)/man1/taskmeter.1 $(addprefix $(UNITDIR)/,$(UNITS)) \
		$(SYSUSERSDIR)/taskmeter.conf; do \
		[ -e $(DESTDIR)$$f ] || continue; \
		rm -f $(DESTDIR)$$f && printf '  %-8s %s\n' REMOVE $(DESTDIR)$$f; \
	done
	$(Q)for f in $(DESTDIR)$(CONFDIR)/taskmeter.conf $(DESTDIR)$(CONFDIR)/taskmeter.conf.new; do \
		[ -e $$f ] || continue; \
		if cmp -s $(BUILD)/taskmeter.conf.installed $$f; then \
			rm -f $$f && printf '  %-8s %s\n' REMOVE $$f; \
		else printf '  %-8s %s (changed since install)\n' KEEP $$f; fi; \
	done
	$(Q)rmdir $(DESTDIR)$(CONFDIR) 2>/dev/null || true

# Debian packages the build, the daemon and the tests need. Installs only
# what is missing, so a warm machine pays one dpkg query.
DEB_PKGS := clang llvm libbpf-dev libxdp-dev libmnl-dev libprotobuf-c-dev \
	protobuf-c-compiler protobuf-compiler python3-protobuf bpftool iproute2 \
	libelf-dev zlib1g-dev make gcc pkg-config nftables procps libmicrohttpd-dev prometheus \
	libncurses-dev libsystemd-dev tmux libclang-rt-14-dev help2man man-db systemd python3-yaml yamllint \
	ethtool
# What `make bench` needs on top: the load generator, the peer it is
# compared with, and the profiler.
BENCH_PKGS := iperf3 nethogs linux-perf
bench-deps:
	$(Q)$(MAKE) --no-print-directory deps DEB_PKGS="$(BENCH_PKGS)"

deps:
	$(Q)missing=$$(for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || printf '%s ' $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# `make image-test`: docker/ built and run with Debian's tools (mmdebstrap,
# podman/buildah, runc); not part of `make test` (minutes, downloads).
# Its podman storage, with the base and built images as the cache, is
# IMAGE_CACHE; `make image-clean` removes it.
DEPLOY_PKGS := podman buildah mmdebstrap runc uidmap fuse-overlayfs util-linux
IMAGE_CACHE ?= /var/tmp/taskmeter-image-test
deploy-deps:
	$(Q)$(MAKE) --no-print-directory deps DEB_PKGS="$(DEPLOY_PKGS)"

image-test: deps deploy-deps
	$(Q)$(MAKE) --no-print-directory all $(BUILD)/taskmeter.conf.installed
	$(Q)IMAGE_CACHE=$(IMAGE_CACHE) /usr/bin/python3 tests/image/run.py

image-clean:
	$(Q)/usr/bin/python3 -c 'import sys; sys.path.insert(0, "tests/image"); \
		import imgtest; imgtest.clean_cache("$(IMAGE_CACHE)")'

test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)./tests/run.sh

# The main job: collector with the default config, live table until Ctrl-C.
CONFIG ?= configs/taskmeter.conf
run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)sock=$$(sed -n 's/^[[:space:]]*socket_path[[:space:]]*=[[:space:]]*//p' $(CONFIG) | tail -n1); \
	sock=$${sock:-/run/taskmeter/taskmeter.sock}; \
	$(BUILD)/taskmeterd --config $(CONFIG) & pid=$$!; \
	trap 'kill -INT $$pid 2>/dev/null; wait $$pid' EXIT INT TERM; \
	$(BUILD)/taskmeter top --socket "$$sock" --wait 10

# Benchmarks (not part of the tests): prints a table, writes BENCHMARKS.md.
$(BUILD)/bench_prog: tests/bench/bench_prog.c tests/packet/pkt.h $(BUILD)/taskmeter.skel.h \
		$(SOLO_SKELS) include/taskmeter.h $(BUILD)/log.o $(BUILD)/bpfmaps.o | $(BUILD)
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/packet $< $(BUILD)/log.o $(BUILD)/bpfmaps.o $(LDLIBS) -o $@

# The floor arm: empty programs at taskmeter's hooks, and their loader.
$(BUILD)/bench/%.bpf.o: tests/bench/%.bpf.c $(BUILD)/vmlinux.h | $(BUILD)
	@mkdir -p $(dir $@)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# XDP and TC ingress stopped after the parser (stage 1) and after the flow's
# lookup (stage 2): what each step of the interface layer's path costs.
$(BUILD)/bench/xdp_stage%.bpf.o: bpf/xdp.bpf.c $(wildcard bpf/*.bpf.h) include/taskmeter.h \
		$(BUILD)/vmlinux.h | $(BUILD)
	@mkdir -p $(dir $@)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -DTM_BENCH_STAGE=$* -c $< -o $@

$(BUILD)/bench/tc_stage%.bpf.o: bpf/tc.bpf.c $(wildcard bpf/*.bpf.h) include/taskmeter.h \
		$(BUILD)/vmlinux.h | $(BUILD)
	@mkdir -p $(dir $@)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -DTM_BENCH_STAGE=$* -c $< -o $@

$(BUILD)/bench_floor: tests/bench/bench_floor.c | $(BUILD)
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $< $(LDLIBS) -o $@

# The collector's per-interval work at 100,000 synthetic owners: its own
# modules on the real maps, attached nowhere.
$(BUILD)/bench_collector: tests/bench/bench_collector.c $(BUILD)/taskmeter.skel.h \
		$(BUILD)/mapio.o $(LIB_OBJS) | $(BUILD)
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $< $(BUILD)/mapio.o $(LIB_OBJS) $(LDLIBS) -o $@

# 10,000 live processes for the collector and the exporter.
$(BUILD)/bench_swarm: tests/bench/bench_swarm.c | $(BUILD)
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $< -o $@

# 64-byte UDP at a fixed rate: a lean sender and receiver.
$(BUILD)/bench_pace: tests/bench/bench_pace.c | $(BUILD)
	$(call msg,CC,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $< -o $@

BENCH_BINS := $(BUILD)/bench_prog $(BUILD)/tests/empty.bpf.o $(BUILD)/bench/floor.bpf.o \
	$(BUILD)/bench_floor $(BUILD)/bench_collector $(BUILD)/bench_swarm $(BUILD)/bench_pace \
	$(foreach s,1 2,$(BUILD)/bench/xdp_stage$(s).bpf.o $(BUILD)/bench/tc_stage$(s).bpf.o)

bench: deps bench-deps
	$(Q)$(MAKE) --no-print-directory all $(BENCH_BINS)
	$(Q)/usr/bin/python3 tests/bench/bench.py

clean:
	$(call msg,CLEAN,$(BUILD))
	$(Q)rm -rf $(BUILD)
