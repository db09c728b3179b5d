"""Nodes and links on other servers, on Mininet Cluster Edition's mechanism
(mininet/examples/cluster.py): a node's shell is `ssh server mnexec ...`, a
link between servers is a tap pair joined by `ssh -w` (Tunnel=Ethernet).

What cluster.py ships remotely is Open vSwitch only; this topology's
switches are BMv2 and its bridges Linux bridges, so their remote versions
are here (docs/servers.md), with these changes to its nodes' SSH use:
- an ssh_config of the run (-F) rather than the user's ~/.ssh;
- no `sudo` (the run is root on every server, and the first may have none);
- processes started on another server are stopped by their pid there
  (a signal to the local ssh client would leave them running);
- a node's ssh shell is stopped with SIGTERM too, which it takes even when
  started with SIGHUP ignored (under nohup);
- the ssh clients are started without a preexec_fn (see ServerShell._popen).
"""
from __future__ import annotations

import itertools
import logging
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

from mininet.examples.cluster import RemoteLink, RemoteMixin

from beaver.topologies.bmv2 import Bmv2Error, Bmv2Switch, port_open
from beaver.topologies.nodes import BeaverHost, Bmv2Node, KernelBridge

log = logging.getLogger(__name__)

_tunnels = itertools.count(10)   # tap numbers: one per tunnel, never reused in a run
_pidfiles = itertools.count(1)
SIGNAL_TRIES = 3
FETCH_SECONDS = 120   # to copy one file back (an event log of a long run: tens of MB)


class ServerShell(RemoteMixin):
    """A node whose commands run on its server (see the module's docstring)."""

    def __init__(self, name, ssh_config: str | None = None, **params):
        self.ssh_config = ssh_config
        super().__init__(name, **params)

    def startShell(self, *args, **kwargs):
        # (RemoteMixin's ssh command has sudo and the user's ~/.ssh; the shell
        # starts inside its __init__, so the command is replaced here)
        if self.isRemote:
            self.sshcmd = ["ssh", *(["-F", self.ssh_config] if self.ssh_config else []),
                           "-q", "-o", "BatchMode=yes", "-tt", self.serverIP]
        super().startShell(*args, **kwargs)

    def _popen(self, cmd, sudo=True, tt=True, **params):
        if isinstance(cmd, str):
            cmd = cmd.split()
        if self.isRemote:
            ssh = self.sshcmd if tt else [word for word in self.sshcmd if word != "-tt"]
            cmd = ssh + list(cmd)
        # Its own process group, as cluster.py's preexec_fn=os.setpgrp (a
        # Ctrl-C at the terminal is not for it), but with no preexec_fn: with
        # one, Python forks instead of vforking, the child runs gRPC's fork
        # handlers (the controller's P4Runtime channels live in this
        # process), and such a child may hang or die before it execs.  That
        # lost the `kill` that stops a remote process, which was then killed
        # at the deadline, its log cut short (docs/servers.md).
        params.update(process_group=0)
        return super(RemoteMixin, self)._popen(cmd, **params)

    def terminate(self):
        # Mininet hangs the shell up (SIGHUP), and an ssh client that started
        # with SIGHUP ignored (under nohup, say) keeps it ignored, as OpenSSH
        # does: Node.cleanup then waited for it forever.  It takes SIGTERM.
        if self.isRemote and self.shell and self.shell.poll() is None:
            os.killpg(self.shell.pid, signal.SIGTERM)
        super().terminate()

    def make_folder(self, path: Path):
        """path (and its parents) on this node's server."""
        answer = self.rcmd(f"mkdir -p -- {shlex.quote(str(path))} && echo made")
        if "made" not in answer:
            raise RuntimeError(f"cannot make {path} on {self.server}: {answer.strip()}")

    def fetch(self, path: Path, timeout: float = FETCH_SECONDS) -> str | None:
        """Copies path from this node's server to the same path on this one,
        over its ssh; None once copied, else why not (one line).  The copy
        lands under another name first: one cut short never stands for the
        file (and where the folder is shared, the file is copied onto itself)."""
        part = path.with_name(path.name + ".part")
        with open(part, "wb") as copy:
            cat = self._popen(["cat", "--", shlex.quote(str(path))], tt=False,
                              stdin=subprocess.DEVNULL, stdout=copy, stderr=subprocess.PIPE)
            try:
                _, err = cat.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                cat.kill()
                _, err = cat.communicate()
                err = f"not copied within {timeout:.0f} s".encode()
        if cat.returncode != 0:
            part.unlink()
            why = err.decode(errors="replace").strip().splitlines()
            return f"cannot copy {path} from {self.server}: {why[-1] if why else 'ssh failed'}"
        part.replace(path)
        return None

    def popen(self, *args, **kwargs):
        """A process in this node's namespaces on its server; stopped by its pid there."""
        if not self.isRemote:
            return super().popen(*args, **kwargs)
        cmd = args[0] if len(args) == 1 and isinstance(args[0], list) else list(args)
        pidfile = f"/tmp/beaver-{self.name}-{os.getpid()}-{next(_pidfiles)}.pid"
        line = f"echo $$ > {pidfile}; exec mnexec -a {self.pid} {shlex.join(map(str, cmd))}"
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        ssh = [word for word in self.sshcmd if word != "-tt"]
        local = subprocess.Popen([*ssh, "sh", "-c", shlex.quote(line)],
                                 stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
        return RemoteProcess(self, local, pidfile)


class RemoteProcess:
    """A process on another server, as much of subprocess.Popen as the
    topology uses: the local ssh client lives as long as it does."""

    def __init__(self, node: ServerShell, local: subprocess.Popen, pidfile: str):
        self.node, self.local, self.pidfile = node, local, pidfile
        self.pid = self._remote_pid()

    def _remote_pid(self, timeout: float = 10.0) -> int:
        """Its pid on its server, once its shell wrote it (-1: not yet, or gone)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.node.rcmd(f"cat {self.pidfile} 2>/dev/null").strip()
            if out.isdigit():
                return int(out)
            if self.local.poll() is not None:
                return -1   # it ended already
            time.sleep(0.05)
        return -1

    @property
    def returncode(self):
        return self.local.returncode

    def poll(self):
        return self.local.poll()

    def wait(self, timeout=None):
        return self.local.wait(timeout)

    def send_signal(self, sig: int):
        if self.pid <= 0 and self.local.poll() is None:   # slow to start: ask again
            self.pid = self._remote_pid(timeout=2.0)
        if self.pid > 0 and self.local.poll() is None:
            for _ in range(SIGNAL_TRIES):   # no answer: the ssh that carries it failed
                if "signalled" in self.node.rcmd(f"kill -{int(sig)} {self.pid} 2>/dev/null;"
                                                 f" echo signalled $?"):
                    return
            log.warning("%s on %s: could not send signal %d to pid %d over ssh",
                        self.node.name, self.node.server, sig, self.pid)

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def kill(self):
        self.send_signal(signal.SIGKILL)
        if self.local.poll() is None:
            self.local.kill()


class RemoteBeaverHost(ServerShell, BeaverHost):
    pass


class RemoteKernelBridge(ServerShell, KernelBridge):
    pass


class RemoteBmv2Node(ServerShell, Bmv2Node):
    """simple_switch_grpc on its server, its gRPC port on the server's
    address (the controller reaches it from the first server), its log on
    that server under the same path."""

    @property
    def grpc_address(self) -> str:
        return f"{self.serverIP if self.isRemote else '127.0.0.1'}:{self.grpc_port}"

    def start(self, controllers):
        if not self.isRemote:
            return super().start(controllers)
        ports = {self.ports[intf]: intf.name for intf in self.intfList() if intf.name != "lo"}
        for name in ports.values():
            self.cmd("ethtool -K", name, "rx off tx off sg off")
            self.cmd(f"sysctl -qw net.ipv6.conf.{name}.disable_ipv6=1")
            self.cmd(f"sysctl -qw net.ipv4.conf.{name}.forwarding=0")
        switch = Bmv2Switch(self.name, ports, self.grpc_port, self.device_id, self.log_dir)
        command = [("0.0.0.0:%d" % self.grpc_port) if word == switch.grpc_address else word
                   for word in switch.command()]
        self.process = self.popen(command, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.STDOUT)   # (its log is not kept)
        deadline = time.monotonic() + 15
        while not port_open(self.serverIP, self.grpc_port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise Bmv2Error(f"{self.name} on {self.server}: gRPC port "
                                f"{self.serverIP}:{self.grpc_port} not open")
            time.sleep(0.1)

    def stop(self, deleteIntfs=True):
        process = getattr(self, "process", None)
        if process is not None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
            self.process = None
        super().stop(deleteIntfs)


class TunnelLink(RemoteLink):
    """A link; between two servers, taps joined by `ssh -w` (as
    cluster.py's RemoteSSHLink) with a tap number of its own and the run's
    ssh_config."""

    def makeTunnel(self, node1, node2, intfname1, intfname2, addr1=None, addr2=None):
        if remote(node1) and not remote(node2):   # ssh from the first server
            return self.makeTunnel(node2, node1, intfname2, intfname1, addr2, addr1)
        if remote(node1):
            raise RuntimeError(f"{node1.name} ({node1.server}) and {node2.name} "
                               f"({node2.server}): tunnels join the first server to another")
        number = next(_tunnels)
        tap = f"tap{number}"
        for node in (node1, node2):
            if (result := _in_root(node, f"ip tuntap add dev {tap} mode tap")):
                raise RuntimeError(f"cannot make {tap} on {node.server}: {result}")
        config = getattr(node2, "ssh_config", None)
        cmd = ["ssh", *(["-F", config] if config else []), "-n", "-o", "Tunnel=Ethernet",
               "-w", f"{number}:{number}", node2.serverIP, "echo @"]
        tunnel = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        answer = tunnel.stdout.read(1).decode(errors="replace")
        if answer != "@":
            rest = answer + tunnel.stdout.read().decode(errors="replace")
            raise RuntimeError(f"ssh tunnel to {node2.server}: {rest.strip() or 'no answer'} "
                               f"({shlex.join(cmd)})")
        for node, intf, addr in ((node1, intfname1, addr1), (node2, intfname2, addr2)):
            if node.inNamespace and (result := _in_root(node, f"ip link set {tap} netns "
                                                              f"{node.pid}")):
                raise RuntimeError(f"cannot move {tap} into {node.name}: {result}")
            result = node.cmd(f"ip link set {tap} name {intf}" +
                              (f" address {addr}" if addr else "")).strip()
            if result:
                raise RuntimeError(f"cannot name {tap} {intf} on {node.server}: {result}")
        self.tunnel = tunnel
        return tunnel


def remote(node) -> bool:
    """Whether node is on another server than this one."""
    return getattr(node, "isRemote", False)


def _in_root(node, command: str) -> str:
    """command in the root namespace of node's server; what it printed."""
    if remote(node):
        return node.rcmd(command).strip()
    done = subprocess.run(command.split(), capture_output=True, text=True)
    return (done.stdout + done.stderr).strip()
