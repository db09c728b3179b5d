"""Shared fixtures.  Tests that need BMv2, p4c, root or Mininet skip with a
visible reason when those are missing (pytest -ra prints the reasons)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from beaver.p4src import BMV2_JSON, P4INFO
from beaver.topologies.bmv2 import bmv2_available


def missing_for_bmv2() -> str | None:
    if not bmv2_available():
        return "simple_switch_grpc is not installed (BMv2 comes with the Docker image)"
    if os.geteuid() != 0:
        return "veth pairs need root"
    if not (BMV2_JSON.exists() and P4INFO.exists()):
        return "p4src/build has no compiled program (python -m beaver.p4src.compiler)"
    return None


def missing_for_mininet() -> str | None:
    if shutil.which("mn") is None:
        return "Mininet is not installed (apt-get install mininet)"
    return missing_for_bmv2()


def pytest_collection_modifyitems(config, items):
    reasons = {"bmv2": missing_for_bmv2(), "mininet": missing_for_mininet()}
    for item in items:
        for mark, reason in reasons.items():
            if reason and item.get_closest_marker(mark):
                item.add_marker(pytest.mark.skip(reason=f"{mark}: {reason}"))


class VethPairs:
    """veth pairs whose switch ends go to BMv2 and host ends to the test."""

    def __init__(self, prefix: str, count: int):
        self.pairs = {i: (f"{prefix}{i}s", f"{prefix}{i}h") for i in range(1, count + 1)}

    def __enter__(self):
        for switch_end, host_end in self.pairs.values():
            subprocess.run(["ip", "link", "del", switch_end], capture_output=True)
            subprocess.run(["ip", "link", "add", switch_end, "type", "veth",
                            "peer", "name", host_end], check=True)
            for end in (switch_end, host_end):
                subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{end}.disable_ipv6=1"],
                               check=True)
                subprocess.run(["ip", "link", "set", end, "up"], check=True)
        return self

    def __exit__(self, *exc):
        for switch_end, _ in self.pairs.values():
            subprocess.run(["ip", "link", "del", switch_end], capture_output=True)

    @property
    def switch_ends(self) -> dict[int, str]:
        return {i: pair[0] for i, pair in self.pairs.items()}

    @property
    def host_ends(self) -> dict[int, str]:
        return {i: pair[1] for i, pair in self.pairs.items()}


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
        veths = VethPairs(f"b{os.getpid() % 1000}{chr(97 + len(running))}", ports)
        veths.__enter__()
        switch = Bmv2Switch(f"s{len(running)}", veths.switch_ends, free_port(), device_id,
                            log_dir, thrift_port=free_port())
        running.append((switch, veths))
        switch.start()
        return switch, veths

    yield start
    for switch, veths in running:
        switch.stop()
        veths.__exit__()
