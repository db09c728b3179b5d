"""An out-group delay (the paper's inter-DC and internet out-groups) on
the Mininet network: applied, or the network refused.  Its own module: the
topology tests keep one network up for their whole module."""
from __future__ import annotations

from beaver.topologies.network import BeaverNetwork, NetworkError
from beaver.topologies.spec import Service, Spec



def test_an_out_group_delay_is_applied_or_the_network_refused(tmp_path):
    """A run's tau rests on the delay: where tc netem cannot apply it, the
    network must not come up as if it had."""
    spec = Spec(slbs=1, services=(Service("kv", "kv", 1, 7000),), outgroup=("client-kv",),
                outgroup_delay_us=20_000)
    network = BeaverNetwork(spec, tmp_path)
    try:
        network.start()
    except NetworkError as e:
        assert "netem" in str(e) and "bvo1" in str(e)
        return
    try:
        host = network.host("bvo1")
        assert "delay 20ms" in host.cmd("tc qdisc show dev", host.defaultIntf().name)
    finally:
        network.stop()
