"""Numeric arguments out of range: one clear line, before any file is
opened or written and any switch contacted (issue 25, item 6)."""
import pytest

from beaver.traffic.analysis.checker import main as checker

from tests.unit.test_checker import FIGURE_3, write_trace
from tests.unit.test_cli import SERVICE, one_error_line, run


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.delenv("BEAVER_CONFIG", raising=False)
    (tmp_path / "service.toml").write_text(SERVICE)
    return tmp_path


RUN = ("snapshot", "run", "--count", 5)


@pytest.mark.parametrize("argv, message", [
    ((*RUN, "--rate", "nan"), "--rate must be a positive number of snapshots per second, got nan"),
    ((*RUN, "--rate", "inf"), "--rate must be a positive number of snapshots per second, got inf"),
    ((*RUN, "--rate=-inf"),
     "--rate must be a positive number of snapshots per second, got -inf"),
    ((*RUN, "--rate", 0), "--rate must be a positive number of snapshots per second, got 0"),
    (("snapshot", "take", "--tau", 3600 * 10**6 + 1),
     "--tau 3600000001 us is over 3600000000 (an hour), the configuration's bound"),
    (("snapshot", "take", "--tau", 10**30),
     f"--tau {10**30} us is over 3600000000 (an hour), the configuration's bound"),
    (("snapshot", "take", "--initiation", "timed", "--lead-us", 10**7 + 1),
     "--lead-us must be 1 to 10000000 (10 s), the configuration's bound"),
    (("snapshot", "take", "--election-id", -1),
     "--election-id must be 1 to 18446744073709551615 (a P4Runtime election ID, as in the "
     "configuration), got -1"),
    (("snapshot", "take", "--election-id", 0),
     "--election-id must be 1 to 18446744073709551615 (a P4Runtime election ID, as in the "
     "configuration), got 0"),
    (("ctl", "status", "--election-id", 10**23),
     "--election-id must be 1 to 18446744073709551615 (a P4Runtime election ID, as in the "
     f"configuration), got {10**23}"),
])
def test_a_number_out_of_range_is_one_line_and_nothing_is_opened(capsys, folder, argv, message):
    before = sorted(folder.iterdir())
    code, out, err = run(capsys, *argv, "-c", folder / "service.toml")
    assert (code, out) == (1, "")
    assert one_error_line(err) == message
    assert sorted(folder.iterdir()) == before, "no store made"


def test_a_number_that_is_no_integer_is_a_usage_error(capsys, folder):
    with pytest.raises(SystemExit) as e:
        run(capsys, "snapshot", "take", "--election-id", "1e23", "-c", folder / "service.toml")
    assert e.value.code == 2
    assert "argument --election-id: invalid int value: '1e23'" in capsys.readouterr().err


@pytest.mark.parametrize("ids", ["-5", "4294967296", "1,x", "1,,2", "²"])
def test_the_checker_refuses_an_id_that_is_no_wire_id(tmp_path, capsys, ids):
    logs = write_trace(tmp_path, FIGURE_3)
    out_json = tmp_path / "verdicts.json"
    assert checker([*map(str, logs), "--ids", ids, "--json", str(out_json)]) == 2
    out, err = capsys.readouterr()
    bad = next(i for i in ids.split(",") if not (i.isascii() and i.isdigit())
               or int(i) >= 1 << 32)
    assert out == ""
    assert err == f"checker: --ids: {bad!r} is not a snapshot ID (0 to 4294967295)\n"
    assert not out_json.exists()


def test_the_checker_takes_the_highest_wire_id(tmp_path, capsys):
    logs = write_trace(tmp_path, FIGURE_3)
    assert checker([*map(str, logs), "--ids", "4294967295"]) == 0
    assert capsys.readouterr().out.startswith("4294967295 incomplete")
