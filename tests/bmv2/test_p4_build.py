"""The committed builds (p4src/build, and the plain SLB's p4src/build/plain)
are what p4c makes of p4src/ today.

The test compiles into a temporary folder and compares with the committed
files, read before compiling: a build is never compared with itself."""
import os

import pytest
from google.protobuf import text_format
from p4.config.v1 import p4info_pb2

from beaver.p4src import (BMV2_JSON, BUILD_DIR, P4INFO, PLAIN_BMV2_JSON, PLAIN_BUILD_DIR,
                          PLAIN_P4INFO)
from beaver.p4src.compiler import (COMPILER, CompileError, compile_both, compiler_available,
                                   compiler_release, compiler_version)

needs_p4c = pytest.mark.skipif(not compiler_available(),
                               reason="p4c-bm2-ss is not installed (it comes with the Docker image)")


def fake_compiler(tmp_path, monkeypatch, script: str):
    """A p4c-bm2-ss on PATH that runs script."""
    path = tmp_path / COMPILER
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")


def test_the_version_is_read_from_stderr_where_p4c_prints_it(tmp_path, monkeypatch):
    fake_compiler(tmp_path, monkeypatch, 'echo "p4c 9.8.7 (SHA: abc BUILD: RELEASE)" >&2\n')
    assert compiler_version() == "p4c 9.8.7 (SHA: abc BUILD: RELEASE)"


def test_a_compiler_that_prints_no_version_is_an_error(tmp_path, monkeypatch):
    fake_compiler(tmp_path, monkeypatch, "exit 0\n")
    with pytest.raises(CompileError, match="no output"):
        compiler_version()


def test_builds_of_one_release_compare_whatever_sha_they_print():
    from_git = "p4c-bm2-ss\nVersion 1.2.4.8 (SHA: 32893b7e87 BUILD: Release)"
    from_export = "p4c-bm2-ss\nVersion 1.2.4.8 (SHA:  BUILD: Release)"
    assert compiler_release(from_git) == compiler_release(from_export) == "1.2.4.8"
    assert compiler_release("p4c-bm2-ss\nVersion 1.2.5.16 (SHA:  BUILD: Release)") != "1.2.4.8"


# Each committed build: its folder, and where compile_both puts it under a new one.
BUILDS = {"beaver": (BUILD_DIR, P4INFO, BMV2_JSON, "."),
          "plain": (PLAIN_BUILD_DIR, PLAIN_P4INFO, PLAIN_BMV2_JSON, "plain")}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Both programs compiled aside by the one command (compile_both), with
    every committed file read before."""
    committed = {path: path.read_text() for folder, p4info, bmv2_json, _ in BUILDS.values()
                 for path in (p4info, bmv2_json, folder / "p4c-version.txt")}
    out = tmp_path_factory.mktemp("p4") / "build"
    compile_both(out)
    assert {path: path.read_text() for path in committed} == committed, \
        "compiling must not touch the committed build"
    return committed, out


def p4info(path):
    return text_format.Parse(path.read_text(), p4info_pb2.P4Info())


def test_the_plain_program_has_beaver_s_tables_and_none_of_its_epoch_state():
    beaver, plain = p4info(P4INFO), p4info(PLAIN_P4INFO)
    assert [t.preamble.name for t in plain.tables] == [t.preamble.name for t in beaver.tables]
    assert "BeaverIngress.config.slb_config" in {t.preamble.name for t in plain.tables}
    assert {r.preamble.name for r in beaver.registers} >= {"epoch_state", "sched_at"}
    assert list(plain.registers) == []
    beaver_actions = {a.preamble.name for a in beaver.actions}
    plain_actions = {a.preamble.name for a in plain.actions}
    assert "BeaverIngress.encapsulate.mark_and_push" in beaver_actions - plain_actions
    assert plain_actions < beaver_actions


@needs_p4c
@pytest.mark.parametrize("program", BUILDS)
def test_committed_build_is_fresh(built, program):
    committed, out = built
    folder, p4info, bmv2_json, under = BUILDS[program]
    fresh = out / under
    assert (fresh / p4info.name).read_text() == committed[p4info], \
        f"{program}'s P4Info is stale: run python -m beaver.p4src.compiler"
    recorded = committed[folder / "p4c-version.txt"].strip()
    assert recorded, f"{folder}/p4c-version.txt is empty: recompile to record the version"
    installed = compiler_version()
    if compiler_release(recorded) != compiler_release(installed):
        pytest.skip(f"BMv2 JSON built by {recorded!r}, this is {installed!r}: "
                    "only the P4Info was compared")
    assert (fresh / bmv2_json.name).read_text() == committed[bmv2_json], \
        f"{program}'s BMv2 JSON is stale: run python -m beaver.p4src.compiler"
