"""control/config.py: a valid file, and errors that name the file, the
field and the problem."""
import textwrap

import pytest

from beaver.control.config import ConfigError, load
from beaver.p4src import BMV2_JSON, P4INFO, PLAIN_BMV2_JSON, PLAIN_P4INFO
from beaver.control.slbs.program import Route, Vip

VALID = """
[controller]
election_id = 7
store = "db/snapshots.db"
tau_us = 300
rule = "coarse"

[service]
ingroup = ["10.0.2.0/24"]

[[slbs]]
name = "s1"
address = "127.0.0.1:50051"
device_id = 1
slb_id = 1
slb_addr = "10.0.0.254"
routes = [{prefix = "10.0.2.1/32", port = 2, src_mac = "00:00:00:00:00:fe", dst_mac = "00:00:00:00:00:02"}]

[[slbs]]
name = "s2"
address = "127.0.0.1:50052"
device_id = 2
slb_id = 2
slb_addr = "10.0.0.253"
marking = false

[[vips]]
address = "10.10.0.1"
protocol = "udp"
port = 80
backends = ["10.0.2.1", "10.0.2.2"]

[[processes]]
name = "p1"
address = "10.0.2.1:4791"
peers = ["p2"]

[[processes]]
name = "p2"
address = "10.0.2.2:4791"
"""


def write(tmp_path, text, name="service.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_valid_toml_file(tmp_path):
    config = load(write(tmp_path, VALID))
    c = config.controller
    assert (c.election_id, c.tau_us, c.rule, c.retries) == (7, 300, "coarse", 2)
    assert c.store == tmp_path / "db" / "snapshots.db", "relative to the file"
    assert [s.name for s in config.slbs] == ["s1", "s2"]
    assert config.slbs[0].routes == (Route("10.0.2.1/32", 2, "00:00:00:00:00:fe",
                                           "00:00:00:00:00:02"),)
    assert config.slbs[0].marking and not config.slbs[1].marking
    assert config.vips == (Vip("10.10.0.1", "udp", 80, ("10.0.2.1", "10.0.2.2")),)
    assert config.ingroup == ("10.0.2.0/24",)
    assert (config.processes[0].host, config.processes[0].port) == ("10.0.2.1", 4791)
    assert config.processes[0].peers == ("p2",)
    assert config.slbs[0].ingroup_ports == (2,), "the port of the route into the in-group"
    assert config.slbs[1].ingroup_ports == () and config.slbs[0].probe_port is None
    assert (c.initiation, c.lead_us) == ("immediate", None)


def test_probe_ports_and_in_group_ports(tmp_path):
    text = VALID.replace('slb_addr = "10.0.0.254"\n', 'slb_addr = "10.0.0.254"\n'
                         'ingroup_ports = [2, 4]\nprobe = {port = 3, iface = "s1-probe"}\n')
    s1 = load(write(tmp_path, text)).slbs[0]
    assert s1.ingroup_ports == (2, 4) and (s1.probe_port, s1.probe_iface) == (3, "s1-probe")


def test_the_pipeline_s_name_picks_its_build_and_paths_still_win(tmp_path):
    beaver = load(write(tmp_path, VALID))
    assert (beaver.pipeline, beaver.p4info, beaver.bmv2_json) == ("beaver", P4INFO, BMV2_JSON)
    plain = load(write(tmp_path, '[pipeline]\nname = "plain"\n' + VALID))
    assert (plain.pipeline, plain.p4info, plain.bmv2_json) == (
        "plain", PLAIN_P4INFO, PLAIN_BMV2_JSON)
    assert PLAIN_P4INFO != P4INFO and PLAIN_P4INFO.is_file()
    mine = load(write(tmp_path, '[pipeline]\nname = "plain"\np4info = "my.txtpb"\n' + VALID))
    assert (mine.pipeline, mine.p4info, mine.bmv2_json) == (
        "plain", tmp_path / "my.txtpb", PLAIN_BMV2_JSON)


SLB = '[[slbs]]\nname = "s1"\naddress = "127.0.0.1:1"\ndevice_id = 1\nslb_id = 1\nslb_addr = "10.0.0.1"\n'


@pytest.mark.parametrize("text,field,problem", [
    ("", "slbs", "at least one SLB"),
    (SLB.replace('"127.0.0.1:1"', '"nowhere"'), "slbs[0].address", "expected host:port"),
    (SLB.replace("slb_id = 1", "slb_id = 300"), "slbs[0].slb_id", "outside 0..255"),
    (SLB.replace("slb_id = 1", 'slb_id = "1"'), "slbs[0].slb_id", "expected int"),
    (SLB.replace('slb_addr = "10.0.0.1"\n', ''), "slbs[0].slb_addr", "missing"),
    (SLB.replace('"10.0.0.1"', '"10.0.0.300"'), "slbs[0].slb_addr", "not an IPv4 address"),
    (SLB + 'adress = "x"\n', "slbs[0].adress", "unknown field"),
    (SLB + SLB.replace('"127.0.0.1:1"', '"127.0.0.1:2"').replace("slb_id = 1", "slb_id = 2"),
     "slbs[1].name", "appears twice"),
    (SLB + "marking = 1\n", "slbs[0].marking", "expected bool"),
    (SLB + 'routes = [{prefix = "10.0.2.0/33", port = 1, src_mac = "00:00:00:00:00:01", '
           'dst_mac = "00:00:00:00:00:02"}]\n', "slbs[0].routes[0].prefix", "not an IPv4 prefix"),
    (SLB + 'routes = [{prefix = "10.0.2.0/24", port = 1, src_mac = "00:00:00:00:01", '
           'dst_mac = "00:00:00:00:00:02"}]\n', "slbs[0].routes[0].src_mac", "not a MAC"),
    (SLB + '[[vips]]\naddress = "10.10.0.1"\nprotocol = "sctp"\nport = 80\nbackends = ["10.0.2.1"]\n',
     "vips[0].protocol", "expected one of tcp, udp"),
    (SLB + '[[vips]]\naddress = "10.10.0.1"\nprotocol = "udp"\nport = 80\nbackends = []\n',
     "vips[0].backends", "at least one backend"),
    (SLB + '[controller]\nrule = "loose"\n', "controller.rule", "expected one of fine, coarse"),
    (SLB + '[controller]\ntau_us = -1\n', "controller.tau_us", "outside"),
    (SLB + '[controller]\nelection_id = 0\n', "controller.election_id", "outside"),
    (SLB + '[service]\ningroup = ["nope"]\n', "service.ingroup[0]", "not an IPv4 prefix"),
    (SLB + '[[processes]]\nname = "p"\naddress = "10.0.2.1"\n', "processes[0].address",
     "expected host:port"),
    (SLB + '[[processes]]\nname = "p"\naddress = "10.0.2.1:1"\npeers = ["q"]\n',
     "processes[0].peers[0]", "'q' is not another configured process"),
    (SLB + 'probe = {port = 2, iface = "x"}\ningroup_ports = [2]\n', "slbs[0].probe.port",
     "a probe port must be its own"),
    (SLB + 'probe = {port = 3}\n', "slbs[0].probe.iface", "missing"),
    (SLB + 'ingroup_ports = [600]\n', "slbs[0].ingroup_ports[0]", "0..511"),
    (SLB + '[pipeline]\nname = "bare"\n', "pipeline.name", "expected one of beaver, plain"),
    (SLB + '[controller]\ninitiation = "soon"\n', "controller.initiation",
     "expected one of immediate, timed"),
    (SLB.replace('name = "s1"', 'name = "s\\n1"'), "slbs[0].name",
     "'s\\n1' holds a character that cannot be shown"),
    (SLB + '"odd\\nkey" = 1\n', "slbs[0].'odd\\nkey'", "unknown field"),
])
def test_errors_name_the_file_the_field_and_the_problem(tmp_path, text, field, problem):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load(path)
    message = str(e.value)
    assert message.startswith(f"{path}: {field}: "), message
    assert problem in message


def test_unreadable_undecodable_and_unknown_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(write(tmp_path, "[[slbs]\n"))
    with pytest.raises(ConfigError, match="expected a .toml file"):
        load(write(tmp_path, SLB, "service.yaml"))
    with pytest.raises(ConfigError, match="not valid TOML: arrays or tables nested too deeply"):
        load(write(tmp_path, SLB + "x = " + "[" * 3000 + "]" * 3000 + "\n"))


# -- across sections: each refused in one line that names the offender, the file untouched

@pytest.mark.parametrize("old, new, field, problem", [
    ('backends = ["10.0.2.1", "10.0.2.2"]', 'backends = ["10.0.2.1", "10.0.3.9"]',
     "vips[0].backends[1]", "10.0.3.9 is outside the in-group prefixes (service.ingroup: "
                            "10.0.2.0/24)"),
    ('backends = ["10.0.2.1", "10.0.2.2"]', 'backends = ["10.0.2.1", "10.0.2.2", "10.0.2.3"]',
     "vips[0].backends[2]", "10.0.2.3 is no listed process's dip, so it would be in no cut "
                            "(in_snapshots = false marks a pool outside every snapshot)"),
    ('address = "10.10.0.1"', 'address = "10.0.2.2"',
     "vips[0].address", "10.0.2.2 is also a backend: a VIP must be an address of its own"),
    ('address = "10.0.2.2:4791"', 'address = "10.0.2.1:4791"',
     "processes[1].address", "'10.0.2.1:4791' appears twice"),
    ('peers = ["p2"]', 'peers = ["p2", "p2"]', "processes[0].peers[1]", "'p2' appears twice"),
    ('peers = ["p2"]', 'peers = [["p2"]]', "processes[0].peers[0]",
     "expected a process name, got ['p2']"),
    ('name = "p1"', 'name = ""', "processes[0].name", "must not be empty"),
    ('name = "p1"\naddress = "10.0.2.1:4791"', 'name = "p1"\naddress = "10.0.2.1:4791"\n'
                                              'dip = "10.0.2.300"',
     "processes[0].dip", "'10.0.2.300' is not an IPv4 address"),
])
def test_sections_that_contradict_each_other_are_refused(tmp_path, old, new, field, problem):
    assert old in VALID
    path = write(tmp_path, VALID.replace(old, new, 1))
    before = path.read_bytes(), path.stat().st_mtime_ns
    with pytest.raises(ConfigError) as e:
        load(path)
    assert str(e.value) == f"{path}: {field}: {problem}"
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_a_pool_outside_snapshots_and_processes_reported_elsewhere(tmp_path):
    """Processes whose reports come on a management address name the backend
    they serve as; a pool of hosts without the runtime says so."""
    text = (VALID.replace('address = "10.0.2.1:4791"', 'address = "192.168.100.11:4791"\n'
                          'dip = "10.0.2.1"')
            .replace('address = "10.0.2.2:4791"', 'address = "192.168.100.12:4791"\n'
                     'dip = "10.0.2.2"')
            + '[[vips]]\naddress = "10.10.0.2"\nprotocol = "tcp"\nport = 5201\n'
              'backends = ["10.0.2.9"]\nin_snapshots = false\n')
    config = load(write(tmp_path, text))
    assert [(p.host, p.dip) for p in config.processes] == [("192.168.100.11", "10.0.2.1"),
                                                          ("192.168.100.12", "10.0.2.2")]
    assert config.vips[1].backends == ("10.0.2.9",)
    with pytest.raises(ConfigError, match=r"vips\[1\]\.backends\[0\]: 10.0.2.9 is no listed"):
        load(write(tmp_path, text.replace("in_snapshots = false\n", "")))
