"""Docker for the tests: an engine, a Debian 12 base, and a stand-in for
p4lang's image.

- engine(): a running Docker engine.  Where none runs, dockerd is started
  here (as CI starts the services its tests need) and stopped afterwards.
  dockerd turns IP forwarding on and, having done so, the iptables FORWARD
  policy to DROP (which keeps the host from routing anything else), and
  never turns either back: once the engine stopped both are put back as the
  tests found them.  Where this machine's capability bounding
  set lacks a capability (this sandbox drops CAP_SYS_RESOURCE), Debian's
  dockerd 20.10 cannot start any `--privileged` container ("unable to apply
  caps"): it asks runc for every capability the kernel knows.  The dockerd
  started here then runs containers through a runc wrapper (RUNC_WRAPPER)
  that leaves out of a container's capabilities only those this machine
  does not have, as newer runtimes do, so `docker run --privileged` works.
- debian_image(): Debian 12 as `debootstrap --variant=minbase bookworm`
  makes it, imported with `docker import` (no image registry is needed),
  with bookworm's updates and security sources as Debian's own images have.
- standin_image(): that Debian 12 plus the BMv2 (simple_switch_grpc), PI and
  p4c (p4c-bm2-ss and its p4include) **of this machine's own
  installation**, copied from it with the Debian packages of the libraries
  they link (found with ldd and dpkg), as a local stand-in for p4lang's
  image, the Dockerfile's default base.  It is for these tests only, not a
  way to get the toolchain: it holds what this machine built.

Images are kept in the engine's store under beaver-test/ and reused; the
stand-in's tag is a hash of the files it copies and the packages it
installs, so a rebuilt toolchain gives a new one.

This network intercepts TLS with a CA of its own, which this machine's pip
is told of (PIP_CERT or pip's `cert` setting); containers are given the same
bundle for pip (pip_trust()), as the host's pip has it.  Elsewhere there is
no such setting and nothing is added.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]   # the checkout
DEBIAN_IMAGE = "beaver-test/debian12:minbase"
STANDIN_REPO = "beaver-test/p4lang-standin"
TOOLS = ("simple_switch_grpc", "p4c-bm2-ss")
# What the tools run rather than link: p4c built with GCC preprocesses with
# `cpp` (p4lang's image has it: its smoke test compiles a program).
RUNTIME_DEBS = ("cpp",)
P4C_SHARE = Path("/usr/local/share/p4c")
INSIDE_ENV = "BEAVER_NEW_MACHINE"   # set inside the new-machine test's container
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")

SOURCES = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


class Unavailable(Exception):
    """Docker cannot run here; the message says why (the tests skip)."""


CAPABILITIES = (   # by number, as the kernel's capability.h has them
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE")

RUNC_WRAPPER = """\
#!/usr/bin/python3
# runc, with each container's capabilities cut to this machine's bounding
# set (written by Beaver-P4's tests/support/docker_support.py for the dockerd it starts).
import json, os, sys
RUNC = {runc!r}
MISSING = {missing!r}

def trim(path):
    with open(path) as f:
        spec = json.load(f)
    process = spec.get("process", spec)   # a bundle's config.json, or exec's process.json
    caps = process.get("capabilities") or {{}}
    for kind, names in caps.items():
        caps[kind] = [n for n in names or () if n not in MISSING]
    with open(path, "w") as f:
        json.dump(spec, f)

args = sys.argv[1:]
if "--bundle" in args:
    trim(os.path.join(args[args.index("--bundle") + 1], "config.json"))
if "--process" in args:
    trim(args[args.index("--process") + 1])
os.execv(RUNC, [RUNC, *args])
"""


def missing_capabilities() -> list[str]:
    """The kernel's capabilities this process's bounding set lacks (OCI names)."""
    status = Path("/proc/self/status").read_text()
    bounding = int(re.search(r"^CapBnd:\s*([0-9a-f]+)", status, re.M).group(1), 16)
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    return [f"CAP_{CAPABILITIES[bit]}" for bit in range(min(last + 1, len(CAPABILITIES)))
            if not bounding >> bit & 1]


def dockerd_command(work: Path) -> list[str]:
    """dockerd, through the runc wrapper where capabilities are missing."""
    command = ["dockerd"]
    missing = missing_capabilities()
    runc = shutil.which("runc")
    if missing and runc:
        wrapper = work / "beaver-runc"
        wrapper.write_text(RUNC_WRAPPER.format(runc=runc, missing=missing))
        wrapper.chmod(0o755)
        command += ["--add-runtime", f"beaver-runc={wrapper}", "--default-runtime", "beaver-runc"]
    return command


def docker(*args: str, timeout: float = 600, check: bool = True,
           **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True,
                            timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)[:200]}: exit {result.returncode}: "
                           f"{(result.stderr or result.stdout)[-2000:]}")
    return result


def _engine_answers() -> bool:
    try:
        return subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                              capture_output=True, timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False


# -- the engine ---------------------------------------------------------------

@dataclass
class Engine:
    started: subprocess.Popen | None = None   # dockerd, if started here
    log: Path | None = None
    ip_forward: str | None = None             # as found, if dockerd was started here
    forward_policy: str | None = None         # (so is FORWARD's policy)

    def stop(self):
        if self.started is None:
            return
        self.started.terminate()
        try:
            self.started.wait(60)
        except subprocess.TimeoutExpired:
            self.started.kill()
            self.started.wait()
        self.started = None
        if self.ip_forward is not None:   # forwarding first, then the policy that guarded it
            IP_FORWARD.write_text(self.ip_forward + "\n")
        if self.forward_policy is not None and _forward_policy() != self.forward_policy:
            subprocess.run(["iptables", "-w", "5", "-P", "FORWARD", self.forward_policy],
                           capture_output=True)
        if self.log is not None:
            shutil.rmtree(self.log.parent, ignore_errors=True)


def _forward_policy() -> str | None:
    out = subprocess.run(["iptables", "-w", "5", "-S", "FORWARD"], capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        if line.startswith("-P FORWARD"):
            return line.split()[-1]
    return None


def engine(timeout: float = 60) -> Engine:
    """A running engine; raises Unavailable where none can run."""
    if os.environ.get(INSIDE_ENV):
        raise Unavailable("inside the new-machine test's container: the Docker tests run "
                          "on the host")
    if shutil.which("docker") is None:
        raise Unavailable("docker is not installed (apt-get install docker.io: make test's "
                          "set-up step does)")
    if _engine_answers():
        return Engine()
    if os.geteuid() != 0:
        raise Unavailable("no Docker engine runs, and starting dockerd needs root")
    if shutil.which("dockerd") is None:
        raise Unavailable("no Docker engine runs and dockerd is not installed "
                          "(apt-get install docker.io)")
    found = Engine(ip_forward=IP_FORWARD.read_text().strip(), forward_policy=_forward_policy())
    work = Path(tempfile.mkdtemp(prefix="beaver-dockerd-"))
    found.log = work / "dockerd.log"
    with open(found.log, "w") as log:
        found.started = subprocess.Popen(dockerd_command(work), stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while not _engine_answers():
        if found.started.poll() is not None or time.monotonic() > deadline:
            tail = " | ".join(found.log.read_text(errors="replace").strip().splitlines()[-3:])
            found.stop()
            raise Unavailable(f"dockerd did not start within {timeout:.0f} s: {tail}")
        time.sleep(0.5)
    return found


def privileged_problem(image: str) -> str | None:
    """Why this engine cannot start a privileged container of image, or None."""
    out = docker("run", "--rm", "--privileged", image, "true", check=False, timeout=300)
    if out.returncode == 0:
        return None
    lines = (out.stderr or out.stdout).strip().splitlines() or ["(no output)"]
    return f"this engine cannot start a privileged container: {lines[0]}"


def image_exists(name: str) -> bool:
    return docker("image", "inspect", name, check=False, timeout=60).returncode == 0


# -- pip's trust --------------------------------------------------------------

def host_pip_cert() -> Path | None:
    """The CA bundle this machine's pip is told to trust, if any."""
    cert = os.environ.get("PIP_CERT")
    if not cert:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            key, _, value = line.partition("=")
            if key.endswith(".cert"):
                cert = value.strip().strip("'\"")
    return Path(cert) if cert and Path(cert).is_file() else None


def pip_trust() -> list[str]:
    """docker run options that give a container's pip the host's CA bundle."""
    cert = host_pip_cert()
    if cert is None:
        return []
    return ["-v", f"{cert}:/etc/beaver-host-ca.crt:ro", "-e", "PIP_CERT=/etc/beaver-host-ca.crt"]


# -- Debian 12 ----------------------------------------------------------------

def debian_image() -> str:
    """Debian 12 minbase, made by debootstrap and imported (once)."""
    if image_exists(DEBIAN_IMAGE):
        return DEBIAN_IMAGE
    if shutil.which("debootstrap") is None:
        raise Unavailable("debootstrap is not installed (apt-get install debootstrap: "
                          "make test's set-up step does)")
    work = Path(tempfile.mkdtemp(prefix="beaver-debootstrap-", dir="/var/tmp"))
    try:
        rootfs = work / "rootfs"
        result = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs),
                                 "http://deb.debian.org/debian"],
                                capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise RuntimeError(f"debootstrap: {result.stdout[-1500:]} {result.stderr[-1500:]}")
        (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
        (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(SOURCES)
        (rootfs / "etc/apt/apt.conf.d/docker-clean").write_text(
            'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb || true"; };\n')
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        docker("import", "--change", "CMD [\"bash\"]", "-", DEBIAN_IMAGE, stdin=tar.stdout,
               timeout=600)
        tar.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return DEBIAN_IMAGE


# -- the stand-in for p4lang's image ------------------------------------------

def _libraries(binary: Path) -> list[Path]:
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True,
                         check=True).stdout
    missing = [line.split()[0] for line in out.splitlines() if "not found" in line]
    if missing:
        raise RuntimeError(f"{binary}: libraries not found: {', '.join(missing)}")
    return [Path(m.group(1)) for m in re.finditer(r"=> (/\S+)", out)]


def _package_of(path: Path) -> str:
    """The Debian package that installed a library (usrmerge: /lib or /usr/lib)."""
    candidates = [str(path), str(path.resolve())]
    for c in list(candidates):
        candidates.append(c[4:] if c.startswith("/usr/") else "/usr" + c)
    for c in candidates:
        out = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.split(":")[0].strip()
    raise RuntimeError(f"{path}: no Debian package owns it (dpkg -S)")


def _version(tool: str) -> str:
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60)
    text = (out.stdout + out.stderr).strip()
    return text.splitlines()[-1] if text else "?"


@dataclass(frozen=True)
class Standin:
    image: str
    versions: dict[str, str]   # tool -> what its --version prints here


def toolchain_missing() -> str | None:
    for tool in TOOLS:
        if shutil.which(tool) is None:
            return (f"{tool} is not installed here: the stand-in for p4lang's image is "
                    f"made from this machine's own BMv2 and p4c")
    if not P4C_SHARE.is_dir():
        return f"{P4C_SHARE} is missing (p4c's p4include)"
    return None


def standin_image() -> Standin:
    """Debian 12 with this machine's BMv2, PI and p4c (built once per toolchain)."""
    if (reason := toolchain_missing()) is not None:
        raise Unavailable(reason)
    binaries = [Path(shutil.which(tool)).resolve() for tool in TOOLS]
    own, debs = set(), set(RUNTIME_DEBS)
    for binary in binaries:
        for lib in _libraries(binary):
            if str(lib.resolve()).startswith("/usr/local/"):
                own.add(lib)
            else:
                debs.add(_package_of(lib))
    files = sorted({*binaries, *own}, key=str)
    share = sorted(p for p in P4C_SHARE.rglob("*") if p.is_file())
    digest = hashlib.sha256(" ".join(sorted(debs)).encode())   # the recipe, and the files
    for path in [*files, *share]:
        digest.update(str(path).encode())
        digest.update(path.read_bytes())
    versions = {tool: _version(tool) for tool in TOOLS}
    image = f"{STANDIN_REPO}:{digest.hexdigest()[:16]}"
    if image_exists(image):
        return Standin(image, versions)

    base = debian_image()
    work = Path(tempfile.mkdtemp(prefix="beaver-standin-", dir="/var/tmp"))
    try:
        rootfs = work / "rootfs"
        for path in files:   # a library under its ldd name (the soname link's target copied)
            dest = rootfs / str(path).lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path.resolve(), dest)
        for binary in binaries:   # on PATH under its own name
            dest = rootfs / "usr/local/bin" / binary.name
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(binary, dest)
        shutil.copytree(P4C_SHARE, rootfs / str(P4C_SHARE).lstrip("/"), symlinks=True)
        trust = ""
        if (cert := host_pip_cert()) is not None:   # see the module's docstring
            shutil.copy2(cert, work / "host-ca.crt")
            trust = ("COPY host-ca.crt /usr/local/share/beaver-test/host-ca.crt\n"
                     "ENV PIP_CERT=/usr/local/share/beaver-test/host-ca.crt\n")
        label = json.dumps(json.dumps(versions))
        (work / "Dockerfile").write_text(
            f"# A stand-in for p4lang's image, for Beaver-P4's tests only: Debian 12 with\n"
            f"# the BMv2, PI and p4c of the machine that built it.\n"
            f"FROM {base}\n"
            f"RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
            f"--no-install-recommends {' '.join(sorted(debs))} && "
            f"rm -rf /var/lib/apt/lists/*\n"
            f"COPY rootfs/ /\n{trust}"
            f"RUN ldconfig && {' && '.join(f'{tool} --version' for tool in TOOLS)}\n"
            f"LABEL org.beaver-p4.toolchain={label}\n")
        docker("build", "-t", image, str(work), timeout=1800)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Standin(image, versions)


# -- what a container leaves on the host --------------------------------------

def host_links() -> dict[int, str]:
    """The root namespace's links: index -> name."""
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {int(line.split(":")[0]): line.split(":")[1].strip().split("@")[0]
            for line in out.splitlines()}


def links_in(pid: int) -> list[str]:
    """The links of a process's network namespace."""
    dev = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    return [line.split(":")[0].strip() for line in dev]


def holders_of(netns_inode: int) -> list[int]:
    """The processes in a network namespace (a namespace lives while one does)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "ns/net").stat().st_ino == netns_inode:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def processes_of(container_id: str) -> list[str]:
    """Processes on the host whose cgroup is the container's."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if container_id in (entry / "cgroup").read_text():
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ")
                             .decode(errors="replace").strip() or entry.name)
        except OSError:
            continue
    return found
