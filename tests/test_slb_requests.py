"""control/slb.py's request bodies, packed without the dataclass, are the
ControlBody layout exactly."""
import pytest

from beaver.control.slb import _request
from beaver.p4src.wire import FLAG_HOLD, ControlBody


@pytest.mark.parametrize("seq,snapshot_id,flags", [
    (1, 2, 0), (0xFFFFFFFF, 0xFFFFFFFF, FLAG_HOLD), (77, 0, 0xFF)])
def test_a_request_body_is_a_control_body(seq, snapshot_id, flags):
    packed = _request(seq, snapshot_id, flags)
    assert packed == ControlBody(seq=seq, snapshot_id=snapshot_id, flags=flags).pack()
    assert ControlBody.unpack(packed) == ControlBody(seq=seq, snapshot_id=snapshot_id,
                                                     flags=flags)
