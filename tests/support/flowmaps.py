"""BPF maps of the shapes of decap.c's flow_ids and newest_id, made by this
process (root or CAP_BPF), written as the kernel program writes them: for
tests and bench/tcp_runtime_instructions.py, which read them through
flowmap.FlowIds by their ids as a runtime does."""
from __future__ import annotations

import ctypes
import os
import struct
import sys

from beaver.p4src.ids import newest
from beaver.traffic.runtime import flowmap

_HASH, _ARRAY = 1, 2                 # enum bpf_map_type
_MMAPABLE = 1 << 10                  # BPF_F_MMAPABLE
_KEY_SIZE, _ID_SIZE = 12, 4          # struct flow, __u32
# struct bpf_map_create_opts up to map_ifindex: sz, then map_flags at 28
_OPTS = struct.Struct("=Q5II Q2I")


def _create(kind: int, name: bytes, key_size: int, entries: int, flags: int = 0) -> flowmap.Map:
    """The new map, open by its id (it lives while that stays open)."""
    lib = flowmap.lib()
    lib.bpf_map_create.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32,
                                   ctypes.c_uint32, ctypes.c_uint32, ctypes.c_void_p]
    opts = ctypes.create_string_buffer(_OPTS.pack(_OPTS.size, 0, 0, 0, 0, 0, flags, 0, 0, 0))
    fd = flowmap._check(lib.bpf_map_create(kind, name, key_size, _ID_SIZE, entries, opts),
                        "creating a BPF map (root or CAP_BPF needed)")
    try:
        info = flowmap._info(fd, flowmap._MAP_INFO_SIZE).raw
        return flowmap.Map(int.from_bytes(info[4:8], sys.byteorder))   # bpf_map_info: type, id
    finally:
        os.close(fd)


class FlowMap:
    def __init__(self, max_entries: int = 1024):
        self._flows = _create(_HASH, b"test_flow_ids", _KEY_SIZE, max_entries)
        self._newest = _create(_ARRAY, b"test_newest_id", 4, 1, _MMAPABLE)
        self.id, self.newest_id = self._flows.id, self._newest.id

    def set(self, client, vip, snapshot_id: int):
        """As decap.c records an ID (a native __u32): the newest first, then the flow's."""
        zero = bytes(4)
        held = int.from_bytes(self._newest.lookup(zero, _ID_SIZE), sys.byteorder)
        self._newest.update(zero, newest(snapshot_id, held).to_bytes(_ID_SIZE, sys.byteorder))
        self._flows.update(flowmap.flow_key(client, vip),
                           snapshot_id.to_bytes(_ID_SIZE, sys.byteorder))

    def delete(self, client, vip):
        self._flows.delete(flowmap.flow_key(client, vip))

    def close(self):
        self._flows.close()
        self._newest.close()
