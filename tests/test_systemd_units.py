"""The production packaging: systemd units (verify + security), the unit installer, the Prometheus
alert rules (promtool) and the Grafana dashboard.

systemd-analyze (Debian package `systemd`) is required; promtool (Debian package `prometheus`)
is used when present. Any diagnostic systemd-analyze prints is a failure: it exits 0 on many
problems (a bad CPU number in a drop-in, an unknown setting) and only says so on stderr.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from engine.units import (
    DEFAULT_DATA_ROOT,
    DEFAULT_EXEC,
    DEFAULT_USER,
    TMPFILES,
    InstallError,
    ShardSpec,
    install_units,
    main,
    plan_units,
    render,
    units_dir,
)

REPO = Path(__file__).resolve().parent.parent
ALERTS = REPO / "deploy/prometheus/alerts.yml"
ALERT_TESTS = REPO / "deploy/prometheus/alerts_test.yml"
DASHBOARD = REPO / "deploy/grafana/cift-engine.json"
OPERATIONS = REPO / "docs/operations.md"
SHIPPED = [
    "cift-engine@.service",
    "cift-engine.target",
    "cift-engine.sysusers",
    "cift-engine.tmpfiles",
    "dropins/20-realtime.conf",
]
# `systemd-analyze security` scores 0 (locked down) to 10 (unprotected); systemd calls < 2 "OK".
# The units score 1.4 (1.5 with the realtime drop-in): what is left open is the network (it is a
# network service), /proc outside the process and W+X memory, each explained in the unit.
EXPOSURE_LIMIT = 2.0

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
PROMTOOL = shutil.which("promtool")
needs_systemd = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze missing: apt-get install systemd"
)
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: apt-get install prometheus"
)


def run(*cmd: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def unit_dir(tmp_path: Path) -> Path:
    """The rendered units as install-units writes them: shard a pinned (+ realtime), b not."""
    plan = plan_units(
        [ShardSpec("a", frozenset({1})), ShardSpec("b")],
        prefix=tmp_path,
        exec_path=Path(sys.executable),  # verify checks that ExecStart's program exists
        realtime=True,
    )
    for f in plan.files:
        path = tmp_path / f.path.relative_to("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f.content)
    return tmp_path / "etc/systemd/system"


def test_shipped_files_are_the_default_rendering() -> None:
    assert units_dir() == REPO / "systemd"
    for name in SHIPPED:
        rendered = render(
            name, user=DEFAULT_USER, data_root=DEFAULT_DATA_ROOT, exec_path=DEFAULT_EXEC
        )
        assert rendered == (REPO / "systemd" / name).read_text(), name


def test_rendering_replaces_user_data_root_and_executable() -> None:
    def rendered(name: str) -> str:
        return render(
            name, user="mx", data_root=Path("/srv/mx"), exec_path=Path("/usr/bin/cift-engine")
        )

    service = rendered("cift-engine@.service")
    assert "User=mx\nGroup=mx\n" in service
    assert "ReadWritePaths=/srv/mx/%i\n" in service
    assert "ExecStart=/usr/bin/cift-engine run \\" in service
    assert "cift-engine" in service and "/var/lib/cift-engine" not in service
    sysusers = rendered("cift-engine.sysusers")
    assert re.search(r"(?m)^u\s+mx\s+-\s+\".*\"\s+/srv/mx\s", sysusers)
    tmpfiles = rendered("cift-engine.tmpfiles")
    assert re.search(r"(?m)^d\s+/srv/mx\s+0750 mx mx\s", tmpfiles)
    assert re.search(r"(?m)^d\s+/etc/cift-engine\s+0750 root mx\s", tmpfiles)


@needs_systemd
@pytest.mark.parametrize(
    "unit", ["cift-engine@a.service", "cift-engine@b.service", "cift-engine.target"]
)
def test_units_verify_without_any_diagnostic(unit_dir: Path, unit: str) -> None:
    assert SYSTEMD_ANALYZE is not None
    done = run(SYSTEMD_ANALYZE, "verify", "--man=no", str(unit_dir / unit), cwd=unit_dir)
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "")


@needs_systemd
def test_verify_harness_catches_a_bad_dropin(unit_dir: Path) -> None:
    """The check above is meaningful: a broken drop-in exits 0 but writes to stderr."""
    assert SYSTEMD_ANALYZE is not None
    bad = unit_dir / "cift-engine@a.service.d/10-cpu.conf"
    bad.write_text("[Service]\nCPUAffinity=1 99999999\n")
    done = run(SYSTEMD_ANALYZE, "verify", "--man=no", str(unit_dir / "cift-engine@a.service"))
    assert "10-cpu.conf" in done.stderr


@needs_systemd
@pytest.mark.parametrize("unit", ["cift-engine@a.service", "cift-engine@b.service"])
def test_security_exposure_is_below_the_limit(unit_dir: Path, unit: str) -> None:
    assert SYSTEMD_ANALYZE is not None
    done = run(SYSTEMD_ANALYZE, "security", "--offline=yes", str(unit_dir / unit), cwd=unit_dir)
    assert done.stderr == ""
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert match, done.stdout[-500:]
    assert float(match.group(1)) <= EXPOSURE_LIMIT, done.stdout


def test_cpu_dropins_pin_cores_and_bind_memory_to_their_node(tmp_path: Path) -> None:
    host = tmp_path / "host"
    for node, cpus in ((0, "0-3"), (1, "4-7")):
        path = host / f"sys/devices/system/node/node{node}/cpulist"
        path.parent.mkdir(parents=True)
        path.write_text(cpus + "\n")
    plan = plan_units(
        [ShardSpec("a", frozenset({4, 5})), ShardSpec("b", frozenset({3, 4 + 2}))],
        prefix=tmp_path / "root",
        exec_path=Path("/usr/bin/cift-engine"),
        host_root=host,
    )
    dropins = {str(f.path): f.content for f in plan.files if f.path.name == "10-cpu.conf"}
    a = dropins["/etc/systemd/system/cift-engine@a.service.d/10-cpu.conf"]
    assert "CPUAffinity=4-5\nNUMAPolicy=bind\nNUMAMask=1\n" in a
    b = dropins["/etc/systemd/system/cift-engine@b.service.d/10-cpu.conf"]
    assert "CPUAffinity=3,6\n" in b and "NUMA" not in b.split("[Service]")[1]
    assert any("cores 3,6 are on several NUMA nodes" in note for note in plan.notes)


def test_tmpfiles_gets_one_data_directory_per_shard(tmp_path: Path) -> None:
    plan = plan_units([ShardSpec("a"), ShardSpec("eq-2")], prefix=tmp_path)
    [tmpfiles] = [f.content for f in plan.files if f.path == TMPFILES]
    assert "d /var/lib/cift-engine/a 0750 cift cift -\n" in tmpfiles
    assert "d /var/lib/cift-engine/eq-2 0750 cift cift -\n" in tmpfiles


def test_dry_run_prints_the_plan_and_changes_nothing(tmp_path: Path) -> None:
    out = io.StringIO()
    plan = install_units(tmp_path, ["a:1", "b"], dry_run=True, out=out)
    assert list(tmp_path.iterdir()) == []
    text = out.getvalue()
    for f in plan.files:
        assert f"write {tmp_path / f.path.relative_to('/')}" in text
    assert f"run: systemd-sysusers --root={tmp_path}" in text
    assert (
        f"run: systemctl --root={tmp_path} enable cift-engine.target cift-engine@a.service" in text
    )
    assert "note: shard a: write" in text  # no /etc/cift-engine/a.toml yet


@needs_systemd
@pytest.mark.skipif(os.geteuid() != 0, reason="systemd-tmpfiles needs root to chown")
def test_install_into_a_root_creates_user_directories_and_enables_shards(tmp_path: Path) -> None:
    for _ in range(2):  # installing again over an existing install is fine
        install_units(tmp_path, ["a:1", "b"], exec_path=Path(sys.executable), out=io.StringIO())
    passwd = (tmp_path / "etc/passwd").read_text()
    [entry] = [line.split(":") for line in passwd.splitlines() if line.startswith("cift:")]
    uid, gid, home, shell = int(entry[2]), int(entry[3]), entry[5], entry[6]
    assert (home, shell) == ("/var/lib/cift-engine", "/usr/sbin/nologin")
    for shard in ("a", "b"):
        data = (tmp_path / "var/lib/cift-engine" / shard).stat()
        assert (data.st_uid, data.st_gid, data.st_mode & 0o777) == (uid, gid, 0o750)
    config = (tmp_path / "etc/cift-engine").stat()
    assert (config.st_uid, config.st_gid, config.st_mode & 0o777) == (0, gid, 0o750)
    wants = tmp_path / "etc/systemd/system/cift-engine.target.wants"
    assert sorted(p.name for p in wants.iterdir()) == [
        "cift-engine@a.service",
        "cift-engine@b.service",
    ]
    assert (tmp_path / "etc/systemd/system/multi-user.target.wants/cift-engine.target").is_symlink()
    assert (tmp_path / "etc/systemd/system/cift-engine@a.service.d/10-cpu.conf").is_file()
    assert not (tmp_path / "etc/systemd/system/cift-engine@b.service.d").exists()


@pytest.mark.parametrize(
    ("shards", "message"),
    [
        ([], "no shards"),
        (["a:1-2", "b:2-3"], "share cores 2"),
        (["a", "a"], "repeat"),
        (["a/b"], "shard name"),
        (["a:x"], "bad cpu list"),
    ],
)
def test_bad_shard_lists_are_refused(tmp_path: Path, shards: list[str], message: str) -> None:
    with pytest.raises(InstallError, match=message):
        install_units(tmp_path, shards, dry_run=True, out=io.StringIO())


def test_cli_reports_bad_arguments_with_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--shard", "a", "--data-root", "relative/dir", "--dry-run"]) == 2
    assert "data root relative/dir must be an absolute path" in capsys.readouterr().err


@needs_promtool
def test_alert_rules_pass_promtool_check_and_their_unit_tests() -> None:
    assert PROMTOOL is not None
    check = run(PROMTOOL, "check", "rules", str(ALERTS))
    assert check.returncode == 0, check.stdout + check.stderr
    tests = run(PROMTOOL, "test", "rules", str(ALERT_TESTS))
    assert tests.returncode == 0, tests.stdout + tests.stderr


def dashboard_panels() -> list[dict[str, object]]:
    doc = orjson.loads(DASHBOARD.read_bytes())
    panels: list[dict[str, object]] = doc["panels"]
    return panels


def dashboard_exprs() -> list[str]:
    exprs = []
    for panel in dashboard_panels():
        targets = panel.get("targets", [])
        assert isinstance(targets, list)
        exprs += [str(t["expr"]) for t in targets]
    return exprs


def test_dashboard_is_valid_grafana_json() -> None:
    doc = orjson.loads(DASHBOARD.read_bytes())
    assert doc["uid"] == "cift-engine"
    assert [v["name"] for v in doc["templating"]["list"]] == ["datasource", "instance"]
    panels = dashboard_panels()
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], object] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert isinstance(grid, dict) and grid["x"] + grid["w"] <= 24
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
    titles = " ".join(str(p["title"]) for p in panels)
    for subject in (
        "Commands in",
        "Rejects by code",
        "Queue depth",
        "Batch size",
        "End-to-end",
        "Journal fsync",
        "Sink lag",
        "Sessions",
    ):
        assert subject in titles


@needs_promtool
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every panel query, loaded as a recording rule."""
    assert PROMTOOL is not None
    rules = [
        {
            "record": f"cift:dashboard_query_{i}",
            "expr": e.replace("$__rate_interval", "5m").replace("$instance", ".*"),
        }
        for i, e in enumerate(dashboard_exprs())
    ]
    path = tmp_path / "dashboard_rules.json"  # JSON is YAML
    path.write_bytes(orjson.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    check = run(PROMTOOL, "check", "rules", str(path))
    assert check.returncode == 0, check.stdout + check.stderr


def metric_names(text: str) -> set[str]:
    names = set(re.findall(r"\b((?:cift|process)_[a-z_]+)", text))
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in names if not n.startswith("cift:")}


def test_every_metric_the_alerts_and_dashboard_use_is_listed_in_the_operations_doc() -> None:
    doc = OPERATIONS.read_text()
    listed_section = doc.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    listed = metric_names(listed_section)
    used = metric_names(ALERTS.read_text()) | metric_names(" ".join(dashboard_exprs()))
    assert used - listed == set()
