"""`cift-engine doctor` on this machine and on host trees built under tmp_path (a copy of the
/proc and /sys files the checks read, shaped like a tuned or an untuned bare-metal host)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from engine.doctor import DoctorReport, kernel_cmdline_for, main, run_doctor
from engine.hostinfo import Host, format_cpulist, parse_cpulist

STATUSES = {"ok", "info", "unknown", "warn", "error"}


class FakeHost:
    """Writes the proc/sys files of a host with ``ncpu`` cores under ``root``."""

    def __init__(self, root: Path, ncpu: int = 8) -> None:
        self.root = root
        self.ncpu = ncpu
        self.write("sys/devices/system/cpu/online", f"0-{ncpu - 1}")
        self.write(
            "proc/cpuinfo", "processor\t: 0\nmodel name\t: AMD EPYC 9354P 32-Core Processor\n"
        )
        self.write(
            "proc/meminfo", "MemTotal: 1 kB\nHugePages_Total:      512\nHugepagesize: 2048 kB\n"
        )
        self.write("proc/sys/kernel/numa_balancing", "0")
        self.write("proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet")
        self.write("proc/interrupts", "      " + "".join(f"  CPU{i}" for i in range(ncpu)))
        self.write("sys/devices/system/clocksource/clocksource0/current_clocksource", "tsc")
        self.write("sys/kernel/mm/transparent_hugepage/enabled", "always [madvise] never")
        self.write("sys/kernel/mm/transparent_hugepage/defrag", "always defer [madvise] never")
        self.write("sys/devices/system/cpu/isolated", "")
        self.write("sys/devices/system/cpu/nohz_full", "(null)")
        self.topology(nodes=[set(range(ncpu))], l3s=[set(range(ncpu))])
        for cpu in range(ncpu):
            self.governor(cpu, "performance")
            self.idle(cpu, [("POLL", 0, False), ("C1", 2, False), ("C2", 350, True)])
        (root / "sys/class/net").mkdir(parents=True, exist_ok=True)

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")

    def topology(self, nodes: list[set[int]], l3s: list[set[int]]) -> None:
        for n, cpus in enumerate(nodes):
            self.write(f"sys/devices/system/node/node{n}/cpulist", format_cpulist(cpus))
        for cpus in l3s:
            for cpu in cpus:
                base = f"sys/devices/system/cpu/cpu{cpu}"
                self.write(f"{base}/cache/index0/level", "1")
                self.write(f"{base}/cache/index0/shared_cpu_list", str(cpu))
                self.write(f"{base}/cache/index3/level", "3")
                self.write(f"{base}/cache/index3/shared_cpu_list", format_cpulist(cpus))
                self.write(f"{base}/topology/thread_siblings_list", str(cpu))

    def smt_pairs(self, pairs: list[tuple[int, int]]) -> None:
        for a, b in pairs:
            for cpu in (a, b):
                self.write(
                    f"sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list", f"{a},{b}"
                )

    def governor(self, cpu: int, name: str) -> None:
        self.write(f"sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor", name)

    def idle(self, cpu: int, states: list[tuple[str, int, bool]]) -> None:
        for i, (name, latency, disabled) in enumerate(states):
            base = f"sys/devices/system/cpu/cpu{cpu}/cpuidle/state{i}"
            self.write(f"{base}/name", name)
            self.write(f"{base}/latency", str(latency))
            self.write(f"{base}/disable", "1" if disabled else "0")

    def nic(self, iface: str, pci: str, irqs: dict[int, str]) -> None:
        """A PCI NIC whose queue interrupts are named after it and routed to the given cpus."""
        device = self.root / "sys/devices/pci0000:00" / pci
        device.mkdir(parents=True, exist_ok=True)
        (self.root / "sys/class/net" / iface).mkdir(parents=True, exist_ok=True)
        (self.root / "sys/class/net" / iface / "device").symlink_to(device)
        lines = (self.root / "proc/interrupts").read_text().rstrip("\n").splitlines()
        for n, (number, cpus) in enumerate(irqs.items()):
            counts = "".join(f" {0:>10}" for _ in range(self.ncpu))
            lines.append(f" {number}:{counts}  IR-PCI-MSI-{pci} {n}-edge  {iface}-TxRx-{n}")
            self.write(f"proc/irq/{number}/smp_affinity_list", cpus)
        self.write("proc/interrupts", "\n".join(lines))

    def tune(self, cores: str) -> None:
        """The boot-time isolation docs/operations.md recommends for these shard cores."""
        self.write("sys/devices/system/cpu/isolated", cores)
        self.write("sys/devices/system/cpu/nohz_full", cores)
        self.write(
            "proc/cmdline",
            f"ro isolcpus=managed_irq,domain,{cores} nohz_full={cores} "
            f"rcu_nocbs={cores} irqaffinity=0-1",
        )


def by_name(report: DoctorReport) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.value) for c in report.checks}


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path)


def test_runs_on_this_machine_and_reports_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_doctor(None)
    assert {c.status for c in report.checks} <= STATUSES
    assert {"cpu model", "isolated cores", "transparent hugepages", "clocksource"} <= set(
        by_name(report)
    )
    code = main(["--json"])
    doc = orjson.loads(capsys.readouterr().out)
    assert code == doc["exit_code"] == report.exit_code()
    assert code in (0, 1, 2)


def test_empty_root_is_all_unknown_not_a_crash(tmp_path: Path) -> None:
    report = run_doctor([{2, 3}], root=tmp_path)
    statuses = by_name(report)
    assert statuses["isolated cores"][0] == "unknown"
    assert statuses["clocksource"][0] == "unknown"
    assert statuses["nic irq affinity"][0] == "unknown"
    assert report.exit_code() == 0


def test_tuned_host_with_shards_on_isolated_cores_is_clean(host: FakeHost) -> None:
    host.tune("2-5")
    host.nic("eth0", "0000:41:00.0", {120: "0-1", 121: "0-1"})
    report = run_doctor([{2, 3}, {4, 5}], root=host.root)
    problems = [c for c in report.checks if c.status in ("warn", "error", "unknown")]
    assert problems == []
    assert report.exit_code() == 0
    assert by_name(report)["nic irq affinity"] == ("ok", "eth0: 2 irqs on 0-1")
    assert by_name(report)["isolated cores"] == ("ok", "2-5")


def test_untuned_host_warns_with_the_fix(
    host: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    host.governor(3, "powersave")
    host.write("sys/kernel/mm/transparent_hugepage/enabled", "[always] madvise never")
    host.write("sys/devices/system/clocksource/clocksource0/current_clocksource", "hpet")
    host.idle(2, [("POLL", 0, False), ("C2", 350, False)])
    report = run_doctor([{2, 3}], root=host.root)
    checks = by_name(report)
    assert checks["cpu governor"] == ("warn", "performance on 2, powersave on 3")
    assert checks["transparent hugepages"][0] == "warn"
    assert checks["clocksource"] == ("warn", "hpet")
    assert checks["cpu idle states"] == ("warn", "C2 (350us) on 2")
    assert checks["isolated cores"] == ("warn", "none; shard cores 2-3 are not isolated")
    assert report.exit_code() == 1
    assert report.exit_code(strict=True) == 2

    assert main(["--root", str(host.root), "--shard", "2-3"]) == 1
    table = capsys.readouterr().out
    assert "Recommendations:" in table
    assert (
        "isolcpus=managed_irq,domain,2-3 nohz_full=2-3 rcu_nocbs=2-3 irqaffinity=0-1,4-7" in table
    )


def test_nic_interrupts_allowed_on_a_shard_core_are_named(host: FakeHost) -> None:
    host.tune("2-3")
    host.nic("ens1f0", "0000:41:00.0", {120: "0-1", 121: "0-7", 122: "2"})
    report = run_doctor([{2, 3}], root=host.root)
    status, value = by_name(report)["nic irq affinity"]
    assert status == "warn"
    assert value.endswith("irqs 121-122 may land on shard cores")


def test_interfaces_without_a_device_are_not_nics(host: FakeHost) -> None:
    (host.root / "sys/class/net/br0").mkdir()
    host.nic("eth1", "0000:41:00.1", {130: "0"})
    nics = Host(host.root).nic_irqs()
    assert nics is not None
    assert sorted(nics) == ["eth1"]
    assert [irq.number for irq in nics["eth1"]] == [130]


def test_shard_on_offline_or_shared_cores_is_an_error(host: FakeHost) -> None:
    report = run_doctor([{2, 3}, {3, 9}], root=host.root)
    status, value = by_name(report)["shard cores"]
    assert status == "error"
    assert "shard 1: cores 9 are not online" in value
    assert "shards 0 and 1 share cores 3" in value
    assert report.exit_code() == 2


def test_shard_on_core_0_is_a_warning(host: FakeHost) -> None:
    host.tune("0-1")
    assert by_name(run_doctor([{0, 1}], root=host.root))["shard cores"][0] == "warn"


def test_shard_across_numa_nodes_or_ccxs_is_a_warning(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, ncpu=16)
    host.topology(
        nodes=[set(range(8)), set(range(8, 16))],
        l3s=[set(range(0, 4)), set(range(4, 8)), set(range(8, 12)), set(range(12, 16))],
    )
    report = run_doctor([{2, 3}, {6, 10}], root=host.root)
    status, value = by_name(report)["shard placement"]
    assert status == "warn"
    assert value == "shard 1 spans NUMA nodes [0, 1]; shard 1 spans 2 L3 caches (CCXs)"
    assert by_name(run_doctor([{2, 3}, {4, 5}], root=host.root))["shard placement"][0] == "ok"


def test_shards_on_smt_siblings_is_a_warning(host: FakeHost) -> None:
    host.smt_pairs([(2, 6), (3, 7)])
    status, value = by_name(run_doctor([{2}, {6}], root=host.root))["shard placement"]
    assert status == "warn"
    assert "core 2 of shard 0 is an SMT sibling of shard 1" in value


def test_automatic_numa_balancing_on_a_multi_node_host_is_a_warning(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    host.topology(nodes=[set(range(4)), set(range(4, 8))], l3s=[set(range(8))])
    host.write("proc/sys/kernel/numa_balancing", "1")
    assert by_name(run_doctor(None, root=host.root))["numa"][0] == "warn"


def test_json_output_lists_every_check(host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--root", str(host.root), "--shard", "2-3", "--shard", "4,5", "--json"])
    doc = orjson.loads(capsys.readouterr().out)
    assert doc["exit_code"] == code
    assert doc["shard_cores"] == ["2-3", "4-5"]
    assert {c["status"] for c in doc["checks"]} <= STATUSES
    assert sum(doc["summary"].values()) == len(doc["checks"])


def test_bad_shard_argument_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--shard", "3-1"])
    assert exc.value.code == 2
    assert "bad cpu range" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0-3,8,10-11", {0, 1, 2, 3, 8, 10, 11}), ("", set()), ("5", {5}), (" 1,2 \n", {1, 2})],
)
def test_cpulist_round_trip(text: str, cpus: set[int]) -> None:
    assert parse_cpulist(text) == cpus
    assert parse_cpulist(format_cpulist(cpus)) == cpus


@pytest.mark.parametrize("text", ["a", "3-1", "1-", "-1", "1;2"])
def test_bad_cpulist_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_cpulist(text)


def test_kernel_cmdline_leaves_the_other_cores_to_the_kernel() -> None:
    assert kernel_cmdline_for({2, 3, 4}, set(range(8))) == (
        "isolcpus=managed_irq,domain,2-4 nohz_full=2-4 rcu_nocbs=2-4 irqaffinity=0-1,5-7"
    )


def test_shard_cores_can_come_from_the_shard_map(
    host: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    example = Path(__file__).resolve().parent.parent / "config" / "shards" / "example.toml"
    main(["--root", str(host.root), "--shard-map", str(example), "--json"])
    assert orjson.loads(capsys.readouterr().out)["shard_cores"] == ["2-3", "4-5"]
    assert main(["--shard-map", str(host.root / "missing.toml")]) == 2
    assert "shard map not found" in capsys.readouterr().err
