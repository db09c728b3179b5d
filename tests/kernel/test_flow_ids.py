"""flowmap.FlowIds on a real BPF hash map of flow_ids' shape (made here,
written as decap.c writes it): a connection's reader, made once, reads
what the kernel holds for its flow at each call, and nothing of another's."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beaver.traffic.runtime.flowmap import BpfError, FlowIds

from tests.support.flowmaps import FlowMap

VIP = ("10.212.9.1", 7000)
CLIENTS = [("10.212.5.5", 40000), ("10.212.5.5", 40001), ("10.212.5.6", 40000)]

# (client index, ID to record, or None: the connection closed and its entry went)
_STEPS = st.lists(st.tuples(st.integers(0, len(CLIENTS) - 1),
                            st.one_of(st.none(), st.integers(0, 2**32 - 1))), max_size=20)


@pytest.fixture(scope="module")
def flow_map():
    made = FlowMap()
    yield made
    made.close()


@settings(max_examples=30, deadline=None)
@given(_STEPS)
def test_a_reader_made_once_reads_what_the_map_holds_now(flow_map, steps):
    ids = FlowIds(flow_map.id)
    readers = [ids.reader(client, VIP) for client in CLIENTS]   # before any entry
    held: dict[int, int] = {}
    for client in CLIENTS:
        flow_map.delete(client, VIP)
    for which, snapshot_id in steps:
        if snapshot_id is None:
            flow_map.delete(CLIENTS[which], VIP)
            held.pop(which, None)
        else:
            flow_map.set(CLIENTS[which], VIP, snapshot_id)
            held[which] = snapshot_id
        assert [read() for read in readers] == [held.get(i) for i in range(len(CLIENTS))]
        assert [ids.lookup(client, VIP) for client in CLIENTS] == [read() for read in readers]
    ids.close()


def test_a_reader_of_a_closed_map_says_so(flow_map):
    ids = FlowIds(flow_map.id)
    read = ids.reader(CLIENTS[0], VIP)
    ids.close()
    with pytest.raises(BpfError, match="lookup in test_flow_ids: Bad file descriptor"):
        read()


def test_newest_is_read_from_the_mapped_map_as_it_changes(flow_map):
    ids = FlowIds(flow_map.id, flow_map.newest_id)
    start = ids.newest[0]
    flow_map.set(CLIENTS[0], VIP, (start + 3) % 2**32)
    assert ids.newest[0] == (start + 3) % 2**32, "no system call, the kernel's memory"
    flow_map.set(CLIENTS[1], VIP, start)                  # older: newest stays
    assert ids.newest[0] == (start + 3) % 2**32
    ids.close()


def test_a_newest_map_that_cannot_be_mapped_says_so(flow_map):
    with pytest.raises(BpfError, match="mapping test_flow_ids: .*BPF_F_MMAPABLE"):
        FlowIds(flow_map.id, flow_map.id)                 # a hash map, not the array
