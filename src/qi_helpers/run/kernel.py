"""Runs inside a warm Jupyter kernel: make it behave like a freshly started one.

``qi run`` keeps one kernel per worker and reuses it for many notebooks, so the kernel start and
the imports of pandas, matplotlib and ``qi_helpers`` are paid once per worker instead of once per
notebook. Before each notebook, :func:`prepare` clears what a notebook could leave behind: the
user namespace and output history (execution counts restart at 1), open figures, matplotlib
settings, widgets, the "shown once" memory of warnings and the working folder. (pandas options are
not reset: ``pandas.reset_option("all")`` imports optional modules and warns about deprecated
options, and neither the workbooks nor ``qi_helpers`` set options.)
Modules stay imported: that is the point, and importing a module twice gives the same module
(warning filters, ``sys.path`` and environment variables are left as they are, because libraries
set them when first imported). A test (``tests/run/test_runner_determinism.py``) checks that
notebooks executed this way are byte-identical to those from fresh kernels. This module must stay
light: every kernel imports it.

:func:`prepare` also makes the kernel die with the worker that started it (and with ``qi run``):
a parent-death signal and a watch of its parent, see :mod:`qi_helpers.run.processes`.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import os
import sys
import warnings
from typing import Any

from IPython import get_ipython

from qi_helpers.run import processes as _processes

_SNAPSHOT: dict[str, Any] | None = None


def _take_snapshot() -> dict[str, Any]:
    snapshot: dict[str, Any] = {}
    mpl = sys.modules.get("matplotlib")
    if mpl is not None:
        snapshot["rc"] = dict(mpl.rcParams)
    return snapshot


def _restore(snapshot: dict[str, Any]) -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")
    mpl = sys.modules.get("matplotlib")
    if mpl is not None and "rc" in snapshot:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # dict.update skips validation; every value came from a valid rcParams.
            dict.update(mpl.rcParams, snapshot["rc"])
    widgets = sys.modules.get("ipywidgets")
    if widgets is not None and hasattr(widgets, "Widget"):
        widgets.Widget.close_all()
    # Warnings shown once per place: forget which were shown, as a new kernel would.
    for module in list(sys.modules.values()):
        # Through __dict__: a plain getattr would make lazily loaded modules import submodules.
        registry = getattr(module, "__dict__", {}).get("__warningregistry__")
        if isinstance(registry, dict):
            registry.clear()
    warnings.onceregistry.clear()
    mutated = getattr(warnings, "_filters_mutated", None)
    if mutated is not None:
        mutated()


def _give_back_memory() -> None:
    """Return the memory the last notebook freed to the system.

    A kernel that ran workbook 01 on a large organisation (6 million activities) kept about
    1.5 GB after its namespace was cleared: the allocators (glibc's and pyarrow's) hold freed
    memory for reuse. The next notebooks of the same worker need a fraction of it.
    """
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
            pass


def prepare(cwd: str, modules: list[str]) -> None:
    """Reset the kernel for the next notebook and import ``modules`` (without binding names).

    Parameters
    ----------
    cwd : str
        The notebook's working folder.
    modules : list of str
        Modules to have imported (the notebook imports them anyway; failures are left for the
        notebook to report).
    """
    global _SNAPSHOT
    # First thing, before any notebook code: a kernel whose worker has gone (kill -9 of
    # `qi run`, or of the worker) must not go on running notebooks and writing their outputs.
    # Done here rather than in the kernel's launch (a preexec_fn is unsafe in the worker's
    # threaded process); until now ipykernel's own watch of JPY_PARENT_PID covered it.
    _processes.arm_kernel()
    shell = get_ipython()
    if _SNAPSHOT is not None:
        # new_session=True also restarts execution counts at 1 and opens a new history session.
        shell.reset(new_session=True)
        _restore(_SNAPSHOT)
        gc.collect()
        _give_back_memory()
    os.chdir(cwd)
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - the notebook's own import will report it
            continue
    if _SNAPSHOT is None:
        _SNAPSHOT = _take_snapshot()
        shell.reset(new_session=True)
    # Imports done above may have displayed nothing, but be sure counts start at 1.
    shell.execution_count = 1
    # What survives a reset (modules, their caches) lives as long as the kernel: keep it out of
    # the garbage collector's way, so the next reset does not walk every object pandas made.
    gc.freeze()
