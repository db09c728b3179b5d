"""`beaver snapshot run`'s defaults follow what was asked for: a batch gets
the room, the initiation and the rule it needs (issue 24 item 6, issue 25);
what was given explicitly and contradicts the batch is one line."""
import pytest

from beaver.control.cli import snapshot
from beaver.control.cli.main import build_parser
from beaver.control.config import load
from beaver.control.engine.engine import TIMED

from tests.unit.test_cli import SERVICE, one_error_line, run


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.delenv("BEAVER_CONFIG", raising=False)
    path = tmp_path / "service.toml"
    # the configuration's own defaults are the ones a batch cannot use
    path.write_text(SERVICE.replace('[controller]\n', '[controller]\nrule = "coarse"\n'
                                    'initiation = "immediate"\n'))
    return path


def settings(config, *argv):
    args = build_parser().parse_args(["snapshot", "run", "-c", str(config), *map(str, argv)])
    return snapshot.run_settings(args, load(config))


def test_a_batch_gets_room_timed_initiation_and_the_fine_rule(config):
    s = settings(config, "--count", 1000, "--batch", 255)
    assert (s.batch, s.inflight, s.initiation, s.rule) == (255, 255, TIMED, "fine")
    s = settings(config, "--count", 1000, "--batch", 8, "--inflight", 64)
    assert (s.batch, s.inflight) == (8, 64)


def test_a_batch_may_be_the_whole_ring(config):
    """SCHEDULE_MAX (8,191) IDs in one schedule, all of them in flight: the
    SLBs' ring of 8,192 records holds them and the ID before them."""
    s = settings(config, "--count", 10000, "--batch", 8191)
    assert (s.batch, s.inflight) == (8191, 8191)


def test_without_a_batch_the_configuration_s_defaults_hold(config):
    s = settings(config, "--count", 10)
    assert (s.batch, s.inflight, s.initiation, s.rule) == (1, 1, "immediate", "coarse")


@pytest.mark.parametrize("argv, message", [
    (("--batch", 255, "--inflight", 10),
     "--batch must be 1 to 8191 (one schedule's IDs) and no more than --inflight (10): a batch "
     "is in flight whole"),
    (("--batch", 8192),
     "--inflight 8192 could overwrite SLB records before they are read: the ring keeps the "
     "last 8192 IDs, so at most 8191 may be in flight"),
    (("--batch", 8192, "--inflight", 8191),
     "--batch must be 1 to 8191 (one schedule's IDs) and no more than --inflight (8191): a "
     "batch is in flight whole"),
    (("--batch", 255, "--initiation", "immediate"),
     "--batch is for mode ogm with --initiation timed: batched IDs "
     "activate at their own times"),
    (("--batch", 255, "--rule", "coarse"),
     "--batch judges by the schedules, a form of the fine rule: --rule fine"),
    (("--lead-us", 5000,), "--lead-us is for --initiation timed: an immediate initiation "
                           "switches when its INIT arrives"),
])
def test_what_was_given_and_contradicts_is_one_line(capsys, config, argv, message):
    before = sorted(config.parent.iterdir())
    code, out, err = run(capsys, "snapshot", "run", "--count", 1000, *argv, "-c", config)
    assert (code, out) == (1, "") and one_error_line(err) == message
    assert sorted(config.parent.iterdir()) == before
