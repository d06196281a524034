# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Building and running the container image with Debian's tools only.

No Docker engine and no registry but Debian's: the base image is a
bookworm tree made by mmdebstrap and imported into podman; docker/Dockerfile
is built by podman (buildah) with that base as its BASE build argument.

Everything lives in a podman storage of its own under CACHE (default
/var/tmp/taskmeter-image-test, made here, never in the repository): the
base image and the built images (tagged: base, build stage, runtime,
runtime + systemd) stay there between runs as the cache, so a warm run
rebuilds only what changed; untagged leftovers are pruned. Containers,
cgroups, namespaces and mounts never outlive a test. `make image-clean` removes CACHE.
"""
import os
import shutil
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("IMAGE_CACHE", "/var/tmp/taskmeter-image-test")
BASE_IMAGE = "localhost/taskmeter-base:bookworm"
IMAGE = "localhost/taskmeter:image-test"
BUILD_IMAGE = "localhost/taskmeter-build:image-test"
SYSTEMD_IMAGE = "localhost/taskmeter-systemd:image-test"
# The limits podman may set here: raising them is refused.
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
# Like debian:bookworm-slim: no documentation, man pages or translations
# (kept for the packages installed later too: dpkg.cfg.d).
SLIM = ["path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
        "path-exclude=/usr/share/man/*", "path-exclude=/usr/share/info/*",
        "path-exclude=/usr/share/locale/*", "path-include=/usr/share/locale/locale.alias",
        "path-exclude=/usr/share/lintian/*"]


class Failure(Exception):
    pass


def run(argv, timeout=1800, check=True, log=None, **kw):
    """Run argv; its output goes to log (a file) or is returned."""
    if log:
        with open(log, "a") as f:
            f.write(f"$ {' '.join(argv)}\n")
            f.flush()
            p = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, text=True,
                               timeout=timeout, **kw)
        out = ""
    else:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
        out = p.stdout
    if check and p.returncode:
        tail = "".join(open(log).readlines()[-30:]) if log else p.stderr
        raise Failure(f"{' '.join(argv[:6])}...: exit {p.returncode}\n{tail}")
    return out if check else p


class Podman:
    """podman on the private storage under CACHE."""

    def __init__(self, cache=CACHE):
        self.cache = cache
        self.log = os.path.join(cache, "build.log")
        self.base = ["podman", "--root", os.path.join(cache, "storage"),
                     "--runroot", os.path.join(cache, "run"),
                     "--tmpdir", os.path.join(cache, "tmp"),
                     "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
        os.makedirs(os.path.join(cache, "tmp"), exist_ok=True)

    def __call__(self, *args, check=True, timeout=600, log=None):
        return run(self.base + list(args), check=check, timeout=timeout, log=log)

    def has_image(self, name):
        return self("image", "exists", name, check=False).returncode == 0

    def size(self, name):
        return int(self("image", "inspect", "--format", "{{.Size}}", name).strip())


def build_base(pm, times):
    """The bookworm base image, from Debian's registry by mmdebstrap."""
    if pm.has_image(BASE_IMAGE):
        times["base"] = 0.0
        return
    t0 = time.time()
    tar = os.path.join(pm.cache, "bookworm-minbase.tar")
    # merged /usr set up by mmdebstrap's hook, not by the usrmerge package
    # (which would bring perl)
    argv = ["mmdebstrap", "--variant=minbase", "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
            "--aptopt=APT::Install-Recommends \"false\""]
    argv += [f"--dpkgopt={o}" for o in SLIM]
    run(argv + ["bookworm", tar], log=pm.log)
    try:
        pm("import", "--change", "CMD=/bin/bash", tar, BASE_IMAGE, log=pm.log)
    finally:
        os.unlink(tar)
    times["base"] = time.time() - t0


def git_desc():
    p = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                       capture_output=True, text=True)
    return p.stdout.strip() or "unknown"


def build_image(pm, times):
    """docker/Dockerfile, both stages from the local base. The build stage
    is tagged too (BUILD_IMAGE): its layers (the -dev packages) are the
    cache of the next run, and untagged images of earlier runs are pruned."""
    t0 = time.time()
    args = ["build", "--runtime", "runc", *ULIMITS, "--network", "host", "--layers",
            "-f", os.path.join(ROOT, "docker", "Dockerfile"),
            "--ignorefile", os.path.join(ROOT, "docker", "Dockerfile.dockerignore"),
            "--build-arg", f"BASE={BASE_IMAGE}", "--build-arg", f"TM_GIT_DESC={git_desc()}"]
    pm(*args, "--target", "build", "-t", BUILD_IMAGE, ROOT, log=pm.log, timeout=1800)
    pm(*args, "-t", IMAGE, ROOT, log=pm.log, timeout=1800)
    pm("image", "prune", "--force", log=pm.log)
    times["image"] = time.time() - t0


def build_systemd_image(pm, times):
    """The image plus systemd, to run the units under a real systemd (and
    procps: ExecReload's /bin/kill, on every host but a minimal one)."""
    t0 = time.time()
    ctx = os.path.join(pm.cache, "systemd-context")
    os.makedirs(ctx, exist_ok=True)
    with open(os.path.join(ctx, "Containerfile"), "w") as f:
        f.write(f"FROM {IMAGE}\n"
                "RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq"
                " --no-install-recommends systemd procps >/dev/null && rm -rf /var/lib/apt/lists/*\n"
                # nothing but what the test starts
                "RUN systemctl mask systemd-networkd.service systemd-resolved.service"
                " systemd-timesyncd.service getty.target console-getty.service"
                " systemd-logind.service 2>/dev/null; true\n"
                "STOPSIGNAL SIGRTMIN+3\n"
                'CMD ["/lib/systemd/systemd"]\n')
    pm("build", "--runtime", "runc", *ULIMITS, "--network", "host", "--layers",
       "-t", SYSTEMD_IMAGE, ctx, log=pm.log, timeout=900)
    times["systemd image"] = times.get("systemd image", 0.0) + time.time() - t0


def clean_cache(cache=CACHE):
    """make image-clean: the storage and everything else under CACHE."""
    if not os.path.isdir(cache):
        return
    Podman(cache)("system", "reset", "--force", check=False)
    shutil.rmtree(cache, ignore_errors=True)
