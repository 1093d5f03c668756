"""`cift-engine doctor`: is this host tuned for low-latency matching?

Reads /proc and /sys only (no root needed, nothing changed) and reports CPU model and cores,
isolated/nohz_full/rcu_nocbs cores, frequency governor and idle states, transparent huge pages,
huge pages, NUMA and L3 (CCX) layout, NIC interrupt affinity, irqbalance and the clocksource, each
with a status and, when it is not ok, what to change (docs/operations.md explains why).

Given the cores each shard will be pinned to (``shard_cores``), the checks are about those cores:
are they online, isolated, tickless, on one NUMA node and one L3, free of NIC interrupts.

A file that does not exist or cannot be read (VMs, containers, other kernels) makes its check
``unknown``, never a crash. Exit code of ``main``: 0 all ok, 1 warnings, 2 errors; with
``--strict`` warnings exit 2 as well.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import orjson

from engine.hostinfo import Host, format_cpulist, parse_cpulist

__all__ = ["Check", "DoctorReport", "kernel_cmdline_for", "main", "run_doctor"]

Status = Literal["ok", "info", "unknown", "warn", "error"]
_SEVERITY: dict[Status, int] = {"ok": 0, "info": 0, "unknown": 0, "warn": 1, "error": 2}
# Idle states whose exit latency is above this cost a sleeping shard core a visible wake-up.
_MAX_IDLE_EXIT_US = 10
_GOOD_CLOCKSOURCES = ("tsc", "kvm-clock", "arch_sys_counter", "hyperv_clocksource_tsc_page")


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    value: str
    recommendation: str = ""


@dataclass(frozen=True)
class DoctorReport:
    checks: tuple[Check, ...]
    shard_cores: tuple[frozenset[int], ...] = ()

    def count(self, status: Status) -> int:
        return sum(1 for c in self.checks if c.status == status)

    def exit_code(self, strict: bool = False) -> int:
        worst = max((_SEVERITY[c.status] for c in self.checks), default=0)
        return 2 if strict and worst == 1 else worst

    def to_dict(self, strict: bool = False) -> dict[str, object]:
        return {
            "summary": {s: self.count(s) for s in ("ok", "info", "unknown", "warn", "error")},
            "exit_code": self.exit_code(strict),
            "shard_cores": [format_cpulist(c) for c in self.shard_cores],
            "checks": [asdict(c) for c in self.checks],
        }

    def table(self) -> str:
        width = max((len(c.name) for c in self.checks), default=5)
        lines = [
            f"cift-engine doctor: {self.count('ok')} ok, {self.count('warn')} warnings, "
            f"{self.count('error')} errors, {self.count('unknown')} unknown",
            "",
            f"{'CHECK':<{width}}  {'STATUS':<7}  VALUE",
        ]
        lines += [f"{c.name:<{width}}  {c.status:<7}  {c.value}" for c in self.checks]
        todo = [c for c in self.checks if c.recommendation and c.status in ("warn", "error")]
        if todo:
            lines += ["", "Recommendations:"]
            lines += [f"  [{c.status}] {c.name}: {c.recommendation}" for c in todo]
        return "\n".join(lines)


def kernel_cmdline_for(shard_cpus: set[int], online: set[int]) -> str:
    """Boot parameters giving the shard cores to the engine, the rest to the kernel."""
    cores, rest = format_cpulist(shard_cpus), format_cpulist(online - shard_cpus)
    params = f"isolcpus=managed_irq,domain,{cores} nohz_full={cores} rcu_nocbs={cores}"
    return f"{params} irqaffinity={rest}" if rest else params


class _Doctor:
    def __init__(self, host: Host, shard_cores: list[set[int]] | None) -> None:
        self.host = host
        self.shards = [set(s) for s in shard_cores or []]
        self.used: set[int] = set().union(*self.shards) if self.shards else set()
        self.online = host.online_cpus()
        self.cmdline = host.cmdline()
        self.boot = self.cmdline or {}
        self.fix_boot = (
            kernel_cmdline_for(self.used, self.online)
            if self.used and self.online
            else "isolcpus=managed_irq,domain,<cores> nohz_full=<cores> rcu_nocbs=<cores>"
        )

    def focus(self) -> set[int]:
        """The cores the per-core checks look at: the shards' cores, else every online core."""
        return set(self.used) if self.used else set(self.online or ())

    def run(self) -> list[Check]:
        steps: list[tuple[str, Callable[[], Check]]] = [
            ("cpu model", self.cpu),
            ("cores online", self.cores),
        ]
        if self.shards:
            steps += [("shard cores", self.shard_cores), ("shard placement", self.placement)]
        steps += [
            ("isolated cores", self.isolated),
            ("nohz_full", self.nohz_full),
            ("rcu_nocbs", self.rcu_nocbs),
            ("cpu governor", self.governor),
            ("cpu idle states", self.idle_states),
            ("transparent hugepages", self.thp),
            ("huge pages", self.hugepages),
            ("numa", self.numa),
            ("nic irq affinity", self.nic_irqs),
            ("irqbalance", self.irqbalance),
            ("clocksource", self.clocksource),
        ]
        checks = []
        for name, step in steps:
            try:
                checks.append(step())
            except (OSError, ValueError, RuntimeError) as exc:
                # A host shaped differently from what the readers expect is "unknown", not a crash.
                checks.append(Check(name, "unknown", f"could not read: {exc}"))
        return checks

    def cpu(self) -> Check:
        model = self.host.cpu_model()
        return Check("cpu model", "info" if model else "unknown", model or "unknown")

    def cores(self) -> Check:
        if self.online is None:
            return Check("cores online", "unknown", "unknown")
        smt = {"1": ", SMT on", "0": ", SMT off"}.get(
            self.host.read("/sys/devices/system/cpu/smt/active") or "", ""
        )
        return Check(
            "cores online", "info", f"{len(self.online)} ({format_cpulist(self.online)}){smt}"
        )

    def shard_cores(self) -> Check:
        """Every shard core online, no core shared by two shards, core 0 left to the kernel."""
        errors: list[str] = []
        for i, cores in enumerate(self.shards):
            offline = cores - self.online if self.online is not None else set()
            if offline:
                errors.append(f"shard {i}: cores {format_cpulist(offline)} are not online")
            for j in range(i + 1, len(self.shards)):
                if cores & self.shards[j]:
                    shared = format_cpulist(cores & self.shards[j])
                    errors.append(f"shards {i} and {j} share cores {shared}")
        value = " | ".join(format_cpulist(s) for s in self.shards)
        if errors:
            return Check(
                "shard cores",
                "error",
                f"{value}; " + "; ".join(errors),
                "give each shard its own online cores",
            )
        if 0 in self.used:
            return Check(
                "shard cores",
                "warn",
                f"{value}; core 0 is the kernel's housekeeping core",
                "move the shard off core 0",
            )
        return Check("shard cores", "ok", value)

    def placement(self) -> Check:
        """Each shard on one NUMA node and one L3 (CCX); no two shards on one physical core."""
        nodes = self.host.numa_nodes() or {}
        owner = {cpu: i for i, cores in enumerate(self.shards) for cpu in cores}
        problems: list[str] = []
        known = bool(nodes)
        for i, cores in enumerate(self.shards):
            on_nodes = sorted(n for n, cpus in nodes.items() if cores & cpus)
            if len(on_nodes) > 1:
                problems.append(f"shard {i} spans NUMA nodes {on_nodes}")
            l3s = {self.host.l3_of(cpu) for cpu in cores}
            known = known or None not in l3s
            if None not in l3s and len(l3s) > 1:
                problems.append(f"shard {i} spans {len(l3s)} L3 caches (CCXs)")
            for cpu in sorted(cores):
                siblings = self.host.thread_siblings(cpu) - {cpu}
                others = sorted({owner[s] for s in siblings if owner.get(s, i) != i})
                if others:
                    problems.append(
                        f"core {cpu} of shard {i} is an SMT sibling of shard {others[0]}"
                    )
        if problems:
            return Check(
                "shard placement",
                "warn",
                "; ".join(problems),
                "pick each shard's cores from one CCX (one L3) on one NUMA node, "
                "one hardware thread per physical core",
            )
        if not known:
            return Check("shard placement", "unknown", "no NUMA or cache topology")
        return Check("shard placement", "ok", "each shard on one NUMA node and one L3")

    def isolated(self) -> Check:
        isolated = self.host.cpulist("/sys/devices/system/cpu/isolated")
        if isolated is None:
            return Check("isolated cores", "unknown", "unknown")
        value = format_cpulist(isolated) or "none"
        missing = self.used - isolated
        if self.used and missing:
            return Check(
                "isolated cores",
                "warn",
                f"{value}; shard cores {format_cpulist(missing)} are not isolated",
                f"boot with {self.fix_boot}",
            )
        if not isolated:
            return Check("isolated cores", "warn", value, f"boot with {self.fix_boot}")
        return Check("isolated cores", "ok", value)

    def nohz_full(self) -> Check:
        cpus = self.host.cpulist("/sys/devices/system/cpu/nohz_full")
        if cpus is None and "nohz_full" in self.boot:
            cpus = _cmdline_cpus(self.boot["nohz_full"])
        if cpus is None:
            return Check("nohz_full", "unknown", "unknown (kernel without NO_HZ_FULL?)")
        value = format_cpulist(cpus) or "none"
        missing = (self.used or set()) - cpus
        if (self.used and missing) or not cpus:
            return Check(
                "nohz_full", "warn", value, f"boot with nohz_full=<shard cores> ({self.fix_boot})"
            )
        return Check("nohz_full", "ok", value)

    def rcu_nocbs(self) -> Check:
        if self.cmdline is None:
            return Check("rcu_nocbs", "unknown", "unknown")
        cpus = _cmdline_cpus(self.cmdline.get("rcu_nocbs", ""))
        nohz = _cmdline_cpus(self.cmdline.get("nohz_full", ""))  # nohz_full implies rcu_nocbs
        covered = (cpus or set()) | (nohz or set())
        value = format_cpulist(covered) or "none"
        if (self.used and self.used - covered) or not covered:
            return Check("rcu_nocbs", "warn", value, "boot with rcu_nocbs=<shard cores>")
        return Check("rcu_nocbs", "ok", value)

    def governor(self) -> Check:
        by_governor: dict[str, set[int]] = {}
        for cpu in self.focus():
            gov = self.host.cpu_file(cpu, "cpufreq/scaling_governor")
            if gov is not None:
                by_governor.setdefault(gov, set()).add(cpu)
        if not by_governor:
            return Check("cpu governor", "unknown", "no cpufreq (VM or fixed frequency)")
        value = ", ".join(f"{g} on {format_cpulist(c)}" for g, c in sorted(by_governor.items()))
        if set(by_governor) != {"performance"}:
            return Check(
                "cpu governor",
                "warn",
                value,
                "cpupower frequency-set -g performance (and keep it across reboots)",
            )
        return Check("cpu governor", "ok", value)

    def idle_states(self) -> Check:
        deep: dict[str, set[int]] = {}
        seen = False
        for cpu in self.focus():
            base = self.host.path(f"/sys/devices/system/cpu/cpu{cpu}/cpuidle")
            try:
                states = sorted(p.name for p in base.iterdir() if p.name.startswith("state"))
            except OSError:
                continue
            for state in states:
                latency = self.host.cpu_file(cpu, f"cpuidle/{state}/latency")
                name = self.host.cpu_file(cpu, f"cpuidle/{state}/name") or state
                disabled = self.host.cpu_file(cpu, f"cpuidle/{state}/disable") == "1"
                if latency is None or not latency.isdigit():
                    continue
                seen = True
                if int(latency) > _MAX_IDLE_EXIT_US and not disabled:
                    deep.setdefault(f"{name} ({latency}us)", set()).add(cpu)
        if not seen:
            return Check("cpu idle states", "unknown", "no cpuidle information")
        if deep:
            value = ", ".join(f"{n} on {format_cpulist(c)}" for n, c in sorted(deep.items()))
            return Check(
                "cpu idle states",
                "warn",
                value,
                f"disable idle states with exit latency > {_MAX_IDLE_EXIT_US}us on the "
                "shard cores (cpupower -c <cores> idle-set -D "
                f"{_MAX_IDLE_EXIT_US}) or in the BIOS",
            )
        return Check("cpu idle states", "ok", f"none deeper than {_MAX_IDLE_EXIT_US}us enabled")

    def thp(self) -> Check:
        enabled = _bracketed(self.host.read("/sys/kernel/mm/transparent_hugepage/enabled"))
        defrag = _bracketed(self.host.read("/sys/kernel/mm/transparent_hugepage/defrag"))
        if enabled is None:
            return Check("transparent hugepages", "unknown", "unknown")
        value = f"enabled={enabled} defrag={defrag or 'unknown'}"
        if enabled == "always" or defrag == "always":
            return Check(
                "transparent hugepages",
                "warn",
                value,
                "transparent_hugepage=madvise (always = compaction stalls on page faults)",
            )
        return Check("transparent hugepages", "ok", value)

    def hugepages(self) -> Check:
        meminfo = self.host.read("/proc/meminfo")
        if meminfo is None:
            return Check("huge pages", "unknown", "unknown")
        fields = dict(line.split(":", 1) for line in meminfo.splitlines() if ":" in line)
        total = fields.get("HugePages_Total", "?").strip()
        size = fields.get("Hugepagesize", "?").strip()
        return Check("huge pages", "info", f"{total} reserved of {size}")

    def numa(self) -> Check:
        nodes = self.host.numa_nodes()
        if nodes is None:
            return Check("numa", "unknown", "unknown")
        value = "; ".join(f"node{n}: {format_cpulist(c)}" for n, c in sorted(nodes.items()))
        balancing = self.host.read("/proc/sys/kernel/numa_balancing")
        if len(nodes) > 1 and balancing not in (None, "0"):
            return Check(
                "numa",
                "warn",
                value + "; automatic balancing on",
                "sysctl kernel.numa_balancing=0 (page migration stalls the shard)",
            )
        return Check("numa", "ok" if len(nodes) == 1 else "info", value)

    def nic_irqs(self) -> Check:
        nics = self.host.nic_irqs()
        if nics is None:
            return Check("nic irq affinity", "unknown", "unknown")
        if not nics:
            return Check("nic irq affinity", "unknown", "no hardware network interfaces")
        parts: list[str] = []
        clash: set[int] = set()
        for name, irqs in nics.items():
            cpus: set[int] = set().union(*(i.affinity or set() for i in irqs)) if irqs else set()
            parts.append(f"{name}: {len(irqs)} irqs on {format_cpulist(cpus) or '?'}")
            clash.update(i.number for i in irqs if i.affinity and i.affinity & self.used)
        value = "; ".join(parts)
        if clash:
            rest = format_cpulist((self.online or set()) - self.used) or "<housekeeping cores>"
            return Check(
                "nic irq affinity",
                "warn",
                f"{value}; irqs {format_cpulist(clash)} may land on shard cores",
                f"echo {rest} > /proc/irq/<n>/smp_affinity_list for each NIC irq "
                "(or irqaffinity= on the kernel command line)",
            )
        return Check("nic irq affinity", "ok" if self.used else "info", value)

    def irqbalance(self) -> Check:
        running = self.host.process_running("irqbalance")
        if running is None:
            return Check("irqbalance", "unknown", "unknown")
        if running and self.used:
            return Check(
                "irqbalance",
                "warn",
                "running",
                "set IRQBALANCE_BANNED_CPULIST=<shard cores> in /etc/default/irqbalance "
                "or stop it and pin IRQs by hand",
            )
        return Check("irqbalance", "info", "running" if running else "not running")

    def clocksource(self) -> Check:
        current = self.host.read("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        if current is None:
            return Check("clocksource", "unknown", "unknown")
        if current not in _GOOD_CLOCKSOURCES:
            return Check(
                "clocksource",
                "warn",
                current,
                "use tsc (clocksource=tsc tsc=reliable): other sources make every "
                "clock read a system call",
            )
        return Check("clocksource", "ok", current)


def _bracketed(text: str | None) -> str | None:
    """The selected value of a sysfs choice file: "always [madvise] never" -> "madvise"."""
    if text is None:
        return None
    match = re.search(r"\[(\w[\w+]*)\]", text)
    return match.group(1) if match else text.strip() or None


def _cmdline_cpus(value: str) -> set[int] | None:
    """cpus of an isolcpus/nohz_full/rcu_nocbs value, skipping flag words ("managed_irq,2-5")."""
    if not value:
        return None
    cpus: set[int] = set()
    for part in value.split(","):
        try:
            cpus |= parse_cpulist(part)
        except ValueError:
            continue
    return cpus


def run_doctor(shard_cores: list[set[int]] | None, *, root: Path = Path("/")) -> DoctorReport:
    """Inspect the host (or a copy of its /proc and /sys under ``root``) and report."""
    checks = _Doctor(Host(root), shard_cores).run()
    return DoctorReport(tuple(checks), tuple(frozenset(s) for s in shard_cores or []))


def _cpulist_arg(text: str) -> set[int]:
    try:
        cpus = parse_cpulist(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not cpus:
        raise argparse.ArgumentTypeError("empty cpu list")
    return cpus


def main(argv: Sequence[str] | None = None) -> int:
    """`cift-engine doctor [--shard CPULIST]... [--json] [--strict]`; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="cift-engine doctor", description="Check this host's tuning for the matching engine."
    )
    parser.add_argument(
        "--shard",
        action="append",
        type=_cpulist_arg,
        metavar="CPULIST",
        help="cores of one shard, e.g. 2-3 (repeat per shard)",
    )
    parser.add_argument(
        "--shard-map",
        metavar="FILE",
        help="take the shards' cores from the host's shard map (docs/operations.md, Sharding)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 2 on warnings too")
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("/"),
        help="read proc/ and sys/ under this directory instead of /",
    )
    args = parser.parse_args(argv)
    shards: list[set[int]] | None = args.shard
    if args.shard_map:
        from engine.config import ConfigError
        from engine.shardmap import load_map

        try:
            mapped = [set(s.cores) for s in load_map(args.shard_map).shards if s.cores]
        except ConfigError as e:
            print(f"config error: {e}", file=sys.stderr)
            return 2
        shards = (shards or []) + mapped
    report = run_doctor(shards, root=args.root)
    if args.json:
        sys.stdout.write(
            orjson.dumps(report.to_dict(args.strict), option=orjson.OPT_INDENT_2).decode()
        )
        sys.stdout.write("\n")
    else:
        print(report.table())
    return report.exit_code(args.strict)


if __name__ == "__main__":
    sys.exit(main())
