"""Versioned schema migrations, one directory per backend: `NNNN_name.sql`, applied in version
order by `migrate()` of each backend, each recorded in `schema_migrations` (version, name,
checksum) so that running them again is a no-op; a recorded migration whose file has changed
since is an error (`MigrationError`), never silently re-run."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

__all__ = ["Migration", "MigrationError", "check_applied", "migrations", "statements"]

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations(backend: str) -> list[Migration]:
    """The migration files of `backend` ("postgres" or "clickhouse"), in version order."""
    found = []
    for f in resources.files(__package__).joinpath(backend).iterdir():
        m = _NAME.match(f.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), f.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{backend}: two migrations with the same version")
    return found


def statements(sql: str) -> list[str]:
    """Split a migration into statements (on `;` at a line end; `--` comments dropped)."""
    lines = [ln for ln in sql.splitlines() if not ln.lstrip().startswith("--")]
    parts = re.split(r";\s*$", "\n".join(lines), flags=re.MULTILINE)
    return [p.strip() for p in parts if p.strip()]


def check_applied(backend: str, applied: dict[int, str], files: list[Migration]) -> None:
    """Raise if a recorded migration's file changed (or vanished)."""
    by_version = {m.version: m for m in files}
    for version, checksum in applied.items():
        m = by_version.get(version)
        if m is None:
            raise MigrationError(f"{backend}: migration {version} is recorded but has no file")
        if m.checksum != checksum:
            raise MigrationError(
                f"{backend}: migration {version}_{m.name} changed after it was applied"
            )
