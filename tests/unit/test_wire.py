"""p4src/wire.py and p4src/ids.py against headers.p4 and the compiled JSON."""
import dataclasses
import json
import re

import pytest

from beaver.p4src import BMV2_JSON, P4_DIR, ids
from beaver.p4src.wire import (RECORDS_MAX, SCHEDULE_MAX, BEAVER_UDP_PORT, BEAVER_VERSION, CPU_PORT, ETHERTYPE_PROBE,
                               FLAG_HOLD, FLAG_MARKING, LEARN_WINDOW, RING_SIZE,
                               Batch, BeaverHeader, ControlBody, Record, DropReason, Kind, Op, Probe,
                               RefusedReason, Status, Track, WireError, reciprocal)


def p4_constants() -> dict[str, int]:
    text = (P4_DIR / "headers.p4").read_text()
    return {name: int(value, 0) for name, value in
            re.findall(r"const bit<\d+>\s+(\w+)\s*=\s*(\w+);", text)}


def test_constants_match_headers_p4():
    c = p4_constants()
    assert c["CPU_PORT"] == CPU_PORT
    assert c["BEAVER_UDP_PORT"] == BEAVER_UDP_PORT
    assert c["BEAVER_VERSION"] == BEAVER_VERSION
    assert c["RING_SIZE"] == RING_SIZE
    assert c["ETHERTYPE_PROBE"] == ETHERTYPE_PROBE
    assert "LEARN_WINDOW = RING_SIZE - 1;" in (P4_DIR / "headers.p4").read_text()
    assert LEARN_WINDOW == RING_SIZE - 1
    text = (P4_DIR / "headers.p4").read_text()
    assert re.search(r"#define RECORDS_MAX (\d+)", text).group(1) == str(RECORDS_MAX)
    assert c["SCHEDULE_MAX"] == SCHEDULE_MAX
    assert re.search(r"#define RING_BITS (\d+)", text).group(1) == str(RING_SIZE.bit_length() - 1)
    assert c["FLAG_HOLD"] == FLAG_HOLD and c["FLAG_MARKING"] == FLAG_MARKING
    for enum, prefix in ((Kind, "BEAVER_KIND_"), (Op, "OP_"), (Status, "ST_"),
                         (DropReason, "DROP_"), (RefusedReason, "REFUSED_"),
                         (Track, "TRACK_")):
        in_p4 = {k[len(prefix):]: v for k, v in c.items()
                 if k.startswith(prefix) and k != "REFUSED_REASONS" and k != "DROP_REASONS"}
        assert in_p4 == {m.name: m.value for m in enum}, enum.__name__


def compiled_fields(header_type: str) -> list[tuple[str, int]]:
    program = json.loads(BMV2_JSON.read_text())
    for t in program["header_types"]:
        if t["name"] == header_type:
            return [(name, width) for name, width, *_ in t["fields"]]
    raise AssertionError(f"{header_type} not in the compiled program")


@pytest.mark.skipif(not BMV2_JSON.exists(), reason="p4src/build has no compiled program")
def test_control_body_layout_matches_compiled_ctl_t():
    fields = compiled_fields("ctl_t")
    assert [n for n, _ in fields] == [f.name for f in dataclasses.fields(ControlBody)]
    assert sum(w for _, w in fields) == ControlBody.SIZE * 8


@pytest.mark.skipif(not BMV2_JSON.exists(), reason="p4src/build has no compiled program")
def test_beaver_header_layout_matches_compiled_beaver_t():
    assert sum(w for _, w in compiled_fields("beaver_t")) == BeaverHeader.SIZE * 8


@pytest.mark.skipif(not BMV2_JSON.exists(), reason="p4src/build has no compiled program")
def test_probe_layout_matches_compiled_probe_t():
    fields = compiled_fields("probe_t")
    assert [n for n, _ in fields] == [f.name for f in dataclasses.fields(Probe)]
    assert sum(w for _, w in fields) == Probe.SIZE * 8


@pytest.mark.skipif(not BMV2_JSON.exists(), reason="p4src/build has no compiled program")
@pytest.mark.parametrize("header_type,layout", [("batch_t", Batch), ("record_t", Record)])
def test_batch_layouts_match_the_compiled_headers(header_type, layout):
    fields = compiled_fields(header_type)
    assert [n for n, _ in fields] == [f.name for f in dataclasses.fields(layout)]
    assert sum(w for _, w in fields) == layout.SIZE * 8


def test_batch_and_record_round_trip():
    batch = Batch(1023, 0xFFFFFFFF, 1, Track.FINAL, (1 << 48) - 1)
    assert Batch.unpack(batch.pack() + b"x") == batch
    with pytest.raises(WireError, match="needs 17 bytes"):
        Batch.unpack(b"\x01\x00")
    records = [Record(0, 7, (1 << 48) - 1, 5, 3), Record(5, 2, 0, 0, 0)]
    packed = b"".join(r.pack() for r in records)
    assert len(packed) == 2 * Record.SIZE == 42
    assert Record.unpack_all(packed + b"cut") == records, "a cut record is not one"


@pytest.mark.parametrize("spacing", [1, 2, 3, 7, 1000, 2500, 40_000, (1 << 32) - 1])
def test_the_reciprocal_gives_the_due_index_the_switch_computes(spacing):
    """What epoch.p4's step does without division: d * recip >> 32 is
    floor(d / spacing) or one less, and one comparison corrects it."""
    recip = reciprocal(spacing)
    assert recip * spacing <= (1 << 32) - 1 < (recip + 1) * spacing
    for d in (0, 1, spacing - 1, spacing, 5 * spacing - 1, 5 * spacing, 1023 * spacing,
              (1 << 32) - 1):
        q = (d * recip) >> 32
        assert q in (d // spacing, d // spacing - 1)
        if (q + 1) * spacing <= d:
            q += 1
        assert q == d // spacing
    assert Batch.schedule(1, spacing).recip == 0, "one ID needs none"


def test_probe_round_trip():
    probe = Probe(0xFFFFFFFE, ingress_time=(1 << 48) - 1, egress_time=5)
    packed = probe.pack()
    assert len(packed) == Probe.SIZE == 16
    assert Probe.unpack(packed) == probe
    with pytest.raises(WireError, match="needs 16 bytes"):
        Probe.unpack(packed[:15])


def test_control_body_round_trip():
    body = ControlBody(seq=0xFFFFFFFF, snapshot_id=7, id_before=6, id_after=7,
                       now=(1 << 48) - 1, switch_time=123456789, last_old_time=1,
                       count=99, slb_id=3, flags=FLAG_HOLD | FLAG_MARKING,
                       activate_at=(1 << 48) - 2)
    packed = body.pack()
    assert len(packed) == ControlBody.SIZE == 46
    assert ControlBody.unpack(packed + b"extra") == body
    assert body.holding and body.marking
    with pytest.raises(WireError):
        ControlBody.unpack(packed[:45])


def test_beaver_header_round_trip_and_rejections():
    header = BeaverHeader(Kind.MARK, 0xDEADBEEF, origin=9)
    packed = header.pack()
    assert packed == bytes([0x11, 9, 0xDE, 0xAD, 0xBE, 0xEF])
    assert BeaverHeader.unpack(packed) == header
    with pytest.raises(WireError, match="version"):
        BeaverHeader.unpack(bytes([0x21]) + packed[1:])
    with pytest.raises(WireError, match="kind"):
        BeaverHeader.unpack(bytes([0x13]) + packed[1:])
    with pytest.raises(WireError, match="needs 6 bytes"):
        BeaverHeader.unpack(packed[:5])


@pytest.mark.parametrize("a,b,newer", [
    (1, 0, True), (0, 1, False), (5, 5, False),
    (0, 0xFFFFFFFF, True), (0xFFFFFFFF, 0, False),
    (0x7FFFFFFF, 0, True), (0x80000000, 0, False),   # exactly half: not orderable
    (3, 0xFFFFFFF0, True),
])
def test_serial_number_comparison(a, b, newer):
    assert ids.is_newer(a, b) is newer


def test_serial_helpers():
    assert ids.next_id(0xFFFFFFFF) == 0
    assert ids.ahead(2, 0xFFFFFFFF) == 3 and ids.ahead(0xFFFFFFFF, 2) == -3
    assert ids.newest(0xFFFFFFFF, 1) == 1 and ids.newest(4, 2) == 4
