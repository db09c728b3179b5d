"""P4Runtime messages built by name, through one switch's P4Info.

p4runtime-shell's entity classes read a global client; these helpers take a
per-switch `Context` instead, so one controller can drive many switches.
"""
from __future__ import annotations

import ipaddress
from typing import Mapping, Union

from p4.v1 import p4runtime_pb2
from p4runtime_sh.context import Context, P4Type

Value = Union[int, str, bytes]


class P4NameError(KeyError):
    """A table, action, field or counter the P4Info does not have."""

    def __str__(self):
        return self.args[0]


def encode(value: Value, bitwidth: int) -> bytes:
    """Canonical P4Runtime bytes for an int, an IPv4/MAC string, or raw bytes."""
    if isinstance(value, bytes):
        number = int.from_bytes(value, "big")
    elif isinstance(value, str) and ":" in value:
        number = int(value.replace(":", ""), 16)
    elif isinstance(value, str):
        number = int(ipaddress.IPv4Address(value))
    else:
        number = int(value)
    if number < 0 or number >= 1 << bitwidth:
        raise ValueError(f"{value!r} does not fit in {bitwidth} bits")
    return number.to_bytes(max(1, (number.bit_length() + 7) // 8), "big")


def decode(data: bytes) -> int:
    return int.from_bytes(data, "big")


def _require(obj, what: str):
    if obj is None:
        raise P4NameError(f"the P4 program has no {what}")
    return obj


def table_entry(ctx: Context, table: str, match: Mapping[str, Value] | None = None,
                action: str | None = None, params: Mapping[str, Value] | None = None,
                default: bool = False) -> p4runtime_pb2.TableEntry:
    """An exact/LPM table entry; LPM values are given as (value, prefix_len)."""
    t = _require(ctx.get_table(table), f"table {table!r}")
    entry = p4runtime_pb2.TableEntry(table_id=t.preamble.id, is_default_action=default)
    for name, value in (match or {}).items():
        mf = _require(ctx.get_mf(table, name), f"match field {name!r} in {table!r}")
        field = entry.match.add(field_id=mf.id)
        if mf.match_type == mf.LPM:
            value, prefix = value
            field.lpm.value = encode(value, mf.bitwidth)
            field.lpm.prefix_len = prefix
        else:
            field.exact.value = encode(value, mf.bitwidth)
    if action is not None:
        a = _require(ctx.get_action(action), f"action {action!r}")
        entry.action.action.action_id = a.preamble.id
        for name, value in (params or {}).items():
            p = _require(ctx.get_param(action, name), f"parameter {name!r} of {action!r}")
            entry.action.action.params.add(param_id=p.id, value=encode(value, p.bitwidth))
    return entry


def update(entry: p4runtime_pb2.TableEntry,
           kind: int = p4runtime_pb2.Update.INSERT) -> p4runtime_pb2.Update:
    u = p4runtime_pb2.Update(type=kind)
    u.entity.table_entry.CopyFrom(entry)
    return u


def counter_entry(ctx: Context, counter: str, index: int) -> p4runtime_pb2.Entity:
    c = _require(ctx.get_counter(counter), f"counter {counter!r}")
    entity = p4runtime_pb2.Entity()
    entity.counter_entry.counter_id = c.preamble.id
    entity.counter_entry.index.index = index
    return entity


def packet_metadata(ctx: Context, header: str, values: Mapping[str, Value]):
    """Metadata fields for a packet-out ("packet_out") by name."""
    h = _require(ctx.get_obj(P4Type.controller_packet_metadata, header),
                 f"controller header {header!r}")
    by_name = {m.name: m for m in h.metadata}
    out = []
    for name, value in values.items():
        m = _require(by_name.get(name), f"field {name!r} in {header!r}")
        out.append(p4runtime_pb2.PacketMetadata(metadata_id=m.id,
                                                value=encode(value, m.bitwidth)))
    return out


def metadata_names(ctx: Context, header: str) -> dict[int, str]:
    """Metadata id -> name for decoding packet-ins ("packet_in")."""
    h = _require(ctx.get_obj(P4Type.controller_packet_metadata, header),
                 f"controller header {header!r}")
    return {m.id: m.name for m in h.metadata}
