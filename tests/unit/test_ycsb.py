"""The YCSB-like workload: Zipfian keys and the read/update mix."""
from __future__ import annotations

import collections
import random

from beaver.traffic.outgroup.ycsb import WORKLOADS, Zipfian, workload


def test_zipfian_keys_are_skewed_like_ycsb_and_the_hot_ones_scattered():
    zipf = Zipfian(1000, 0.99, random.Random(1))
    counts = collections.Counter(zipf.next() for _ in range(50_000))
    ranked = [key for key, _ in counts.most_common()]
    top = counts[ranked[0]] / 50_000
    # 1 / H(1000, 0.99) is about 0.13: the hottest key gets that share.
    assert 0.11 < top < 0.15
    assert sum(counts[k] for k in ranked[:10]) / 50_000 > 0.35
    assert set(counts) <= set(range(1000)) and len(counts) > 500
    assert set(ranked[:10]) != set(range(10)), "the hot keys are scattered, not 0..9"


def test_the_mix_follows_the_read_ratio():
    next_request = workload(random.Random(2), keys=100, theta=0.99, read_ratio=0.95)
    ops = collections.Counter(next_request()["op"] for _ in range(10_000))
    assert set(ops) == {"get", "put"}
    assert 0.93 < ops["get"] / 10_000 < 0.97


def test_workload_e_is_mostly_bounded_scans_and_c_only_reads():
    next_request = workload(random.Random(3), keys=100, theta=0.99, read_ratio=0.0,
                            scan_ratio=0.95, max_scan=20)
    requests = [next_request() for _ in range(10_000)]
    ops = collections.Counter(r["op"] for r in requests)
    assert set(ops) == {"scan", "put"}
    assert 0.93 < ops["scan"] / 10_000 < 0.97
    lengths = [r["count"] for r in requests if r["op"] == "scan"]
    assert min(lengths) == 1 and max(lengths) == 20
    reads, scans = WORKLOADS["C"]
    only_reads = workload(random.Random(4), 100, 0.99, reads, scans)
    assert {only_reads()["op"] for _ in range(2000)} == {"get"}
