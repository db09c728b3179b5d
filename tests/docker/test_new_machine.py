"""`make test` on a new Debian 12 machine, with nothing installed by hand (issue 16).

A fresh Debian 12 container (debootstrap's minbase, imported: no image
registry is needed) gets a clone of this commit and runs the README's test
command in it as root, privileged; only `make` itself is installed first, as
anyone must to run it.  The set-up step must install every other package:
the test fails when anything in the run fails, and when any test skips for a
reason other than BMv2 and p4c (which no package registry has) or the Docker
tests (which run on the host).  Needs a Docker engine (started here if none
runs) and debootstrap.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support import docker_support
from tests.support.docker_support import INSIDE_ENV, ROOT, Unavailable, docker

# Why a test may skip in the container: what no package registry has, and
# the Docker tests themselves.
ALLOWED_SKIPS = re.compile(r"simple_switch_grpc is not installed|p4c-bm2-ss is not installed|"
                           r"inside the new-machine test's container")


@pytest.fixture
def debian(docker_engine):
    try:
        image = docker_support.debian_image()
    except Unavailable as e:
        pytest.skip(f"docker: {e}")
    if (problem := docker_support.privileged_problem(image)) is not None:
        pytest.skip(f"docker: {problem}")
    return image


@pytest.fixture
def clone():
    """This commit, cloned (what is committed is what a new machine gets)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()
    top = Path(tempfile.mkdtemp(prefix="beaver-new-machine-", dir="/var/tmp"))
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(top / "beaver")],
                   check=True)
    subprocess.run(["git", "-C", str(top / "beaver"), "checkout", "-q", "--detach", commit],
                   check=True)
    yield top / "beaver"
    shutil.rmtree(top, ignore_errors=True)


def test_make_test_passes_in_a_fresh_debian12_container(debian, clone, tmp_path):
    name = f"beaver-test-new-machine-{os.getpid()}"
    log = tmp_path / "make-test.log"
    started = time.monotonic()
    with open(log, "w") as out:
        try:
            proc = subprocess.run(
                ["docker", "run", "--rm", "--privileged", "--name", name, "-e", f"{INSIDE_ENV}=1",
                 *docker_support.pip_trust(), "-v", f"{clone}:/beaver", "-w", "/beaver", debian,
                 "sh", "-c", "apt-get update -q && DEBIAN_FRONTEND=noninteractive "
                             "apt-get install -y -q make && make test"],
                stdout=out, stderr=subprocess.STDOUT, timeout=2700)
        except subprocess.TimeoutExpired:
            docker("kill", name, check=False)
            raise
    took = time.monotonic() - started
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, text[-5000:]
    (closing,) = re.findall(r"^=* ?((?:\d+ \w+,? ?)+) in [\d.]+s", text, re.M)[-1:]
    counts = dict((word, int(n)) for n, word in re.findall(r"(\d+) (\w+)", closing))
    assert counts.get("passed", 0) > 0 and not counts.get("failed") \
        and not counts.get("error") and not counts.get("errors"), closing
    skips = re.findall(r"^SKIPPED \[\d+\] [^:]+(?::\d+)?: (.*)$", text, re.M)
    unexpected = sorted({s for s in skips if not ALLOWED_SKIPS.search(s)})
    assert not unexpected, f"skipped for a missing package? {unexpected}"
    # libpcap came with the set-up step: the decapsulation test ran
    assert "test_decap.py" not in " ".join(
        line for line in text.splitlines() if line.startswith("SKIPPED")), text[-3000:]
    print(f"fresh Debian 12: {closing} ({took:.0f} s with the set-up)")
