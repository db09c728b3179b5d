"""Shared fixtures.  Tests that need BMv2, p4c, root, BPF or Mininet skip with a
visible reason when those are missing (pytest -ra prints the reasons).

BEAVER_BMV2 names the BMv2 binary (default: simple_switch_grpc on PATH);
BEAVER_BMV2_DEBUG=1 makes the test switches log every packet into their logs
under pytest's temporary folder."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from beaver.p4src import BMV2_JSON, P4INFO
from beaver.topologies.bmv2 import BINARY, bmv2_available
from beaver.topologies.veth import VethPairs


def missing_for_bmv2() -> str | None:
    if not bmv2_available():
        return f"{BINARY} is not installed (BMv2 comes with the Docker image)"
    if os.geteuid() != 0:
        return "veth pairs need root"
    if not (BMV2_JSON.exists() and P4INFO.exists()):
        return "p4src/build has no compiled program (python -m beaver.p4src.compiler)"
    return None


def missing_for_bpf() -> str | None:
    from beaver.topologies import decap
    if os.geteuid() != 0:
        return "loading a tc BPF program needs root"
    if shutil.which("tc") is None:
        return "tc is not installed (apt-get install iproute2)"
    return decap.missing()


def missing_for_mininet() -> str | None:
    """(every in-group host of a network runs the kernel decapsulation program)"""
    if shutil.which("mn") is None:
        return "Mininet is not installed (apt-get install mininet)"
    return missing_for_bmv2() or missing_for_bpf()


def pytest_configure(config):
    """Hypothesis keeps its caches outside the checkout: a test run writes
    nothing where it was not asked to."""
    from hypothesis.configuration import set_hypothesis_home_dir
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "beaver-hypothesis")


FOLDER_MARKS = {"bmv2": "bmv2", "mininet": "mininet", "kernel": "root",
                "docker": "docker"}   # tests/<folder>


def pytest_collection_modifyitems(config, items):
    reasons = {"bmv2": missing_for_bmv2(), "mininet": missing_for_mininet(),
               "bpf": missing_for_bpf(),
               "root": "needs root" if os.geteuid() != 0 else None}
    tests = Path(__file__).parent
    for item in items:
        folder = item.path.relative_to(tests).parts[0]
        if folder in FOLDER_MARKS:   # the folder says what a test needs
            item.add_marker(FOLDER_MARKS[folder])
        for mark, reason in reasons.items():
            if reason and item.get_closest_marker(mark):
                item.add_marker(pytest.mark.skip(reason=f"{mark}: {reason}"))


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def bmv2_switches(tmp_path_factory):
    """Starts BMv2 switches on fresh veth pairs: start(ports) -> (switch, veths).
    Everything is stopped and removed after the module."""
    from beaver.topologies.bmv2 import Bmv2Switch

    log_dir = tmp_path_factory.mktemp("bmv2")
    running = []

    def start(ports: int = 4, device_id: int = 1):
        veths = VethPairs(f"b{os.getpid() % 1000}{chr(97 + len(running))}", ports).create()
        switch = Bmv2Switch(f"s{len(running)}", veths.switch_ends, free_port(), device_id,
                            log_dir, thrift_port=free_port(),
                            debug_log=os.environ.get("BEAVER_BMV2_DEBUG") == "1")
        running.append((switch, veths))
        switch.start()
        return switch, veths

    yield start
    for switch, veths in running:
        switch.stop()
        veths.remove()


@pytest.fixture(scope="module")
def docker_engine():
    """A running Docker engine (tests/support/docker_support.py): one started here is
    stopped after the module (dockerd's FORWARD DROP on the host lasts no
    longer than the tests that need it).  Skips, saying why, where none can run."""
    from tests.support.docker_support import Unavailable, engine
    try:
        running = engine()
    except Unavailable as e:
        pytest.skip(f"docker: {e}")
    yield running
    running.stop()
