"""The store under bad input: another program's file is refused in one line
and left byte for byte as it was, commands that only read write nothing
(and read a store they may not write), numbers out of range are one line,
and a lost -wal file never sends the numbering back."""
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from beaver.control.engine.record import Outcome
from beaver.control.store import SnapshotStore
from beaver.traffic.runtime import restore

from tests.unit.test_cli import SERVICE, one_error_line, run
from tests.unit.test_restore_cli import PROCESSES
from tests.unit.test_store import record

HUGE = 99999999999999999999   # over SQLite's largest integer


def files(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of folder: its bytes and modification time."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def store_files(folder: Path) -> dict[str, tuple[bytes, int]]:
    """The same, but for SQLite's index for readers (-shm) and an empty -wal,
    which a reader of a store in WAL mode may leave beside it: never a byte
    of the store itself."""
    return {name: file for name, file in files(folder).items()
            if not (name.endswith("-shm") or name.endswith("-wal") and file[0] == b"")}


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A folder with a configuration (two in-group processes) and another
    program's SQLite database, other.db."""
    monkeypatch.delenv("BEAVER_CONFIG", raising=False)
    (tmp_path / "service.toml").write_text(SERVICE + PROCESSES)
    db = sqlite3.connect(tmp_path / "other.db")
    db.executescript("CREATE TABLE users (name TEXT, email TEXT);"
                     "INSERT INTO users VALUES ('ann', 'ann@example.org');")
    db.commit()
    db.close()
    return tmp_path


FOREIGN = "not a snapshot store: no table meta (its tables: users); nothing was written"


@pytest.mark.parametrize("argv, prefix", [
    (("snapshot", "list"), ""),
    (("snapshot", "show", 1), ""),
    (("snapshot", "latest"), ""),
    (("snapshot", "latest", "--accepted"), ""),
    (("snapshot", "restore", 1), "snapshot restore: "),
])
def test_another_program_s_database_is_refused_and_left_as_it_was(capsys, folder, argv, prefix):
    before = files(folder)
    code, out, err = run(capsys, *argv, "--store", folder / "other.db",
                         "-c", folder / "service.toml")
    assert (code, out) == (1, "")
    assert one_error_line(err) == f"{prefix}{folder / 'other.db'}: {FOREIGN}"
    assert files(folder) == before, "no table, no WAL switch, no -wal or -shm file"


def test_a_run_whose_configured_store_is_another_program_s_file_is_refused(capsys, folder):
    config = folder / "service.toml"
    config.write_text(config.read_text().replace('store = "snapshots.db"', 'store = "other.db"'))
    before = files(folder)
    code, _, err = run(capsys, "snapshot", "take", "-c", config)
    assert code == 1 and one_error_line(err) == f"{folder / 'other.db'}: {FOREIGN}"
    assert files(folder) == before


def test_an_in_group_restore_from_another_program_s_database_is_refused(folder):
    before = files(folder)
    with pytest.raises(restore.RestoreRefused) as refused:
        restore.load(folder / "other.db", 1, "b1", ["b2"])
    assert str(refused.value) == f"{folder / 'other.db'}: {FOREIGN}"
    assert files(folder) == before


@pytest.mark.parametrize("content, problem", [
    (b"", "not a snapshot store: no table meta (no tables); nothing was written"),
    (b"this is not sqlite" * 100,
     "not a snapshot store: not an SQLite file; nothing was written"),
])
def test_an_empty_or_foreign_file_is_refused_by_a_reader(capsys, folder, content, problem):
    (folder / "odd.db").write_bytes(content)
    before = files(folder)
    code, _, err = run(capsys, "snapshot", "list", "--store", folder / "odd.db")
    assert code == 1 and one_error_line(err) == f"{folder / 'odd.db'}: {problem}"
    assert files(folder) == before


def test_a_store_of_another_schema_is_refused_unchanged(capsys, folder):
    SnapshotStore(folder / "s.db").close()
    db = sqlite3.connect(folder / "s.db")
    db.execute("UPDATE meta SET value = 9 WHERE key = 'schema_version'")
    db.commit()
    db.close()
    before = store_files(folder)
    code, _, err = run(capsys, "snapshot", "list", "--store", folder / "s.db")
    assert code == 1
    assert one_error_line(err) == f"{folder / 's.db'}: store schema 9, this controller reads 5"
    assert store_files(folder) == before


def test_a_damaged_row_is_one_line(capsys, folder):
    store = SnapshotStore(folder / "s.db")
    store.save([record(1), record(2)])
    store.close()
    db = sqlite3.connect(folder / "s.db")
    db.execute("UPDATE snapshots SET outcome = 'maybe' WHERE id = 2")
    db.commit()
    db.close()
    before = store_files(folder)
    code, _, err = run(capsys, "snapshot", "show", 2, "--store", folder / "s.db")
    assert code == 1 and one_error_line(err) == (
        f"{folder / 's.db'}: damaged row 2 of snapshots: 'maybe' is not a valid Outcome")
    assert run(capsys, "snapshot", "show", 1, "--store", folder / "s.db")[0] == 0
    assert store_files(folder) == before


def saved_store(path: Path) -> Path:
    store = SnapshotStore(path)
    store.save([record(1), record(2, Outcome.REJECTED)])
    store.close()
    return path


@pytest.mark.parametrize("argv, message", [
    (("snapshot", "show", HUGE), f"no snapshot {HUGE} in {{store}}"),
    (("snapshot", "show", -5), "no snapshot -5 in {store}"),
    (("snapshot", "restore", HUGE, "-c", "{config}"),
     f"snapshot restore: no snapshot {HUGE} in {{store}}: never taken, or not judged yet"),
    (("snapshot", "list", "--limit", -1), "--limit must be at least 1, got -1"),
    (("snapshot", "list", "--limit", 0), "--limit must be at least 1, got 0"),
])
def test_numbers_out_of_range_are_one_line(capsys, folder, argv, message):
    store = saved_store(folder / "s.db")
    before = store_files(folder)
    argv = [str(a).format(config=folder / "service.toml") for a in argv]
    code, out, err = run(capsys, *argv, "--store", store)
    assert (code, out) == (1, "")
    assert one_error_line(err) == message.format(store=store)
    assert store_files(folder) == before


def test_a_huge_limit_lists_everything_and_a_huge_restore_id_is_refused(capsys, folder):
    store = saved_store(folder / "s.db")
    before = store_files(folder)
    code, out, _ = run(capsys, "snapshot", "list", "--limit", HUGE, "--store", store)
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:]] == ["2", "1"]
    with pytest.raises(restore.RestoreRefused, match=f"no snapshot {HUGE} in "):
        restore.load(*restore.parse(f"{store}:{HUGE}"), "b1", ["b2"])
    assert store_files(folder) == before


# -- a store this user may read but not write ------------------------------------------

@pytest.fixture
def locked_folder():
    """A folder, and a function that makes it and its files read-only for the
    reader: as root, who may write anything, the reader is nobody."""
    folder = Path(tempfile.mkdtemp(prefix="beaver-ro-"))
    folder.chmod(0o755)

    def read_only():
        for p in folder.iterdir():
            p.chmod(0o444)
        folder.chmod(0o555)
    yield folder, read_only
    folder.chmod(0o755)
    shutil.rmtree(folder)


def as_reader(*argv) -> subprocess.CompletedProcess:
    nobody = dict(user=65534, group=65534, extra_groups=[]) if os.geteuid() == 0 else {}
    return subprocess.run([sys.executable, "-m", "beaver.control.cli.main", *map(str, argv)],
                          capture_output=True, text=True, cwd="/", timeout=60, **nobody)


def test_a_store_that_can_be_read_but_not_written_is_listed(locked_folder):
    folder, read_only = locked_folder
    saved_store(folder / "s.db")
    read_only()
    before = files(folder)
    listed = as_reader("snapshot", "list", "--store", folder / "s.db")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[5] for line in listed.stdout.splitlines()[1:]] == ["rejected",
                                                                          "accepted"]
    shown = as_reader("snapshot", "show", 2, "--store", folder / "s.db")
    assert shown.returncode == 0 and shown.stdout.startswith("snapshot 2 (wire ID 2): rejected")
    assert files(folder) == before


def test_a_reader_sees_what_a_writer_still_holds_in_its_wal(locked_folder):
    folder, read_only = locked_folder
    writer = SnapshotStore(folder / "s.db")
    try:
        writer.save([record(1)])
        read_only()   # the writer's -wal and -shm are there, as while a run goes on
        listed = as_reader("snapshot", "list", "--store", folder / "s.db")
    finally:
        writer.close()
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["1"]


# -- reservations outlive a lost -wal file ------------------------------------------------

def test_a_reservation_is_in_the_main_file_before_it_returns(tmp_path):
    path = tmp_path / "s.db"
    store = SnapshotStore(path)
    store.save([record(1)])
    store.reserve(1024)
    # a crash, and the -wal file lost with it: the main file as it is on disk
    # now, while the store is still open
    shutil.copyfile(path, tmp_path / "crashed.db")
    store.save([record(5)])   # a save alone is no reservation: it may stay in the WAL
    store.reserve(2048)
    shutil.copyfile(path, tmp_path / "later.db")
    store.close()
    assert SnapshotStore(tmp_path / "crashed.db").reserved_through == 1024
    assert SnapshotStore(tmp_path / "later.db").reserved_through == 2048
