"""Two servers here: this machine and a container of the project's image
with sshd (tests/support/container_server.py).  The pieces a network
across servers is built of (topologies/cluster.py), each on the container:
a host whose shell is there, a Linux bridge there joined to one here by an
SSH Ethernet tunnel, a BMv2 whose gRPC port the controller reaches, and a
process stopped by its pid there; then fig5 and clean with
`--servers localhost,<container>`, an SLB and two in-group hosts on the
container (docs/servers.md), and fig5tcp so, its two TCP hosts there with
their kernel decapsulation.  The container sees the checkout and the venv
at their own paths (the processes run this checkout's python there), not the
results folder: remote processes write their logs on the container, and the
run copies them back over ssh.  Needs root, Mininet, BMv2 and p4c
(for the stand-in image) and a Docker engine (started here if none runs)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.container_server import ContainerServer, server_image
from tests.support.docker_support import ROOT

ECHO = ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.bind(('0.0.0.0', 9999))\nwhile True:\n    d, a = s.recvfrom(2000)\n    s.sendto(d, a)")
PROBE = ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
         "s.settimeout(2)\nfor i in range(50):\n    s.sendto(b'%d' % i, ('{ip}', 9999))\n"
         "    assert s.recvfrom(2000)[0] == b'%d' % i\nprint('echoed 50')")


@pytest.fixture(autouse=True)
def hangups_ignored():
    """As under nohup: every ssh client of the run starts with SIGHUP
    ignored, which OpenSSH keeps, and the network must still stop
    (cluster.ServerShell.terminate)."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    yield
    signal.signal(signal.SIGHUP, previous)


@pytest.fixture(scope="module")
def results():
    folder = Path(tempfile.mkdtemp(prefix="beaver-two-servers-", dir="/var/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def server(request, results):
    if shutil.which("mn") is None:
        pytest.skip("Mininet is not installed")
    standin = request.getfixturevalue("standin")
    shares = {ROOT, Path(sys.prefix).resolve()}   # not the results: logs are copied back
    with ContainerServer.started(server_image(standin), shares=sorted(shares)) as started:
        yield started


def test_hosts_bridges_bmv2_and_processes_on_the_container(server, tmp_path):
    from mininet.net import Mininet

    from beaver.topologies import decap, firewall
    from beaver.topologies.bmv2 import port_open
    from beaver.topologies.cluster import (RemoteBeaverHost, RemoteBmv2Node,
                                           RemoteKernelBridge, TunnelLink)
    from beaver.topologies.nodes import BeaverHost, KernelBridge

    there = dict(server=server.address, serverIP=server.address,
                 ssh_config=str(server.ssh_config))
    net = Mininet(controller=None, host=BeaverHost, link=TunnelLink, build=False,
                  autoSetMacs=False)
    here_bridge = net.addSwitch("bvt1", cls=KernelBridge, dpid="c1")
    there_bridge = net.addSwitch("bvt2", cls=RemoteKernelBridge, dpid="c2", **there)
    here = net.addHost("bvth1", ip=None)
    remote = net.addHost("bvth2", cls=RemoteBeaverHost, ip=None, **there)
    switch = net.addSwitch("bvts1", cls=RemoteBmv2Node, grpc_port=9859, device_id=1,
                           log_dir=tmp_path, **there)
    net.addLink(here, here_bridge, params1={"ip": "10.9.0.1/24"})
    net.addLink(remote, there_bridge, params1={"ip": "10.9.0.2/24"})
    net.addLink(here_bridge, there_bridge)   # the trunk: an SSH Ethernet tunnel
    net.addLink(switch, there_bridge, port1=1)
    allowance = firewall.allow_bridges(("bvt1",))
    try:
        net.build()
        net.start()
        assert remote.cmd("hostname").strip() == server.container
        assert port_open(server.address, 9859), "BMv2's gRPC port on the container"
        assert switch.grpc_address == f"{server.address}:9859"
        echo = remote.popen(["python3", "-c", ECHO])
        assert echo.pid > 0 and echo.poll() is None
        time.sleep(1)
        probe = here.popen(["python3", "-c", PROBE.format(ip="10.9.0.2")])
        out, err = probe.communicate(timeout=30)
        assert out.decode().strip() == "echoed 50", err.decode()[-500:]
        echo.send_signal(signal.SIGTERM)
        echo.wait(10)
        left = server.ssh("ps", "-o", "pid=", "-p", str(echo.pid))
        assert left.stdout.strip() == "", "the echo server still runs on the container"
        # A file written there comes back here, at its path; a missing one is one line.
        folder = tmp_path / "logs"
        remote.make_folder(folder)
        assert server.ssh("test", "-d", str(folder)).returncode == 0
        assert not folder.exists(), "the container shares tmp_path"
        remote.cmd(f"printf '{{\"a\":1}}\\n{{\"b\":2}}\\n' > {folder}/bvth2.jsonl")
        folder.mkdir()
        assert remote.fetch(folder / "bvth2.jsonl") is None
        assert (folder / "bvth2.jsonl").read_text() == '{"a":1}\n{"b":2}\n'
        problem = remote.fetch(folder / "none.jsonl")
        assert problem is not None and server.address in problem and "\n" not in problem
        assert sorted(p.name for p in folder.iterdir()) == ["bvth2.jsonl"]
        # The kernel decapsulation, loaded and its maps filled on the container.
        loaded = decap.attach_there(remote.cmd, "bvth2-eth0", ["10.9.0.1"])
        assert set(loaded.maps) == {"slb_addrs", "flow_ids", "newest_id", "decap_counts"}
        assert f"id {loaded.prog_id} " in remote.cmd("tc filter show dev bvth2-eth0 ingress")
        assert loaded.counters() == dict.fromkeys(
            ("decapsulated", "foreign", "malformed", "left_udp", "map_full"), 0)
        with pytest.raises(decap.DecapError, match=f"{server.container}: tc cannot load") as e:
            decap.attach_there(remote.cmd, "bvnosuch0", ["10.9.0.1"])
        assert "\n" not in str(e.value)
        decap.detach(remote.cmd, "bvth2-eth0")
        assert "beaver_decap" not in remote.cmd("tc filter show dev bvth2-eth0 ingress")
    finally:
        net.stop()
        allowance.close()
    links = server.ssh("ip", "-o", "link", "show").stdout
    assert "bvt" not in links, links


def experiment(server, results: Path, name: str, phase: str, *options: str) -> list[dict]:
    """`beaver experiment run name --servers localhost,<container>`: its summary
    rows, once the remote processes' logs are seen to have come back whole."""
    env = dict(os.environ, BEAVER_SSH_CONFIG=str(server.ssh_config))
    done = subprocess.run([sys.executable, "-m", "beaver.control.cli.main", "experiment", "run",
                           name, "--servers", f"localhost,{server.address}",
                           "--out", str(results), "--json", *options],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    (folder,) = [p for p in results.glob(f"{name}-*") if p.is_dir()]
    placed = json.loads((folder / "runs" / phase / "placement.json").read_text())
    remote = sorted(n for n, where in placed.items() if where == server.address)
    assert remote == ["bvi2", "bvi4", "bvs2"], placed
    assert server.ssh("test", "-e", str(folder / "runs" / phase / "spec.json")).returncode == 1, \
        "the container shares the results folder"
    for host in ("bvi2", "bvi4"):   # written there, copied here
        log = folder / "runs" / phase / "logs" / f"{host}.jsonl"
        there = server.ssh("cat", str(log))
        assert there.returncode == 0, there.stderr
        assert log.read_text() == there.stdout
    return json.loads((folder / f"{name}-summary.json").read_text())


@pytest.fixture(scope="module")
def fig5_rows(server, results) -> dict:
    return {row["phase"]: row for row in experiment(server, results, "fig5", "beaver-fine",
                                                    "--count", "5")}


@pytest.fixture(scope="module")
def clean_row(server, results) -> dict:
    (row,) = experiment(server, results, "clean", "run", "--count", "20")
    return row


@pytest.fixture(scope="module")
def fig5tcp_rows(server, results) -> dict:
    # bvs2 (the late SLB) and two TCP in-group hosts, bvi2 and bvi4, whose
    # kernel decapsulation is loaded and filled on the container
    return {row["phase"]: row for row in experiment(server, results, "fig5tcp", "beaver-fine",
                                                    "--count", "5", "--clean-count", "10")}


def test_fig5tcp_across_two_servers_with_tcp_hosts_on_the_container(fig5tcp_rows):
    for row in fig5tcp_rows.values():
        assert row["short_logs"] == 0, row
    late, on_time = fig5tcp_rows["beaver-fine"], fig5tcp_rows["beaver-on-time"]
    for row in (late, on_time):   # the checker proves every accepted cut consistent
        assert row["false_accepts"] == 0 and row["accepted_unchecked"] == 0, row
        assert row["consistent"] >= row["accepted"], row
    # (a late cut with no late old-ID packet is consistent and may be accepted,
    # as in fig5 above; on one host 0 of 20 were: docs/experiments.md)
    assert late["rejected"] >= 3, late
    assert on_time["accepted"] >= 1, on_time
    assert fig5tcp_rows["lai-yang"]["accepted"] == 5, fig5tcp_rows["lai-yang"]


def test_fig5_across_two_servers_accepts_no_inconsistent_cut(fig5_rows):
    for phase, row in fig5_rows.items():
        if phase.startswith("beaver"):
            assert row["false_accepts"] == 0 and row["accepted_unchecked"] == 0, row
            assert row["consistent"] >= row["accepted"], row
    # A late SLB's cut is rejected unless no old-ID packet left it late, when
    # it is consistent and may be accepted (as on one host): most are rejected.
    for phase in ("beaver-fine-timed", "beaver-coarse-timed", "beaver-fine", "beaver-coarse"):
        assert fig5_rows[phase]["rejected"] >= 3, fig5_rows[phase]
    # Lai-Yang cannot see the late SLB: it accepts every cut, and some are
    # inconsistent (on a loaded machine a cut may happen to be consistent)
    assert fig5_rows["lai-yang"]["accepted"] == 5, fig5_rows["lai-yang"]
    assert fig5_rows["lai-yang"]["false_accepts"] >= 3, fig5_rows["lai-yang"]
    assert fig5_rows["beaver-on-time-timed"]["accepted"] >= 1, fig5_rows["beaver-on-time-timed"]


def test_clean_across_two_servers_accepts_consistent_snapshots_only(clean_row):
    assert clean_row["accepted"] >= 1, clean_row
    assert clean_row["consistent"] == clean_row["accepted"], clean_row
    assert clean_row["false_accepts"] == 0, clean_row


def test_clean_across_two_servers_keeps_every_log_whole(clean_row):
    # (a remote process's stop was once lost, and its log cut short: the ssh
    # carrying its kill was forked with gRPC's fork handlers; docs/servers.md)
    assert clean_row["short_logs"] == 0, clean_row


def test_cleanup_cleans_the_other_server_too(server):
    # A link a killed run left on the container, in its own network namespace
    # (this machine's cleanup cannot see it; its processes it could, from here).
    made = server.ssh("ip", "link", "add", "bvleft0", "type", "bridge")
    assert made.returncode == 0, made.stderr
    env = dict(os.environ, BEAVER_SSH_CONFIG=str(server.ssh_config))
    done = subprocess.run([sys.executable, "-m", "beaver.control.cli.main", "experiment",
                           "cleanup", "--servers", f"localhost,{server.address}"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    there = [line for line in done.stdout.splitlines() if line.startswith(f"{server.address}: ")]
    assert there == [f"{server.address}: removed 0 process(es) and 1 link(s)"], done.stdout
    assert "bvleft0" not in server.ssh("ip", "-o", "link", "show").stdout
