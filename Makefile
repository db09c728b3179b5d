# Run as root: the test target installs Mininet from Debian and the BMv2
# tests create veth pairs.  BMv2/p4c are not in any package registry: where
# they are missing, their tests skip and say why.  The kernel decapsulation
# program is built here with Debian's clang and libbpf headers, never committed
# (an experiment run builds it too where it is missing).
VENV := .venv
PY := $(VENV)/bin/python
DECAP := traffic/runtime/bpf/build/decap.o

.PHONY: test setup p4 bpf clean

test: $(VENV)/.installed $(DECAP)
	$(PY) -m pytest

# What `beaver experiment run` needs on a machine with BMv2 (no Docker).
setup: $(VENV)/.installed $(DECAP)

bpf: $(DECAP)

# Beaver's program into p4src/build, the plain SLB (PLAIN_SLB) into p4src/build/plain.
p4: $(VENV)/.installed
	$(PY) -m beaver.p4src.compiler

# Every package the tests use, from Debian: scapy's packet filters need libpcap;
# the Docker tests (tests/docker/test_docker_image.py, tests/docker/test_new_machine.py)
# need an engine and debootstrap; iptables lets the bridges forward where
# dockerd set FORWARD to DROP (topologies/firewall.py).
DEBS := mininet python3-venv ethtool iproute2 iptables clang libbpf-dev iperf3 \
	libpcap-dev docker.io debootstrap git

$(VENV)/.installed: pyproject.toml
	command -v mn >/dev/null && command -v ethtool >/dev/null && \
	  command -v clang >/dev/null && command -v iperf3 >/dev/null && \
	  command -v iptables >/dev/null && command -v dockerd >/dev/null && \
	  command -v debootstrap >/dev/null && command -v git >/dev/null && \
	  test -f /usr/include/bpf/bpf_helpers.h && test -f /usr/include/pcap.h && \
	  /usr/bin/python3 -c "import ensurepip" 2>/dev/null || \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(DEBS))
	/usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# The kernel decapsulation program, as topologies/decap.py builds it (clang and
# libbpf-dev come with the set-up step).
$(DECAP): traffic/runtime/bpf/decap.c $(VENV)/.installed
	$(PY) -m beaver.topologies.decap

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache traffic/runtime/bpf/build
