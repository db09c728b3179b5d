"""Bringing a switch's tables to a wanted state with the fewest writes.

`slb_updates` (program.py) describes a freshly pushed pipeline as INSERTs.
On a switch that already runs, the installed entries are read back and
compared by match key, so applying the same configuration twice rewrites
only the default entries (which cannot be compared here) and a changed one
writes only the difference, without emptying the VIP tables in between.
"""
from __future__ import annotations

from typing import Iterable

from p4.v1 import p4runtime_pb2

from beaver.control.p4runtime.session import SwitchSession

Update = p4runtime_pb2.Update


def _key(entry: p4runtime_pb2.TableEntry) -> tuple:
    return (entry.table_id,
            tuple(m.SerializeToString(deterministic=True)
                  for m in sorted(entry.match, key=lambda m: m.field_id)))


def _action(entry: p4runtime_pb2.TableEntry) -> tuple:
    action = entry.action.action
    return (action.action_id,
            tuple((p.param_id, p.value) for p in sorted(action.params, key=lambda p: p.param_id)))


def sync(session: SwitchSession, wanted: Iterable[Update], tables: Iterable[str]) -> list[Update]:
    """The updates that leave `tables` holding exactly the entries INSERTed by
    `wanted`; updates of other tables (the default entries) pass unchanged."""
    table_ids = {session.ctx.get_table_id(name) for name in tables}
    out, desired = [], {}
    for update in wanted:
        entry = update.entity.table_entry
        if update.type == Update.INSERT and entry.table_id in table_ids:
            desired[_key(entry)] = entry
        else:
            out.append(update)
    installed = {}
    for name in tables:
        for entry in session.table_entries(name):
            installed[_key(entry)] = entry
    for key, entry in installed.items():
        if key not in desired:
            out.append(_update(entry, Update.DELETE))
    for key, entry in desired.items():
        if key not in installed:
            out.append(_update(entry, Update.INSERT))
        elif _action(installed[key]) != _action(entry):
            out.append(_update(entry, Update.MODIFY))
    return out


def _update(entry: p4runtime_pb2.TableEntry, kind: int) -> Update:
    update = Update(type=kind)
    update.entity.table_entry.CopyFrom(entry)
    return update
