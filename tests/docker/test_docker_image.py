"""The project's Docker image, built and run (issue 16).

The image is built as the README says, on a local stand-in for p4lang's
image (Debian 12 with this machine's own BMv2, PI and p4c:
tests/support/docker_support.py), and run with the README's command: fig5, then a
TCP experiment through the kernel decapsulation program right after it, each
short and bounded in time.  The results must land on the host, owned by the
owner of the results folder (deletable without root), and `docker stop` in
the middle of a run must leave no link, namespace or process on the host,
and no packet of the emulated network may leave the container.

Needs a Docker engine (started here if none runs) and BMv2 and p4c on this
machine; skips, saying why, where they are missing.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support import docker_support
from tests.support.docker_support import ROOT, docker

IMAGE = "beaver-test/beaver-p4:latest"
USER = 4242   # an unprivileged owner of the results folder, as a user's own would be


@pytest.fixture(scope="module")
def image(standin):
    """The README's `docker build`, with the stand-in as its base."""
    started = time.monotonic()
    docker("build", "--build-arg", f"BASE_IMAGE={standin.image}", "-t", IMAGE, str(ROOT),
           timeout=2400)
    print(f"image built in {time.monotonic() - started:.0f} s")
    return IMAGE


@pytest.fixture
def results():
    """A results folder a user owns, in a place that user can reach."""
    top = Path(tempfile.mkdtemp(prefix="beaver-results-", dir="/var/tmp"))
    top.chmod(0o755)
    folder = top / "results"
    folder.mkdir()
    os.chown(folder, USER, USER)
    yield folder
    shutil.rmtree(top, ignore_errors=True)


def run(image: str, results: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """The README's `docker run`, with the experiment's arguments after it."""
    name = f"beaver-test-run-{os.getpid()}"
    try:
        return subprocess.run(["docker", "run", "--rm", "--privileged", "--name", name,
                               "-v", f"{results}:/beaver/results", image, *args],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        docker("kill", name, check=False)
        raise


def landed(results: Path, name: str) -> dict:
    """The run's folder on the host: its files, all the user's, and its summary."""
    (folder,) = results.glob(f"{name}-*")
    for suffix in (".csv", "-summary.json", ".png"):
        path = folder / f"{name}{suffix}"
        assert path.is_file() and path.stat().st_size > 0, path
    foreign = [str(p) for p in [results, *results.rglob("*")]
               if (p.lstat().st_uid, p.lstat().st_gid) != (USER, USER)]
    assert not foreign, f"not the user's: {foreign[:5]}"
    phases = {row["phase"]: row for row in
              json.loads((folder / f"{name}-summary.json").read_text())}
    return {"folder": folder, "phases": phases, "bmv2": (folder / "bmv2.txt").read_text()}


def deletable_by_the_user(results: Path) -> bool:
    """Whether the user (no root) can delete everything the runs left in results."""
    for path in results.iterdir():
        subprocess.run(["rm", "-rf", str(path)], user=USER, group=USER, capture_output=True)
    return not any(results.iterdir())


def test_the_image_carries_this_machines_bmv2_and_p4c(image, standin):
    for tool, version in standin.versions.items():
        out = subprocess.run(["docker", "run", "--rm", "--entrypoint", tool, image, "--version"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and version in out.stdout + out.stderr, (tool, out)


def test_the_committed_p4_build_matches_the_images_p4c(image):
    out = subprocess.run(["docker", "run", "--rm", "--entrypoint", "/opt/venv/bin/python",
                          image, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/bmv2/test_p4_build.py"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:]
    assert " passed" in out.stdout and "skipped" not in out.stdout, out.stdout[-1000:]


def test_fig5_runs_in_the_image_and_lands_on_the_host(image, results):
    out = run(image, results, "experiment", "run", "fig5", "--count", "6", timeout=1200)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    run_ = landed(results, "fig5")
    phases = run_["phases"]
    late = phases["beaver-fine-timed"]
    assert late["taken"] == 6 and late["false_accepts"] == 0, late
    assert late["rejected"] >= late["inconsistent"] >= 1, late
    assert phases["beaver-on-time-timed"]["false_accepts"] == 0
    assert phases["lai-yang"]["accepted"] == 6 and phases["lai-yang"]["false_accepts"] >= 1
    assert run_["bmv2"].startswith("/usr/local/bin/simple_switch_grpc (default build"), \
        run_["bmv2"]
    assert deletable_by_the_user(results)


def test_a_tcp_experiment_runs_right_after_with_kernel_decapsulation(image, results):
    out = run(image, results, "experiment", "run", "fig5tcp", "--count", "4",
              "--clean-count", "4", timeout=1200)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    phases = landed(results, "fig5tcp")["phases"]
    late = phases["beaver-fine"]
    assert late["rejected"] == late["taken"] == 4 and late["false_accepts"] == 0, late
    clean = phases["beaver-on-time"]
    assert clean["accepted"] >= 1 and clean["false_accepts"] == 0, clean
    assert deletable_by_the_user(results)


def test_docker_stop_leaves_nothing_on_the_host(image, results):
    """Checked by the container's own traces (other runs on a shared machine
    make and delete links of their own): its processes, its network
    namespace, which held every veth, namespace and BMv2 of the run, and
    the host's end of its eth0."""
    name = f"beaver-test-stop-{os.getpid()}"
    cid = docker("run", "-d", "--privileged", "--name", name,
                 "-v", f"{results}:/beaver/results", image,
                 "experiment", "run", "fig12", "--duration", "120").stdout.strip()
    try:
        deadline = time.monotonic() + 180
        while True:   # the network is up: BMv2 and the Mininet hosts' shells run
            inside = docker_support.processes_of(cid)
            if (any("simple_switch_grpc" in p for p in inside)
                    and any("mininet:bv" in p for p in inside)):
                break
            state = docker("inspect", "-f", "{{.State.Running}}", cid).stdout.strip()
            assert state == "true" and time.monotonic() < deadline, \
                docker("logs", cid, check=False).stderr[-2000:]
            time.sleep(1)
        time.sleep(5)   # its processes started on the hosts, traffic through the SLBs
        pid = int(docker("inspect", "-f", "{{.State.Pid}}", cid).stdout)
        netns = Path(f"/proc/{pid}/ns/net").stat().st_ino
        assert sum(link.startswith("bv") for link in docker_support.links_in(pid)) > 10
        # the container's own link to the host carried none of the run's
        # packets (its namespace inherits dockerd's IP forwarding: topologies/nodes.py)
        dev = Path(f"/proc/{pid}/net/dev").read_text()
        (eth0,) = [line.split(":")[1].split() for line in dev.splitlines()
                   if line.strip().startswith("eth0:")]
        assert int(eth0[9]) < 20, f"{eth0[9]} packets left the container by eth0"
        peer = int(Path(f"/proc/{pid}/root/sys/class/net/eth0/iflink").read_text())
        assert peer in docker_support.host_links()

        stopping = time.monotonic()
        docker("stop", cid, timeout=120)
        stopped_in = time.monotonic() - stopping
        print(f"docker stop took {stopped_in:.1f} s")
        code = int(docker("inspect", "-f", "{{.State.ExitCode}}", cid).stdout)
        logs = docker("logs", cid, check=False)
        # beaver took its network down on SIGTERM, before docker's 10 s ran out
        assert code == 143, (code, stopped_in, (logs.stdout + logs.stderr)[-2000:])
        assert docker_support.processes_of(cid) == []
        assert docker_support.holders_of(netns) == [], "the run's namespace lives on"
        assert peer not in docker_support.host_links(), "the host's end of eth0 is left"
    finally:
        docker("rm", "-f", cid, check=False)
    assert deletable_by_the_user(results)
