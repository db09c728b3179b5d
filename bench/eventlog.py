"""What recording an event costs, by how the event log writes it.

A log that must survive SIGKILL cannot keep records in the process's own
buffer.  Three ways to write, each timed over the same records, the whole
path of EventLog._event (lock, sequence number, clock, JSON, write):

* buffered: a 64 KiB userspace buffer, flushed when full (the design before
  issue 25: SIGKILL loses up to 64 KiB of events);
* write: one os.write per record to an O_APPEND descriptor (in the kernel's
  page cache at once: SIGKILL loses nothing);
* mmap: records copied into a shared mapping of the file, grown 1 MiB at a
  time (the kernel has the pages: SIGKILL loses nothing; the file ends in
  zeros until closed);

and EventLog itself, as the module now writes.  Rounds alternate the
designs.  Printed per design: the median CPU time per event (the process's,
user and system: the write design's cost is in the kernel), and the median
over the rounds of its ratio to buffered in the same round (a shared
machine's load moves the rounds, less the ratios).

Run: python bench/eventlog.py [--events 200000] [--rounds 5]
"""
from __future__ import annotations

import argparse
import json
import mmap
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from beaver.traffic.runtime.eventlog import EventLog

GROW = 1 << 20


class Buffered:
    def __init__(self, path: Path):
        self._file = open(path, "w", buffering=1 << 16)

    def write(self, line: str):
        self._file.write(line)

    def close(self):
        self._file.close()


class Write:
    def __init__(self, path: Path):
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)

    def write(self, line: str):
        os.write(self._fd, line.encode())

    def close(self):
        os.close(self._fd)


class Mapped:
    def __init__(self, path: Path):
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        self._size = self._used = 0
        self._map = None

    def write(self, line: str):
        data = line.encode()
        end = self._used + len(data)
        if end > self._size:
            if self._map is not None:
                self._map.close()
            self._size = end + GROW
            os.ftruncate(self._fd, self._size)
            self._map = mmap.mmap(self._fd, self._size)
        self._map[self._used:end] = data
        self._used = end

    def close(self):
        self._map.close()
        os.ftruncate(self._fd, self._used)
        os.close(self._fd)


class Recorder:
    """EventLog's path (recv, then _event) over one of the writers above."""

    def __init__(self, writer):
        self._writer = writer
        self._lock = threading.Lock()
        self._seq = 0

    def recv(self, msg: str, peer: str, ctl: bool = False):
        self._event({"kind": "recv", "msg": msg, "peer": peer, **({"ctl": True} if ctl else {})})

    def _event(self, record: dict):
        with self._lock:
            self._seq += 1
            self._writer.write(json.dumps({"seq": self._seq, "t_us": time.time_ns() // 1000,
                                           **record}, separators=(",", ":")) + "\n")

    def close(self):
        self._writer.close()


DESIGNS = {
    "buffered": lambda path: Recorder(Buffered(path)),
    "write": lambda path: Recorder(Write(path)),
    "mmap": lambda path: Recorder(Mapped(path)),
    "EventLog": lambda path: EventLog(path, "p1", True, "beaver"),
}


def per_event_us(design: str, events: int, directory: Path) -> float:
    path = directory / f"{design}.jsonl"
    log = DESIGNS[design](path)
    msgs = [f"c{i % 50}:{i}" for i in range(events)]
    started = time.process_time()
    for msg in msgs:
        log.recv(msg, "10.0.1.7:40000")
    log.close()
    elapsed = time.process_time() - started
    lines = path.read_bytes().count(b"\n")
    assert lines >= events, f"{design}: {lines} lines for {events} events"
    path.unlink()
    return elapsed / events * 1e6


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    times: dict[str, list[float]] = {design: [] for design in DESIGNS}
    with tempfile.TemporaryDirectory() as directory:
        for _ in range(args.rounds):
            for design in DESIGNS:
                times[design].append(per_event_us(design, args.events, Path(directory)))
    print(f"{args.events} events a round, {args.rounds} rounds; CPU us per event, median "
          f"(min-max); ratio to buffered in the same round, median (min-max):")
    for design, samples in times.items():
        ratios = [t / base for t, base in zip(samples, times["buffered"])]
        print(f"  {design:9} {statistics.median(samples):6.2f} us ({min(samples):.2f}-"
              f"{max(samples):.2f})  ratio {statistics.median(ratios):.3f} "
              f"({min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()
