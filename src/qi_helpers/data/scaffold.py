"""``qi init DIR``: a new project for an organisation's own data.

The new project gets

* ``parameters/project.yaml``: the source project's parameters with their comments, but with a
  ``data:`` section that points at the templates (and explains ``path:``, ``url:``, ``columns:``
  and ``date_format:``) and no ``data.demo``;
* ``workbooks/``: the four workbooks, copied from the source project;
* ``data/<table>.csv`` for every table of the data contracts, with the header and one example
  row, and ``data/templates.xlsx`` with the same templates as sheets;
* ``parameters/progress_scores.csv``: where a coach records a progress score that differs from
  the computed one, with a reason (:mod:`qi_helpers.changes.progress_overrides`): the header and
  a commented example;
* ``README.md``: what to fill in, and how to check and run.

Where the workbooks come from: the package does not carry a second copy of them (it would drift
from ``workbooks/``). The source is the project folder given (``qi init --from PATH``) or else
the project the package is installed from: with ``pip install -e .`` (what ``make venv`` does)
that is the repository, found from the package's location or its ``direct_url.json``. A wheel
installed elsewhere has no workbooks, and ``qi init`` then asks for ``--from``.

The example rows use identifiers starting with ``EXAMPLE``; ``qi check`` reports each as an
error ("replace the example row") until it is replaced.
"""

from __future__ import annotations

import json
import re
import shutil
from importlib import metadata
from pathlib import Path

import pandas as pd

from qi_helpers.data.contracts import CONTRACTS
from qi_helpers.data.formulas import neutralise_formulas
from qi_helpers.errors import ConfigError
from qi_helpers.measures import CHARTS
from qi_helpers.workflow import WORKBOOKS

__all__ = [
    "PROGRESS_SCORES_TEMPLATE",
    "TEMPLATE_ROWS",
    "find_source_project",
    "init_project",
    "template_tables",
]

#: The file ``qi init`` writes: the header and a commented example (a ``#`` row is skipped).
PROGRESS_SCORES_TEMPLATE = (
    "microsystem_id,month,score,reason,coach\n"
    "# A coach's score (1 to 5 by halves) holds from its month until the next one; remove the #:\n"
    '# RIV-PC1,2025-06,3.5,"aim reached in the last audit, not in our data yet",A. Coach\n'
)

#: One example row per table, in the contract's column order (required, then optional).
TEMPLATE_ROWS: dict[str, dict[str, object]] = {
    "activities": {
        "timestamp": "2024-01-01T09:30:00",
        "patient_id": "EXAMPLE-P1",
        "staff_id": "EXAMPLE-S1",
        "activity": "consultation",
        "location": "Example Health Centre - Room 1",
        "encounter_id": "EXAMPLE-E1",
        "duration_min": 15,
    },
    "staff": {"staff_id": "EXAMPLE-S1", "role": "GP", "fte": 1.0, "home_unit": "Example Team"},
    "patients": {
        "patient_id": "EXAMPLE-P1",
        "age_band": "40-64",
        "sex": "F",
        "conditions": "diabetes;hypertension",
    },
    "measures": {
        "measure_id": "EXAMPLE-M1",
        "name": "HbA1c tested in diabetic review",
        "family": "process",
        "chart": "p",
        "improvement": "up",
        "aim": "effective",
        "unit": "%",
        "multiply": 100,
        "target": 80,
        "period": "week",
        "kind": "primary_care",
        "balances": "",
    },
    "measure_events": {
        "measure_id": "EXAMPLE-M1",
        "timestamp": "2024-01-01T09:30:00",
        "patient_id": "EXAMPLE-P1",
        "staff_id": "EXAMPLE-S1",
        "location": "Example Health Centre - Room 1",
        "value": 1,
        "denominator_weight": "",
    },
    "observations": {
        "microsystem_id": "EXAMPLE-MS1",
        "measure_id": "EXAMPLE-M1",
        "period": "2024-01-01",
        "numerator": 8,
        "value": "",
        "denominator": 10,
    },
    "pdsa": {
        "microsystem_id": "EXAMPLE-MS1",
        "cycle_id": "EXAMPLE-C1",
        "change": "Text reminders before diabetes reviews",
        "start": "2024-03-04",
        "end": "2024-03-29",
        "prediction": "Reminders will raise attendance at reviews.",
        "result": "Attendance rose from 70% to 80%.",
        "decision": "adapt",
        "measure_ids": "EXAMPLE-M1",
    },
    "readiness": {
        "staff_id": "EXAMPLE-S1",
        "microsystem_id": "",
        "characteristic": "leadership",
        "score": 3,
        "round": "2024-05-01",
    },
    "adoption": {
        "microsystem_id": "EXAMPLE-MS2",
        "change": "Text reminders before diabetes reviews",
        "adopted": "2024-06-03",
    },
    "drivers": {
        "aim": "80% of diabetic reviews include an HbA1c test by December 2024",
        "primary_driver": "Every patient with diabetes is reviewed on time",
        "secondary_driver": "Patients know when their review is due",
        "change": "Text reminders before diabetes reviews",
        "microsystem_id": "EXAMPLE-MS1",
        "measure_id": "EXAMPLE-M1",
    },
}

_DATA_SECTION = """\
data:
  # One entry per input table (the data contracts; README.md lists their columns). Each is
  #   path: a file, relative to this folder: .csv, .tsv, .xlsx (with `sheet:`) or .parquet
  #   url: a SQLAlchemy database URL, with `table:` (or `schema.table`) or `query:` (SQL)
  # and optionally
  #   columns: {Your column name: contract_column}   renames your columns to ours
  #   date_format: '%d/%m/%Y'                         when dates are not ISO (2024-01-31)
  # For example:
  #   activities: {path: data/audit.xlsx, sheet: Audit log, columns: {User ID: staff_id}}
  #   activities: {url: 'sqlite:///data/ehr.db', table: audit_log}
  #   activities: {url: 'postgresql+psycopg://qi@dbhost:5432/ehr', query: 'SELECT ...'}
  # The files below are templates with the header and one example row (identifiers starting
  # with EXAMPLE): replace the example rows with your data, or point the entries at your own
  # files or database. data/templates.xlsx holds the same templates, one sheet per table
  # (e.g. staff: {path: data/templates.xlsx, sheet: staff}). Then run `qi check`.
  # patients, observations, adoption and drivers are optional: delete their lines if you have
  # none.
  tables:
{tables}
"""


def template_tables() -> dict[str, pd.DataFrame]:
    """The template of every input table: the contract's columns and one example row.

    Returns
    -------
    dict of str to DataFrame
        By table name; columns are the contract's required then optional columns.
    """
    out = {}
    for name, contract in CONTRACTS.items():
        columns = list(contract.columns)
        row = TEMPLATE_ROWS[name]
        out[name] = pd.DataFrame([[row.get(c, "") for c in columns]], columns=columns)
    return out


def _installed_project() -> Path | None:
    """The project folder the package is installed from (editable installs), if any."""
    candidates = [Path(__file__).resolve().parents[2]]
    for dist_name in ("qi-helpers", "qi_helpers"):
        try:
            text = metadata.distribution(dist_name).read_text("direct_url.json")
        except metadata.PackageNotFoundError:
            continue
        if text:
            url = json.loads(text).get("url", "")
            if url.startswith("file://"):
                candidates.append(Path(url.removeprefix("file://")))
    for folder in candidates:
        if _is_source(folder):
            return folder
    return None


def _notebooks() -> list[str]:
    """The workbooks' file names, in run order."""
    return [wb.notebook for wb in WORKBOOKS.values()]


def _is_source(folder: Path) -> bool:
    return (folder / "parameters" / "project.yaml").is_file() and all(
        (folder / "workbooks" / w).is_file() for w in _notebooks()
    )


def find_source_project(source: str | Path | None = None) -> Path:
    """The project whose workbooks and parameters a new project starts from.

    Parameters
    ----------
    source : path, optional
        A project folder (holding ``parameters/project.yaml`` and ``workbooks/``). Default: the
        project the package is installed from (an editable install of the repository).

    Returns
    -------
    Path

    Raises
    ------
    ConfigError
        When the folder given (or the installed project) lacks the parameters or a workbook.
    """
    if source:
        folder = Path(source).resolve()
        if not _is_source(folder):
            missing = [
                str(p)
                for p in (
                    folder / "parameters" / "project.yaml",
                    *(folder / "workbooks" / w for w in _notebooks()),
                )
                if not p.is_file()
            ]
            raise ConfigError(
                f"{folder}: not a project to start from; missing {', '.join(missing)}. Pass "
                "--from the folder of the qi workbooks repository (or of another project)."
            )
        return folder
    found = _installed_project()
    if found is None:
        raise ConfigError(
            "Cannot find the workbooks: qi_helpers is not installed from the project repository "
            "(`pip install -e .`), so it has no workbooks/ folder. Pass --from PATH, the folder "
            "of the qi workbooks repository or of an existing project."
        )
    return found


def _project_yaml(text: str, tables: dict[str, str]) -> str:
    lines = "\n".join(f"    {name}: {{path: {path}}}" for name, path in tables.items())
    data = _DATA_SECTION.replace("{tables}", lines)
    block = re.compile(r"^data:[^\n]*\n(?:(?:[ \t][^\n]*|[ \t]*)\n)*", re.MULTILINE)
    if block.search(text):
        text = block.sub(lambda _: data + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + data
    text = re.sub(
        r"(?m)^(  name:).*$", r"\1 My QI project  # shown in report headers", text, count=1
    )
    text = re.sub(
        r"(?m)^(  organisation:).*$", r"\1 My organisation  # whose data this is", text, count=1
    )
    return text


def _readme(tables: dict[str, pd.DataFrame]) -> str:
    rows = []
    for name, contract in CONTRACTS.items():
        optional = ", ".join(contract.optional) or "-"
        rows.append(f"| `{name}` | {', '.join(contract.required)} | {optional} |")
    return f"""# My QI project

A project of the QI workbooks for clinical microsystems, for your own data.

## 1. Put your data in

`data/` holds a template for every input table: a CSV file with the header and **one example
row** (identifiers starting with `EXAMPLE`), and the same templates as sheets of
`data/templates.xlsx`. Either

- replace the example rows with your data (keep the header, delete the example row), or
- point `data.tables` in `parameters/project.yaml` at your own files (CSV, TSV, Excel with
  `sheet:`, Parquet) or database (`url:` with `table:` or `query:`); `columns:` renames your
  column names to ours and `date_format:` reads dates that are not ISO (`2024-01-31`).

Identifiers are text; dates are ISO dates (`2024-01-31`) or timestamps (`2024-01-31T14:05:00`).
`patients`, `observations`, `adoption` and `drivers` are optional: remove their entries if you
have none.

| table | required columns | optional columns |
|---|---|---|
{chr(10).join(rows)}

Coded values: `measures.family` is outcome, process or balancing; `measures.chart` a chart type
({", ".join(CHARTS)}); `measures.improvement` up or down;
`pdsa.decision` adopt, adapt, abandon or ongoing; `readiness.score` 1 (poor), 2 (mixed),
3 (ideal) or empty; `readiness.characteristic` one of the ten microsystem success
characteristics (leadership, organisational_support, staff_focus, education_and_training,
interdependence, patient_focus, community_and_market_focus, performance_results,
process_improvement, information_and_information_technology). `readiness.round` (optional)
is the survey round when teams answer the survey more than once: the survey's ISO date
(`2024-05-01`) or a whole number (1, 2, ...), one kind per file; each team's latest round is
used (workbook 02: the latest up to the selection's `as_of`), and workbook 03 shows how each
characteristic changed since the team's previous round. Without the column all answers are one
round.

`drivers` holds driver diagrams: one row per change idea and measure that shows it, with the
diagram's `aim`, the `primary_driver` and `secondary_driver` the change idea acts on, and the
`change` idea named exactly as the PDSA log names the change it tests. `microsystem_id` says
whose diagram it is (empty: the whole organisation's). A diagram has one aim; a change idea sits
under one secondary driver and a secondary driver under one primary driver. Workbook 03 draws
each microsystem's diagram with what its data say about each change idea, workbook 04 the
organisation's with how far each change has spread.

## 2. Check

```bash
qi check --project .
```

lists every problem at once, grouped by table: the file, the column, the first rows (counted
from 1 = the first row under the header), how many, and how to fix it. Errors (exit code 1)
stop `qi run`; warnings (future dates, gaps, staff missing from the roster...) do not.
`qi check --json` gives the same for tools.

## 3. Run

```bash
qi run --project .
```

executes the workbooks in `workbooks/` and publishes `outputs/site/index.html`. Adapt the
settings in `parameters/project.yaml` (e.g. `identify.site_pattern` and
`identify.kind_by_activity`, written for the demo health system) to your organisation.

`outputs/` and `data/` hold patient-level data: keep them out of version control (see
`.gitignore`) and share only the published site.
"""


def init_project(
    target: str | Path, *, source: str | Path | None = None, force: bool = False
) -> list[Path]:
    """Scaffold a project for an organisation's own data.

    Parameters
    ----------
    target : path
        The new project folder (created when missing).
    source : path, optional
        The project to copy the workbooks and parameters from; see :func:`find_source_project`.
    force : bool
        Overwrite a project already in ``target``.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ConfigError
        When ``target`` already holds a project (and not ``force``), or no source project is
        found.
    """
    target = Path(target)
    config = target / "parameters" / "project.yaml"
    if config.exists() and not force:
        raise ConfigError(
            f"{config}: a project is already here. Choose a new folder, or pass --force to "
            "overwrite its parameters, workbooks and templates."
        )
    origin = find_source_project(source)
    if target.resolve() == origin.resolve():
        raise ConfigError(f"{target}: is the source project itself; choose a new folder.")
    written: list[Path] = []
    (target / "parameters" / "microsystems").mkdir(parents=True, exist_ok=True)
    (target / "workbooks").mkdir(parents=True, exist_ok=True)
    (target / "data").mkdir(parents=True, exist_ok=True)
    (target / "outputs").mkdir(parents=True, exist_ok=True)
    tables = template_tables()
    paths = {name: f"data/{name}.csv" for name in tables}
    text = (origin / "parameters" / "project.yaml").read_text(encoding="utf-8")
    config.write_text(_project_yaml(text, paths), encoding="utf-8")
    written.append(config)
    for workbook in _notebooks():
        dest = target / "workbooks" / workbook
        shutil.copyfile(origin / "workbooks" / workbook, dest)
        written.append(dest)
    for name, frame in tables.items():
        path = target / paths[name]
        neutralise_formulas(frame).to_csv(path, index=False, lineterminator="\n")
        written.append(path)
    book = target / "data" / "templates.xlsx"
    with pd.ExcelWriter(book, engine="openpyxl") as writer:
        for name, frame in tables.items():
            neutralise_formulas(frame).to_excel(writer, sheet_name=name, index=False)
    written.append(book)
    from qi_helpers.project import PROGRESS_SCORES_FILE  # here: the project imports data

    scores = target / PROGRESS_SCORES_FILE
    if force or not scores.exists():
        scores.write_text(PROGRESS_SCORES_TEMPLATE, encoding="utf-8")
        written.append(scores)
    readme = target / "README.md"
    readme.write_text(_readme(tables), encoding="utf-8")
    written.append(readme)
    ignore = target / ".gitignore"
    if not ignore.exists():
        ignore.write_text(
            "# Patient-level data and everything generated stay out of version control.\n"
            "data/\noutputs/\n",
            encoding="utf-8",
        )
        written.append(ignore)
    keep = target / "outputs" / ".gitkeep"
    keep.touch()
    return written
