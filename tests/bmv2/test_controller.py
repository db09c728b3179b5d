"""The controller and its CLI against real simple_switch_grpc processes.

Two SLBs, each with a client port (1) and a backend port (2) on veth pairs.
Every test programs them first (`apply` pushes the pipeline only where it
is missing), so the order of the tests does not matter.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from beaver.control.cli.main import main
from beaver.control.config import load
from beaver.control.slbs.fleet import SlbFleet
from beaver.control.engine.engine import Engine, RunSettings
from beaver.control.engine.record import Mode, Outcome
from beaver.control.p4runtime.session import NotPrimary
from beaver.control.store import SnapshotStore
from beaver.p4src.wire import Op, Status

from tests.support.bmv2_service import (BACKEND_PORT, PROBE_ERROR_US, before_each_request,
                                        config_path, controller, run_engine,
                                        stopped_until_the_resend, switches, vip_traffic,
                                        write_config)
from tests.support.runtimes import runtimes


__all__ = ["config_path", "controller", "runtimes", "switches"]   # the fixtures


def beaver(*argv, capsys=None):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr() if capsys else ("", "")
    return code, out, err


# -- programming and status ------------------------------------------------------

def test_apply_pushes_where_missing_and_a_second_apply_changes_no_entry(config_path, capsys):
    code, out, _ = beaver("ctl", "apply", config_path, "--push", capsys=capsys)
    assert code == 0 and out.count("pipeline pushed") == 2
    code, out, _ = beaver("ctl", "apply", config_path, capsys=capsys)
    assert code == 0 and "pushed" not in out
    assert out.splitlines() == ["s1: 1 table writes", "s2: 1 table writes"], \
        "only the slb_config default entry is rewritten"
    c = SlbFleet(load(config_path))
    c.connect()
    try:
        vips = c.slbs[0].session.table_entries("vips")
        members = c.slbs[1].session.table_entries("pool_members")
        edge = c.slbs[0].session.table_entries("ingroup_ports")
    finally:
        c.close()
    assert len(vips) == 1 and len(members) == 2
    assert [int.from_bytes(e.match[0].exact.value, "big") for e in edge] == [BACKEND_PORT], \
        "Beaver headers come in on the backend port only (the route into the in-group)"


def test_status_reports_ids_and_clock_offsets(config_path, controller, tmp_path, capsys):
    store = SnapshotStore(tmp_path / "status.db")
    run_engine(controller, store, count=3)
    newest = controller.newest_id()
    controller.close()   # the CLI is another controller: same election ID
    code, out, _ = beaver("ctl", "status", "-c", config_path, "--json", capsys=capsys)
    states = json.loads(out)
    assert code == 0 and [s["name"] for s in states] == ["s1", "s2"]
    for s in states:
        assert s["reachable"] and s["primary"] and s["pipeline"] and not s["holding"]
        assert s["current_id"] == newest
        assert s["clock_source"] == "probe" and s["clock_samples"] >= 500
        assert s["offset_error_us"] <= PROBE_ERROR_US
    code, out, _ = beaver("ctl", "status", "-c", config_path, capsys=capsys)
    assert "probe, " in out and "(no probe port)" not in out


@pytest.mark.parametrize("probes", [True, False], ids=["probe port", "packet-out"])
def test_the_clock_estimate_maps_a_fresh_answer_into_its_round_trip(switches, tmp_path,
                                                                     probes):
    c = SlbFleet(load(write_config(tmp_path / "clock.toml", switches, probes=probes)))
    try:
        c.connect()
        c.apply()
        c.align_clocks()
        for gw in c.slbs:
            assert gw.clock.current.source == ("probe" if probes else "packet-out")
            for _ in range(20):
                answer = gw.request(Op.READ)
                low, high = gw.clock.current.to_controller(answer.body.now)
                assert low <= answer.received_us and high >= answer.sent_us
            if probes:
                assert gw.clock.current.error_us <= PROBE_ERROR_US
                # a stray frame of the probe type (a late duplicate) is counted, never used
                assert gw.probe.stats.answered >= 500
                assert gw.probe.stats.malformed <= gw.probe.stats.answered // 100
    finally:
        c.close()


def test_settled_clocks_are_probed_only_at_the_steady_interval(switches, tmp_path):
    """settle_clocks returns once every probe is past its fast phase (a probe
    a millisecond): from then on each switch sees one every interval_s, so
    that a measurement started now (Fig. 14) carries only the steady probing."""
    c = SlbFleet(load(write_config(tmp_path / "settle.toml", switches, probes=True)))
    try:
        c.connect()
        c.apply()
        c.settle_clocks()
        assert all(gw.probe.settled and gw.clock.samples >= gw.probe.fast_answers
                   for gw in c.slbs)
        before = [gw.probe.stats.sent for gw in c.slbs]
        time.sleep(1.0)
        sent = [gw.probe.stats.sent - b for gw, b in zip(c.slbs, before)]
        steady = 1 / c.slbs[0].probe.interval_s   # 10 a second; the fast phase sends 1,000
        assert all(steady / 2 <= n <= steady * 1.5 for n in sent), sent
    finally:
        c.close()


# -- snapshots ---------------------------------------------------------------------

def test_take_list_and_show_through_the_cli(config_path, controller, capsys):
    controller.close()
    code, out, _ = beaver("snapshot", "take", "-c", config_path, capsys=capsys)
    assert code == 0 and " accepted: fine rule" in out
    number = int(out.split()[0])
    code, out, _ = beaver("snapshot", "run", "-c", config_path, "--count", 200,
                          "--inflight", 8, "--json", capsys=capsys)
    summary = json.loads(out)
    assert code == 0 and summary["accepted"] == 200 and summary["first_id"] == number + 1
    code, out, _ = beaver("snapshot", "show", summary["last_id"], "-c", config_path,
                          "--json", capsys=capsys)
    shown = json.loads(out)
    assert shown["verdict"]["outcome"] == "accepted" and set(shown["acks"]) == {"s1", "s2"}
    assert all(a["status"] == "OK" and a["id_after"] == summary["last_id"]
               for a in shown["acks"].values())
    code, out, _ = beaver("snapshot", "list", "-c", config_path, "--limit", 3, capsys=capsys)
    assert code == 0 and out.splitlines()[1].split()[0] == str(summary["last_id"])


def test_modes_coarse_mgm_and_blocking(config_path, controller, switches, tmp_path):
    store = SnapshotStore(tmp_path / "modes.db")
    _, coarse = run_engine(controller, store, count=2, rule="coarse", tau_us=0)
    assert all(r.verdict.outcome is Outcome.REJECTED and "coarse" in r.verdict.reason
               for r in coarse)
    _, coarse = run_engine(controller, store, count=2, rule="coarse", tau_us=10**9)
    assert all(r.verdict.outcome is Outcome.ACCEPTED and r.rule == "coarse" for r in coarse)
    _, blocking = run_engine(controller, store, count=5, mode=Mode.BLOCKING)
    assert all(r.verdict.outcome is Outcome.ACCEPTED for r in blocking)
    assert all(ack.body.holding for r in blocking for ack in r.acks.values()), \
        "every SLB held inbound traffic when it committed"
    for gw in controller.slbs:
        assert not gw.request(Op.READ).body.holding, "every hold was released"
    one = SlbFleet(load(write_config(tmp_path / "one.toml", switches[:1])))
    controller.close()
    one.connect()
    try:
        _, mgm = run_engine(one, store, count=3, mode=Mode.MGM)
    finally:
        one.close()
    assert [r.verdict.rule for r in mgm] == ["mgm"] * 3


def test_reports_from_in_group_processes_are_stored(tmp_path, switches, runtimes, capsys):
    processes = [runtimes("p1", 1)[0], runtimes("p2", 2)[0]]
    path = write_config(tmp_path / "service.toml", switches,
                        processes=[(p.name, "%s:%d" % p.oob_address) for p in processes])
    assert beaver("ctl", "apply", path, capsys=capsys)[0] == 0
    code, out, _ = beaver("snapshot", "take", "-c", path, "--json", capsys=capsys)
    record = json.loads(out)
    assert code == 0 and record["verdict"]["outcome"] == "accepted"
    assert set(record["reports"]) == {"p1", "p2"}
    p1 = record["reports"]["p1"]
    assert p1["taken"] and p1["trigger"] == "oob" and p1["snapshot_id"] == record["wire_id"]
    assert processes[0].snapshots.current_id == record["wire_id"]


# -- the fine rule with real traffic ------------------------------------------------

def test_the_fine_rule_judges_the_data_plane_records(config_path, controller, switches, tmp_path):
    """VIP traffic flows through s2 while snapshots are taken: with tau = 1 us
    an old-ID packet forwarded by s2 after s1 switched rejects; with tau = 1 s
    the same traffic is harmless."""
    store = SnapshotStore(tmp_path / "fine.db")
    s2 = controller.slbs[1]

    def flooded(tau_us: int):
        # The flood starts with the first INIT to s2: a switch that drops most
        # of what it gets would fail the clock alignment each run begins with
        # (500 probe answers), which is not what this test is about.
        first_init = threading.Event()
        with vip_traffic(switches[1:], gap_s=0.0001, start=first_init), \
                before_each_request(s2, lambda op, _: op is Op.INIT and first_init.set()):
            # packet-outs queue behind the flood: a busy machine stretches their round trips
            return run_engine(controller, store, count=20, tau_us=tau_us, ack_timeout_ms=2000)[1]

    strict, loose = flooded(1), flooded(10**6)
    rejected = [r for r in strict if r.verdict.outcome is Outcome.REJECTED]
    assert rejected, [r.verdict.reason for r in strict]
    for r in rejected:
        assert r.verdict.rule == "fine" and r.verdict.margin_us > 0
        assert "s2 forwarded an old-ID packet" in r.verdict.reason
        assert r.acks["s2"].body.last_old_time > 0
    assert all(r.verdict.outcome is Outcome.ACCEPTED for r in loose), \
        [r.verdict.reason for r in loose if r.verdict.outcome is not Outcome.ACCEPTED]
    marked = sum(s2.request(Op.READ, r.snapshot_id).body.count for r in loose)
    assert marked > 0, "the traffic was marked with the snapshot IDs meanwhile"


# -- faults --------------------------------------------------------------------------

def test_a_switch_down_at_start_is_one_clear_error(tmp_path, switches, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]   # bound but not listening: refused
        path = write_config(tmp_path / "service.toml", switches)
        path.write_text(path.read_text().replace(switches[1][0].grpc_address,
                                                 f"127.0.0.1:{dead}"))
        code, _, err = beaver("snapshot", "take", "-c", path, capsys=capsys)
        assert code == 1 and err.count("\n") == 1
        assert err.startswith(f"beaver: error: s2 (127.0.0.1:{dead}): ")
        assert "gave up after 2 attempts" in err
        code, out, _ = beaver("ctl", "status", "-c", path, capsys=capsys)
    assert code == 1
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["s1"][2] == "yes" and rows["s2"][2] == "no"


def test_an_init_left_unanswered_is_resent_and_the_snapshot_accepted(controller, switches,
                                                                     tmp_path):
    """s2 is stopped as the first INIT leaves and resumed as the resend
    leaves: its answer to the first INIT then completes the snapshot."""
    with stopped_until_the_resend(controller.slbs[1], switches[1][0]):
        _, finished = run_engine(controller, SnapshotStore(tmp_path / "resent.db"),
                                 count=1, retries=1)
    record = finished[0]
    assert record.verdict.outcome is Outcome.ACCEPTED, record.verdict.reason
    assert record.acks["s1"].attempts == 1 and record.acks["s2"].attempts == 2
    assert record.acks["s2"].status is Status.OK
    assert controller.slbs[1].current_id() == record.snapshot_id


def test_a_hung_switch_makes_snapshots_incomplete_and_the_run_goes_on(controller, switches,
                                                                     tmp_path):
    """s2 stops answering (SIGSTOP) after the first snapshot and resumes
    after two have timed out."""
    pid = switches[1][0].process.pid
    reported = []

    def on_finished(record):
        reported.append(record)
        outcomes = [r.verdict.outcome for r in reported]
        if outcomes == [Outcome.ACCEPTED]:
            os.kill(pid, signal.SIGSTOP)
        elif outcomes.count(Outcome.INCOMPLETE) == 2:
            os.kill(pid, signal.SIGCONT)
    store = SnapshotStore(tmp_path / "hung.db")
    try:
        Engine(controller, store, RunSettings(count=40, retries=0, ack_timeout_ms=100,
                                              tau_us=10**6), on_finished=on_finished).run()
    finally:
        os.kill(pid, signal.SIGCONT)
    hung = [r for r in reported if r.verdict.outcome is Outcome.INCOMPLETE]
    assert len(hung) >= 2
    assert all(r.verdict.reason == "no acknowledgement from s2 within 100 ms (1 attempts)"
               for r in hung)
    assert all("s1" in r.acks and "s2" not in r.acks for r in hung)
    assert reported[-1].verdict.outcome is Outcome.ACCEPTED


def test_a_second_controller_with_a_lower_election_id_must_not_write(config_path, switches,
                                                                     tmp_path, capsys):
    primary = SlbFleet(load(config_path), election_id=10)
    primary.connect()
    backup = SlbFleet(load(config_path), election_id=5)
    try:
        primary.apply()
        before = primary.newest_id()
        backup.connect()
        assert all(gw.session.is_primary for gw in primary.slbs)
        assert not any(gw.session.is_primary for gw in backup.slbs)
        with pytest.raises(NotPrimary, match="must not write"):
            backup.apply(push=True)
        with pytest.raises(NotPrimary):
            run_engine(backup, SnapshotStore(tmp_path / "backup.db"), count=1)
        code, _, err = beaver("ctl", "apply", config_path, "--election-id", 3, capsys=capsys)
        assert code == 1 and "must not write" in err and err.count("\n") == 1
        code, _, err = beaver("snapshot", "take", "-c", config_path, "--election-id", 10,
                              capsys=capsys)
        assert code == 1 and "Election id already exists" in err
        assert primary.newest_id() == before, "nothing moved the SLBs' IDs"
        _, ok = run_engine(primary, SnapshotStore(tmp_path / "primary.db"), count=1)
        assert ok[0].verdict.outcome is Outcome.ACCEPTED
    finally:
        backup.close()
        primary.close()


def test_a_switch_restarted_during_a_run_is_restored(controller, switches, tmp_path):
    """s2 is frozen after 100 snapshots, so the next ones wait on it, then
    killed and started again: those are spoiled, the rest of the run goes on."""
    bmv2 = switches[1][0]
    frozen = threading.Event()
    finished = []

    def on_finished(record):
        finished.append(record)
        if len(finished) == 100:
            os.kill(bmv2.process.pid, signal.SIGSTOP)
            frozen.set()
    engine = Engine(controller, SnapshotStore(tmp_path / "restart.db"),
                    RunSettings(count=400, inflight=4, ack_timeout_ms=2000, tau_us=10**6),
                    on_finished=on_finished)
    result = {}

    def run():
        try:
            result["summary"] = engine.run()
        except Exception as e:   # shown by the assertion below
            result["error"] = e
    runner = threading.Thread(target=run)
    runner.start()
    assert frozen.wait(60)
    # until a snapshot waits on s2 (answers it sent before it stopped may
    # still finish the ones before)
    deadline = time.monotonic() + 10
    while not any("s2" in f.waiting for f in list(engine.flights.values())):
        assert time.monotonic() < deadline, "no snapshot came to wait on the stopped s2"
        time.sleep(0.001)
    bmv2.kill()
    bmv2.start()
    runner.join(timeout=120)
    assert "summary" in result, result.get("error")
    summary = result["summary"]
    assert summary.finished == 400 and summary.started == 400
    spoiled = [r for r in finished if r.verdict.outcome is Outcome.INCOMPLETE]
    assert spoiled and all(r.verdict.reason == "s2 went down before acknowledging"
                           for r in spoiled)
    others = [(r.number, r.verdict.reason) for r in finished
              if r.verdict.outcome is not Outcome.ACCEPTED and r not in spoiled]
    assert not others and summary.outcomes[Outcome.ACCEPTED] == 400 - len(spoiled), others
    s2 = controller.slbs[1]
    assert s2.session.pipeline_installed()
    assert len(s2.session.table_entries("vips")) == 1, "VIP table restored"
    assert s2.current_id() == finished[-1].snapshot_id


def test_an_accepted_snapshot_survives_a_controller_crash(config_path, switches, capsys):
    assert beaver("ctl", "apply", config_path, capsys=capsys)[0] == 0
    child = subprocess.Popen(
        [sys.executable, "-m", "beaver.control.cli.main", "snapshot", "run", "-c", str(config_path),
         "--count", "1000000", "--inflight", "4", "--each"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    reported = []
    for line in child.stdout:
        reported.append(line.split())
        if len(reported) == 300:
            child.kill()   # SIGKILL: no clean-up of any kind
            break
    child.wait()
    accepted = [int(words[0]) for words in reported if words[1] == "accepted:"]
    assert len(accepted) > 250
    store = SnapshotStore(load(config_path).controller.store)
    try:
        for number in accepted:
            assert store.get(number).verdict.outcome is Outcome.ACCEPTED
        last = store.reserved_through
    finally:
        store.close()
    code, out, _ = beaver("snapshot", "take", "-c", config_path, capsys=capsys)
    assert code == 0 and int(out.split()[0]) > max(last, *accepted)


def test_ctrl_c_finishes_the_snapshots_in_flight_and_exits_130(config_path, switches, capsys,
                                                               tmp_path):
    assert beaver("ctl", "apply", config_path, capsys=capsys)[0] == 0
    errors = tmp_path / "stderr"
    with open(errors, "w") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "beaver.control.cli.main", "snapshot", "run", "-c",
             str(config_path), "--count", "1000000", "--inflight", "8", "--each", "--json"],
            stdout=subprocess.PIPE, stderr=stderr, text=True)
    for _ in range(50):
        child.stdout.readline()
    child.send_signal(signal.SIGINT)
    out = child.stdout.read()   # through the same buffer the lines above came from
    child.wait(timeout=60)
    err = errors.read_text()
    assert child.returncode == 130
    assert "(interrupted)" in err and "Traceback" not in err
    records = [json.loads(line) for line in out.splitlines()]
    assert records and all(r["verdict"]["outcome"] == "accepted" for r in records), \
        "every snapshot in flight was finished, not abandoned"
