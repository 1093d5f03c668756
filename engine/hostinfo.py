"""Read-only facts about a Linux host from /proc and /sys, for `doctor` and the unit installer.

Everything is read under a root directory ("/" for this machine; a copy of proc/ and sys/ in
tests). A file that is missing or unreadable reads as None: callers report "unknown".
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Host", "Irq", "format_cpulist", "parse_cpulist"]

_PCI_ADDRESS = re.compile(r"[0-9a-f]{4,}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")


def parse_cpulist(text: str) -> set[int]:
    """Kernel cpulist syntax ("0-3,8,10-11", "" = none) to a set. ValueError on bad input."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"bad cpu list {text!r}")
        first, last = int(lo), int(hi) if sep else int(lo)
        if last < first:
            raise ValueError(f"bad cpu range {part!r} in {text!r}")
        cpus.update(range(first, last + 1))
    return cpus


def format_cpulist(cpus: Iterable[int]) -> str:
    """A set of cpus in kernel cpulist syntax, ranges collapsed: {0,1,2,5} -> "0-2,5"."""
    ordered = sorted(set(cpus))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


@dataclass(frozen=True)
class Irq:
    number: int
    description: str  # chip, hw irq and handler names from /proc/interrupts
    affinity: frozenset[int] | None  # cpus it may be delivered to; None when unreadable


class Host:
    """Read-only view of a host's /proc and /sys, rooted at ``root`` ("/" for this machine)."""

    def __init__(self, root: Path = Path("/")) -> None:
        self.root = root

    def path(self, rel: str) -> Path:
        return self.root / rel.lstrip("/")

    def read(self, rel: str) -> str | None:
        try:
            return self.path(rel).read_text(errors="replace").strip()
        except OSError:
            return None

    def cpulist(self, rel: str) -> set[int] | None:
        text = self.read(rel)
        if text is None or text == "(null)":
            return None if text is None else set()
        try:
            return parse_cpulist(text)
        except ValueError:
            return None

    def online_cpus(self) -> set[int] | None:
        return self.cpulist("/sys/devices/system/cpu/online")

    def cpu_model(self) -> str | None:
        text = self.read("/proc/cpuinfo") or ""
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "cpu model"):
                return value.strip()
        return None

    def cmdline(self) -> dict[str, str] | None:
        """Kernel boot parameters (name -> value, "" for flags); None when unreadable."""
        text = self.read("/proc/cmdline")
        if text is None:
            return None
        params: dict[str, str] = {}
        for word in text.split():
            if word == "--":
                break
            key, _, value = word.partition("=")
            params[key] = value
        return params

    def numa_node_of(self, cpu: int) -> int | None:
        for node, cpus in (self.numa_nodes() or {}).items():
            if cpu in cpus:
                return node
        return None

    def cpu_file(self, cpu: int, rel: str) -> str | None:
        return self.read(f"/sys/devices/system/cpu/cpu{cpu}/{rel}")

    def l3_of(self, cpu: int) -> frozenset[int] | None:
        """The cpus sharing ``cpu``'s last-level (L3) cache: its CCX on EPYC."""
        base = self.path(f"/sys/devices/system/cpu/cpu{cpu}/cache")
        try:
            indexes = sorted(p.name for p in base.iterdir() if p.name.startswith("index"))
        except OSError:
            return None
        for index in indexes:
            if self.cpu_file(cpu, f"cache/{index}/level") == "3":
                shared = f"/sys/devices/system/cpu/cpu{cpu}/cache/{index}/shared_cpu_list"
                cpus = self.cpulist(shared)
                return frozenset(cpus) if cpus else None
        return None

    def thread_siblings(self, cpu: int) -> set[int]:
        """Hardware threads sharing ``cpu``'s physical core (including itself; {cpu} if unknown)."""
        path = f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"
        return self.cpulist(path) or {cpu}

    def numa_nodes(self) -> dict[int, set[int]] | None:
        base = self.path("/sys/devices/system/node")
        try:
            names = [p.name for p in base.iterdir() if re.fullmatch(r"node\d+", p.name)]
        except OSError:
            return None
        nodes = {int(n[4:]): self.cpulist(f"/sys/devices/system/node/{n}/cpulist") for n in names}
        return {node: cpus for node, cpus in nodes.items() if cpus is not None} or None

    def irqs(self) -> list[Irq] | None:
        text = self.read("/proc/interrupts")
        if text is None:
            return None
        rows = text.splitlines()
        ncpu = len(rows[0].split()) if rows else 0
        irqs = []
        for row in rows[1:]:
            head, _, rest = row.partition(":")
            if not head.strip().isdigit():
                continue
            fields = rest.split()
            description = " ".join(fields[ncpu:])
            number = int(head)
            affinity = self.cpulist(f"/proc/irq/{number}/smp_affinity_list")
            irqs.append(Irq(number, description, frozenset(affinity) if affinity else None))
        return irqs

    def nic_irqs(self) -> dict[str, list[Irq]] | None:
        """IRQs of each network interface backed by a device (not lo, bridges, veths)."""
        irqs = self.irqs()
        if irqs is None:
            return None
        try:
            ifaces = sorted(p for p in self.path("/sys/class/net").iterdir() if p.name != "lo")
        except OSError:
            return None
        found: dict[str, list[Irq]] = {}
        for iface in ifaces:
            device = iface / "device"
            if not device.exists():
                continue
            real = device.resolve()
            # The PCI function owns the interrupts; a virtio NIC (device "virtio2") sits under one.
            pci = real if _PCI_ADDRESS.fullmatch(real.name) else real.parent
            tokens = {iface.name, real.name}
            if _PCI_ADDRESS.fullmatch(pci.name):
                tokens.add(pci.name)
            msi: set[int] = set()
            for candidate in {real / "msi_irqs", pci / "msi_irqs"}:
                with contextlib.suppress(OSError):
                    msi.update(int(p.name) for p in candidate.iterdir() if p.name.isdigit())
            pattern = re.compile(
                "|".join(rf"(?<![\w]){re.escape(t)}(?![\w])" for t in sorted(tokens) if t)
            )
            found[iface.name] = [
                irq for irq in irqs if irq.number in msi or pattern.search(irq.description)
            ]
        return found

    def process_running(self, comm: str) -> bool | None:
        try:
            entries = [p for p in self.path("/proc").iterdir() if p.name.isdigit()]
        except OSError:
            return None
        for entry in entries:
            try:
                if (entry / "comm").read_text().strip() == comm:
                    return True
            except OSError:
                continue
        return False
