"""One Python driver run under valgrind's callgrind, counted in its main
thread only (the benchmarks' drivers do the measured work there)."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path


def main_thread_instructions(command: list[str], prefix: Path, what: str) -> int:
    """Runs command under callgrind (dumps at prefix-NN, one a thread) and
    returns its main thread's instructions; a failed run ends the bench with
    one line naming what failed."""
    run = subprocess.run(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                          f"--callgrind-out-file={prefix}", *command],
                         capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    if run.returncode:
        said = [line for line in run.stderr.splitlines() if not line.startswith("==")]
        raise SystemExit(f"{what} failed: {said[-1] if said else f'exit {run.returncode}'}")
    main_thread = Path(f"{prefix}-01")
    return int(re.search(r"^summary: (\d+)", main_thread.read_text(), re.M).group(1))
