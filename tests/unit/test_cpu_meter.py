"""topologies/cpu.py: CPU time by party, and the share the hypervisor took."""
import os

from beaver.topologies import cpu


def test_the_steal_share_is_the_window_s_steal_ticks_over_all_its_ticks(monkeypatch):
    ticks = iter([(100, 10_000), (130, 12_000)])
    monkeypatch.setattr(cpu, "machine_jiffies", lambda: next(ticks))
    meter = cpu.CpuMeter({"me": [os.getpid()]})
    assert meter.stolen() == 30 / 2_000


def test_the_machine_s_ticks_are_read_from_proc_stat_and_grow():
    steal, total = cpu.machine_jiffies()
    with open("/proc/stat") as f:
        first = f.readline().split()
    assert first[0] == "cpu" and steal == int(first[8])
    assert 0 <= steal <= total
    busy = sum(range(3_000_000))   # some CPU time passes
    assert busy and cpu.machine_jiffies()[1] >= total


def test_a_process_s_cpu_time_is_counted_for_its_group():
    meter = cpu.CpuMeter({"me": [os.getpid()], "nobody": []})
    sum(i * i for i in range(2_000_000))
    used = meter.read()
    assert used["me"] > 0 and used["nobody"] == 0
