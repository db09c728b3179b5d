"""A BPF hash map of the shape of decap.c's flow_ids, made by this process
(root or CAP_BPF), written as the kernel program writes it: for tests and
bench/tcp_runtime_instructions.py, which read it through flowmap.FlowIds
by its id as a runtime does."""
from __future__ import annotations

import ctypes
import os
import sys

from beaver.traffic.runtime import flowmap

_BPF_MAP_TYPE_HASH = 1
_KEY_SIZE, _ID_SIZE = 12, 4        # struct flow, __u32


class FlowMap:
    def __init__(self, max_entries: int = 1024):
        lib = flowmap.lib()
        lib.bpf_map_create.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32,
                                       ctypes.c_uint32, ctypes.c_uint32, ctypes.c_void_p]
        self._map = None
        fd = flowmap._check(lib.bpf_map_create(_BPF_MAP_TYPE_HASH, b"test_flow_ids", _KEY_SIZE,
                                               _ID_SIZE, max_entries, None),
                            "creating a BPF hash map (root or CAP_BPF needed)")
        try:
            info = flowmap._info(fd, flowmap._MAP_INFO_SIZE).raw
            self.id = int.from_bytes(info[4:8], sys.byteorder)   # bpf_map_info: type, id
            self._map = flowmap.Map(self.id)
        finally:
            os.close(fd)   # the map lives on while self._map holds it

    def set(self, client, vip, snapshot_id: int):
        """As decap.c records an ID: a native __u32."""
        self._map.update(flowmap.flow_key(client, vip), snapshot_id.to_bytes(_ID_SIZE,
                                                                              sys.byteorder))

    def delete(self, client, vip):
        self._map.delete(flowmap.flow_key(client, vip))

    def close(self):
        self._map.close()
