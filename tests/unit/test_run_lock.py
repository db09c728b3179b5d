"""One Mininet run at a time (topologies/lock.py): a second `experiment
run` or a `cleanup` is refused in one line naming the run that holds the
machine, and the holder goes on untouched; the lock goes with its holder,
however it ends.  No Mininet is started: the lock is what is tested, with
real processes contending for it."""
import os
import signal
import subprocess
import sys

import pytest

from beaver.control.cli.main import main
from beaver.topologies import lock

from tests.unit.test_cli import one_error_line

HOLDER = """
import sys
from beaver.topologies.lock import holding
with holding(sys.argv[2], sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()          # until the test closes stdin (or kills it)
"""


@pytest.fixture
def holder(tmp_path):
    """Starts a process that holds the lock at tmp_path/run.lock for a
    command, once it says so; the test ends it."""
    path = tmp_path / "run.lock"
    started = []

    def start(command="beaver experiment run fig5 --out /tmp/r"):
        p = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), command],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        started.append(p)
        assert p.stdout.readline() == "held\n"
        return p
    yield path, start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()


def refusal_of(path, pid, command) -> str:
    words = path.read_text()
    assert words.startswith(f"pid {pid} ({command}), since ")
    return (f"another Mininet run holds this machine: {words.strip()}; it shares the bv* "
            "names, so wait for it to end or stop it first")


def test_a_second_holder_is_refused_naming_the_first(holder):
    path, start = holder
    first = start()
    words = path.read_text()
    with pytest.raises(lock.Busy) as refused:
        with lock.holding("beaver experiment run clean", path):
            pytest.fail("held twice")
    assert str(refused.value) == refusal_of(path, first.pid,
                                            "beaver experiment run fig5 --out /tmp/r")
    assert first.poll() is None and path.read_text() == words, "the first is untouched"


def test_the_lock_goes_with_a_killed_holder(holder):
    path, start = holder
    first = start()
    first.send_signal(signal.SIGKILL)
    first.wait()
    with lock.holding("beaver experiment cleanup", path):
        assert path.read_text().startswith(f"pid {os.getpid()} (beaver experiment cleanup)")
    assert path.read_text() == "", "emptied on release"


def test_a_holder_that_ends_leaves_no_words(holder):
    path, start = holder
    first = start()
    first.stdin.close()
    assert first.wait() == 0
    assert path.read_text() == ""
    start("beaver experiment run clean")   # and the next one may take it


def test_a_lock_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(lock.LockError) as refused:
        with lock.holding("x", tmp_path / "file" / "run.lock"):
            pytest.fail("held")
    assert str(refused.value) == (f"cannot make the machine's run lock {tmp_path}/file/run.lock: "
                                  "File exists (Mininet runs need root)")


@pytest.fixture
def cli_lock(holder, monkeypatch):
    """The CLI's lock at the holder's path; a cleanup that must never run
    (the real one would stop every bv* process on this machine)."""
    path, start = holder
    monkeypatch.setattr(lock, "LOCK_PATH", path)
    cleaned = []
    monkeypatch.setattr("beaver.topologies.cleanup.cleanup", lambda: cleaned.append(1))
    return path, start, cleaned


def test_cleanup_is_refused_while_a_run_holds_the_machine(capsys, cli_lock):
    path, start, cleaned = cli_lock
    first = start()
    words = path.read_text()
    assert main(["experiment", "cleanup"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and one_error_line(err) == refusal_of(
        path, first.pid, "beaver experiment run fig5 --out /tmp/r")
    assert cleaned == [] and first.poll() is None and path.read_text() == words


def test_a_second_run_is_refused_before_it_makes_anything(capsys, cli_lock, tmp_path):
    pytest.importorskip("mininet", reason="reading fig5's options imports Mininet")
    path, start, cleaned = cli_lock
    first = start()
    words = path.read_text()
    out_dir = tmp_path / "results"
    assert main(["experiment", "run", "fig5", "--out", str(out_dir)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and one_error_line(err) == refusal_of(
        path, first.pid, "beaver experiment run fig5 --out /tmp/r")
    assert not out_dir.exists() and cleaned == []
    assert first.poll() is None and path.read_text() == words
