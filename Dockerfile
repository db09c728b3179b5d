# Beaver-P4 with the P4 toolchain of p4lang's published image.
#   mkdir -p results && docker build -t beaver-p4 . &&
#   docker run --rm --privileged -v "$PWD/results:/beaver/results" beaver-p4
# (--privileged: Mininet makes namespaces and veth pairs, and tc loads the
# kernel decapsulation program on the in-group hosts.  Everything the run
# makes lives in the container's own network namespace, so `docker stop`
# leaves nothing on the host.)
#
# BASE_IMAGE must carry simple_switch_grpc and p4c-bm2-ss on PATH and use
# apt (Debian or Ubuntu).  p4lang/p4c:1.2.5.16 is p4c 1.2.5.16 built on
# p4lang/behavioral-model (BMv2 1.15.5, built with PI, so simple_switch_grpc;
# Ubuntu 24.04); tests/support/docker_support.py builds a stand-in of Debian 12 with
# the BMv2, PI and p4c of the machine it runs on, for the tests.
ARG BASE_IMAGE=p4lang/p4c:1.2.5.16
FROM ${BASE_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive
# Mininet from the distribution, without Open vSwitch (the network is Linux
# bridges and BMv2); libpcap for scapy's packet filters; iptables for the
# bridges' FORWARD rules (topologies/firewall.py).
RUN apt-get update -q && \
    apt-get install -y -q --no-install-recommends \
        mininet python3-venv python3-pip ethtool iproute2 iptables procps \
        clang libbpf-dev libpcap-dev iperf3 make && \
    rm -rf /var/lib/apt/lists/*

WORKDIR /beaver
# The Python dependencies first, in a layer of their own that a change of the
# sources does not rebuild: an editable install of the packages, each an
# __init__.py for now (so none is taken for a namespace), one for each package that
# pyproject.toml lists; the sources come next.
COPY pyproject.toml README.md ./
RUN /usr/bin/python3 -c 'import pathlib, tomllib; \
[(pathlib.Path(p.removeprefix("beaver.").replace(".", "/")).mkdir(parents=True), \
  pathlib.Path(p.removeprefix("beaver.").replace(".", "/"), "__init__.py").touch()) \
 for p in tomllib.load(open("pyproject.toml", "rb"))["tool"]["setuptools"]["packages"]]' && \
    /usr/bin/python3 -m venv --system-site-packages /opt/venv && \
    /opt/venv/bin/pip install --no-cache-dir -q -e '.[test]'
COPY . .
# The committed p4src/build (and build/plain) is used as it is: tests/bmv2/test_p4_build.py compiles
# aside with the image's p4c and compares, so recompiling here would hide a
# stale build.  The kernel decapsulation program is built here: its object
# is never committed.
RUN /opt/venv/bin/python -m beaver.topologies.decap
ENV PATH=/opt/venv/bin:$PATH

# beaver, with what it writes into /beaver/results handed to that folder's
# owner (docker-entrypoint.sh); docker stop (SIGTERM) and Ctrl-C take the
# network down.
ENTRYPOINT ["/beaver/docker-entrypoint.sh"]
CMD ["experiment", "run", "fig5"]
