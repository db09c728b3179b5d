"""The maps of the kernel decapsulation program (traffic/runtime/bpf/decap.c), read
and written through libbpf by ctypes.

    maps = program_maps(prog_id)            # name -> map id, of one loaded program
    ids = FlowIds(maps["flow_ids"], maps["newest_id"])
    ids.lookup(client=("10.128.1.1", 40000), vip=("10.200.0.1", 7000))   # -> 7 or None
    ids.newest[0]                           # the newest ID of any flow: a memory read

BPF maps live in the kernel, not in a network namespace: a map id found from
the root namespace opens the same map inside a Mininet host.  tc does not pin
the maps it creates, so they are found by id: the program's id (from tc),
then its maps' ids and names (from the kernel's object info).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import socket
import struct

MAP_NAMES = ("slb_addrs", "flow_ids", "newest_id", "decap_counts")
COUNTERS = ("decapsulated", "foreign", "malformed", "left_udp", "map_full")  # enum counter

_FLOW = struct.Struct("!4s4sHH")     # struct flow: client ip, vip ip, client port, vip port
_ID = struct.Struct("=I")

# The leading fields of the kernel's bpf_prog_info and bpf_map_info (uapi
# bpf.h): the ABI only ever appends, so these offsets hold on every kernel.
_PROG_INFO_SIZE = 208                # up to and including run_cnt (Linux 5.1)
_PROG_NR_MAP_IDS, _PROG_MAP_IDS = 52, 56
_PROG_RUN_TIME_NS = 192              # then run_cnt: counted while stats are on
_STATS_RUN_TIME = 0                  # enum bpf_stats_type
_MAP_INFO_SIZE = 24 + 16
_MAP_NAME = 24


class BpfError(OSError):
    pass


def _libbpf() -> ctypes.CDLL:
    name = ctypes.util.find_library("bpf") or "libbpf.so.1"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as e:
        raise BpfError(f"libbpf cannot be loaded ({e}): apt-get install libbpf-dev") from None
    fd, ptr = ctypes.c_int, ctypes.c_void_p
    lib.bpf_map_lookup_elem.argtypes = [fd, ptr, ptr]
    lib.bpf_map_update_elem.argtypes = [fd, ptr, ptr, ctypes.c_uint64]
    lib.bpf_map_delete_elem.argtypes = [fd, ptr]
    lib.bpf_obj_get_info_by_fd.argtypes = [ctypes.c_int, ctypes.c_void_p,
                                           ctypes.POINTER(ctypes.c_uint32)]
    lib.bpf_map_get_fd_by_id.argtypes = [ctypes.c_uint32]
    lib.bpf_prog_get_fd_by_id.argtypes = [ctypes.c_uint32]
    lib.bpf_enable_stats.argtypes = [ctypes.c_int]
    return lib


_lib: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        _lib = _libbpf()
    return _lib


def _check(result: int, what: str) -> int:
    """libbpf 1.x returns -errno."""
    if result < 0:
        raise BpfError(-result, f"{what}: {os.strerror(-result)}")
    return result


def _info(fd: int, size: int) -> ctypes.Array:
    buf = ctypes.create_string_buffer(size)
    length = ctypes.c_uint32(size)
    _check(lib().bpf_obj_get_info_by_fd(fd, buf, ctypes.byref(length)), "object info")
    return buf


def program_maps(prog_id: int) -> dict[str, int]:
    """name -> id of every map the loaded program prog_id uses."""
    fd = _check(lib().bpf_prog_get_fd_by_id(prog_id), f"program {prog_id}")
    try:
        count = struct.unpack_from("=I", _info(fd, _PROG_INFO_SIZE), _PROG_NR_MAP_IDS)[0]
        ids = (ctypes.c_uint32 * max(count, 1))()
        buf = ctypes.create_string_buffer(_PROG_INFO_SIZE)
        struct.pack_into("=IQ", buf, _PROG_NR_MAP_IDS, count, ctypes.addressof(ids))
        length = ctypes.c_uint32(_PROG_INFO_SIZE)
        _check(lib().bpf_obj_get_info_by_fd(fd, buf, ctypes.byref(length)), "program maps")
    finally:
        os.close(fd)
    names = {}
    for map_id in ids[:count]:
        with Map(map_id) as m:
            names[m.name] = map_id
    return names


def run_stats(prog_id: int) -> tuple[int, int]:
    """(nanoseconds, runs) the kernel has counted for program prog_id, while
    stats were on (stats_on, or the sysctl kernel.bpf_stats_enabled)."""
    fd = _check(lib().bpf_prog_get_fd_by_id(prog_id), f"program {prog_id}")
    try:
        return struct.unpack_from("=QQ", _info(fd, _PROG_INFO_SIZE), _PROG_RUN_TIME_NS)
    finally:
        os.close(fd)


class StatsOn:
    """The kernel counts every BPF program's run time while this is open
    (BPF_ENABLE_STATS): an fd, so it ends with the process, however that
    ends, and never outlives it as the sysctl would."""

    def __enter__(self) -> "StatsOn":
        self.fd = _check(lib().bpf_enable_stats(_STATS_RUN_TIME), "enable BPF stats")
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


class Map:
    """An open BPF map, by id."""

    def __init__(self, map_id: int):
        self.id = map_id
        self.fd = _check(lib().bpf_map_get_fd_by_id(map_id), f"map {map_id}")
        raw = _info(self.fd, _MAP_INFO_SIZE).raw
        self.name = raw[_MAP_NAME:_MAP_NAME + 16].split(b"\0", 1)[0].decode()

    def lookup(self, key: bytes, size: int) -> bytes | None:
        value = ctypes.create_string_buffer(size)
        result = lib().bpf_map_lookup_elem(self.fd, key, value)
        if result == -2:   # ENOENT
            return None
        _check(result, f"lookup in {self.name}")
        return value.raw

    def update(self, key: bytes, value: bytes):
        _check(lib().bpf_map_update_elem(self.fd, key, value, 0), f"update of {self.name}")

    def delete(self, key: bytes):
        result = lib().bpf_map_delete_elem(self.fd, key)
        if result != -2:
            _check(result, f"delete in {self.name}")

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Map":
        return self

    def __exit__(self, *exc):
        self.close()


def flow_key(client: tuple[str, int], vip: tuple[str, int]) -> bytes:
    return _FLOW.pack(socket.inet_aton(client[0]), socket.inet_aton(vip[0]), client[1], vip[1])


class FlowIds:
    """The newest snapshot ID the kernel saw per inner TCP flow, and (with
    newest_map_id) in `newest`, newest[0], the newest of any flow, read from
    the map's memory without a system call; newest is None without it."""

    def __init__(self, map_id: int, newest_map_id: int | None = None):
        self._map = Map(map_id)
        self._newest_memory: mmap.mmap | None = None
        self.newest: memoryview | None = None
        if newest_map_id is not None:
            try:
                with Map(newest_map_id) as newest:   # the mapping keeps the map
                    self._newest_memory = _map_memory(newest)
            except BpfError:
                self._map.close()
                raise
            self.newest = memoryview(self._newest_memory).cast("I")

    def lookup(self, client: tuple[str, int], vip: tuple[str, int]) -> int | None:
        return self.reader(client, vip)()

    def reader(self, client: tuple[str, int], vip: tuple[str, int]) -> "FlowId":
        """The flow's entry, to be read once per read of its connection."""
        return FlowId(self._map, flow_key(client, vip))

    def forget(self, client: tuple[str, int], vip: tuple[str, int]):
        """After the connection closed: its entry is no longer needed."""
        self._map.delete(flow_key(client, vip))

    def close(self):
        self._map.close()
        if self._newest_memory is not None:
            self.newest.release()
            self._newest_memory.close()


def _map_memory(bpf_map: Map) -> mmap.mmap:
    """An array map's values, mapped read-only (made with BPF_F_MMAPABLE)."""
    try:
        return mmap.mmap(bpf_map.fd, mmap.PAGESIZE, mmap.MAP_SHARED, mmap.PROT_READ)
    except OSError as e:
        raise BpfError(e.errno, f"mapping {bpf_map.name}: {e.strerror} "
                       "(not an array made with BPF_F_MMAPABLE?)") from None


class FlowId:
    """One flow's entry in flow_ids: calling it reads the newest ID (None
    while the flow has none).  The key, the value's buffer and the call's
    arguments are made once, so a read is the bpf() call and little else:
    the TCP runtime reads it after every read of the connection."""

    __slots__ = ("_lookup", "_args", "_value", "_name")

    def __init__(self, bpf_map: Map, key: bytes):
        # Its own function object, without argtypes: the arguments are
        # ctypes objects already, so a call converts nothing.
        self._lookup = lib()["bpf_map_lookup_elem"]
        self._value = (ctypes.c_uint32 * 1)()   # native order, as the kernel's __u32
        self._args = (ctypes.c_int(bpf_map.fd), ctypes.create_string_buffer(key, len(key)),
                      self._value)
        self._name = bpf_map.name

    def __call__(self) -> int | None:
        result = self._lookup(*self._args)
        if result == 0:
            return self._value[0]
        if result == -2:   # ENOENT
            return None
        raise BpfError(-result, f"lookup in {self._name}: {os.strerror(-result)}")


def add_slbs(map_id: int, addresses) -> None:
    """Makes MARKs from these addresses decapsulated."""
    with Map(map_id) as m:
        for address in addresses:
            m.update(socket.inet_aton(address), b"\1")


def counters(map_id: int) -> dict[str, int]:
    """decap_counts, summed over the CPUs (a per-CPU array: one u64 each)."""
    cpus = _check(lib().libbpf_num_possible_cpus(), "possible CPUs")
    with Map(map_id) as m:
        return {name: sum(struct.unpack(f"={cpus}Q", m.lookup(_ID.pack(i), 8 * cpus)))
                for i, name in enumerate(COUNTERS)}
