"""The experiments' tallies: only what the checker proved consistent counts
as consistent, so every other accepted snapshot it judged is a false
accept, and one it did not judge (a long run's sample) is counted apart."""
from beaver.topologies.experiments.common.outcomes import judged, tally


def row(outcome: str, truth: str, channel_errors: int = 0) -> dict:
    return {"outcome": outcome, "truth": truth, "channel_errors": channel_errors}


ACCEPTED_UNPROVEN = [row("accepted", "inconsistent"), row("accepted", "unjudged"),
                     row("accepted", "incomplete"), row("accepted", "unchecked"),
                     row("accepted", "consistent", channel_errors=2)]


def test_an_accepted_snapshot_not_proven_consistent_is_a_false_accept():
    t = tally(ACCEPTED_UNPROVEN + [row("accepted", "consistent")])
    assert (t["taken"], t["accepted"], t["false_accepts"]) == (6, 6, 4)
    assert t["accepted_unchecked"] == 1, "not judged: neither consistent nor a false accept"
    assert (t["consistent"], t["inconsistent"], t["unjudged"], t["truth_incomplete"],
            t["unchecked"], t["channel_errors"]) == (1, 1, 1, 1, 1, 1)


def test_only_a_rejection_of_a_proven_consistent_snapshot_is_a_false_rejection():
    t = tally([row("rejected", "consistent"), row("rejected", "consistent", channel_errors=1),
               row("rejected", "unjudged"), row("rejected", "inconsistent")])
    assert (t["false_rejections"], t["false_accepts"], t["effective_rate"]) == (1, 0, 0.0)


def test_channel_errors_are_their_own_word_on_a_consistent_cut():
    assert [judged(r) for r in ACCEPTED_UNPROVEN] == [
        "inconsistent", "unjudged", "incomplete", "unchecked", "channel errors"]
