"""In-flight message tracking: per in-group channel, the messages in flight at
each accepted snapshot's cut, from the recorded channel state, against the
ground truth rebuilt from the logs (traffic/analysis/inflight.py), with Beaver,
Lai-Yang and polling (methods.py).

The key-value store and the bank replicate and credit over in-group
channels; a relay (kv, then at once the bank) and the bank's webhook (the
third party writes an audit into kv) link the services through the
out-group.  Lai-Yang initiates the bank late.  A channel at a cut matches
when the recorded set is the true set and no message crossed the cut
backwards, on the channel or through the out-group.
"""
from __future__ import annotations

from collections import Counter

from beaver.traffic.analysis.inflight import at_cut

from beaver.topologies.spec import Service, Spec
from beaver.topologies.experiments.common import methods
from beaver.topologies.experiments.common.results import Results


def add_arguments(p):
    methods.add_arguments(p)


def spec() -> Spec:
    return Spec(slbs=2, services=(Service("kv", "kv", 2, 7000), Service("bank", "bank", 2, 7100)),
                outgroup=("client-kv", "client-kv", "client-bank", "client-bank", "relay",
                          "thirdparty"),
                assignment="per-client")


def score(pairs) -> Counter:
    """One cut's counts over its pairs of in-group processes."""
    counts = Counter()
    for pair in pairs:
        if pair.direct:
            counts["channels_used"] += 1
            counts["mismatched"] += bool(pair.missed or pair.extra or pair.backwards)
            counts["in_flight"] += len(pair.truth)
            counts["missed"] += len(pair.missed)
            counts["extra"] += len(pair.extra)
            counts["backwards"] += pair.backwards
        counts["via_outgroup"] += pair.via_outgroup
        counts["pairs_via_outgroup"] += pair.via_outgroup > 0
    counts["exact"] = all(pair.matches for pair in pairs) and bool(pairs)
    return counts


KEYS = ("channels_used", "mismatched", "in_flight", "missed", "extra", "backwards",
        "via_outgroup", "pairs_via_outgroup")


def run(args, results: Results) -> list[dict]:
    tau = methods.tau(args, results)
    summary, rows = [], []
    late = methods.processes_of(spec(), "bank")
    for method, phase in methods.run_methods(args, results, spec(), tau, late).items():
        total = Counter()
        scored = {}
        for record in methods.accepted(phase):
            pairs = at_cut(phase.truth.trace, record.snapshot_id, record.reports)
            scored[record.number] = score(pairs) if pairs else None
            if pairs:
                total.update(scored[record.number])
        for row in phase.rows:
            counts = scored.get(row["number"])
            row.update({k: counts[k] for k in (*KEYS, "exact")} if counts else {})
        rows += phase.rows
        judged = sum(c is not None for c in scored.values())
        summary.append({"method": method, "snapshots": judged,
                        "exact_snapshots": total["exact"], **{k: total[k] for k in KEYS},
                        **methods.checker_counts(phase)})
        results.progress(f"{method}: " + ", ".join(f"{k}={summary[-1][k]}" for k in
                                                   ("snapshots", "exact_snapshots", "mismatched",
                                                    "via_outgroup")))
    results.write_csv(rows, "inflight-snapshots")
    results.write_csv(summary)
    plot(results, summary)
    return summary


def plot(results: Results, summary: list[dict]):
    methods.plot_methods(results, summary, (
        ("exact_snapshots", "tab:green", "snapshots exact on every channel"),
        ("mismatched", "tab:red", "in-group channels mismatched"),
        ("pairs_via_outgroup", "tab:orange", "pairs crossed backwards via the out-group")),
        "over accepted snapshots", "In-flight tracking: channel state against the logs")
