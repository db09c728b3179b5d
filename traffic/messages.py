"""Application messages: one JSON object per datagram, with a unique "id".

Every process names its messages "<process>:<n>", so ids are unique across a
run and the ground-truth logs of both ends match a send to its receive.  A
reply also carries "re", the id of the request it answers; a request from an
out-group client carries "client", the client's name.
"""
from __future__ import annotations

import json
from typing import Any

Message = dict[str, Any]


class MessageError(ValueError):
    """Bytes that are not an application message."""

    reason = "bad message"


def message_id(process: str, number: int) -> str:
    return f"{process}:{number}"


def encode(message: Message) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def decode(data: bytes) -> Message:
    try:
        message = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MessageError(f"not JSON: {e}") from None
    if not isinstance(message, dict):
        raise MessageError("not a JSON object")
    if not isinstance(message.get("id"), str):
        raise MessageError("no string \"id\"")
    return message
