"""One experiment run: a fresh network, its processes and the controller.

    with Run(spec, run_dir, workload) as run:   # network up, SLBs programmed,
        run.start_traffic()                     # in-group processes serving
        summary = run.snapshots(settings)
    truth = run.check()                         # after the processes stopped

Leaving the block (normally, by Ctrl-C or by an error) stops every process
with SIGTERM, stops the switches and removes the network, so a second run
never sees the first one's leftovers.
"""
from __future__ import annotations

import json
import logging
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from beaver.control.config import ServiceConfig
from beaver.control.slbs.fleet import SlbFleet
from beaver.control.engine.engine import Engine, RunSettings, RunSummary
from beaver.control.engine.record import SnapshotRecord
from beaver.control.store import SnapshotStore
from beaver.traffic.analysis.checker import Chain, Trace, Verdict, chain_summary, check

from beaver.topologies.network import BeaverNetwork
from beaver.topologies import servers
from beaver.topologies.network import NetworkError
from beaver.topologies.processes import Processes, Workload
from beaver.topologies.service import write_config
from beaver.topologies.spread import SpreadNetwork
from beaver.topologies.spec import Spec

log = logging.getLogger(__name__)

CHECKER_MOST = 20_000   # snapshots the checker judges in a run; beyond, a random sample
SAMPLE_SEED = 11        # the same runs sample the same snapshots


@dataclass
class Truth:
    """The checker's view of a run: a verdict per snapshot (by wire ID), and
    what the logs say of the run itself: logs cut short (or missing),
    receives whose send no log holds, and the external causal chains.  The
    trace itself is kept for the use cases' own ground truth."""
    verdicts: dict[int, Verdict]
    short_logs: list[str]
    unmatched_receives: int
    chains: list[Chain]
    trace: Trace
    sampled: int = 1    # one snapshot in `sampled` was judged (1: every one)

    def logs(self, tau_us: int | None) -> dict:
        """The log facts, chains counted against tau_us (None: no tau assumed)."""
        return {"short_logs": len(self.short_logs), "unmatched_receives": self.unmatched_receives,
                "checker_judged": len(self.verdicts), "checker_sample_every": self.sampled,
                **chain_summary(self.chains, tau_us)}


class Run:
    def __init__(self, spec: Spec, run_dir: Path, workload: Workload = Workload(),
                 marking: bool = True, reports: bool = True, pipeline: str = "beaver"):
        """reports: whether snapshots collect the in-group processes' reports;
        pipeline: the program every SLB runs, "beaver" or "plain" (the SLB
        without Beaver, which takes no snapshot: control/config.py)."""
        self.spec = spec
        self.run_dir = Path(run_dir)
        self.workload = workload
        self.marking = marking
        self.pipeline = pipeline
        self.reports = reports
        self.servers = servers.chosen()   # one, unless `--servers` said more
        if self.servers.single:
            self.network = BeaverNetwork(spec, self.run_dir / "switches")
        else:
            self.network = SpreadNetwork(spec, self.run_dir / "switches", self.servers)
        self.processes: Processes | None = None
        self.config: ServiceConfig | None = None
        self.controller: SlbFleet | None = None
        self.store: SnapshotStore | None = None
        self.records: list[SnapshotRecord] = []

    def __enter__(self) -> "Run":
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "spec.json").write_text(json.dumps(asdict(self.spec), indent=1))
        if not self.servers.single:
            self._across_servers()
        try:
            self.network.start()
            self.config = write_config(self.network, self.run_dir / "beaver.toml",
                                       self.marking, self.pipeline)
            self.controller = SlbFleet(self.config)
            self.controller.connect()
            self.controller.apply(push=True)
            self.store = SnapshotStore(self.config.controller.store)
            self.processes = Processes(self.network, self.run_dir, self.workload)
            self.processes.start_ingroup()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _across_servers(self):
        """Writes where each node goes (placement.json) before anything starts."""
        try:
            where = self.servers.place(self.network.plan)
        except servers.ServersError as e:
            raise NetworkError(str(e)) from None
        (self.run_dir / "placement.json").write_text(json.dumps(where, indent=1))

    def __exit__(self, *exc):
        if self.processes is not None:
            self.processes.stop()
        if self.controller is not None:
            self.controller.close()
            self.controller = None
        if self.store is not None:
            self.store.close()
            self.store = None
        self.network.stop()

    def start_traffic(self, warmup: float = 1.0, roles=None):
        """Starts the out-group processes, then lets the traffic settle."""
        if roles is None:
            self.processes.start_outgroup()
        else:
            self.processes.start_outgroup(roles)
        time.sleep(warmup)

    def snapshots(self, settings: RunSettings, collect: bool = True) -> RunSummary:
        """Takes the snapshots; then self.records holds them, from the store
        (a batch's many are built only now, off the controller's hot path),
        or, collect False, once collect(summary) is called: after a
        measurement, which building them would otherwise be part of, or never
        (a held-rate run's millions stay in the store)."""
        processes = self.config.processes if self.reports else ()
        summary = Engine(self.controller, self.store, settings, processes).run()
        if collect:
            self.collect(summary)
        return summary

    def collect(self, summary: RunSummary):
        """Adds the snapshots summary took, from the store, to self.records."""
        if summary.first is not None:
            self.records += self.store.records(summary.first, summary.last)

    def stop_traffic(self):
        self.processes.stop_outgroup()

    def parties(self) -> dict[str, list[int]]:
        """The pids of what serves the users, by party, for a CpuMeter: the
        SLBs (BMv2), the in-group processes, and the controller (this
        process, every thread: engine, receive and probe threads)."""
        plan = self.network.plan
        return {"slb": [self.network.slb(name).bmv2.process.pid for name in plan.slb_fabric],
                "ingroup": [proc.pid for name, proc in self.processes.running.items()
                            if name in plan.ingroup],
                "controller": [os.getpid()]}

    def check(self, most: int = CHECKER_MOST) -> Truth:
        """The ground truth for every snapshot taken, or in a long run for a
        random sample of `most` of them, one in k on average (the rest are
        "unchecked", and never count as consistent; Truth.sampled is k).
        Random, seeded: every k-th would keep to one offset in each batch,
        and a late SLB's rejections cluster at a batch's first IDs."""
        in_group = [name for name, (service, _, _, _) in self.network.plan.ingroup.items()
                    if service.in_snapshots]   # an iperf server keeps no log
        trace = Trace.load(self.processes.log_paths(), in_group=in_group)
        every = max(1, -(-len(self.records) // most))
        chosen = (self.records if every == 1 else
                  random.Random(SAMPLE_SEED).sample(self.records, most))
        ids = [r.snapshot_id for r in chosen]
        reports = [rep for r in self.records for rep in r.reports.values()]
        verdicts = {v.snapshot_id: v for v in check(trace, ids, reports or None)}
        if trace.short_logs:
            log.warning("logs cut short (no closing record): %s", ", ".join(trace.short_logs))
        return Truth(verdicts, trace.short_logs, trace.unmatched, trace.chains, trace, every)
