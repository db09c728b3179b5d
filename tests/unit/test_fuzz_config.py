"""Fuzzing the configuration reader (control/config.py) with Hypothesis:
whatever the file holds, load() gives a configuration or one ConfigError
of one line that names the file; nothing else escapes.

Four sources of files: any text; decoded TOML built from the
configuration's own sections and fields with values good and bad; the
valid example, decoded, with a few values replaced, removed or repeated
(which reaches the checks across sections); and the valid example's text
with one value replaced."""
import copy
import re
import string
import tomllib
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from beaver.control.config import ConfigError, ServiceConfig, load, parse

from tests.unit.test_config import VALID

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])
PATH = Path("/fuzz/service.toml")   # parse() only names it

# -- values --------------------------------------------------------------------------

GOOD = st.sampled_from([
    "10.0.2.1", "10.0.2.2", "10.10.0.1", "127.0.0.1:1", "10.0.2.1:4791", "10.0.2.0/24",
    "00:00:00:00:00:01", "p1", "p2", "s1", "udp", "tcp", "fine", "coarse", "timed",
    "immediate", "snapshots.db", 0, 1, 2, 80, 300, 511, 4791, 65535, True, False, ""])
SCALAR = st.one_of(
    GOOD, st.text(max_size=30), st.integers(), st.floats(),
    st.booleans(), st.datetimes(), st.dates(), st.times())
VALUE = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=6)


FIELD = st.one_of(GOOD, SCALAR, st.lists(st.one_of(GOOD, SCALAR), max_size=3))


def fields(*names: str, **special):
    """A table of some of these fields (and now and then a stranger), each
    with a value good or bad (or from its own strategy, in special)."""
    optional = {name: FIELD for name in names} | special | {"stranger": VALUE}
    return st.fixed_dictionaries({}, optional=optional)


ROUTE = fields("prefix", "port", "src_mac", "dst_mac")
SLB = fields("name", "address", "device_id", "slb_id", "slb_addr", "marking", "ingroup_ports",
             routes=st.lists(ROUTE, max_size=2), probe=fields("port", "iface"))
VIP = fields("address", "protocol", "port", "backends", "in_snapshots")
PROCESS = fields("name", "address", "peers", "dip")
SERVICE = st.fixed_dictionaries({}, optional={
    "controller": fields("election_id", "store", "tau_us", "rule", "initiation", "lead_us",
                         "ack_timeout_ms", "retries", "report_timeout_ms",
                         "clock_interval_s", "connect_timeout_s", "connect_retries"),
    "pipeline": fields("p4info", "bmv2_json"),
    "service": fields("ingroup"),
    "slbs": st.lists(SLB, max_size=2),
    "vips": st.lists(VIP, max_size=2),
    "processes": st.lists(PROCESS, max_size=3),
    "other": VALUE,
})


def places(data, path=()):
    """Every place in decoded TOML: (path to its container, key or index)."""
    items = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in items:
        yield path, key
        if isinstance(value, (dict, list)):
            yield from places(value, path + (key,))


@st.composite
def changed_example(draw):
    """The valid example, decoded, with one to four changes."""
    data = copy.deepcopy(tomllib.loads(VALID))
    for _ in range(draw(st.integers(1, 4))):
        path, key = draw(st.sampled_from(list(places(data))))
        container = data
        for step in path:
            container = container[step]
        change = draw(st.sampled_from(["replace", "remove", "repeat"]))
        if change == "replace":
            container[key] = draw(VALUE)
        elif change == "remove":
            del container[key]
        elif isinstance(container, list):
            container.append(copy.deepcopy(container[key]))
        else:
            container[draw(st.text(max_size=8))] = copy.deepcopy(container[key])
    return data


def refused_in_one_line(e: ConfigError, path: Path):
    message = str(e)
    assert message.startswith(f"{path}: ") and "\n" not in message, message


# -- properties ------------------------------------------------------------------------

@FUZZ
@given(SERVICE)
def test_any_decoded_file_is_a_configuration_or_one_clear_line(data):
    try:
        assert isinstance(parse(PATH, data), ServiceConfig)
    except ConfigError as e:
        refused_in_one_line(e, PATH)


@FUZZ
@given(changed_example())
def test_the_example_changed_is_a_configuration_or_one_clear_line(data):
    try:
        assert isinstance(parse(PATH, data), ServiceConfig)
    except ConfigError as e:
        refused_in_one_line(e, PATH)


@FUZZ
@given(st.text(alphabet=string.printable + "[]{}=\"'.,#é\x00", max_size=300))
def test_any_text_is_a_configuration_or_one_clear_line(tmp_path, text):
    path = tmp_path / "service.toml"
    path.write_text(text)
    try:
        load(path)
    except ConfigError as e:
        refused_in_one_line(e, path)


VALUE_LINE = re.compile(r"^(\w+) = .*$", re.M)
TOML_VALUE = st.one_of(
    st.sampled_from(['""', "0", "-1", "1e400", "nan", "inf", "true", "[]", "{}", "[[[]]]",
                     '"10.0.2.300"', '"p1"', '["p1", "p1"]', "1979-05-27", '"\\n"',
                     "99999999999999999999", "[" * 3000 + "]" * 3000]),
    st.integers().map(str), st.text(max_size=20).map(lambda t: '"' + t.replace(
        "\\", "\\\\").replace('"', '\\"') + '"'))


@FUZZ
@given(st.data())
def test_the_example_with_one_value_replaced_is_a_configuration_or_one_clear_line(
        tmp_path, data):
    lines = VALUE_LINE.findall(VALID)
    at = data.draw(st.integers(0, len(lines) - 1))
    matches = list(VALUE_LINE.finditer(VALID))
    m = matches[at]
    text = VALID[:m.start()] + f"{m.group(1)} = {data.draw(TOML_VALUE)}" + VALID[m.end():]
    path = tmp_path / "service.toml"
    path.write_text(text)
    try:
        load(path)
    except ConfigError as e:
        refused_in_one_line(e, path)
