"""The committed build (p4src/build) is what p4c makes of p4src/ today.

The test compiles into a temporary folder and compares with the committed
files, read before compiling: a build is never compared with itself."""
import os

import pytest

from beaver.p4src import BMV2_JSON, BUILD_DIR, P4INFO
from beaver.p4src.compiler import (COMPILER, CompileError, compile_p4, compiler_available,
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


@needs_p4c
def test_committed_build_is_fresh(tmp_path):
    committed = {path: path.read_text()
                 for path in (P4INFO, BMV2_JSON, BUILD_DIR / "p4c-version.txt")}
    json_path, p4info_path = compile_p4(tmp_path / "build")
    assert {path: path.read_text() for path in committed} == committed, \
        "compiling must not touch the committed build"
    assert p4info_path.read_text() == committed[P4INFO], \
        "P4Info is stale: run python -m beaver.p4src.compiler"
    recorded = committed[BUILD_DIR / "p4c-version.txt"].strip()
    assert recorded, "p4src/build/p4c-version.txt is empty: recompile to record the version"
    installed = compiler_version()
    if compiler_release(recorded) != compiler_release(installed):
        pytest.skip(f"BMv2 JSON built by {recorded!r}, this is {installed!r}: "
                    "only the P4Info was compared")
    assert json_path.read_text() == committed[BMV2_JSON], \
        "BMv2 JSON is stale: run python -m beaver.p4src.compiler"
