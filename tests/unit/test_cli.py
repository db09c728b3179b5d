"""The `beaver` command without switches: usage errors are one line and a
non-zero exit, and the store is shown as a table or as JSON."""
import json

import pytest

from beaver.control.cli.main import main
from beaver.control.engine.record import Outcome
from beaver.control.store import SnapshotStore

from tests.unit.test_store import record

SERVICE = """
[controller]
store = "snapshots.db"

[[slbs]]
name = "s1"
address = "127.0.0.1:1"
device_id = 1
slb_id = 1
slb_addr = "10.0.0.1"

[[slbs]]
name = "s2"
address = "127.0.0.1:2"
device_id = 2
slb_id = 2
slb_addr = "10.0.0.2"
"""


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.delenv("BEAVER_CONFIG", raising=False)
    path = tmp_path / "service.toml"
    path.write_text(SERVICE)
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    assert err.startswith("beaver: error: ") and err.count("\n") == 1, err
    return err[len("beaver: error: "):].strip()


def test_no_configuration_is_one_clear_line(capsys, tmp_path, monkeypatch, config):
    monkeypatch.chdir(tmp_path / "..")
    code, _, err = run(capsys, "snapshot", "take")
    assert code == 1
    assert one_error_line(err) == "beaver.toml: cannot read: No such file or directory"


def test_an_invalid_configuration_names_the_field(capsys, config):
    config.write_text(SERVICE.replace('slb_id = 2', 'slb_id = 1'))
    code, _, err = run(capsys, "ctl", "apply", config)
    assert code == 1
    assert one_error_line(err) == f"{config}: slbs[1].slb_id: 1 appears twice"


@pytest.mark.parametrize("argv,message", [
    (("snapshot", "run", "--count", 0), "--count must be at least 1"),
    (("snapshot", "run", "--count", 5, "--inflight", 0), "--inflight must be at least 1"),
    (("snapshot", "run", "--count", 5, "--rate", -3),
     "--rate must be a positive number of snapshots per second, got -3"),
    (("snapshot", "take", "--mode", "mgm"), "mode mgm is for one SLB; the service has 2"),
    (("snapshot", "run", "--count", 5, "--mode", "blocking", "--inflight", 4),
     "mode blocking holds traffic until all SLBs commit: it takes one snapshot at a time "
     "(--inflight 1)"),
    (("snapshot", "take", "--tau", -1), "--tau must not be negative"),
])
def test_settings_are_checked_before_any_switch_is_contacted(capsys, config, argv, message):
    code, _, err = run(capsys, *argv, "-c", config)
    assert code == 1 and one_error_line(err) == message


def test_an_unknown_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["snapshot", "run", "--count", "3", "--parallel", "4"])
    assert e.value.code == 2 and "unrecognized arguments: --parallel 4" in capsys.readouterr().err


def test_list_and_show_read_the_store(capsys, config, tmp_path):
    store = SnapshotStore(tmp_path / "snapshots.db")
    store.save([record(1), record(2, Outcome.REJECTED), record(3)])
    store.close()

    code, out, _ = run(capsys, "snapshot", "list", "-c", config)
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:5] == ["ID", "STARTED", "MODE", "RULE", "VERDICT"]
    assert [line.split()[0] for line in lines[1:]] == ["3", "2", "1"]

    code, out, _ = run(capsys, "snapshot", "list", "-c", config, "--verdict", "rejected",
                       "--json")
    assert [r["id"] for r in json.loads(out)] == [2]

    code, out, _ = run(capsys, "snapshot", "show", 2, "--store", tmp_path / "snapshots.db")
    assert code == 0 and out.startswith("snapshot 2 (wire ID 2): rejected")
    assert "s2   STALE   3" in out and "12 +- 3" in out

    code, out, _ = run(capsys, "snapshot", "show", 3, "-c", config, "--json")
    shown = json.loads(out)
    assert shown["acks"]["s1"]["switch_time"] == 98 and shown["verdict"]["margin_us"] == -12.0


def test_show_of_an_unknown_snapshot_or_store_is_an_error(capsys, config, tmp_path):
    SnapshotStore(tmp_path / "snapshots.db").close()
    code, _, err = run(capsys, "snapshot", "show", 42, "-c", config)
    assert code == 1 and one_error_line(err) == f"no snapshot 42 in {tmp_path / 'snapshots.db'}"
    code, _, err = run(capsys, "snapshot", "list", "--store", tmp_path / "absent.db")
    assert code == 1 and one_error_line(err) == f"no snapshot store at {tmp_path / 'absent.db'}"


@pytest.mark.parametrize("argv, said", [
    (["snapshot", "run", "--election-id", "1e23"],
     "beaver snapshot run: error: argument --election-id: invalid int value: '1e23'"),
    (["nosuch"], "beaver: error: argument GROUP: invalid choice: 'nosuch'"),
    (["snapshot", "list", "--limit", "many"],
     "beaver snapshot list: error: argument --limit: invalid int value: 'many'"),
], ids=["not an integer", "no such group", "not a count"])
def test_a_mistyped_argument_is_one_line_that_points_to_help(capsys, argv, said):
    with pytest.raises(SystemExit) as exit:
        main(argv)
    _, err = capsys.readouterr()
    assert exit.value.code == 2
    assert err.count("\n") == 1 and err.startswith(said) and err.endswith("(see --help)\n"), err
