"""An experiment's results folder: CSV and JSON next to each plot, every
run's raw material in runs/, and progress on stderr."""
from __future__ import annotations

import csv
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Mapping, Sequence


class Results:
    def __init__(self, root: Path, name: str):
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        self.dir = Path(root) / f"{name}-{stamp}"
        self.dir.mkdir(parents=True, exist_ok=False)
        self.name = name
        self.started = time.monotonic()

    def run_dir(self, label: str) -> Path:
        """A fresh folder for one network run."""
        return self.dir / "runs" / label

    def progress(self, text: str):
        print(f"[{time.monotonic() - self.started:7.1f}s] {text}", file=sys.stderr, flush=True)

    def write_csv(self, rows: Sequence[Mapping], name: str | None = None) -> Path:
        path = self.dir / f"{name or self.name}.csv"
        fields = list(dict.fromkeys(k for row in rows for k in row))
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        return path

    def write_json(self, value, name: str | None = None) -> Path:
        path = self.dir / f"{name or self.name}.json"
        path.write_text(json.dumps(value, indent=1, default=str))
        return path

    @staticmethod
    def figure(columns: int = 1):
        """(figure, axes) of matplotlib, off screen, one axes per column (a
        tuple of them if more than one); save it with save_figure."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt.subplots(1, columns, figsize=(6 if columns == 1 else 4.5 * columns, 4))

    def save_figure(self, fig, name: str | None = None) -> Path:
        path = self.dir / f"{name or self.name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        import matplotlib.pyplot as plt
        plt.close(fig)
        return path

