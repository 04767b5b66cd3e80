"""The method's four workbooks: the one table of what each is called, reads, writes and needs.

Every part of ``qi_helpers`` that needs the list of workbooks, their order, their titles, the
input tables and upstream files they read or the tables they write (the runner, the run plan,
``qi init``, the ``qi`` command, the project's error messages, the publisher) reads it from
:data:`WORKBOOKS`. It sits at the top of the package, beside :mod:`qi_helpers.project`, because
the project itself names the workbook that writes a missing table.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FAILED_SUFFIX",
    "WORKBOOKS",
    "Workbook",
    "notebook_names",
    "workbook_named",
    "writer_of",
]


#: Executed notebook kept for a failed task, next to (never over) the last good one.
FAILED_SUFFIX = ".failed.ipynb"


@dataclass(frozen=True)
class Workbook:
    """One workbook of the method.

    Attributes
    ----------
    code : str
        ``"01"`` to ``"04"``, the order in which the workbooks run.
    name : str
        The notebook's file name without ``.ipynb``, also its folder under ``outputs/``.
    title : str
        The human title of its page and index card.
    purpose : str
        One line on what the organisation-level report is for (``""`` for per-microsystem ones).
    per_microsystem : bool
        Whether it runs once per microsystem (workbook 03) or once for the organisation.
    inputs : tuple of str
        Input tables (``data.tables.<name>`` in project.yaml) it reads.
    upstream : tuple of str
        Glob patterns of files under ``outputs/data/`` it reads (written by ``depends_on``).
        In a per-microsystem workbook, ``{microsystem}`` stands for the microsystem's folder
        name (:func:`qi_helpers.privacy.names.safe_filename` of its id).
    sliced : bool
        Whether it reads its input tables through the prepared per-microsystem slices
        (:mod:`qi_helpers.changes.slices`) rather than directly: its reruns then follow its
        slice, not the whole tables.
    depends_on : tuple of str
        Codes of the workbooks whose outputs it reads.
    writes : tuple of str
        Tables it writes under ``outputs/data/`` (stems of ``.parquet`` files).
    """

    code: str
    name: str
    title: str
    purpose: str
    per_microsystem: bool
    inputs: tuple[str, ...]
    upstream: tuple[str, ...]
    depends_on: tuple[str, ...]
    writes: tuple[str, ...]
    sliced: bool = False

    @property
    def notebook(self) -> str:
        """The notebook's file name, e.g. ``"01_identify_microsystems.ipynb"``."""
        return f"{self.name}.ipynb"


#: The workbooks of the method, by code, in the order they run.
WORKBOOKS: dict[str, Workbook] = {
    wb.code: wb
    for wb in (
        Workbook(
            code="01",
            name="01_identify_microsystems",
            title="01 Identify microsystems",
            purpose="The core teams, the patients they serve and their work areas.",
            per_microsystem=False,
            inputs=("activities", "staff", "patients"),
            upstream=(),
            depends_on=(),
            writes=(
                "registry",
                "membership_staff",
                "membership_patients",
                "membership_locations",
                "merges",
                "profiles",
                "profile_summary",
                "declared_purity",
                "declared_differences",
            ),
        ),
        Workbook(
            code="02",
            name="02_select_pilots",
            title="02 Select pilot microsystems",
            purpose="Where to test new ideas first, and why.",
            per_microsystem=False,
            inputs=("measures", "measure_events", "observations", "readiness"),
            upstream=("registry.parquet", "membership_*.parquet"),
            depends_on=("01",),
            writes=("pilots",),
        ),
        Workbook(
            code="03",
            name="03_analyse_tests",
            title="03 Analyse tests of change",
            purpose="",
            per_microsystem=True,
            inputs=(
                "measures",
                "measure_events",
                "observations",
                "pdsa",
                "patients",
                "drivers",
                "readiness",
            ),
            # Its inputs, read once and cut per microsystem after workbook 01 (the slices; its
            # folder also holds its assessment by characteristic against the organisation's).
            upstream=("slices/measures.parquet", "slices/ms={microsystem}/*.parquet"),
            depends_on=("01",),
            writes=(),
            sliced=True,
        ),
        Workbook(
            code="04",
            name="04_plan_spread",
            title="04 Plan the spread",
            purpose="Who adopts the changes that worked, in which wave.",
            per_microsystem=False,
            inputs=(
                "readiness",
                "measures",
                "measure_events",
                "observations",
                "adoption",
                "drivers",
                "pdsa",
            ),
            # 04 also reads the staff membership (readiness by microsystem) and any profiles
            # from 01, and the verdicts of 03.
            upstream=(
                "registry.parquet",
                "membership_*.parquet",
                "profile*.parquet",
                "results/*.parquet",
            ),
            depends_on=("01", "03"),
            writes=("spread_plan", "progress"),
        ),
    )
}


def notebook_names() -> list[str]:
    """The workbooks' names (``"01_identify_microsystems"``, ...) in run order."""
    return [wb.name for wb in WORKBOOKS.values()]


def workbook_named(name: str) -> Workbook | None:
    """The workbook whose notebook is called ``name`` (without ``.ipynb``), or ``None``."""
    return next((wb for wb in WORKBOOKS.values() if wb.name == name), None)


def writer_of(table: str) -> str | None:
    """The code of the workbook that writes ``outputs/data/<table>.parquet`` (``None``: none)."""
    return next((wb.code for wb in WORKBOOKS.values() if table in wb.writes), None)
