"""--servers and --placement: one server is today's run, several are placed
as topologies/servers.py documents, and bad input is one line."""
import json

import pytest

from beaver.topologies import servers
from beaver.topologies.experiment import Run
from beaver.topologies.experiments import fig5
from beaver.topologies.network import BeaverNetwork, NetworkError
from beaver.topologies.spec import Plan, Service, Spec
from beaver.topologies.spread import SpreadNetwork

from tests.unit.test_cli import one_error_line, run

TWO = ("localhost", "box2")


class Started(Exception):
    """The network's start was reached."""


def _reach_start(run_: Run, monkeypatch):
    def start():
        raise Started
    monkeypatch.setattr(run_.network, "start", start)


def test_no_option_is_one_server_and_the_plain_network(tmp_path, monkeypatch):
    assert servers.parse(None, None) is servers.ONE
    assert servers.chosen() is servers.ONE and servers.ONE.single
    one = Run(fig5.SPEC, tmp_path / "run")
    assert type(one.network) is BeaverNetwork
    _reach_start(one, monkeypatch)
    with pytest.raises(Started):   # straight on to today's network.start
        one.__enter__()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["spec.json"]


def test_two_servers_write_the_placement_first_and_spread_the_network(tmp_path, monkeypatch):
    with servers.using(servers.parse(",".join(TWO), None)):
        two = Run(fig5.SPEC, tmp_path / "run")
    assert type(two.network) is SpreadNetwork and two.network.spread.names == TWO
    _reach_start(two, monkeypatch)
    with pytest.raises(Started):
        two.__enter__()
    placed = json.loads((tmp_path / "run" / "placement.json").read_text())
    assert placed == fig5_on_two()
    assert servers.chosen() is servers.ONE   # the context is left as it was found


def test_a_misplaced_node_is_one_line_before_anything_starts(tmp_path, monkeypatch):
    with servers.using(servers.parse(",".join(TWO), "bvs7=box2")):
        two = Run(fig5.SPEC, tmp_path / "run")
    _reach_start(two, monkeypatch)
    with pytest.raises(NetworkError, match="^--placement names bvs7, which this network has "
                                           "not") as caught:
        two.__enter__()
    assert "\n" not in str(caught.value)


def fig5_on_two() -> dict:
    first, second = TWO
    return {"bvctl": first, "bvbr": first,
            "bvs1": first, "bvs2": second,
            "bvi1": first, "bvi2": second, "bvi3": first, "bvi4": second,
            "bvo1": first, "bvo2": first, "bvo3": first, "bvo4": first}


def test_slbs_and_ingroup_hosts_are_dealt_round_robin():
    assert servers.Servers(TWO).place(Plan.of(fig5.SPEC)) == fig5_on_two()
    spec = Spec(slbs=4, services=(Service("kv", "kv", 5, 7000),), outgroup=("client",))
    three = servers.Servers(("localhost", "b", "c")).place(Plan.of(spec))
    assert [three[f"bvs{g}"] for g in range(1, 5)] == ["localhost", "b", "c", "localhost"]
    assert [three[f"bvi{n}"] for n in range(1, 6)] == ["localhost", "b", "c", "localhost", "b"]
    assert three["bvo1"] == three["bvctl"] == three["bvbr"] == "localhost"


def test_placement_moves_named_nodes_only():
    spread = servers.parse("localhost,box2", "bvs1=box2,bvo2=box2,bvi2=localhost")
    placed = spread.place(Plan.of(fig5.SPEC))
    expected = {**fig5_on_two(), "bvs1": "box2", "bvo2": "box2", "bvi2": "localhost"}
    assert placed == expected


def test_a_node_the_network_has_not_is_named():
    spread = servers.parse("localhost,box2", "bvi9=box2")
    with pytest.raises(servers.ServersError, match="bvi9, which this network has not"):
        spread.place(Plan.of(fig5.SPEC))


@pytest.mark.parametrize("given, placement, message", [
    ("localhost,,b", None, "an empty name"),
    ("localhost,b,b", None, "names b more than once"),
    ("localhost,-oProxyCommand=x", None, "is not a host name"),
    ("box2,localhost", None, "the first server, box2, must be this machine"),
    ("localhost,b", "bvs1", "'bvs1' is not node=server"),
    ("localhost,b", "bvs1=c", "c is not in --servers"),
    ("localhost,b", "bvctl=b", "bvctl (the controller) runs on the first server"),
    ("localhost,b", "bvbr=b", "bvbr (the border router) runs on the first server"),
    ("localhost,b", "eth0=b", "'eth0' is no SLB"),
    ("localhost,b", "bvs1=b,bvs1=localhost", "places bvs1 twice"),
    (None, "bvs1=b", "--placement needs --servers"),
])
def test_bad_servers_or_placement_is_one_line(capsys, given, placement, message):
    argv = ["experiment", "run", "fig5"]
    argv += ["--servers", given] if given is not None else []
    argv += ["--placement", placement] if placement is not None else []
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert message in one_error_line(err)


def test_cleanup_of_a_server_it_cannot_reach_is_one_line(tmp_path, monkeypatch, capsys):
    from beaver.control.cli.main import main
    from beaver.topologies import lock
    monkeypatch.setattr(lock, "LOCK_PATH", tmp_path / "run.lock")
    # (the real cleanup would stop every bv* process of this machine)
    monkeypatch.setattr("beaver.topologies.cleanup.cleanup", lambda: (0, 0))
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n  ConnectTimeout 5\n  UserKnownHostsFile /dev/null\n")
    monkeypatch.setenv(servers.SSH_CONFIG_ENV, str(config))
    assert main(["experiment", "cleanup", "--servers", "localhost,nowhere.invalid"]) == 1
    out, err = capsys.readouterr()
    assert out == "removed 0 process(es) and 0 link(s)\n"
    assert one_error_line(err).startswith("nowhere.invalid: cleanup failed (status 255): "), err
