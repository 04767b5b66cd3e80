"""What the tests share: the rule for missing tools, reading pages, tiny projects, JupyterLab.

- the project folder (``ROOT``), Chromium and how tests start it, :func:`skip_or_fail` (a test
  that needs a missing tool skips with its reason, and fails under ``CI=true``);
- :class:`Dom`, :func:`parse` and :func:`live_markup`: a page's elements, attributes and text;
- :func:`make_tiny_project` and :func:`run_tiny_project`: the fixture workbooks
  (``tests/fixtures/notebooks/``) do what the real ones do in miniature, on a few demo rows;
- :func:`prepare_lab_project`, :func:`run_workbook` and :class:`LabServer`: a project with
  workbook 01's outputs, and a headless JupyterLab on a loopback port.

The pytest fixtures are in ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from qi_helpers.demo.health_system import CONTRACT_TABLES, demo_table_specs

# ---- Missing tools, the project folder -----------------------------------------------------------
#: The project folder (the checkout), and the tests folder.
ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"

#: Debian's Chromium (``apt-get install chromium``; .ci/run installs it) and how tests start it.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def skip_or_fail(reason: str, *, on_ci: str = "") -> None:
    """Skip a test that needs a missing tool, with the reason; under ``CI=true``, fail instead.

    ``on_ci`` is added to the failure message (e.g. what installs the tool on CI).
    """
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but the test cannot run: {reason}{'; ' + on_ci if on_ci else ''}")
    pytest.skip(reason)


def need_chromium() -> None:
    """Skip (locally) or fail (on CI) unless Chromium and Playwright for Python are there."""
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the Python package playwright is not installed (dev extra)")
    if missing:
        skip_or_fail("; ".join(missing))


def copy_project_skeleton(target: Path) -> Path:
    """Copy the committed parameters and workbooks into ``target`` (a new project folder)."""
    shutil.copytree(ROOT / "parameters", target / "parameters")
    shutil.copytree(ROOT / "workbooks", target / "workbooks")
    return target


# ---- Reading a page as a browser would -----------------------------------------------------------
class Dom(HTMLParser):
    """Collects elements, attributes and text of an HTML fragment (the standard library parser)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(fragment: str) -> Dom:
    dom = Dom()
    dom.feed(fragment)
    dom.close()
    return dom


def live_markup(dom: Dom) -> list[str]:
    """Everything in a fragment that could run, restyle the page or make a request."""
    problems = []
    for tag, attrs in dom.elements:
        if tag in ("script", "style", "link", "iframe", "object", "embed", "meta", "base", "svg"):
            problems.append(f"<{tag}>")
        for name, value in attrs.items():
            if name.startswith("on") or name in ("style", "srcset", "formaction", "action"):
                problems.append(f"{tag}[{name}]")
            if name in ("src", "href") and value:
                url = value.strip().lower()
                if url.startswith(("javascript:", "vbscript:")):
                    problems.append(f"{tag}[{name}={value}]")
                if name == "src" and not url.startswith("data:image/"):
                    problems.append(f"{tag}[src={value}]")
    return problems


# ---- A tiny project for the runner tests ---------------------------------------------------------
NOTEBOOKS = TESTS / "fixtures" / "notebooks"


def make_tiny_project(root: Path, demo_dir: Path, *, units: int = 3, rows: int = 40) -> Path:
    """Write a project at ``root``: the fixture workbooks and the first ``rows`` lines of each
    demo table (valid for ``qi check``), with ``units`` microsystems."""
    (root / "workbooks").mkdir(parents=True)
    for notebook in NOTEBOOKS.glob("*.ipynb"):
        shutil.copy(notebook, root / "workbooks" / notebook.name)
    data = root / "data"
    data.mkdir()
    for table in CONTRACT_TABLES:
        lines = (demo_dir / f"{table}.csv").read_text(encoding="utf-8").splitlines()[:rows]
        (data / f"{table}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = {
        "project": {"name": "Tiny", "organisation": "Tiny test organisation"},
        "data": {"tables": demo_table_specs("data")},
        "outputs": "outputs",
        "identify": {"max_units": units},
        "analysis": {"period": "week"},
        "publish": {"small_cell_threshold": 11},
    }
    (root / "parameters" / "microsystems").mkdir(parents=True)
    (root / "parameters" / "project.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return root


def set_microsystem(root: Path, microsystem_id: str, **values) -> Path:
    """Write ``parameters/microsystems/<id>.yaml``."""
    path = root / "parameters" / "microsystems" / f"{microsystem_id}.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


def run_tiny_project(root: Path, demo_dir: Path, *, units: int = 2) -> Path:
    """A tiny project after one run of 01, 02, 03 (once per unit) and 04, not published."""
    from qi_helpers.project import load_project
    from qi_helpers.run import runner

    make_tiny_project(root, demo_dir, units=units)
    results = runner.run(load_project(root), jobs=1, publish=False, echo=lambda *a: None)
    assert [r.status for r in results] == ["ok"] * (units + 3)
    return root


# ---- A prepared project and a running JupyterLab -------------------------------------------------
BIN = Path(sys.executable).parent
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

_PREPARED: dict[str, Path] = {}


def run_workbook(root: Path, name: str, output: Path, **parameters) -> dict:
    """Execute ``workbooks/<name>`` of the project with papermill; return the executed notebook."""
    import papermill

    output.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        str(root / "workbooks" / name),
        str(output),
        parameters={"project_root": str(root), **parameters},
        cwd=str(root / "workbooks"),
        progress_bar=False,
        kernel_name="python3",
    )
    return json.loads(output.read_text(encoding="utf-8"))


def prepare_lab_project(tmp_path_factory, demo_tables) -> Path:
    """A project with the demo data and workbook 01's outputs (made once per test session).

    The project is a private copy, so tests that write into it (outputs, screenshots) do not
    touch the shared ``demo_project``.
    """
    if "root" not in _PREPARED:
        from qi_helpers.demo.health_system import write_demo

        root = copy_project_skeleton(tmp_path_factory.mktemp("lab_project"))
        write_demo(demo_tables, root / "data" / "demo")
        run_workbook(
            root,
            "01_identify_microsystems.ipynb",
            tmp_path_factory.mktemp("executed") / "01_identify_microsystems.ipynb",
            interactive=False,
        )
        _PREPARED["root"] = root
    return _PREPARED["root"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LabServer:
    """A headless JupyterLab serving ``root`` on a free loopback port, with a random token.

    Parameters
    ----------
    root : Path
        The folder the server serves (the project root).
    home : Path
        An empty folder for this server's Jupyter and IPython settings, runtime files and log, so
        that the user's own settings (and extensions' state) do not interfere.
    """

    def __init__(self, root: Path, home: Path) -> None:
        self.root = Path(root)
        self.home = Path(home)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = self.home / "jupyter-lab.log"
        self.process: subprocess.Popen | None = None
        self._log = None

    def command(self) -> list[str]:
        """The ``jupyter lab`` command line."""
        root_flag = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        return [
            str(BIN / "jupyter"),
            "lab",
            "--no-browser",
            "--ServerApp.open_browser=False",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            *root_flag,
        ]

    def environment(self) -> dict[str, str]:
        """The environment: isolated settings folders, the venv first on PATH."""
        env = dict(os.environ)
        for name, sub in [
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_DATA_DIR", "data"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("IPYTHONDIR", "ipython"),
        ]:
            folder = self.home / sub
            folder.mkdir(parents=True, exist_ok=True)
            env[name] = str(folder)
        # User settings and workspaces in the temp folder too: no news or update checks (no
        # request leaves the machine, no toast covers the page), and every cell attached to the
        # page (no windowing) so that a test can read all of them.
        settings = self.home / "config" / "lab" / "user-settings"
        env["JUPYTERLAB_SETTINGS_DIR"] = str(settings)
        env["JUPYTERLAB_WORKSPACES_DIR"] = str(self.home / "config" / "lab" / "workspaces")
        for plugin, values in [
            ("apputils-extension/notification", {"fetchNews": "false", "checkForUpdates": False}),
            ("notebook-extension/tracker", {"windowingMode": "none"}),
        ]:
            path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values), encoding="utf-8")
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        for name in ("MPLBACKEND", "JUPYTER_TOKEN", "JUPYTER_PATH", "JUPYTER_PREFER_ENV_PATH"):
            env.pop(name, None)
        return env

    def start(self, timeout: float = 120.0) -> LabServer:
        """Start the server and wait until ``/api/status`` answers (raises on timeout or exit)."""
        self._log = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.root,
            env=self.environment(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own process group, so that stop() can also end the kernels it started.
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited with code {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                status = self.api("/api/status")
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.5)
                continue
            if "started" in status:
                return self
        self.stop()
        raise TimeoutError(f"jupyter lab did not answer within {timeout:.0f}s:\n{self.log_tail()}")

    def api(self, path: str) -> dict:
        """GET a REST endpoint of the server (with the token) and return its JSON."""
        request = urllib.request.Request(
            f"{self.base}{path}", headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read().decode("utf-8"))

    def url(self, path: str) -> str:
        """The browser URL of ``path`` (e.g. ``/lab/tree/workbooks/x.ipynb``) with the token."""
        return f"{self.base}{path}?token={self.token}"

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log (for failure messages)."""
        if self._log is not None:
            self._log.flush()
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server: terminate, wait, kill on timeout (kernels stop with it)."""
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
        if process is not None:
            # Kernels the server did not shut down (e.g. after a kill) share its process group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None
