"""Compiles beaver.p4 with p4c's BMv2 back end, twice: Beaver's program
into OUT_DIR and the plain SLB (PLAIN_SLB) into OUT_DIR/plain.

    python -m beaver.p4src.compiler [OUT_DIR]     (default: p4src/build)
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from beaver.p4src import BUILD_DIR, P4_DIR, P4_MAIN, PLAIN_BUILD_DIR
from beaver.p4src.masks import simplify_masks
from beaver.p4src.scratch import move_scratch_fields

COMPILER = "p4c-bm2-ss"


class CompileError(RuntimeError):
    pass


def compiler_available() -> bool:
    return shutil.which(COMPILER) is not None


def compiler_version() -> str:
    """What `p4c-bm2-ss --version` prints (on stderr: p4c writes it there)."""
    result = subprocess.run([COMPILER, "--version"], capture_output=True, text=True)
    version = (result.stdout + result.stderr).strip()
    if result.returncode != 0 or not version:
        raise CompileError(f"{COMPILER} --version failed: {version or 'no output'}")
    return version


def compiler_release(version: str) -> str:
    """The release in a version line ("1.2.4.8" of "Version 1.2.4.8 (SHA: 32893b7e ...)"):
    a git checkout prints its SHA and an export prints none, yet both build the same JSON."""
    match = re.search(r"\b(\d+(?:\.\d+)+)\b", version)
    return match.group(1) if match else version


def compile_p4(out_dir: Path = BUILD_DIR, source: Path = P4_DIR,
               plain: bool = False) -> tuple[Path, Path]:
    """Returns (bmv2 json, p4info) and records the compiler's version beside
    them.  Warnings are errors: the program has none.  source is the folder
    of beaver.p4 (another than p4src/ only for a variant a benchmark measures);
    plain compiles the SLB without Beaver (PLAIN_SLB: no epoch state, no
    mark), the baseline a measurement of Beaver's cost compares against."""
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "beaver.json"
    p4info_path = out_dir / "beaver.p4info.txtpb"
    # Run from p4src/ with a relative source path, so the JSON's source
    # references do not depend on where the checkout lives.
    cmd = [COMPILER, "--arch", "v1model", "--std", "p4-16", "--Werror",
           *(["-DPLAIN_SLB"] if plain else []),
           "--p4runtime-files", str(p4info_path), "-o", str(json_path), P4_MAIN.name]
    result = subprocess.run(cmd, cwd=source, capture_output=True, text=True)
    if result.returncode != 0:
        raise CompileError(f"{COMPILER} failed:\n{result.stderr.strip()}")
    program = json.loads(json_path.read_text())
    move_scratch_fields(program)
    simplify_masks(program)
    # Written compact: p4c indents, and the unrolled batch steps (epoch.p4)
    # make the indented JSON three times larger; BMv2 reads either.
    json_path.write_text(json.dumps(program, separators=(",", ":")))
    (out_dir / "p4c-version.txt").write_text(compiler_version() + "\n")
    return json_path, p4info_path


def compile_both(out_dir: Path = BUILD_DIR) -> tuple[Path, ...]:
    """Beaver's program into out_dir, the plain SLB into its plain/ (as
    p4src/build and p4src/build/plain)."""
    out_dir = Path(out_dir)
    plain_dir = out_dir / PLAIN_BUILD_DIR.relative_to(BUILD_DIR)
    return (*compile_p4(out_dir), *compile_p4(plain_dir, plain=True))


def main(argv: list[str]) -> int:
    try:
        paths = compile_both(Path(argv[0]) if argv else BUILD_DIR)
    except (CompileError, FileNotFoundError) as e:
        print(e, file=sys.stderr)
        return 1
    print(*paths, sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
