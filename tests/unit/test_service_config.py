"""topologies/service.py: the configuration an experiment writes for its
network passes the controller's checks across sections, for every kind of
network the experiments build (iperf's pool, in no snapshot, included).

The network is planned, not started: the configuration needs only each
SLB's gRPC address and device ID, and the routes and pools of the plan."""
import importlib
from types import SimpleNamespace

import pytest

pytest.importorskip("mininet", reason="topologies/network.py needs Mininet's Python package")

from beaver.control.config import PIPELINES               # noqa: E402
from beaver.topologies.network import BeaverNetwork   # noqa: E402
from beaver.topologies.service import write_config    # noqa: E402
from beaver.topologies.spec import Service, Spec      # noqa: E402

SPECS = {name: importlib.import_module(f"beaver.topologies.experiments.{name}").SPEC
         for name in ("fig5", "fig5tcp", "fig14", "fig14tcp", "recovery")}
SPECS["default"] = Spec()
SPECS["largest, packet-out clocks"] = Spec(
    slbs=16, clock_probes=False,
    services=(Service("kv", "kv", 100, 7000), Service("bank", "bank", 50, 7100),
              Service("iperf", "iperf", 50, 5201, "tcp")))


@pytest.mark.parametrize("name", list(SPECS))
def test_every_network_s_configuration_validates(tmp_path, name):
    spec = SPECS[name]
    network = BeaverNetwork(spec, tmp_path)
    slbs = {n: SimpleNamespace(grpc_address=f"127.0.0.1:{spec.grpc_base_port + g}", device_id=g)
            for g, n in enumerate(network.plan.slb_fabric, start=1)}
    network.slb = slbs.__getitem__
    network.probe_iface = lambda n: f"{n}-probe" if spec.clock_probes else None

    config = write_config(network, tmp_path / "beaver.toml")

    in_snapshots = {i: s for i, s in network.plan.ingroup.items() if s[0].in_snapshots}
    assert [p.name for p in config.processes] == list(in_snapshots)
    assert [p.dip for p in config.processes] == [s[2].ip for s in in_snapshots.values()]
    assert {b for v in config.vips for b in v.backends} == {
        s[2].ip for s in network.plan.ingroup.values()}


@pytest.mark.parametrize("pipeline", ["beaver", "plain"])
def test_the_configuration_names_the_pipeline_the_run_asked_for(tmp_path, pipeline):
    network = BeaverNetwork(Spec(), tmp_path)
    slbs = {n: SimpleNamespace(grpc_address=f"127.0.0.1:{9559 + g}", device_id=g)
            for g, n in enumerate(network.plan.slb_fabric, start=1)}
    network.slb = slbs.__getitem__
    network.probe_iface = lambda n: None
    path = tmp_path / "beaver.toml"
    config = write_config(network, path, marking=False, pipeline=pipeline)
    assert config.pipeline == pipeline
    assert f'[pipeline]\nname = "{pipeline}"\n' in path.read_text()
    assert config.p4info == PIPELINES[pipeline][0] and config.bmv2_json == PIPELINES[pipeline][1]
    assert not any(slb.marking for slb in config.slbs)
