"""A second "server" for the tests across servers: a privileged container
of the project's image (built on the stand-in for p4lang's image, as
tests/docker/test_docker_image.py builds it) with sshd, which lets this
machine's root in with a key made for the run and allows Ethernet tunnels
(`ssh -w`, PermitTunnel), as Mininet Cluster Edition needs of a server.

    with ContainerServer.started(image) as server:
        server.ssh("mn", "--version")       # server.address, server.ssh_config

Nothing is written to this machine's ~/.ssh: the key and an ssh_config
naming it live in a temporary folder the server's object removes.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.docker_support import ROOT, Standin, docker, image_exists

PROJECT_IMAGE = "beaver-test/beaver-p4:latest"
SERVER_IMAGE = "beaver-test/beaver-p4-server:latest"
SERVER_DOCKERFILE = f"""\
FROM {PROJECT_IMAGE}
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \\
        --no-install-recommends openssh-server openssh-client sudo && \\
    rm -rf /var/lib/apt/lists/* && mkdir -p /run/sshd /root/.ssh && chmod 700 /root/.ssh && \\
    printf 'PermitRootLogin prohibit-password\\nPermitTunnel yes\\nUseDNS no\\n' \\
        > /etc/ssh/sshd_config.d/beaver-server.conf
ENTRYPOINT ["/usr/sbin/sshd", "-D", "-e"]
"""


def server_image(standin: Standin) -> str:
    """The project's image (this checkout, on the stand-in) with sshd."""
    docker("build", "--build-arg", f"BASE_IMAGE={standin.image}", "-t", PROJECT_IMAGE,
           str(ROOT), timeout=2400)
    work = Path(tempfile.mkdtemp(prefix="beaver-server-image-", dir="/var/tmp"))
    try:
        (work / "Dockerfile").write_text(SERVER_DOCKERFILE)
        docker("build", "-t", SERVER_IMAGE, str(work), timeout=1200)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert image_exists(SERVER_IMAGE)
    return SERVER_IMAGE


@dataclass
class ContainerServer:
    container: str
    address: str          # on the engine's bridge network
    ssh_config: Path      # Host <address>: root, the run's key, no known_hosts

    def ssh(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["ssh", "-F", str(self.ssh_config), self.address, *command],
                              capture_output=True, text=True, timeout=timeout)

    @classmethod
    @contextmanager
    def started(cls, image: str, shares=(), timeout: float = 60):
        """shares: folders of this machine the container sees at the same paths
        (the checkout and its venv, whose python the processes run; their logs
        are written in the container and copied back by the run)."""
        work = Path(tempfile.mkdtemp(prefix="beaver-server-ssh-"))
        name = f"beaver-test-server-{os.getpid()}"
        try:
            key = work / "id_ed25519"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                           check=True)
            mounts = [f"-v{Path(share).resolve()}:{Path(share).resolve()}" for share in shares]
            docker("run", "-d", "--privileged", "--name", name, "--hostname", name,
                   "-v", f"{key}.pub:/root/.ssh/authorized_keys:ro", *mounts, image)
            address = docker("inspect", "-f",
                             "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                             name).stdout.strip()
            config = work / "ssh_config"
            config.write_text(f"Host {address}\n  User root\n  IdentityFile {key}\n"
                              f"  IdentitiesOnly yes\n  BatchMode yes\n"
                              f"  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
                              f"  LogLevel ERROR\n")
            server = cls(name, address, config)
            deadline = time.monotonic() + timeout
            while (answer := server.ssh("true", timeout=15)).returncode != 0:
                if time.monotonic() > deadline:
                    logs = docker("logs", name, check=False)
                    raise RuntimeError(f"{name}: sshd did not let root in within {timeout:.0f}"
                                       f" s: {answer.stderr.strip()} | "
                                       f"{(logs.stderr or logs.stdout)[-500:]}")
                time.sleep(0.5)
            yield server
        finally:
            docker("rm", "-f", name, check=False)
            shutil.rmtree(work, ignore_errors=True)
