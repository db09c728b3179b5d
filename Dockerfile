# Beaver-P4 with the P4 toolchain from the official p4lang image.
#   docker build -t beaver-p4 .
#   docker run --rm --privileged -v "$PWD/results:/beaver/results" beaver-p4
# (--privileged: Mininet makes namespaces and veth pairs, and tc loads the
# kernel decapsulation program on the in-group hosts.)
# p4lang/p4c 1.2.5.16 is built on p4lang/behavioral-model (Ubuntu 24.04), so it
# carries p4c-bm2-ss and simple_switch_grpc; Mininet comes from Ubuntu.
FROM p4lang/p4c:1.2.5.16

ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q && \
    apt-get install -y -q --no-install-recommends \
        mininet python3-venv python3-pip ethtool iproute2 procps \
        clang libbpf-dev iperf3 make && \
    rm -rf /var/lib/apt/lists/*

WORKDIR /beaver
COPY . .
# The committed p4src/build is used as it is: tests/test_p4_build.py compiles
# aside with the image's p4c and compares, so recompiling here would hide a
# stale build.
RUN python3 -m venv --system-site-packages /opt/venv && \
    /opt/venv/bin/pip install --no-cache-dir -e '.[test]'
# The kernel decapsulation program, built here: its object is never committed.
RUN make bpf
ENV PATH=/opt/venv/bin:$PATH

ENTRYPOINT ["beaver"]
CMD ["experiment", "run", "figure5"]
