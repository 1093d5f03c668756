"""`cift-engine install-units`: put the systemd units, the user and the data directories in place.

From the files in systemd/ (the single source: they are valid units as shipped, with the defaults
below) it renders, for a list of shards:

- ``/etc/systemd/system/cift-engine@.service`` and ``cift-engine.target``, with the real
  executable, service user and data root;
- per shard with cores, ``cift-engine@<shard>.service.d/10-cpu.conf`` (CPUAffinity, and NUMA
  memory binding when the cores sit on one node of this host), and with ``realtime``
  ``20-realtime.conf`` (SCHED_FIFO);
- ``/etc/sysusers.d/cift-engine.conf`` (the user) and ``/etc/tmpfiles.d/cift-engine.conf`` (data
  root, one data directory per shard, /etc/cift-engine);

then runs systemd-sysusers and systemd-tmpfiles on those two files, reloads systemd and enables the
target and each shard (nothing is started). ``prefix`` installs into another root (an image being
built, a test directory) with the tools' ``--root``. ``dry_run`` prints the plan, changes nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from engine.hostinfo import Host, format_cpulist, parse_cpulist
from engine.shardmap import SHARD_NAME

__all__ = [
    "InstallError",
    "Plan",
    "ShardSpec",
    "install_units",
    "main",
    "parse_shard",
    "plan_units",
    "render",
]

DEFAULT_USER = "cift"
DEFAULT_DATA_ROOT = Path("/var/lib/cift-engine")
DEFAULT_EXEC = Path("/opt/cift-engine/bin/cift-engine")
UNIT_DIR = Path("/etc/systemd/system")
SYSUSERS = Path("/etc/sysusers.d/cift-engine.conf")
TMPFILES = Path("/etc/tmpfiles.d/cift-engine.conf")
SERVICE = "cift-engine@.service"
TARGET = "cift-engine.target"

_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}\Z")


class InstallError(Exception):
    """A bad argument or a failed installation step; the message says which and why."""


@dataclass(frozen=True)
class ShardSpec:
    """One shard: its name (the unit instance, config /etc/cift-engine/<name>.toml) and cores."""

    name: str
    cpus: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if not SHARD_NAME.match(self.name):
            raise InstallError(
                f"shard name {self.name!r}: use letters, digits, '-' and '_' (at most 64)"
            )


def parse_shard(text: str) -> ShardSpec:
    """``NAME`` or ``NAME:CPULIST`` (e.g. ``eq-a:2-3``) as given to ``--shard``."""
    name, _, cpus = text.partition(":")
    try:
        return ShardSpec(name, frozenset(parse_cpulist(cpus)))
    except ValueError as exc:
        raise InstallError(f"--shard {text!r}: {exc}") from None


@dataclass(frozen=True)
class FileAction:
    path: Path  # where it ends up on the target system (under the prefix)
    content: str
    mode: int = 0o644


@dataclass(frozen=True)
class Plan:
    prefix: Path
    files: tuple[FileAction, ...]
    commands: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        lines = [f"install into {self.prefix}"]
        for f in self.files:
            lines.append(f"\nwrite {_under(self.prefix, f.path)} (mode {f.mode:o}):")
            lines += [f"    {line}" if line else "" for line in f.content.splitlines()]
        lines.append("")
        lines += [f"run: {' '.join(cmd)}" for cmd in self.commands]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _under(prefix: Path, path: Path) -> Path:
    return prefix / path.relative_to("/")


def units_dir() -> Path:
    """Where the shipped unit files are: $CIFT_UNITS_DIR, the source tree, or share/."""
    candidates = [
        Path(os.environ["CIFT_UNITS_DIR"]) if os.environ.get("CIFT_UNITS_DIR") else None,
        Path(__file__).resolve().parent.parent / "systemd",
        Path(sys.prefix) / "share" / "cift-engine" / "systemd",
    ]
    for candidate in candidates:
        if candidate is not None and (candidate / SERVICE).is_file():
            return candidate
    raise InstallError(
        "cannot find the systemd unit files (systemd/cift-engine@.service); set CIFT_UNITS_DIR"
    )


def render(name: str, *, user: str, data_root: Path, exec_path: Path) -> str:
    """One shipped file (``cift-engine@.service``, ``cift-engine.target``, ``cift-engine.sysusers``,
    ``cift-engine.tmpfiles``, ``dropins/20-realtime.conf``) with the given values in place of the
    defaults. With the defaults it returns the file unchanged."""
    text = (units_dir() / name).read_text()
    text = text.replace(str(DEFAULT_EXEC), str(exec_path))
    text = text.replace(str(DEFAULT_DATA_ROOT), str(data_root))
    if name == SERVICE:
        text = re.sub(r"(?m)^(User|Group)=.*$", rf"\1={user}", text)
    elif name == "cift-engine.sysusers":
        text = re.sub(r"(?m)^u(\s+)\S+", rf"u\g<1>{user}", text)
    elif name == "cift-engine.tmpfiles":
        text = re.sub(
            r"(?m)^(d\s+\S+\s+\S+\s+)(\S+)(\s+)(\S+)",
            lambda m: m.group(1) + (user if m.group(2) != "root" else "root") + m.group(3) + user,
            text,
        )
    return text


def _cpu_dropin(shard: ShardSpec, host: Host) -> tuple[str, str | None]:
    """The 10-cpu.conf drop-in for a shard, and a note when its memory cannot be bound."""
    nodes = {host.numa_node_of(cpu) for cpu in shard.cpus}
    cores = format_cpulist(shard.cpus)
    lines = [
        f"# Written by `cift-engine install-units` for shard {shard.name}: cores {cores}.",
        "[Service]",
        f"CPUAffinity={cores}",
    ]
    note = None
    if len(nodes) == 1 and None not in nodes:
        [node] = nodes
        lines.insert(1, f"# Memory bound to NUMA node {node}, the node of those cores.")
        lines += ["NUMAPolicy=bind", f"NUMAMask={node}"]
    else:
        where = "several NUMA nodes" if None not in nodes else "no known NUMA node"
        note = f"shard {shard.name}: cores {cores} are on {where}; memory is not NUMA-bound"
    return "\n".join(lines) + "\n", note


def plan_units(
    shards: Sequence[ShardSpec],
    *,
    prefix: Path = Path("/"),
    user: str = DEFAULT_USER,
    data_root: Path = DEFAULT_DATA_ROOT,
    exec_path: Path | None = None,
    realtime: bool = False,
    enable: bool = True,
    host_root: Path = Path("/"),
) -> Plan:
    """What ``install_units`` would write and run; raises InstallError on bad arguments."""
    if not shards:
        raise InstallError("no shards given (--shard NAME[:CPULIST], once per shard)")
    names = [s.name for s in shards]
    if len(set(names)) != len(names):
        raise InstallError(f"shard names repeat: {names}")
    for i, a in enumerate(shards):
        for b in shards[i + 1 :]:
            if a.cpus & b.cpus:
                shared = format_cpulist(a.cpus & b.cpus)
                raise InstallError(f"shards {a.name} and {b.name} share cores {shared}")
    if not _USER_NAME.match(user):
        raise InstallError(f"user name {user!r} is not a valid system user name")
    if not data_root.is_absolute():
        raise InstallError(f"data root {data_root} must be an absolute path")
    if not prefix.is_absolute():
        raise InstallError(f"prefix {prefix} must be an absolute path")
    exe = exec_path or Path(sys.executable).parent / "cift-engine"
    if not exe.is_absolute():
        raise InstallError(f"executable {exe} must be an absolute path")

    def rendered(name: str) -> str:
        return render(name, user=user, data_root=data_root, exec_path=exe)

    tmpfiles = rendered("cift-engine.tmpfiles")
    tmpfiles += "".join(f"d {data_root / s.name} 0750 {user} {user} -\n" for s in shards)
    files = [
        FileAction(UNIT_DIR / SERVICE, rendered(SERVICE)),
        FileAction(UNIT_DIR / TARGET, rendered(TARGET)),
        FileAction(SYSUSERS, rendered("cift-engine.sysusers")),
        FileAction(TMPFILES, tmpfiles),
    ]
    notes: list[str] = []
    host = Host(host_root)
    online = host.online_cpus()
    for shard in shards:
        if online is not None and shard.cpus - online:
            offline = format_cpulist(shard.cpus - online)
            notes.append(f"shard {shard.name}: cores {offline} are not online on this host")
        dropins = UNIT_DIR / f"cift-engine@{shard.name}.service.d"
        if shard.cpus:
            content, note = _cpu_dropin(shard, host)
            files.append(FileAction(dropins / "10-cpu.conf", content))
            notes += [note] if note else []
        if realtime:
            files.append(
                FileAction(dropins / "20-realtime.conf", rendered("dropins/20-realtime.conf"))
            )
        config = _under(prefix, Path("/etc/cift-engine") / f"{shard.name}.toml")
        if not config.exists():
            notes.append(
                f"shard {shard.name}: write {config} before starting it (AssertPathExists)"
            )
    if realtime and not all(s.cpus for s in shards):
        notes.append("realtime without cores for every shard: FIFO threads can starve the kernel")
    if prefix == Path("/") and not exe.exists():
        notes.append(f"{exe} does not exist: install the package there or pass --exec")

    root = () if prefix == Path("/") else (f"--root={prefix}",)
    commands: list[tuple[str, ...]] = [
        ("systemd-sysusers", *root, str(_under(prefix, SYSUSERS))),
        ("systemd-tmpfiles", "--create", *root, str(_under(prefix, TMPFILES))),
    ]
    if prefix == Path("/") and Path("/run/systemd/system").is_dir():
        commands.append(("systemctl", "daemon-reload"))
    if enable:
        units = [TARGET, *(f"cift-engine@{name}.service" for name in names)]
        commands.append(("systemctl", *root, "enable", *units))
    notes.append("start with: systemctl start cift-engine.target (or cift-engine@<shard>)")
    return Plan(prefix, tuple(files), tuple(commands), tuple(notes))


def _write(path: Path, content: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(content)
    tmp.chmod(mode)
    os.replace(tmp, path)


def install_units(
    prefix: Path | str,
    shards: Sequence[ShardSpec | str],
    user: str = DEFAULT_USER,
    data_root: Path | str = DEFAULT_DATA_ROOT,
    dry_run: bool = False,
    *,
    exec_path: Path | None = None,
    realtime: bool = False,
    enable: bool = True,
    host_root: Path = Path("/"),
    out: TextIO | None = None,
) -> Plan:
    """Render and install the units, user and directories for ``shards`` (see the module doc).

    ``prefix`` is the root to install into ("/" on the host itself); shards are ShardSpecs or
    ``NAME[:CPULIST]`` strings. With ``dry_run`` the plan is printed to ``out`` (stdout) and
    nothing changes. Raises InstallError when an argument is bad or a step fails (the step's own
    output included).
    """
    stream = out if out is not None else sys.stdout
    prefix = Path(prefix).absolute()
    plan = plan_units(
        [parse_shard(s) if isinstance(s, str) else s for s in shards],
        prefix=prefix,
        user=user,
        data_root=Path(data_root),
        exec_path=exec_path,
        realtime=realtime,
        enable=enable,
        host_root=host_root,
    )
    if dry_run:
        print(plan.describe(), file=stream)
        return plan
    if prefix == Path("/") and os.geteuid() != 0:
        raise InstallError("installing into / needs root (or use --dry-run / --prefix)")
    for f in plan.files:
        _write(_under(prefix, f.path), f.content, f.mode)
        print(f"wrote {_under(prefix, f.path)}", file=stream)
    for cmd in plan.commands:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise InstallError(f"{cmd[0]}: {exc}") from None
        if done.returncode != 0:
            raise InstallError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
        print(f"ran {' '.join(cmd)}", file=stream)
    for note in plan.notes:
        print(f"note: {note}", file=stream)
    return plan


def main(argv: Sequence[str] | None = None) -> int:
    """`cift-engine install-units --shard NAME[:CPULIST]... [options]`; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="cift-engine install-units",
        description="Install the systemd units, user and data directories for the shards.",
    )
    parser.add_argument(
        "--shard",
        action="append",
        default=[],
        metavar="NAME[:CPULIST]",
        help="a shard and the cores it is pinned to, e.g. eq-a:2-3 (repeat)",
    )
    parser.add_argument("--user", default=DEFAULT_USER, help="service user (default: cift)")
    parser.add_argument(
        "--data-root",
        type=Path,
        default=DEFAULT_DATA_ROOT,
        help="parent of the per-shard data directories",
    )
    parser.add_argument(
        "--exec",
        dest="exec_path",
        type=Path,
        default=None,
        help="the cift-engine executable (default: beside this Python)",
    )
    parser.add_argument(
        "--prefix",
        type=Path,
        default=Path("/"),
        help="install into this root instead of / (image builds)",
    )
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="also install the SCHED_FIFO drop-in for every shard",
    )
    parser.add_argument(
        "--no-enable",
        dest="enable",
        action="store_false",
        help="do not enable the target and the shards",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    args = parser.parse_args(argv)
    try:
        install_units(
            args.prefix,
            args.shard,
            args.user,
            args.data_root,
            args.dry_run,
            exec_path=args.exec_path,
            realtime=args.realtime,
            enable=args.enable,
        )
    except InstallError as exc:
        print(f"cift-engine install-units: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
