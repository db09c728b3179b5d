"""The TCP in-group runtime's per-request cost, Beaver layer on and off, as
instructions counted by valgrind's callgrind (the TCP counterpart of
bench/runtime_instructions.py, which drives the UDP runtime only).

A driver (this script with --drive, run under callgrind) builds replica
kv1 of the key-value store over TCP (traffic/runtime/tcp.py) and serves
one client connection in its main thread, exactly as the runtime's own
connection thread would (TcpRuntime._connection).  A client thread sends
YCSB-A-like requests on that loopback connection (half puts, which kv1
replicates to a kv2 that only drains them), one at a time, each answered
before the next, as the Fig. 14 clients do: one read per request.  The
flow IDs are real BPF maps of the shapes of flow_ids and newest_id, made
by the driver, which the client thread writes as the kernel program would
(before the bytes it marks are sent; tests/support/flowmaps.py); the
runtime reads them through flowmap.FlowIds, as on a Mininet host.  A new
snapshot ID every --snapshot-every requests (0: never, marking alone).

Only the main thread is counted (callgrind counts each thread apart): the
runtime's receive, mark, application and reply, not the client.  Each
mode runs twice, with --requests and with 5 times as many, and the
difference, divided by the extra requests, is the count per request:
start-up and imports drop out.  Callgrind counts user-space instructions
only: the bpf() and recv() syscalls' kernel work is not in the count, so
the per-request system calls are counted too (strace -c, once a mode,
with --syscalls).

--cpu ROUNDS: instead of counting, the driver runs without valgrind and
times its serving thread's CPU (time.thread_time: user and system, so the
kernel's part of bpf() and the socket calls counts too), ROUNDS rounds of
both modes in alternating order; medians and the median of paired ratios.
A time, so it moves with the machine's load; the counts do not.

Needs root (or CAP_BPF) for the BPF maps.

Run: python bench/tcp_runtime_instructions.py [--requests 400] [--snapshot-every 0]
         [--syscalls | --cpu ROUNDS]
"""
from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import statistics
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # tests.support

from callgrind_run import main_thread_instructions   # noqa: E402 (bench/, after the path)

DIP, PEER, CLIENT_IP = "127.0.5.41", "127.0.5.42", "127.0.5.44"
VIP = ("127.0.5.141", 7000)
MODES = ("off", "beaver")


def requests(count: int) -> list[dict]:
    """YCSB-A-like: half gets, half puts, over 100 keys."""
    return [{"id": f"c:{i}", "op": "put", "key": f"k{i % 100}", "value": i} if i % 2
            else {"id": f"c:{i}", "op": "get", "key": f"k{i % 100}"} for i in range(count)]


def drive(mode: str, count: int, snapshot_every: int):
    from beaver.traffic.frames import FrameReader, frame
    from beaver.traffic.messages import decode, encode
    from beaver.traffic.runtime.flowmap import FlowIds
    from beaver.traffic.runtime.snapshots import Mode
    from beaver.traffic.runtime.tcp import PEER_PORT, TcpRuntime
    from beaver.traffic.services.kvstore import KvReplica
    from tests.support.flowmaps import FlowMap

    flow_map = FlowMap()
    flow_ids = FlowIds(flow_map.id, flow_map.newest_id)
    sink = socket.create_server((PEER, PEER_PORT))   # kv2: takes kv1's replication, says nothing
    listener = socket.create_server(VIP)             # kv1's VIP, accepted here, served below
    runtime = TcpRuntime("kv1", DIP, peers={"kv2": PEER}, flow_ids=flow_ids,
                         mode=Mode(mode), mgmt=(DIP, 0))
    runtime.serve(KvReplica(runtime, ["kv2"]))
    failures: list[str] = []

    def drain():
        conn, _ = sink.accept()
        with conn:
            while conn.recv(65536):
                pass

    def client():
        try:
            with socket.create_connection(VIP, source_address=(CLIENT_IP, 0)) as sock:
                reader, snapshot_id = FrameReader(), 0
                for i, request in enumerate(requests(count)):
                    if i == 0 or (snapshot_every and i % snapshot_every == 0):
                        snapshot_id += 1 if i else 0
                        flow_map.set(sock.getsockname(), VIP, snapshot_id)   # the kernel's part
                    sock.sendall(frame(encode(request)))
                    while not (got := reader.feed(sock.recv(65536))):
                        pass
                    if decode(got[0]).get("ok") is not True:
                        failures.append(f"request {i} answered {decode(got[0])}")
                        return
        except OSError as e:
            failures.append(f"client: {e}")

    threading.Thread(target=drain, daemon=True).start()
    client_thread = threading.Thread(target=client)
    client_thread.start()
    conn, source = listener.accept()
    with runtime._lock:
        runtime._connections.add(conn)
    cpu = time.thread_time()
    runtime._connection(conn, source, runtime._serve_client)   # the connection thread's work
    cpu = time.thread_time() - cpu
    client_thread.join()
    expected = (count - 1) // snapshot_every if snapshot_every else 0
    reached = runtime.snapshots.current_id if runtime.snapshots else None
    runtime.stop()
    listener.close()
    sink.close()
    flow_ids.close()
    flow_map.close()
    if failures or runtime.drops or (mode == "beaver" and reached != expected):
        raise SystemExit(f"the driver's traffic was not handled: {failures[:1]}, "
                         f"drops {dict(runtime.drops)}, snapshot ID {reached} of {expected}")
    print(json.dumps({"serving_cpu_s": cpu}))


def _driver(mode: str, count: int, snapshot_every: int) -> list[str]:
    return [sys.executable, __file__, "--drive", mode, "--requests", str(count),
            "--snapshot-every", str(snapshot_every)]


def instructions(mode: str, count: int, snapshot_every: int, out: Path) -> int:
    """The main thread's instruction count for one driver run under callgrind."""
    return main_thread_instructions(_driver(mode, count, snapshot_every), out / f"{mode}-{count}",
                                    f"the {mode} driver ({count} requests)")


def syscalls(mode: str, count: int, snapshot_every: int, out: Path) -> dict[str, int]:
    """System calls by name, every thread of one driver run (strace -f -c)."""
    summary = out / f"strace-{mode}-{count}"
    run = subprocess.run(["strace", "-f", "-c", "-U", "name,calls", "-o", str(summary),
                          *_driver(mode, count, snapshot_every)],
                         capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"the {mode} driver under strace failed: {run.stderr[-300:]}")
    calls = {}
    for line in summary.read_text().splitlines():
        if m := re.match(r"\s*([a-z_0-9]+)\s+(\d+)\s*$", line):
            calls[m.group(1)] = int(m.group(2))
    return calls


def cpu_per_request(mode: str, count: int, snapshot_every: int) -> float:
    """Microseconds of the main thread's CPU (user and system: the bpf()
    and socket calls' kernel work too) per request, one run without valgrind."""
    run = subprocess.run(_driver(mode, count, snapshot_every), capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"the {mode} driver failed: {run.stderr.strip()[-300:]}")
    return json.loads(run.stdout.splitlines()[-1])["serving_cpu_s"] * 1e6 / count


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--snapshot-every", type=int, default=0,
                   help="a new snapshot ID every this many requests (0: never, marking alone)")
    p.add_argument("--syscalls", action="store_true",
                   help="also count each mode's system calls per request (strace)")
    p.add_argument("--cpu", type=int, metavar="ROUNDS", default=0,
                   help="instead: the serving thread's CPU per request, timed, ROUNDS rounds "
                        "of both modes (order alternating), 5x --requests each")
    p.add_argument("--drive", choices=MODES, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.drive:
        return drive(args.drive, args.requests, args.snapshot_every)
    if args.cpu:
        return cpu_rounds(args.cpu, 5 * args.requests, args.snapshot_every)

    lengths = (args.requests, 5 * args.requests)
    per_request, per_request_calls = {}, {}
    with tempfile.TemporaryDirectory() as out:
        for mode in MODES:
            counts = [instructions(mode, n, args.snapshot_every, Path(out)) for n in lengths]
            per_request[mode] = (counts[1] - counts[0]) / (lengths[1] - lengths[0])
            print(f"{mode:>6}: {counts[0]} and {counts[1]} instructions for {lengths[0]} and "
                  f"{lengths[1]} requests: {per_request[mode]:.0f} per request", flush=True)
            if args.syscalls:
                calls = [syscalls(mode, n, args.snapshot_every, Path(out)) for n in lengths]
                per_request_calls[mode] = {
                    name: round((calls[1].get(name, 0) - calls[0].get(name, 0))
                                / (lengths[1] - lengths[0]), 2)
                    for name in sorted(set(calls[0]) | set(calls[1]))
                    if calls[1].get(name, 0) != calls[0].get(name, 0)}
                print(f"{mode:>6}: system calls per request {per_request_calls[mode]}",
                      flush=True)
    result = {"requests": list(lengths), "snapshot_every": args.snapshot_every,
              "off_instructions_per_request": round(per_request["off"]),
              "beaver_instructions_per_request": round(per_request["beaver"]),
              "beaver_extra_per_request": round(per_request["beaver"] - per_request["off"]),
              "ratio_beaver_over_off": round(per_request["beaver"] / per_request["off"], 3)}
    if args.syscalls:
        result["syscalls_per_request"] = per_request_calls
    print(json.dumps(result, indent=1))


def cpu_rounds(rounds: int, count: int, snapshot_every: int):
    us = {mode: [] for mode in MODES}
    for r in range(rounds):
        for mode in (MODES if r % 2 == 0 else MODES[::-1]):
            us[mode].append(cpu_per_request(mode, count, snapshot_every))
        print(f"round {r + 1}: " + ", ".join(f"{m} {us[m][-1]:.1f} us" for m in MODES),
              flush=True)
    off, beaver = (statistics.median(us[m]) for m in MODES)
    print(json.dumps({"requests": count, "rounds": rounds, "snapshot_every": snapshot_every,
                      "off_cpu_us_per_request": round(off, 2),
                      "beaver_cpu_us_per_request": round(beaver, 2),
                      "beaver_extra_us": round(beaver - off, 2),
                      "paired_ratios_median": round(statistics.median(
                          b / o for o, b in zip(us["off"], us["beaver"])), 3)}, indent=1))


if __name__ == "__main__":
    main()
