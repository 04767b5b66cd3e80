"""The one place that knows a project's paths and parameters.

A project is a folder holding ``parameters/project.yaml``. Workbooks, the runner and the ``qi``
command all find it the same way (walking up from the working folder unless told), so a workbook
runs identically from JupyterLab (working folder ``workbooks/``) and from papermill.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from qi_helpers.data.arrow_memory import give_back_freed_memory
from qi_helpers.data.cross_checks import cross_check
from qi_helpers.data.problems import render_table
from qi_helpers.data.sources import read_source
from qi_helpers.data.validation import validate
from qi_helpers.errors import ConfigError, ContractError, DataError
from qi_helpers.privacy.screen import IdentifierScreen, project_screen, set_active_screen
from qi_helpers.workflow import writer_of

__all__ = [
    "OUTPUT_SETTINGS",
    "PROGRESS_SCORES_FILE",
    "PROJECT_FILE",
    "Project",
    "deep_merge",
    "find_project_root",
    "load_project",
    "load_yaml",
]

PROJECT_FILE = Path("parameters") / "project.yaml"
#: Where a coach records progress scores that differ from the computed ones, with a reason
#: (:mod:`qi_helpers.changes.progress_overrides`; ``qi init`` writes a template).
PROGRESS_SCORES_FILE = Path("parameters") / "progress_scores.csv"

#: Settings of ``parameters/project.yaml`` that name a file or folder the code writes: their
#: default and the folder a relative value starts from (``root``: the project folder, ``data``:
#: ``outputs/data``). :meth:`Project.output_path` keeps every one of them inside the project.
OUTPUT_SETTINGS: dict[str, tuple[str, str]] = {
    "outputs": ("outputs", "root"),
    "data.demo.out": ("data/demo", "root"),
    "spread.export": ("spread_plan.xlsx", "data"),
}


class _PlainSafeLoader(yaml.SafeLoader):
    """A safe YAML loader that keeps dates as strings (as papermill does), so ``2024-01-01`` is
    never silently turned into a ``datetime.date`` behind the user's back."""


_PlainSafeLoader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with a safe loader that leaves dates as strings.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    dict
        The mapping (empty for an empty file).

    Raises
    ------
    ConfigError
        When the file is missing, is not valid YAML, or does not hold a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found. Expected a YAML parameters file here.")
    try:
        content = yaml.load(path.read_text(encoding="utf-8"), Loader=_PlainSafeLoader)  # noqa: S506
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{path}: not valid YAML ({exc}). Fix the indentation or quoting."
        ) from exc
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values, found {type(content)}.")
    return content


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated with ``override``, merging nested mappings key by key."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def find_project_root(start: str | Path | None = None) -> Path:
    """Find the project folder: ``start`` or its nearest parent holding ``parameters/project.yaml``.

    Raises
    ------
    ConfigError
        When no parent holds the file.
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    raise ConfigError(
        f"No {PROJECT_FILE} found in {here} or any parent folder. Run `qi init DIR` to create a "
        "project, or start from the project folder."
    )


@dataclass(frozen=True)
class Project:
    """A project's folder and merged parameters.

    Attributes
    ----------
    root : Path
        The project folder.
    config : dict
        ``parameters/project.yaml`` (with any overrides merged in).
    """

    root: Path
    config: dict[str, Any] = field(repr=False)

    # --- paths -------------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        """``parameters/project.yaml`` of this project."""
        return self.root / PROJECT_FILE

    def path(self, relative: str | Path) -> Path:
        """Resolve a path from the parameters against the project folder."""
        p = Path(relative)
        return p if p.is_absolute() else self.root / p

    def _lookup(self, setting: str) -> Any:
        """The value of a dotted setting such as ``spread.export`` (None when absent)."""
        value: Any = self.config
        for key in setting.split("."):
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    def output_path(
        self, setting: str, value: str | Path | None = None, *, base: Path | None = None
    ) -> Path:
        """Resolve a configured output path: a file or folder the code writes, inside the project.

        Every path that comes from the parameters and is written to goes through here (see
        :data:`OUTPUT_SETTINGS`), so a value such as ``../../../x.csv``, an absolute path
        elsewhere, or a path through a symbolic link that points out of the project is refused
        before anything is written.

        Parameters
        ----------
        setting : str
            The dotted name of the setting, e.g. ``"spread.export"``: read from the parameters
            when ``value`` is None, and named in errors.
        value : str or Path, optional
            The value to use instead (a workbook's parameter that overrides the setting).
        base : Path, optional
            The folder a relative value starts from; default the one :data:`OUTPUT_SETTINGS`
            gives the setting, else the project folder.

        Returns
        -------
        Path
            The path, resolved (symbolic links followed), inside the project folder.

        Raises
        ------
        ConfigError
            When the value is not a path, or the path is the project folder itself or lies
            outside it; the message names the setting and the value.
        """
        default, start = OUTPUT_SETTINGS.get(setting, ("", "root"))
        if value is None:
            value = self._lookup(setting)
        if value is None or value == "":
            value = default
        where = f"{self.root / PROJECT_FILE}: `{setting}: {value}`"
        if not isinstance(value, str | Path) or not str(value).strip() or "\0" in str(value):
            raise ConfigError(f"{where} is not a usable path: give a file or folder name.")
        if base is None:
            base = self.data_dir if start == "data" else self.root
        path = Path(value)
        path = path if path.is_absolute() else Path(base) / path
        root = self.root.resolve()
        resolved = path.resolve()
        if resolved == root:
            raise ConfigError(
                f"{where} names the project folder itself; give a file or folder inside it."
            )
        if root not in resolved.parents:
            # Say why: the text itself leads out, or a symbolic link on the way does.
            lexical = Path(os.path.normpath(path.absolute()))
            how = (
                "through a symbolic link that points out of it"
                if lexical == root or root in lexical.parents
                else "outside it"
            )
            raise ConfigError(
                f"{where} would write to {resolved}, {how}: outputs stay inside the project "
                f"folder {root}. Give a path inside the project, without `..`."
            )
        return resolved

    def check_output_paths(self) -> None:
        """Check every configured output path (:data:`OUTPUT_SETTINGS`) before anything runs.

        Raises
        ------
        ConfigError
            For the first setting that would write outside the project (:meth:`output_path`).
        """
        for setting in OUTPUT_SETTINGS:
            if self._lookup(setting) is not None:
                self.output_path(setting)

    @property
    def outputs_dir(self) -> Path:
        """``outputs/``: everything generated (the ``outputs`` setting, inside the project)."""
        return self.output_path("outputs")

    @property
    def progress_scores_file(self) -> Path:
        """``parameters/progress_scores.csv``: the coaches' progress scores (may be missing)."""
        return self.root / PROGRESS_SCORES_FILE

    @property
    def data_dir(self) -> Path:
        """``outputs/data/``: tables that workbooks hand to each other."""
        return self.outputs_dir / "data"

    @property
    def results_dir(self) -> Path:
        """``outputs/data/results/``: one table of verdicts per microsystem (workbook 03)."""
        return self.data_dir / "results"

    @property
    def report_cards_dir(self) -> Path:
        """``outputs/report_cards/``: each microsystem's slides and PDF report card (workbook 03),
        before publishing screens them (they are not shared from here)."""
        return self.outputs_dir / "report_cards"

    @property
    def notebooks_dir(self) -> Path:
        """``outputs/notebooks/``: executed notebooks (may hold patient-level data)."""
        return self.outputs_dir / "notebooks"

    @property
    def site_dir(self) -> Path:
        """``outputs/site/``: the published HTML site."""
        return self.outputs_dir / "site"

    @property
    def digest_file(self) -> Path:
        """``outputs/digest.json``: what changed since the previous run (written by ``qi run``)."""
        return self.outputs_dir / "digest.json"

    @property
    def workbooks_dir(self) -> Path:
        """``workbooks/``: the committed workbooks."""
        return self.root / "workbooks"

    def relative(self, path: str | Path | list) -> str:
        """A path (or list of paths) as shown to a reader: relative to the project folder."""
        if isinstance(path, list | tuple):
            return ", ".join(self.relative(p) for p in path)
        p = Path(path)
        try:
            return str(p.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(p)

    # --- parameters --------------------------------------------------------------------------
    def section(self, name: str) -> dict[str, Any]:
        """One section of the parameters (``identify``, ``pilots``, ...), empty when absent."""
        value = self.config.get(name) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"{self.root / PROJECT_FILE}: `{name}` must be a mapping.")
        return value

    def table_spec(self, name: str) -> dict[str, Any] | None:
        """The source of one input table (``data.tables.<name>``), or None when not configured."""
        tables = self.section("data").get("tables") or {}
        spec = tables.get(name)
        if spec is None:
            return None
        if not isinstance(spec, dict):
            raise ConfigError(
                f"{self.root / PROJECT_FILE}: data.tables.{name} must be a mapping with `path:` or "
                f"`url:`, found {spec!r}."
            )
        return spec

    def microsystem_parameters(self, microsystem_id: str) -> dict[str, Any]:
        """Overrides for one microsystem from ``parameters/microsystems/<id>.yaml`` (or empty)."""
        path = self.root / "parameters" / "microsystems" / f"{microsystem_id}.yaml"
        return load_yaml(path) if path.is_file() else {}

    def load_table(
        self, name: str, *, required: bool = True, columns: Iterable[str] | None = None
    ) -> pd.DataFrame | None:
        """Read and validate one configured input table (see :mod:`qi_helpers.data.validation`).

        Returns None when the table is optional and not configured. ``columns`` (contract
        names) reads only those columns: a workbook that does not use a large table's other
        columns does not hold them in memory, nor check them (``qi check`` checks every column).

        Raises
        ------
        ConfigError
            When a required table has no source.
        DataError
            When the source cannot be read or the table breaks its contract; the message lists
            every error of the table with the lines ``qi check`` prints.
        """
        spec = self.table_spec(name)
        if spec is None:
            if required:
                raise ConfigError(
                    f"{self.root / PROJECT_FILE}: no source configured for table `{name}`. "
                    f"Add data.tables.{name} with a `path:` or `url:`."
                )
            return None
        wanted = None if columns is None else frozenset(columns)
        loaded = read_source(spec, root=self.root, name=name, columns=wanted)
        if wanted is not None:  # a workbook or database is read whole: keep the same columns
            loaded.frame = loaded.frame[[c for c in loaded.frame.columns if c in wanted]]
        typed = validate(
            name, loaded.frame, source=loaded.where, date_format=spec.get("date_format")
        )
        typed.attrs["source"] = loaded.where
        del loaded
        give_back_freed_memory()  # e.g. the timestamps as text, parsed and freed
        return typed

    def load_tables(
        self,
        *names: str,
        required: bool = True,
        columns: Mapping[str, Iterable[str]] | None = None,
    ) -> dict[str, pd.DataFrame | None]:
        """Read and validate several configured tables, then check them against each other.

        Every table is read before any error is raised, so the error lists the problems of all
        of them; the tables are also checked against each other (e.g. events of measures that
        are not in the catalogue), with the same lines ``qi check`` prints. ``columns`` gives
        the columns to read of some tables (e.g. ``identify.IDENTIFY_COLUMNS``). See
        :meth:`load_table`.
        """
        tables: dict[str, pd.DataFrame | None] = {}
        failures: list[DataError] = []
        for name in names:
            try:
                wanted = (columns or {}).get(name)
                tables[name] = self.load_table(name, required=required, columns=wanted)
            except DataError as exc:
                failures.append(exc)
        if len(tables) > 1:  # the tables that are fine, against each other
            loaded = {k: v for k, v in tables.items() if v is not None}
            period = self.section("analysis").get("period", "week")
            sources = {k: v.attrs.get("source", k) for k, v in loaded.items()}
            found = cross_check(loaded, sources, default_period=period)
            errors = [p for p in found if p.level == "error"]
            for table in dict.fromkeys(p.table for p in errors):
                own = [p for p in errors if p.table == table]
                failures.append(ContractError(render_table(table, own[0].source, own), own))
        if len(failures) == 1:
            raise failures[0]
        if failures:
            problems = [p for exc in failures for p in getattr(exc, "problems", [])]
            raise ContractError("\n\n".join(str(exc) for exc in failures), problems)
        return tables

    def read_output(self, name: str) -> pd.DataFrame:
        """Read a table an earlier workbook wrote, ``outputs/data/<name>.parquet``.

        Raises
        ------
        ConfigError
            When the file is missing, naming the workbook that writes it.
        """
        path = self.data_dir / f"{name}.parquet"
        if not path.is_file():
            writer = writer_of(name) or "01"
            raise ConfigError(
                f"{path}: not found. Run workbook {writer} first (`qi run --workbook {writer}`)."
            )
        return pd.read_parquet(path)

    def membership(self) -> dict[str, pd.DataFrame]:
        """Workbook 01's membership tables: ``staff``, ``patients`` and ``locations``."""
        return {
            key: self.read_output(f"membership_{key}") for key in ("staff", "patients", "locations")
        }

    def results(self) -> pd.DataFrame:
        """Every workbook 03 result, ``outputs/data/results/*.parquet``, in one table."""
        files = sorted(self.results_dir.glob("*.parquet"))
        if not files:
            raise ConfigError(
                f"{self.results_dir}: no results. Run workbook 03 first (`qi run --workbook 03`)."
            )
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)

    def identifier_screen(self) -> IdentifierScreen:
        """The screen of the identifiers in this project's input tables (see ``privacy``)."""
        return project_screen(self)

    def settings(self, section: str, **overrides: Any) -> dict[str, Any]:
        """A section of the parameters with the values passed (those not None) merged over it.

        This is how a workbook's parameters cell works: ``None`` means "as in
        ``parameters/project.yaml``", any other value wins.
        """
        merged = dict(self.section(section))
        merged.update({k: v for k, v in overrides.items() if v is not None})
        return merged

    def microsystem_settings(
        self, section: str, microsystem_id: str, **overrides: Any
    ) -> dict[str, Any]:
        """A section with one microsystem's overrides merged over it, then the values passed.

        Precedence, lowest first: ``<section>`` of ``parameters/project.yaml``, then
        ``parameters/microsystems/<id>.yaml``, then the values passed that are not None (a
        workbook's parameters cell, set by hand in JupyterLab).

        Parameters
        ----------
        section : str
            E.g. ``"analysis"`` (workbook 03).
        microsystem_id : str
            Whose ``parameters/microsystems/<id>.yaml`` to merge (none: nothing to merge).
        **overrides
            The workbook's parameters of this section, None meaning "not set here".

        Returns
        -------
        dict

        Raises
        ------
        ConfigError
            When the microsystem's file sets a key that is neither in ``<section>`` nor one of
            the workbook's parameters (most often a typo), naming the file and the key.
        """
        own = self.microsystem_parameters(microsystem_id)
        known = set(self.section(section)) | set(overrides)
        unknown = sorted(set(own) - known)
        if unknown:
            path = self.root / "parameters" / "microsystems" / f"{microsystem_id}.yaml"
            raise ConfigError(
                f"{path}: unknown key(s) {', '.join(map(repr, unknown))}; a microsystem's file "
                f"overrides the `{section}` section of {PROJECT_FILE}, whose keys are "
                f"{', '.join(sorted(known))}."
            )
        merged = dict(self.section(section))
        merged.update(own)
        merged.update({k: v for k, v in overrides.items() if v is not None})
        return merged

    def setting(self, section: str, key: str, value: Any = None) -> Any:
        """A parameter: ``value`` when given (not None), else ``<section>.<key>`` from the file."""
        if value is not None:
            return value
        found = self.section(section).get(key)
        if found is None:
            raise ConfigError(
                f"{self.root / PROJECT_FILE}: `{section}.{key}` is not set and no value was passed."
            )
        return found


def load_project(
    root: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> Project:
    """Load a project's parameters.

    Parameters
    ----------
    root : str or Path, optional
        The project folder, or any folder inside it. Empty or None: search from the working folder.
    overrides : dict, optional
        Values merged over ``project.yaml`` (e.g. a workbook's parameters).

    Returns
    -------
    Project
        Also registered as the source of the identifier screen that every figure of the session
        applies to what it draws (:func:`qi_helpers.privacy.screen.set_active_screen`).
    """
    folder = find_project_root(root or None)
    config = load_yaml(folder / PROJECT_FILE)
    if overrides:
        config = deep_merge(config, overrides)
    project = Project(root=folder, config=config)
    # A setting that would write outside the project stops here, before anything is written.
    project.check_output_paths()
    # Figures and displays of this process screen their text with this project's identifiers
    # (built on first use: a session that draws nothing never reads the tables for it).
    set_active_screen(project.identifier_screen)
    return project
