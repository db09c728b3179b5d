"""control/slbs/requests.py's request bodies, packed without the dataclass, are the
ControlBody layout exactly."""
import pytest

from beaver.control.slbs.requests import _request
from beaver.p4src.wire import FLAG_HOLD, ControlBody


@pytest.mark.parametrize("seq,snapshot_id,flags,at", [
    (1, 2, 0, 0), (0xFFFFFFFF, 0xFFFFFFFF, FLAG_HOLD, (1 << 48) - 1), (77, 0, 0xFF, 1234)])
def test_a_request_body_is_a_control_body(seq, snapshot_id, flags, at):
    packed = _request(seq, snapshot_id, flags, at)
    body = ControlBody(seq=seq, snapshot_id=snapshot_id, flags=flags, activate_at=at)
    assert packed == body.pack()
    assert ControlBody.unpack(packed) == body


class _Sink:
    """Takes packet-outs and answers nothing: requests stay unanswered."""
    name = "sink"

    def packet_out(self, body: bytes, opcode: int):
        pass


def test_waiting_is_the_age_of_the_oldest_unanswered_request_and_ends_with_it():
    from beaver.control.slbs.requests import SlbRequests
    from beaver.p4src.wire import Op
    slb = SlbRequests(_Sink())
    assert slb.waiting_us(now=10**12) == 0
    first = slb.send(Op.READ, 1, callback=lambda answer: None)
    second = slb.send(Op.READ, 2, callback=lambda answer: None)
    assert slb.waiting_us(first.sent_us + 5_000) == 5_000
    first.cancel()
    assert slb.waiting_us(first.sent_us + 5_000) == first.sent_us + 5_000 - second.sent_us
    second.cancel()
    assert slb.waiting_us(second.sent_us + 5_000) == 0
