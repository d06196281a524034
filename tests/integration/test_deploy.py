# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Installing and deploying: make install/uninstall into a DESTDIR, the
systemd units (systemd-analyze verify and security, offline: the host's
systemd state is never touched), the sysusers.d file, and the container
manifests (parsed, linted, and checked for the privileges, mounts,
annotations and probes that matter). Running the image and the units under
a real systemd is `make image-test` (tests/image/run.py)."""
import os
import re
import shutil
import subprocess
import tempfile

from tmtest import ROOT, TASKMETERD, TestFailure, check, check_eq

# What `make install` installs, and only that (README "Install").
INSTALLED = {
    "{prefix}/sbin/taskmeterd": 0o755,
    "{prefix}/bin/taskmeter": 0o755,
    "{prefix}/share/man/man8/taskmeterd.8": 0o644,
    "{prefix}/share/man/man1/taskmeter.1": 0o644,
    "{prefix}/lib/systemd/system/taskmeterd.service": 0o644,
    "{prefix}/lib/systemd/system/taskmeter-prom.service": 0o644,
    "{prefix}/lib/sysusers.d/taskmeter.conf": 0o644,
    "/etc/taskmeter/taskmeter.conf": 0o644,
}
CAPS = {"CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE",
        "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH", "CAP_CHOWN"}
# systemd-analyze security --offline: the exposure each unit must stay under
EXPOSURE_MAX = {"taskmeterd.service": 3.5, "taskmeter-prom.service": 2.0}
TM_GID = 9479


def make(*args, check_rc=True):
    p = subprocess.run(["make", "-s", "--no-print-directory", "-C", ROOT, *args],
                       capture_output=True, text=True)
    if check_rc and p.returncode:
        raise TestFailure(f"make {' '.join(args)}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    return p.stdout


def files_under(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            path = os.path.join(dirpath, n)
            out["/" + os.path.relpath(path, root)] = os.stat(path).st_mode & 0o7777
    return out


class DestDir:
    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="taskmeter-destdir-")
        return self.dir

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


def unit_settings(path):
    """{key: [values]} of a unit file (the sections merged)."""
    out = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def test_install_files():
    """make install DESTDIR=... installs exactly the documented files, with
    their modes; the config is the shipped one with the socket's group set;
    make uninstall removes every file again."""
    with DestDir() as d:
        out = make("install", f"DESTDIR={d}")
        want = {p.format(prefix="/usr/local"): m for p, m in INSTALLED.items()}
        got = files_under(d)
        check_eq(sorted(got), sorted(want), "installed files")
        for path, mode in want.items():
            check_eq(oct(got[path]), oct(mode), f"mode of {path}")
        check("Now: systemctl" not in out, "a DESTDIR install told to start the units")
        conf = os.path.join(d, "etc/taskmeter/taskmeter.conf")
        shipped = open(os.path.join(ROOT, "configs", "taskmeter.conf")).read().splitlines()
        installed = open(conf).read().splitlines()
        diff = [(a, b) for a, b in zip(shipped, installed) if a != b]
        check_eq(len(shipped), len(installed), "lines of the installed config")
        check_eq(diff, [('socket_group = ""', "socket_group = taskmeter")],
                 "installed config vs configs/taskmeter.conf")
        p = subprocess.run([TASKMETERD, "--check-config", "-c", conf], capture_output=True,
                           text=True)
        check_eq(p.returncode, 0, f"--check-config of the installed config: {p.stderr}")
        check_man(d + "/usr/local/share/man/man8/taskmeterd.8",
                  ["--keep-state", "--remove-state", "--instance", "SIGUSR2", "FILES",
                   "/sys/fs/bpf/taskmeter"])
        check_man(d + "/usr/local/share/man/man1/taskmeter.1",
                  ["taskmeter top", "taskmeter dump", "--socket"])
        make("uninstall", f"DESTDIR={d}")
        check_eq(files_under(d), {}, "files left by make uninstall")
        check(not os.path.exists(os.path.join(d, "etc/taskmeter")), "/etc/taskmeter left")


def check_man(path, words):
    p = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, text=True,
                       env=dict(os.environ, MANWIDTH="100", MAN_KEEP_FORMATTING="0"))
    check_eq(p.returncode, 0, f"man -l {path}")
    check(p.stderr.strip() == "", f"groff warnings for {path}: {p.stderr}")
    text = re.sub(r".\x08", "", p.stdout)
    for w in words:
        check(w in text, f"{os.path.basename(path)} does not mention {w}")


def test_install_prefix_usr():
    """PREFIX=/usr: the programs, units and sysusers.d under /usr, the units
    starting the programs from there; the config still in /etc."""
    with DestDir() as d:
        make("install", f"DESTDIR={d}", "PREFIX=/usr")
        want = {p.format(prefix="/usr") for p in INSTALLED}
        check_eq(sorted(files_under(d)), sorted(want), "installed files with PREFIX=/usr")
        units = d + "/usr/lib/systemd/system/"
        check_eq(unit_settings(units + "taskmeterd.service")["ExecStart"],
                 ["/usr/sbin/taskmeterd"], "taskmeterd.service ExecStart")
        check_eq(unit_settings(units + "taskmeter-prom.service")["ExecStart"],
                 ["/usr/bin/taskmeter prom"], "taskmeter-prom.service ExecStart")
        make("uninstall", f"DESTDIR={d}", "PREFIX=/usr")
        check_eq(files_under(d), {}, "files left by make uninstall")


def test_install_keeps_config():
    """An existing config is never overwritten: a changed one stays and the
    new one is installed beside it as taskmeter.conf.new; an unchanged one
    stays as it is. uninstall keeps the changed config."""
    with DestDir() as d:
        make("install", f"DESTDIR={d}")
        conf = os.path.join(d, "etc/taskmeter/taskmeter.conf")
        out = make("install", f"DESTDIR={d}")
        check("(unchanged)" in out, f"a second install did not say the config is unchanged:\n{out}")
        check(not os.path.exists(conf + ".new"), ".new for an unchanged config")
        with open(conf, "a") as f:
            f.write("interval = 5s\n")
        mine = open(conf).read()
        out = make("install", f"DESTDIR={d}")
        check_eq(open(conf).read(), mine, "the changed config after install")
        check(os.path.exists(conf + ".new"), "no taskmeter.conf.new")
        check("taskmeter.conf.new" in out and "kept" in out, f"install did not say so:\n{out}")
        out = make("uninstall", f"DESTDIR={d}")
        check_eq(sorted(files_under(d)), ["/etc/taskmeter/taskmeter.conf"], "after uninstall")
        check("changed since install" in out, f"uninstall did not say why it kept it:\n{out}")


def installed_units(d):
    """The units of a DESTDIR install, their programs' paths pointed into
    DESTDIR so that systemd-analyze finds them (the only change)."""
    make("install", f"DESTDIR={d}")
    units = []
    for name in ("taskmeterd.service", "taskmeter-prom.service"):
        src = os.path.join(d, "usr/local/lib/systemd/system", name)
        dst = os.path.join(d, name)
        with open(dst, "w") as f:
            f.write(open(src).read().replace("=/usr/local/", f"={d}/usr/local/"))
        units.append(dst)
    return units


def analyze(*args, env=None):
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, env=env)


def test_units_verify():
    """systemd-analyze verify on the installed units: no complaint, their
    programs and man pages found. It does complain about a broken copy, so
    the check can fail."""
    with DestDir() as d:
        units = installed_units(d)
        env = dict(os.environ, MANPATH=f"{d}/usr/local/share/man")
        p = analyze("verify", "--man=yes", *units, env=env)
        check_eq((p.returncode, (p.stdout + p.stderr).strip()), (0, ""), "systemd-analyze verify")
        broken = os.path.join(d, "broken.service")
        text = open(units[0]).read().replace("ProtectHome=yes", "ProtectHome=yes\nProtectHom=yes")
        with open(broken, "w") as f:
            f.write(text.replace(f"{d}/usr/local/sbin/taskmeterd", f"{d}/nowhere/taskmeterd"))
        p = analyze("verify", "--man=yes", broken, env=env)
        out = p.stdout + p.stderr
        check(p.returncode != 0 and "nowhere/taskmeterd" in out and "ProtectHom" in out,
              f"verify did not catch a missing program and a bad key: {p.returncode} {out}")


def test_units_security():
    """systemd-analyze security --offline: each unit's exposure stays under
    its ceiling; the settings the design relies on are there."""
    with DestDir() as d:
        for unit in installed_units(d):
            name = os.path.basename(unit)
            p = analyze("security", "--offline=yes", "--no-pager", unit)
            m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", p.stdout)
            check(m, f"no exposure level for {name}: {p.stdout[-500:]} {p.stderr}")
            print(f"{name}: exposure {m.group(1)} (ceiling {EXPOSURE_MAX[name]})")
            check(float(m.group(1)) <= EXPOSURE_MAX[name], f"{name} exposure {m.group(1)}")
    d = unit_settings(os.path.join(ROOT, "configs", "taskmeterd.service"))
    check_eq(set(d["CapabilityBoundingSet"][0].split()), CAPS, "taskmeterd capabilities")
    for key, value in (("Type", "notify"), ("NotifyAccess", "main"), ("ExecReload", "/bin/kill -HUP $MAINPID"),
                       ("KillSignal", "SIGTERM"), ("Restart", "on-failure"),
                       ("RestartPreventExitStatus", "2"), ("RuntimeDirectory", "taskmeter"),
                       ("ProtectSystem", "strict"), ("ReadWritePaths", "/sys/fs/bpf"),
                       ("ProtectHome", "yes"), ("PrivateTmp", "yes"), ("NoNewPrivileges", "yes"),
                       ("ProtectControlGroups", "yes"), ("RestrictNamespaces", "net"),
                       ("RestrictAddressFamilies", "AF_UNIX AF_NETLINK")):
        check_eq(d.get(key), [value], f"taskmeterd.service {key}")
    check("/sys" in d["ReadOnlyPaths"][0].split(), "taskmeterd.service: /sys not read-only")
    p = unit_settings(os.path.join(ROOT, "configs", "taskmeter-prom.service"))
    for key, value in (("Type", "notify"), ("NotifyAccess", "main"), ("DynamicUser", "yes"), ("SupplementaryGroups", "taskmeter"),
                       ("CapabilityBoundingSet", ""), ("NoNewPrivileges", "yes"),
                       ("ProtectSystem", "strict"), ("PrivateDevices", "yes"),
                       ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6")):
        check_eq(p.get(key), [value], f"taskmeter-prom.service {key}")
    check(p["ExecStart"][0].endswith("/taskmeter prom"), "the exporter unit's ExecStart")


def test_sysusers():
    """configs/taskmeter.sysusers makes the taskmeter group (applied to an
    empty root, not the host)."""
    with DestDir() as d:
        os.mkdir(os.path.join(d, "etc"))
        p = subprocess.run(["systemd-sysusers", f"--root={d}", "-"],
                           stdin=open(os.path.join(ROOT, "configs", "taskmeter.sysusers")),
                           capture_output=True, text=True)
        check_eq(p.returncode, 0, f"systemd-sysusers: {p.stderr}")
        groups = [line.split(":")[0] for line in open(os.path.join(d, "etc", "group"))]
        check_eq(groups, ["taskmeter"], "groups made")
        check(not os.path.exists(os.path.join(d, "etc", "passwd")) or
              open(os.path.join(d, "etc", "passwd")).read() == "", "a user was made too")


# ---- the container manifests ----
def load_yaml(name):
    import yaml
    return [d for d in yaml.safe_load_all(open(os.path.join(ROOT, "docker", name))) if d]


def test_manifests_lint():
    """yamllint (strict, default rules) passes on every manifest."""
    names = ["taskmeter-daemonset.yaml", "compose.yaml"]
    p = subprocess.run(["yamllint", "--strict", "-f", "parsable",
                        *[os.path.join(ROOT, "docker", n) for n in names]],
                       capture_output=True, text=True)
    check_eq((p.returncode, p.stdout.strip()), (0, ""), "yamllint")
    for n in names:
        check(load_yaml(n), f"{n} parses to nothing")


def daemonset_pod():
    docs = load_yaml("taskmeter-daemonset.yaml")
    check_eq(sorted(d["kind"] for d in docs), ["DaemonSet", "Namespace"], "kinds")
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    check_eq(ds["apiVersion"], "apps/v1", "DaemonSet apiVersion")
    tmpl = ds["spec"]["template"]
    check_eq(ds["spec"]["selector"]["matchLabels"].items() <= tmpl["metadata"]["labels"].items(),
             True, "selector matches the pod's labels")
    return tmpl, {c["name"]: c for c in tmpl["spec"]["containers"]}


def test_daemonset():
    """The DaemonSet: hostPID but no host network, taskmeterd with exactly
    the unit's capabilities and not privileged, the bpffs / cgroup / socket
    mounts, an unprivileged exporter sidecar sharing only the socket,
    Prometheus annotations that match its port, probes on both."""
    tmpl, c = daemonset_pod()
    spec = tmpl["spec"]
    check_eq((spec.get("hostPID"), spec.get("hostNetwork")), (True, False), "hostPID, hostNetwork")
    check_eq(sorted(c), ["prom", "taskmeterd"], "containers")
    d, p = c["taskmeterd"], c["prom"]
    sc = d["securityContext"]
    check_eq(sc.get("privileged"), False, "taskmeterd privileged")
    check_eq(sc["capabilities"]["drop"], ["ALL"], "taskmeterd drops")
    check_eq({"CAP_" + x for x in sc["capabilities"]["add"]}, CAPS, "taskmeterd capabilities")
    check_eq((sc.get("runAsUser"), sc.get("readOnlyRootFilesystem")), (0, True), "taskmeterd user")
    check_eq(d["command"], ["/usr/sbin/taskmeterd"], "taskmeterd command")
    check_eq(d["args"], ["--set", "netns=/proc/1/ns/net"], "taskmeterd args")
    vols = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["name"]: m for m in d["volumeMounts"]}
    check_eq(vols["bpffs"]["hostPath"]["path"], "/sys/fs/bpf", "bpffs volume")
    check_eq(mounts["bpffs"]["mountPath"], "/sys/fs/bpf", "bpffs mount")
    check(not mounts["bpffs"].get("readOnly"), "bpffs read-only: pins need it writable")
    check_eq(vols["cgroup"]["hostPath"]["path"], "/sys/fs/cgroup", "cgroup volume")
    check_eq((mounts["cgroup"]["mountPath"], mounts["cgroup"].get("readOnly")),
             ("/sys/fs/cgroup", True), "cgroup mount")
    check("emptyDir" in vols["run"], "socket volume is not an emptyDir")
    check_eq(mounts["run"]["mountPath"], "/run/taskmeter", "socket directory")
    check_eq(sorted(mounts), ["bpffs", "cgroup", "run"], "taskmeterd mounts")
    # the exporter: unprivileged, only the socket
    ps = p["securityContext"]
    check_eq((ps["runAsUser"], ps["runAsGroup"], ps["runAsNonRoot"]), (TM_GID, TM_GID, True),
             "exporter user (the image's taskmeter user, in the socket's group)")
    check_eq((ps["capabilities"].get("drop"), ps["capabilities"].get("add")), (["ALL"], None),
             "exporter capabilities")
    check_eq((ps.get("allowPrivilegeEscalation"), ps.get("readOnlyRootFilesystem"),
              ps.get("privileged")), (False, True, False), "exporter security context")
    check_eq([(m["name"], m["mountPath"], m.get("readOnly")) for m in p["volumeMounts"]],
             [("run", "/run/taskmeter", True)], "exporter mounts")
    check(p["command"][:2] == ["/usr/bin/taskmeter", "prom"], "exporter command")
    listen = p["command"][p["command"].index("--listen") + 1]
    port = p["ports"][0]["containerPort"]
    check_eq(listen, f"0.0.0.0:{port}", "exporter listens on its container port")
    ann = tmpl["metadata"]["annotations"]
    check_eq((ann["prometheus.io/scrape"], ann["prometheus.io/port"], ann["prometheus.io/path"]),
             ("true", str(port), "/metrics"), "scrape annotations")
    for name, cont in c.items():
        for probe in ("livenessProbe", "readinessProbe"):
            check(probe in cont, f"{name} has no {probe}")
    for probe in ("livenessProbe", "readinessProbe"):
        check("taskmeter dump --count 1" in " ".join(d[probe]["exec"]["command"]),
              f"taskmeterd {probe} does not ask the socket")
        check_eq((p[probe]["httpGet"]["port"], p[probe]["httpGet"]["path"]),
                 (p["ports"][0]["name"], "/"), f"exporter {probe}")


def test_compose_matches_daemonset():
    """compose.yaml gives taskmeterd the DaemonSet's privileges and mounts,
    and the exporter none."""
    _, c = daemonset_pod()
    (comp,) = load_yaml("compose.yaml")
    d, p = comp["services"]["taskmeterd"], comp["services"]["prom"]
    check_eq({"CAP_" + x for x in d["cap_add"]}, CAPS, "compose taskmeterd capabilities")
    check_eq((d["cap_drop"], d["pid"], d["cgroup"], d["read_only"], d.get("privileged", False)),
             (["ALL"], "host", "host", True, False), "compose taskmeterd")
    check_eq(d["command"], c["taskmeterd"]["command"] + c["taskmeterd"]["args"], "command")
    vols = {v.split(":")[1]: v for v in d["volumes"]}
    check_eq(sorted(vols), ["/run/taskmeter", "/sys/fs/bpf", "/sys/fs/cgroup"], "volumes")
    check(vols["/sys/fs/cgroup"].endswith(":ro"), "cgroup volume writable")
    check_eq((p["user"], p["cap_drop"], p.get("cap_add"), p["read_only"]),
             (f"{TM_GID}:{TM_GID}", ["ALL"], None, True), "compose exporter")
    check_eq(p["volumes"], ["/run/taskmeter:/run/taskmeter:ro"], "exporter volumes")
    check_eq(p["ports"], ["127.0.0.1:9479:9479"], "exporter port (loopback)")


def test_dockerfile():
    """Base images are build arguments; the runtime stage installs the
    libraries only (no -dev package, no compiler) and the taskmeter user and
    group with the id the manifests use."""
    text = open(os.path.join(ROOT, "docker", "Dockerfile")).read()
    check(re.search(r"^ARG BASE=debian:bookworm-slim$", text, re.M), "ARG BASE default")
    froms = re.findall(r"^FROM (\S+) AS (\S+)$", text, re.M)
    check_eq(froms, [("${BASE}", "build"), ("${RUNTIME_BASE}", "runtime")], "stages")
    runtime = text[text.index("AS runtime"):]
    apt = re.search(r"apt-get install[^&]*", runtime, re.S).group(0).split()
    pkgs = [w for w in apt if not w.startswith("-") and w not in ("apt-get", "install", "\\")]
    check_eq(sorted(pkgs), sorted(["libbpf1", "libxdp1", "libmnl0", "libprotobuf-c1", "libelf1",
                                   "zlib1g", "libmicrohttpd12", "libncursesw6", "libsystemd0"]),
             "runtime packages")
    check(f"--gid {TM_GID} taskmeter" in runtime and f"--uid {TM_GID}" in runtime,
          "taskmeter user/group ids")
    check(re.search(r"^CMD \[\"/usr/sbin/taskmeterd\"\]$", runtime, re.M), "CMD")
