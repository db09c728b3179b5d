"""Fig. 14's options (topologies/experiments/common/impact.py, fig14.py,
fig14tcp.py): --cores, the snapshot rates and their phases and goals,
the offered loads and the YCSB workloads, and what each phase runs (the
plain SLB in the baseline, Beaver's program in every other phase)."""
import argparse
import json

import pytest

pytest.importorskip("mininet", reason="the experiments import topologies/network.py")

from beaver.topologies.experiments import fig14, fig14tcp   # noqa: E402
from beaver.topologies.experiments.common import impact     # noqa: E402
from beaver.topologies.experiments.common.paired import Goal   # noqa: E402
from beaver.control.engine.window import MAX_SPAN                # noqa: E402


def parse(module, *argv):
    p = argparse.ArgumentParser(exit_on_error=False)
    module.add_arguments(p)
    return p.parse_args(list(argv))


def test_defaults_are_shared_cores_and_both_rates():
    for module in (fig14, fig14tcp):
        args = parse(module)
        assert args.cores == "shared" and args.rates == [50.0, 1000.0]
    assert parse(fig14tcp).loads is None
    assert parse(fig14tcp).workloads == ["iperf", "ycsb-a", "ycsb-b", "ycsb-c", "ycsb-e"]


def test_each_rate_is_a_phase_with_the_goal_of_its_rate():
    args = parse(fig14, "--rates", "50,1000", "--cores", "pinned")
    assert args.cores == "pinned"
    assert impact.phases(args.rates) == ("without", "marking", "snapshots-50", "snapshots-1000")
    assert impact.goals(args.rates) == {"marking": Goal(0.98, 1.1),
                                        "snapshots-50": Goal(0.98, 1.1),
                                        "snapshots-1000": Goal(0.95)}
    assert impact.goals([20.0], p99=False) == {"marking": Goal(0.98), "snapshots-20": Goal(0.98)}
    assert [impact.rate_of(k) for k in impact.phases([2.5])] == [None, None, 2.5]


def test_batches_go_as_often_at_any_rate():
    args = parse(fig14, "--batch", "10", "--seconds", "3")
    slow, fast = impact.snapshot_settings(50, args), impact.snapshot_settings(1000, args)
    assert (slow.batch, slow.count, slow.inflight) == (10, 150, 40)
    assert (fast.batch, fast.count, fast.rate) == (200, 3000, 1000)
    assert impact.snapshot_settings(5, args).batch == 10      # never under --batch
    # 1 s batches at 10,000/s would put 40,000 IDs in flight: capped, and valid
    wide = impact.snapshot_settings(10_000, parse(fig14, "--batch", "50"))
    assert wide.batch == MAX_SPAN // 4 and wide.inflight <= MAX_SPAN
    wide.check(slbs=2)
    # by default a batch every 1 s: 50 IDs at 50/s, 1,000 at 1,000/s
    default = parse(fig14, "--seconds", "3")
    assert [impact.snapshot_settings(r, default).batch for r in (50, 1000)] == [50, 1000]


@pytest.mark.parametrize("argv", [("--rates", "50,x"), ("--rates", "0"), ("--rates", ""),
                                  ("--cores", "spread")])
def test_bad_options_are_refused(argv):
    with pytest.raises(argparse.ArgumentError):
        parse(fig14, *argv)


def test_loads_and_workloads_of_the_tcp_figure():
    args = parse(fig14tcp, "--loads", "20,40,60,80", "--workloads", "iperf,ycsb-e")
    assert args.loads == [20.0, 40.0, 60.0, 80.0] and args.workloads == ["iperf", "ycsb-e"]
    for bad in (("--loads", "0"), ("--workloads", "ycsb-d")):
        with pytest.raises(argparse.ArgumentError):
            parse(fig14tcp, *bad)


def test_a_phase_s_processes_get_their_workload_and_offered_load():
    args = parse(fig14tcp, "--seconds", "4")
    e = fig14tcp.settings("ycsb-e", True, args, None)
    assert e.app_args == {"ycsb": ("--workload", "E")} and e.runtime_mode == "beaver"
    iperf = fig14tcp.settings("iperf@40%", False, args, 123.4)
    assert (iperf.iperf_mbps, iperf.runtime_mode, iperf.app_args) == (123.4, "off", {})
    assert fig14tcp.family("iperf@40%") == "iperf" and fig14tcp.family("ycsb-b") == "ycsb"


def test_instructions_are_read_when_parsed_and_checked_for_every_phase_before_the_run(tmp_path):
    counts = {"slb": {"per_packet": {"without": 400, "marking": 410},
                      "per_step": {"50": 40}, "control_per_second": {"50": 0}},
              "controller": {"per_snapshot": {"50": 150}},
              "ingroup": {"every-0": {"snapshot_every": 0, "off": 100, "beaver": 104},
                          "every-5-reports-batch-10": {"snapshot_every": 5, "reports": True,
                                                       "batch": 10, "off": 100, "beaver": 110}}}
    path = tmp_path / "counts.json"
    path.write_text(json.dumps(counts))
    args = parse(fig14, "--instructions", str(path), "--rates", "50", "--cores", "pinned",
                 "--batch", "10")
    assert args.instructions == {**counts, "path": str(path)}
    attribute = impact.attributor(args, slbs=2, ingroup=4)
    # marking alone: the SLBs' +10 per packet outweighs the in-group's +4
    assert attribute("marking", 1000.0).startswith(
        "largest instruction rise per request on the traffic's cores: slb +10 ")
    assert "controller +8 (off the traffic's core)" in attribute("snapshots-50", 1000.0)
    assert parse(fig14).instructions is None and impact.attributor(parse(fig14), 2, 4) is None
    # A rate the benchmarks did not run fails before the experiment does,
    with pytest.raises(SystemExit, match="no slb/per_step/1000"):
        impact.attributor(parse(fig14, "--instructions", str(path), "--batch", "10"), slbs=2,
                          ingroup=4)
    # and so does a batch other than the one the SLB's counts were taken with (10 in a file
    # without the key): the default batches 50 IDs, every 1 s.
    with pytest.raises(SystemExit, match="slb counts were taken with --batch 10, this run "
                                         "batches 50"):
        impact.attributor(parse(fig14, "--instructions", str(path), "--rates", "50"), slbs=2,
                          ingroup=4)
    path.write_text("[]")
    with pytest.raises(argparse.ArgumentError, match="needs the keys"):
        parse(fig14, "--instructions", str(path))


class _Fleet:
    """What prepare_clocks asks of the fleet, recorded."""
    def __init__(self):
        self.settled = 0
        self.slbs = [argparse.Namespace(stopped=0) for _ in range(2)]
        for gw in self.slbs:
            gw.stop_probe = lambda gw=gw: setattr(gw, "stopped", gw.stopped + 1)

    def settle_clocks(self):
        self.settled += 1


@pytest.mark.parametrize("kind", ["without", "marking", "capacity", "snapshots-50",
                                  "snapshots-1000"])
def test_only_a_snapshot_phase_probes_clocks_and_it_settles_them_first(kind):
    run = argparse.Namespace(controller=_Fleet())
    impact.prepare_clocks(run, kind)
    snapshots = impact.rate_of(kind) is not None
    assert run.controller.settled == (1 if snapshots else 0)
    assert [gw.stopped for gw in run.controller.slbs] == ([0, 0] if snapshots else [1, 1])


TCP_COUNTS = {"slb": {"per_packet": {"without": 400, "marking": 410},
                      "per_step": {"50": 40}, "control_per_second": {"50": 0},
                      "build": "fast"},
              "controller": {"per_snapshot": {"50": 150}},
              "ingroup": {"every-0": {"snapshot_every": 0, "off": 100, "beaver": 125},
                          "every-5-reports-batch-10": {"snapshot_every": 5, "reports": True,
                                                       "batch": 10, "off": 100, "beaver": 130}}}


def counts_file(tmp_path, counts) -> str:
    path = tmp_path / "counts.json"
    path.write_text(json.dumps(counts))
    return str(path)


def test_the_tcp_figure_reads_instructions_and_refuses_a_bad_file_in_one_line(tmp_path):
    path = counts_file(tmp_path, TCP_COUNTS)
    assert parse(fig14tcp, "--instructions", path).instructions == {**TCP_COUNTS, "path": path}
    assert parse(fig14tcp).instructions is None
    for text, why in (("{not json", "not a readable JSON"), ('{"slb": {}}', "needs the keys")):
        (tmp_path / "counts.json").write_text(text)
        with pytest.raises(argparse.ArgumentError, match=why) as refused:
            parse(fig14tcp, "--instructions", path)
        assert "\n" not in str(refused.value)
    with pytest.raises(argparse.ArgumentError, match="not a readable JSON"):
        parse(fig14tcp, "--instructions", str(tmp_path / "absent.json"))


def test_the_tcp_figure_fails_before_any_phase_where_the_file_lacks_what_one_needs(
        tmp_path, monkeypatch):
    def no_network(*_):
        raise AssertionError("a phase ran")
    monkeypatch.setattr(fig14tcp, "phase", no_network)
    monkeypatch.setattr(fig14tcp, "offered", no_network)
    results = argparse.Namespace(progress=lambda text: None)
    path = counts_file(tmp_path, TCP_COUNTS)
    with pytest.raises(SystemExit, match=f"--instructions {path}: the instructions file has no "
                                         "slb/per_step/1000: rerun") as failed:
        fig14tcp.run(parse(fig14tcp, "--batch", "10", "--instructions", path), results)
    assert "\n" not in str(failed.value)
    # iperf3's server runs no Beaver runtime: it needs no in-group run; YCSB does.
    path = counts_file(tmp_path, {**TCP_COUNTS, "ingroup": {}})
    assert fig14tcp.attributors(parse(fig14tcp, "--batch", "10", "--instructions", path,
                                      "--rates", "50", "--workloads", "iperf"))["iperf"] \
        is not None
    with pytest.raises(SystemExit, match="no in-group a run without snapshots"):
        fig14tcp.run(parse(fig14tcp, "--batch", "10", "--instructions", path, "--rates", "50"),
                     results)
    assert (fig14tcp.beaver_servers("ycsb-e"), fig14tcp.beaver_servers("iperf@40%")) == (2, 0)


def tcp_row(workload, round_no, kind, served, requests, decapsulated, counted_s):
    row = {"workload": workload, "round": round_no, "kind": kind, "requests": requests,
           "decapsulated": decapsulated, "counted_s": counted_s, "decap_ns_per_packet": 50.0,
           "cost_slb": 10.0 if kind == "without" else 12.0}
    if workload == "iperf":
        return {**row, "throughput_mbps": served, "rtt_mean_us": 100.0, "retransmits": 0}
    return {**row, "throughput": served, "p99_us": 100.0, "p50_us": 50.0}


def test_a_missed_tcp_goal_names_the_party_at_its_phase_s_own_packets_and_rates(tmp_path):
    args = parse(fig14tcp, "--batch", "10", "--instructions", counts_file(tmp_path, TCP_COUNTS),
                 "--rates", "50",
                 "--workloads", "iperf,ycsb-a")
    rows = []
    for n in (1, 2, 3):
        # YCSB-like: 3 packets through the SLB a request, 2,000 requests a
        # second over the counted 2.5 s (the judged throughput says 900)
        rows += [tcp_row("ycsb-a", n, kind, served, 5000, 15000, 2.5)
                 for kind, served in (("without", 1000), ("marking", 900),
                                      ("snapshots-50", 900))]
        # iperf3: a "request" is a packet, 8,000 a second; only marking misses
        rows += [tcp_row("iperf", n, kind, mbps, 40000, 40000, 5.0)
                 for kind, mbps in (("without", 100.0), ("marking", 90.0),
                                    ("snapshots-50", 99.0))]
    summary = {(r["workload"], r["phase"]): r
               for r in fig14tcp.summarize(rows, args, fig14tcp.attributors(args))}
    udp_proxy = "; in-group: the UDP runtime's (the same snapshot path"
    # 3 packets a request: the SLBs' +10 a packet is +30, over the in-group's
    # +25 (one packet a request would have named the in-group).
    marking = summary["ycsb-a", "marking"]["verdict"]
    assert marking.startswith("missed: throughput 0.080 under 0.98")
    assert ("; largest instruction rise per request on the traffic's cores: slb +30 "
            "(slb +30, ingroup +25, controller +0)" + udp_proxy) in marking
    # 50 snapshots a second over 2,000 requests (not 900): the controller's
    # 150 a snapshot is +4 a request; the SLBs' add 2 x 40 x 50 / 2,000.
    snapshots = summary["ycsb-a", "snapshots-50"]["verdict"]
    assert ("largest instruction rise per request on the traffic's cores: slb +32 "
            "(slb +32, ingroup +30, controller +4)" + udp_proxy) in snapshots
    assert summary["ycsb-a", "marking"]["instructions"].endswith(
        "counts.json (callgrind; BMv2 fast); in-group: the UDP runtime's (the same snapshot "
        "path; the TCP runtime's flow-ID lookup per read not counted)")
    assert summary["iperf", "marking"]["verdict"].endswith(
        "; largest instruction rise per packet on the traffic's cores: slb +10 (slb +10, "
        "controller +0, ingroup +0); in-group 0: the iperf3 server runs no Beaver runtime")
    assert summary["iperf", "snapshots-50"]["verdict"] == "met"


class _Refused(Exception):
    """Raised by _Runs where the network would start."""


class _Runs:
    """Stands in for topologies/experiment.py's Run: records what each phase
    asks of it, then refuses to start a network."""
    def __init__(self):
        self.asked = []

    def __call__(self, spec, run_dir, workload, **options):
        self.asked.append((workload.runtime_mode, options))
        return self

    def __enter__(self):
        raise _Refused()

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("kind,pipeline", [("without", "plain"), ("marking", "beaver"),
                                           ("snapshots-50", "beaver"),
                                           ("snapshots-1000", "beaver"),
                                           ("capacity", "plain")])
def test_only_the_baseline_runs_the_plain_slb(kind, pipeline):
    assert impact.pipeline_of(kind) == pipeline


def test_fig14_s_without_phase_runs_the_plain_slb_and_every_other_beaver_s(tmp_path,
                                                                         monkeypatch):
    runs = _Runs()
    monkeypatch.setattr(fig14, "Run", runs)
    results = argparse.Namespace(run_dir=lambda label: tmp_path / label)
    args = parse(fig14, "--rates", "50,1000")
    for kind in impact.phases(args.rates):
        with pytest.raises(_Refused):
            fig14.phase(results, 1, kind, args)
    assert runs.asked == [("off", {"marking": False, "pipeline": "plain"}),
                          ("beaver", {"marking": True, "pipeline": "beaver"}),
                          ("beaver", {"marking": True, "pipeline": "beaver"}),
                          ("beaver", {"marking": True, "pipeline": "beaver"})]


def test_fig14tcp_s_without_and_capacity_phases_run_the_plain_slb(tmp_path, monkeypatch):
    runs = _Runs()
    monkeypatch.setattr(fig14tcp, "Run", runs)
    results = argparse.Namespace(run_dir=lambda label: tmp_path / label)
    args = parse(fig14tcp, "--rates", "50")
    for kind in ("capacity", *impact.phases(args.rates)):
        with pytest.raises(_Refused):
            fig14tcp.phase(results, "iperf", 1, kind, args)
    assert [(mode, o["marking"], o["pipeline"]) for mode, o in runs.asked] == [
        ("off", False, "plain"), ("off", False, "plain"), ("beaver", True, "beaver"),
        ("beaver", True, "beaver")]
