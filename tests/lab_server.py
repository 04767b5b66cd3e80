"""Helpers for tests that need a prepared project or a running JupyterLab.

``prepare_lab_project`` builds a project folder with the demo data and the outputs of workbook 01
(the registry and membership tables that workbooks 02-04 read). ``LabServer`` starts a headless
``jupyter lab`` on a loopback port with a random token and isolated Jupyter/IPython settings, waits
until it answers, and stops it (terminate, wait, kill on timeout).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import copy_project_skeleton

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
        from qi_helpers.datasets import write_demo

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
