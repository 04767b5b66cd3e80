"""Real databases as sources: SQLite (a full `qi run`) and a real PostgreSQL server.

The PostgreSQL test starts a throw-away server from Debian's ``postgresql`` package (binaries in
``/usr/lib/postgresql/<version>/bin``) with ``initdb`` and ``pg_ctl`` on a free loopback port, in a
temporary data folder owned by an unprivileged user when the tests run as root (PostgreSQL refuses
to run as root), loads the demo with ``COPY``, runs ``qi check`` and workbook 01 against it, and
stops the server. Without the binaries it is skipped with the reason, except on CI (``CI=true``),
where it fails: `.ci/run` installs the package.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from support import skip_or_fail

from qi_helpers.cli import main
from qi_helpers.demo.health_system import CONTRACT_TABLES

ROOT = Path(__file__).resolve().parents[2]


def _project(root: Path, tables: dict[str, dict], demo_project: Path) -> Path:
    """A project folder with the committed parameters and workbooks and these table sources."""
    shutil.copytree(demo_project / "parameters", root / "parameters")
    shutil.copytree(demo_project / "workbooks", root / "workbooks")
    path = root / "parameters" / "project.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["data"] = {"tables": tables}
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return root


# --- SQLite ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_qi_run_on_a_sqlite_database(demo_project, demo_tables, tmp_path, capsys):
    root = tmp_path / "sqlite_project"
    (root / "data").mkdir(parents=True)
    with sqlite3.connect(root / "data" / "health.db") as con:
        for name in CONTRACT_TABLES:
            demo_tables[name].to_sql(f"qi_{name}", con, index=False)
    tables = {n: {"url": "sqlite:///data/health.db", "table": f"qi_{n}"} for n in CONTRACT_TABLES}
    tables["staff"] = {  # a query and renamed columns work too
        "url": "sqlite:///data/health.db",
        "query": "SELECT staff_id AS id, role, fte, home_unit FROM qi_staff",
        "columns": {"id": "staff_id"},
    }
    _project(root, tables, demo_project)
    assert main(["check", "--project", str(root)]) == 0
    assert "sqlite:///" in capsys.readouterr().out
    assert main(["run", "--project", str(root), "--jobs", "2", "--quiet"]) == 0
    registry = pd.read_parquet(root / "outputs" / "data" / "registry.parquet")
    assert len(registry) >= 4
    assert (root / "outputs" / "site" / "index.html").is_file()
    results = list((root / "outputs" / "data" / "results").glob("*.parquet"))
    assert len(results) == len(registry)


# --- PostgreSQL -----------------------------------------------------------------------------------


def _pg_bin() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unprivileged_user() -> str | None:
    """A user to run the server as when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    pytest.fail("running as root, but neither the `postgres` nor the `nobody` user exists")


def _require_pg_bin() -> Path:
    """The PostgreSQL binaries, or skip (locally) or fail (on CI) saying why."""
    bindir = _pg_bin()
    if bindir is None:
        reason = (
            "PostgreSQL binaries not found in /usr/lib/postgresql/*/bin "
            "(apt-get install postgresql)"
        )
        skip_or_fail(reason, on_ci="on CI they must be installed (.ci/run does it)")
    return bindir


def test_missing_postgresql_skips_locally_but_fails_on_ci(monkeypatch):
    monkeypatch.setattr(glob, "glob", lambda pattern: [])
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="apt-get install postgresql"):
        _require_pg_bin()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="on CI they must be installed"):
        _require_pg_bin()


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A running PostgreSQL server for this module; yields its SQLAlchemy URL."""
    bindir = _require_pg_bin()
    user = _unprivileged_user()
    base = Path(tempfile.mkdtemp(prefix="qi-postgres-"))
    data, log = base / "data", base / "server.log"
    port = _free_port()

    def as_user(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(a) for a in args]
        if user:
            command = ["runuser", "-u", user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)

    try:
        if user:
            info = pwd.getpwnam(user)
            os.chown(base, info.pw_uid, info.pw_gid)
        as_user(
            bindir / "initdb",
            "-D",
            data,
            "-U",
            "qi",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        )
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
        started = as_user(
            bindir / "pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start",
            check=False,
        )  # fmt: skip
        if started.returncode != 0:
            text = log.read_text() if log.exists() else ""
            pytest.fail(f"PostgreSQL did not start: {started.stderr}\n{text}")
        yield f"postgresql+psycopg://qi@127.0.0.1:{port}/postgres"
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"PostgreSQL set-up failed: {exc.cmd}: {exc.stderr}")
    finally:
        if (data / "postmaster.pid").exists():
            as_user(bindir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(base, ignore_errors=True)


def _load(url: str, tables: dict[str, pd.DataFrame], folder: Path) -> None:
    """Create the tables (types from pandas) and fill them with COPY from the demo CSV files."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        for name in CONTRACT_TABLES:
            tables[name].head(0).to_sql(name, engine, schema="qi", index=False, if_exists="fail")
            raw = engine.raw_connection()
            try:
                with raw.cursor() as cur:
                    columns = ", ".join(f'"{c}"' for c in tables[name].columns)
                    sql = f"COPY qi.{name} ({columns}) FROM STDIN WITH (FORMAT csv, HEADER true)"
                    with cur.copy(sql) as copy, (folder / f"{name}.csv").open("rb") as f:
                        while chunk := f.read(1 << 20):
                            copy.write(chunk)
                raw.commit()
            finally:
                raw.close()
    finally:
        engine.dispose()


def test_postgresql_check_and_workbook_01(postgres, demo_project, demo_tables, tmp_path, capsys):
    import papermill
    import sqlalchemy as sa

    engine = sa.create_engine(postgres)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA qi"))
    engine.dispose()
    _load(postgres, demo_tables, demo_project / "data" / "demo")

    tables = {n: {"url": postgres, "table": f"qi.{n}"} for n in CONTRACT_TABLES}
    tables["activities"] = {
        "url": postgres,
        "query": "SELECT * FROM qi.activities ORDER BY timestamp, encounter_id",
    }
    root = _project(tmp_path / "pg_project", tables, demo_project)
    assert main(["check", "--project", str(root)]) == 0
    out = capsys.readouterr().out
    assert "0 error(s)" in out and "postgresql+psycopg://qi@127.0.0.1" in out

    broken = dict(tables, staff={"url": postgres, "table": "qi.roster"})
    bad_root = _project(tmp_path / "pg_broken", broken, demo_project)
    assert main(["check", "--project", str(bad_root)]) == 1
    assert "table qi.roster: table not found" in capsys.readouterr().out

    executed = tmp_path / "01.ipynb"
    papermill.execute_notebook(
        str(root / "workbooks" / "01_identify_microsystems.ipynb"),
        str(executed),
        parameters={"project_root": str(root), "interactive": False},
        cwd=str(root / "workbooks"),
        kernel_name="python3",
        progress_bar=False,
    )
    registry = pd.read_parquet(root / "outputs" / "data" / "registry.parquet")
    assert len(registry) >= 4
