"""Application messages: one JSON object per datagram, with a unique "id".

Every process names its messages "<process>:<n>", so ids are unique across a
run and the ground-truth logs of both ends match a send to its receive.  A
reply also carries "re", the id of the request it answers; a request from an
out-group client carries "client", the client's name.
"""
from __future__ import annotations

import json
from typing import Any

from beaver.traffic.boundedjson import JsonError, loads

Message = dict[str, Any]
MAX_SIZE = 1 << 20   # bytes: a TCP frame's most (frames.py); a UDP datagram holds less
MAX_DEPTH = 64       # levels: a client's request, wrapped a few times by the services
MAX_ID = 256         # characters of an "id": it goes into every event log
# One for every message: json.dumps builds an encoder a call when given separators.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


class MessageError(ValueError):
    """Bytes that are not an application message."""

    reason = "bad message"


class Refused(MessageError):
    """A message the application's own rules refuse (a negative amount, a
    message applied before): the runtime counts it, and nothing changed."""

    reason = "refused by the application"


def message_id(process: str, number: int) -> str:
    return f"{process}:{number}"


def encode(message: Message) -> bytes:
    return _ENCODER.encode(message).encode()


def decode(data: bytes) -> Message:
    if len(data) > MAX_SIZE:
        raise MessageError(f"{len(data)} bytes (at most {MAX_SIZE})")
    try:
        message = loads(data, MAX_DEPTH)
    except JsonError as e:
        raise MessageError(str(e)) from None
    if not isinstance(message, dict):
        raise MessageError("not a JSON object")
    if not isinstance(message.get("id"), str):
        raise MessageError("no string \"id\"")
    if len(message["id"]) > MAX_ID:
        raise MessageError(f"an \"id\" of {len(message['id'])} characters (at most {MAX_ID})")
    return message
