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
