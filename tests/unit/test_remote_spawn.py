"""A remote node's ssh clients (its shell, `rcmd`, the `kill` that stops a
remote process) are spawned from the controller's process, where gRPC
runs.  Spawned with a preexec_fn, Python forks and the child runs gRPC's
fork handlers too; some such children hung or died before they ran their
command, and a lost `kill` left a remote process to be killed at the
deadline with its log cut short (docs/servers.md).  ServerShell._popen
spawns without one: every child runs its command while gRPC is busy."""
import subprocess
import threading
from concurrent import futures

import grpc

from beaver.topologies.cluster import RemoteBeaverHost

SPAWNS = 300   # with a preexec_fn, some 7% of these children failed here


def test_every_child_runs_its_command_while_grpc_is_busy():
    server = grpc.server(futures.ThreadPoolExecutor(2))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    done = threading.Event()

    def busy():   # the poller at work, as the controller's P4Runtime streams keep it
        call = channel.unary_unary("/beaver.Test/Nothing")
        while not done.is_set():
            try:
                call(b"", timeout=0.05)
            except grpc.RpcError:
                pass

    threads = [threading.Thread(target=busy) for _ in range(2)]
    for thread in threads:
        thread.start()
    node = object.__new__(RemoteBeaverHost)   # its spawning only: on this server
    node.isRemote = False
    failed = []
    try:
        for number in range(SPAWNS):
            child = node._popen(["sh", "-c", f"echo ran {number}"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                out = child.communicate(timeout=10)[0].decode(errors="replace")
            except subprocess.TimeoutExpired:   # hung before it ran the command
                child.kill()
                out = "(hung) " + child.communicate()[0].decode(errors="replace")
            if out != f"ran {number}\n":
                failed.append(out[:200])
    finally:
        done.set()
        for thread in threads:
            thread.join()
        channel.close()
        server.stop(None)
    assert failed == [], f"{len(failed)} of {SPAWNS} children failed: {failed[:3]}"
