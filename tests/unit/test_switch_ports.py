"""A switch's gRPC and Thrift ports: free before it starts, and out of the
range outgoing connections draw from.  (CI once failed when a connection's
ephemeral port was 50052, the second SLB's gRPC port: no listener answered,
yet BMv2 could not bind it.)"""
import socket

import pytest

from beaver.topologies.bmv2 import port_open, port_taken
from beaver.topologies.spec import Spec


def test_a_port_held_by_a_connection_is_taken_though_nothing_listens_on_it():
    with socket.socket() as server, socket.socket() as client:
        server.bind(("127.0.0.1", 0))
        server.listen()
        client.connect(server.getsockname())
        held = client.getsockname()[1]          # the client's ephemeral port
        accepted, _ = server.accept()
        with accepted:
            assert not port_open("127.0.0.1", held)
            assert port_taken("127.0.0.1", held)


def test_a_listening_port_is_taken_and_a_closed_one_is_free():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert port_taken("127.0.0.1", port)
    assert not port_taken("127.0.0.1", port)


def test_every_slbs_ports_lie_below_the_ephemeral_range():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        first_ephemeral = int(f.read().split()[0])
    spec = Spec(slbs=16)
    assert spec.grpc_base_port + 16 + 10000 < first_ephemeral


@pytest.mark.parametrize("base", [50051, 1023, 22767 - 15])
def test_a_grpc_base_whose_ports_reach_the_ephemeral_range_is_refused(base):
    with pytest.raises(ValueError, match="grpc_base_port"):
        Spec(slbs=16, grpc_base_port=base)


def test_the_highest_base_that_fits_is_accepted():
    assert Spec(slbs=16, grpc_base_port=22767 - 16).grpc_base_port == 22751
