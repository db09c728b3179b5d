"""veth pairs in the root namespace, for a switch outside Mininet: the
switch ends go to BMv2, the host ends to a test or benchmark."""
from __future__ import annotations

import subprocess


class VethPairs:
    """Port i is the pair (f"{prefix}{i}s", f"{prefix}{i}h"); IPv6 is off on
    both ends so the kernel sends nothing on its own."""

    def __init__(self, prefix: str, count: int):
        self.pairs = {i: (f"{prefix}{i}s", f"{prefix}{i}h") for i in range(1, count + 1)}

    def create(self) -> "VethPairs":
        for switch_end, host_end in self.pairs.values():
            subprocess.run(["ip", "link", "del", switch_end], capture_output=True)
            subprocess.run(["ip", "link", "add", switch_end, "type", "veth",
                            "peer", "name", host_end], check=True)
            for end in (switch_end, host_end):
                subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{end}.disable_ipv6=1"],
                               check=True)
                subprocess.run(["ip", "link", "set", end, "up"], check=True)
        return self

    def remove(self):
        for switch_end, _ in self.pairs.values():
            subprocess.run(["ip", "link", "del", switch_end], capture_output=True)

    def __enter__(self):
        return self.create()

    def __exit__(self, *exc):
        self.remove()

    @property
    def switch_ends(self) -> dict[int, str]:
        return {i: pair[0] for i, pair in self.pairs.items()}

    @property
    def host_ends(self) -> dict[int, str]:
        return {i: pair[1] for i, pair in self.pairs.items()}
