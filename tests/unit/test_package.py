"""The package as a user gets it: every folder is a package that pyproject.toml
ships, no module imports itself through a circle, and a wheel installed into
a fresh environment, without Mininet, runs the CLI and carries the data the
code reads (the P4 build and sources, the kernel program's source)."""
from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOPS = ("p4src", "control", "traffic", "topologies")   # beaver.<top> lives in <top>/


def modules() -> dict[str, Path]:
    found = {}
    for top in TOPS:
        for path in (ROOT / top).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(("beaver",) + (parts[:-1] if parts[-1] == "__init__" else parts))] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that `path` imports at module level (TYPE_CHECKING
    blocks included: a circle of types is a circle of design)."""
    out, body = set(), list(ast.parse(path.read_text()).body)
    while body:
        node = body.pop()
        if isinstance(node, (ast.If, ast.Try)):
            body += node.body + node.orelse + [n for h in getattr(node, "handlers", []) for n in h.body]
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import"
            out |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
    return {name for name in out if name in known}


def test_every_package_folder_is_shipped():
    folders = {"beaver." + ".".join(p.parent.relative_to(ROOT).parts)
               for top in TOPS for p in (ROOT / top).rglob("__init__.py")}
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())
                 ["tool"]["setuptools"]["packages"])
    assert folders == listed


def test_no_import_circle():
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}

    def reaches(start: str) -> set[str]:
        seen, todo = set(), list(graph[start])
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo += graph[name]
        return seen

    circles = sorted(name for name in graph if name in reaches(name))
    assert not circles, f"modules on an import circle: {circles}"


def test_the_circle_check_sees_a_circle(tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from beaver.x.b import f\n")
    b.write_text("if True:\n    from beaver.x.a import g\n")
    known = {"beaver.x.a": a, "beaver.x.b": b}
    assert imports(a, known) == {"beaver.x.b"} and imports(b, known) == {"beaver.x.a"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A wheel of the tracked files, built outside the checkout (a build
    writes build/ and *.egg-info where it runs), installed into a new venv."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode().split("\0")
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((ROOT / name).read_bytes())
    # Built as pip builds for a user: in an environment of its own with the
    # build-system's setuptools (a venv's own may be too old to make wheels).
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                            "-w", str(work / "dist"), str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((work / "dist").glob("beaver_p4-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("beaver/p4src/build/beaver.json", "beaver/p4src/build/beaver.p4info.txtpb",
                   "beaver/p4src/build/plain/beaver.json",
                   "beaver/p4src/build/plain/beaver.p4info.txtpb", "beaver/p4src/beaver.p4", "beaver/traffic/runtime/bpf/decap.c",
                   "beaver/topologies/experiments/fig5.py"):
        assert needed in names, f"{needed} is not in the wheel"
    venv = work / "venv"   # no system site packages: no Mininet
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([venv / "bin" / "pip", "install", "-q", str(wheel)], check=True,
                   capture_output=True)
    return venv


def test_the_installed_cli_runs_without_mininet(installed):
    beaver = installed / "bin" / "beaver"
    version = subprocess.run([beaver, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == "beaver 0.1.0"
    for group in ([], ["ctl"], ["snapshot"], ["experiment"]):
        shown = subprocess.run([beaver, *group, "--help"], capture_output=True, text=True)
        assert shown.returncode == 0 and shown.stdout.startswith("usage: beaver"), shown.stderr
    listed = subprocess.run([beaver, "experiment", "list"], capture_output=True, text=True,
                            check=True).stdout
    assert {"fig5", "clean", "fig11", "recovery"} <= {line.split()[0] for line in
                                                      listed.splitlines()[1:]}
    run = subprocess.run([beaver, "experiment", "run", "fig5"], capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stderr.strip().startswith("beaver: error: experiments need Mininet")


def test_the_installed_package_finds_its_data(installed):
    probe = ("from beaver.p4src import BMV2_JSON, P4INFO, P4_MAIN, PLAIN_BMV2_JSON, PLAIN_P4INFO\n"
             "from beaver.topologies import decap\n"
             "print(BMV2_JSON.is_file(), P4INFO.is_file(), P4_MAIN.is_file(),\n"
             "      PLAIN_BMV2_JSON.is_file(), PLAIN_P4INFO.is_file(),\n"
             "      decap.SOURCE.is_file(), decap.SOURCE.is_relative_to(P4_MAIN.parents[1]))")
    out = subprocess.run([installed / "bin" / "python", "-c", probe], capture_output=True,
                         text=True, check=True, cwd=installed)
    assert out.stdout.split() == ["True"] * 7
