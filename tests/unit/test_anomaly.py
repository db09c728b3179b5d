"""The anomalous-access use case: the detector on its own, then live against
Beaver, Lai-Yang and polling snapshots (Table 3 in miniature)."""
from __future__ import annotations

import random
import threading

from beaver.traffic.analysis.anomaly import Detection, detect, score
from beaver.traffic.outgroup.bots import run_user
from beaver.traffic.services.bank import BankShard
from beaver.traffic.analysis.checker import check
from beaver.traffic.services.kvstore import KvReplica
from beaver.traffic.runtime.snapshots import Mode

from tests.support.runtimes import Deployment, deployment

__all__ = ["deployment"]   # the fixture


def kv_state(sessions: dict[str, dict[str, int]]) -> dict:
    return {"service": "kv", "registers": {},
            "counters": {f"session:{c}": counts for c, counts in sessions.items()}}


def bank_state(activity: dict[str, int]) -> dict:
    return {"service": "bank", "balances": {}, "activity": activity}


def test_logins_merge_across_replicas_and_requests_add_across_shards():
    states = {"kv1": kv_state({"h": {"kv1": 2, "kv2": 1}}),
              "kv2": kv_state({"h": {"kv1": 1, "kv2": 1}, "b": {"kv2": 1}}),
              "b1": bank_state({"h": 2, "b": 1}), "b2": bank_state({"h": 1, "b": 2})}
    detection = detect(states)
    assert detection == Detection(logins={"h": 3, "b": 1}, requests={"h": 3, "b": 3})
    assert detection.flagged == {"b"}


def test_score_counts_only_the_clients_the_snapshot_saw():
    detection = Detection(logins={"h1": 1, "h2": 0, "b1": 2}, requests={"h2": 1, "b1": 2,
                                                                         "b2": 1})
    assert score(detection, bots={"b1", "b2", "b3"}) == {"tp": 1, "fp": 1, "fn": 1, "tn": 1}


NEVER = threading.Event()


def test_beaver_detects_exactly_where_the_baselines_mislead(deployment: Deployment):
    """Snapshot 1 reaches the key-value store first, snapshot 2 the bank first.
    Between the two halves of each, a user does one round of its plan."""
    deployment.service("kv1", 1, lambda rt: KvReplica(rt, []))
    deployment.service("b1", 3, lambda rt: BankShard(rt, ["b1"], accounts=10, initial=100))
    slb = deployment.slb()
    kv, bank = deployment.front(slb, 1), deployment.front(slb, 3)
    users = {"human": deployment.endpoint("human", 1), "bot": deployment.endpoint("bot", 2)}
    rng = random.Random(0)

    def play(user: str):   # one round of the user's plan
        bot = user == "bot"
        assert run_user(users[user], kv, bank, bot, NEVER, 3 if bot else 2, 10, rng, 2) == 0

    play("human")
    play("bot")
    verdicts = {}
    for snapshot_id, first, user, last in ((1, "kv1", "human", "b1"), (2, "b1", "bot", "kv1")):
        slb.snapshot_id = snapshot_id
        deployment.take(first, snapshot_id)
        play(user)
        deployment.take(last, snapshot_id)
        states = {name: deployment.report(name, snapshot_id).local_state
                  for name in ("kv1", "b1")}
        verdicts[snapshot_id] = score(detect(states), bots={"bot"})
    truth = {v.snapshot_id: v.status for v in check(deployment.finish(), [1, 2])}

    if deployment.mode is Mode.BEAVER:
        assert truth == {1: "consistent", 2: "consistent"}
        assert verdicts == {1: {"tp": 1, "fp": 0, "fn": 0, "tn": 1},
                            2: {"tp": 1, "fp": 0, "fn": 0, "tn": 1}}
    else:
        assert truth == {1: "inconsistent", 2: "inconsistent"}
        # 1: the human's second bank request without its login: a false positive
        # 2: the bot's second login without its bank requests: a false negative
        assert verdicts == {1: {"tp": 1, "fp": 1, "fn": 0, "tn": 0},
                            2: {"tp": 0, "fp": 0, "fn": 1, "tn": 1}}
