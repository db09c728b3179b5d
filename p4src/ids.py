"""Snapshot IDs are 32-bit serial numbers (RFC 1982), as in epoch.p4.

a is newer than b when 0 < (a - b) mod 2^32 < 2^31; IDs further apart than
half the space cannot be ordered, so no more than ID_WINDOW snapshots may be
in flight at once.
"""
ID_BITS = 32
ID_SPACE = 1 << ID_BITS
ID_WINDOW = 1 << (ID_BITS - 1)


def next_id(snapshot_id: int, step: int = 1) -> int:
    return (snapshot_id + step) % ID_SPACE


def ahead(a: int, b: int) -> int:
    """How far a is ahead of b (negative when behind), within the window."""
    d = (a - b) % ID_SPACE
    return d if d < ID_WINDOW else d - ID_SPACE


def is_newer(a: int, b: int) -> bool:
    """True when a is strictly newer than b, exactly as the switch decides."""
    d = (a - b) % ID_SPACE
    return 0 < d < ID_WINDOW


def newest(a: int, b: int) -> int:
    return a if is_newer(a, b) else b
