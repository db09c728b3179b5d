"""The clock-probe bounds across servers: one SLB on this machine, one on a
second server, in the same run, each estimated through its probe port
(control/slbs/probe.py): here a veth, there an SSH Ethernet tunnel to this
machine (topologies/spread.py).

The second server is a container of the project's image with sshd, as in
tests/docker/test_two_servers.py (needs root, Docker, Mininet, BMv2 and p4c).
The run is `beaver experiment run fig13 --servers localhost,<container>
--slbs 2` (bvs1 here, bvs2 there); printed per SLB, from the error bound of
the clock estimate the controller held at every snapshot's answer (the
run's snapshot stores): answers, p50 and p99 in microseconds, then the
container's over this machine's (the same run's baseline).

Run (holding the machine's lock): python bench/probe_servers.py [--count 200]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # tests.support

from tests.support import docker_support                        # noqa: E402
from tests.support.container_server import ContainerServer, server_image   # noqa: E402
from tests.support.docker_support import ROOT                   # noqa: E402

PHASES = ("g2-immediate", "g2-timed")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bounds(run_dir: Path) -> dict[str, list[float]]:
    """Every probe estimate's error bound in the run's store (single
    snapshots' answers and batches'), by SLB."""
    by_slb: dict[str, list[float]] = {}
    with sqlite3.connect(f"file:{run_dir / 'snapshots.db'}?mode=ro", uri=True) as db:
        for slb, error in db.execute(
                "SELECT slb, error_us FROM acks WHERE clock_source = 'probe' AND error_us "
                "IS NOT NULL UNION ALL SELECT slb, error_us FROM batch_acks WHERE "
                "clock_source = 'probe' AND error_us IS NOT NULL"):
            by_slb.setdefault(slb, []).append(error)
    return by_slb


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=200, help="snapshots per phase (default 200)")
    args = p.parse_args()
    results = Path(tempfile.mkdtemp(prefix="beaver-probe-servers-", dir="/var/tmp"))
    engine = docker_support.engine()
    try:
        image = server_image(docker_support.standin_image())
        with ContainerServer.started(image, shares=sorted({ROOT, Path(sys.prefix).resolve()})) \
                as server:
            env = dict(os.environ, BEAVER_SSH_CONFIG=str(server.ssh_config))
            done = subprocess.run([sys.executable, "-m", "beaver.control.cli.main", "experiment",
                                   "run", "fig13", "--servers", f"localhost,{server.address}",
                                   "--slbs", "2", "--count", str(args.count), "--tau-us", "300",
                                   "--out", str(results), "--json"],
                                  env=env, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"fig13 across servers failed: {done.stderr.strip()[-2000:]}")
        (folder,) = results.glob("fig13-*")
        print(f"BMv2: {(folder / 'bmv2.txt').read_text().strip()} (here; the container's is "
              f"a copy of this machine's, in its image); {args.count} snapshots per phase")
        for phase in PHASES:
            placed = json.loads((folder / "runs" / phase / "placement.json").read_text())
            by_slb = bounds(folder / "runs" / phase)
            cells = {}
            for slb in sorted(by_slb):
                errors = by_slb[slb]
                where = "here" if placed[slb] == "localhost" else "container"
                cells[where] = (percentile(errors, 0.5), percentile(errors, 0.99))
                print(f"{phase} {slb} ({where}): {len(errors)} answers, error bound "
                      f"p50 {cells[where][0]:.1f} us, p99 {cells[where][1]:.1f} us")
            if {"here", "container"} <= cells.keys():
                print(f"{phase} container / here: p50 x{cells['container'][0] / cells['here'][0]:.2f}"
                      f", p99 x{cells['container'][1] / cells['here'][1]:.2f}")
    finally:
        engine.stop()
        shutil.rmtree(results, ignore_errors=True)


if __name__ == "__main__":
    main()
