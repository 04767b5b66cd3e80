"""The deterministic synthetic health system ("the demo") and its written-down truth.

:func:`make_demo` builds a health organisation of several sites with four kinds of clinical
microsystem (primary care teams, inpatient wards, laboratories, call centres) over 104 weeks from
Monday 2024-01-01, and returns every input table of the data contracts of
``docs/architecture.md`` (``activities``, ``staff``, ``patients``, ``measures``,
``measure_events``, ``observations``, ``pdsa``, ``readiness``, ``adoption``, ``drivers``) plus the
truth the workbooks should find (``truth_microsystems``, ``truth_membership``,
``truth_effects``, ``truth_baselines``).
:func:`write_demo` writes them to files, byte for byte the same for the same size and seed.

What is planted (see ``truth_effects`` for exact dates and sizes):

* teams of staff who share many patients, while staff of different teams share few (so Louvain
  community detection on the staff projection with ties of >= 6 shared patients finds them);
  ~6.5% of staff are floaters (primary care and call centres) who do 30-40% of their work in a
  second team's location, for a short list of that team's patients, and ~10% of declared
  ``home_unit`` values are wrong;
* six tests of change in pilot microsystems, each logged as 2-4 PDSA cycles whose last cycle
  starts on the date the effect starts: four that work, one that improves its outcome but
  worsens its balancing measure (criteria-led discharge raises 30-day readmissions) and one that
  does nothing (call-back scripting, abandoned);
* later adopters of the four successful changes in three waves (weeks 70, 82 and 94), a few of
  them (medium and large sizes) with no effect;
* a driver diagram for each pilot (its planted change, linked to the measures its cycles list,
  and a change idea not tested yet) and one for the organisation (every planted change);
* a readiness survey in two rounds: everyone before the pilots were chosen (6 May 2024), then
  the pilot teams again after their tests (3 March 2025: performance results and process
  improvement up, organisational support down, most others about the same);
* one primary care team with an unstable baseline (a step at week 12 for reasons unrelated to
  any change), one low-volume team and one team with low readiness; every other series is
  stable.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from qi_helpers.data.formulas import neutralise_formulas
from qi_helpers.demo import catalogue as cat
from qi_helpers.demo.activity import activities as _activities
from qi_helpers.demo.activity import add_baselines, ward_stays
from qi_helpers.demo.drivers import driver_diagrams
from qi_helpers.demo.measures import (
    adoption_table,
    measure_events,
    pdsa_log,
    readiness_survey,
    ttna_observations,
)
from qi_helpers.demo.readme import readme_text
from qi_helpers.demo.structure import Org, build_org
from qi_helpers.demo.variety import SERVICE_TEAMS, DemoMix, add_variety
from qi_helpers.errors import ConfigError, DataError
from qi_helpers.io import atomic_write, write_text

__all__ = [
    "CONTRACT_TABLES",
    "DEMO_SIZES",
    "SERVICE_TEAMS",
    "TEN_CHARACTERISTICS",
    "TRUTH_TABLES",
    "DemoMix",
    "demo_table_specs",
    "make_demo",
    "write_demo",
]

DEMO_SIZES = cat.DEMO_SIZES
TEN_CHARACTERISTICS = cat.TEN_CHARACTERISTICS

#: The input tables of the data contracts, in the order they are written.
CONTRACT_TABLES = (
    "activities",
    "staff",
    "patients",
    "measures",
    "measure_events",
    "observations",
    "pdsa",
    "readiness",
    "adoption",
    "drivers",
)
#: The truth tables (written under ``truth/`` without the ``truth_`` prefix).
TRUTH_TABLES = ("truth_microsystems", "truth_membership", "truth_effects", "truth_baselines")
#: Columns holding dates (written ``YYYY-MM-DD``); other datetime columns are timestamps.
DATE_COLUMNS = frozenset({"period", "start", "end", "adopted"})

# Fixed sub-streams: adding a stream never changes the others.
_STREAMS = {
    "org": 1,
    "baselines": 2,
    "stays": 3,
    "inpatient_ward": 4,
    "primary_care": 5,
    "laboratory": 6,
    "call_centre": 7,
    "events": 8,
    "observations": 9,
    "readiness": 10,
    "floaters": 11,
    "variety": 12,
}
_START = np.datetime64(cat.START_DATE, "s")


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STREAMS[stream],)))


def _take(labels, idx: np.ndarray) -> pd.Series:
    """Strings ``labels[idx]`` as a pandas string Series; ``idx < 0`` gives a missing value."""
    idx = np.asarray(idx, dtype=np.int64)
    missing = idx < 0
    if not isinstance(labels, pa.Array):
        labels = pa.array(list(labels), type=pa.string())
    arr = labels.take(pa.array(np.where(missing, 0, idx), mask=missing))
    return pd.Series(arr, dtype="str")


def _stamp(seconds: np.ndarray) -> pd.Series:
    return pd.Series(_START + np.asarray(seconds, dtype=np.int64).astype("timedelta64[s]"))


def _numbered(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded ``numbers`` as an Arrow string array (fast for millions)."""
    digits = pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def _patients_table(org: Org) -> tuple[pd.DataFrame, pa.Array]:
    pt = org.patients
    n = len(pt["owner"])
    width = max(6, len(str(n)))
    ids = _numbered("P", np.arange(1, n + 1), width)
    combos = [
        ";".join(c for b, c in enumerate(cat.CONDITIONS) if mask >> b & 1)
        for mask in range(1 << len(cat.CONDITIONS))
    ]
    df = pd.DataFrame(
        {
            "patient_id": pd.Series(ids, dtype="str"),
            "age_band": _take(cat.AGE_BANDS, pt["age"]),
            "sex": _take(["F", "M"], pt["sex"]),
            "conditions": _take(combos, pt["cond"]),
        }
    )
    return df, ids


def _measures_table() -> pd.DataFrame:
    df = pd.DataFrame(cat.MEASURES, columns=cat.MEASURE_COLUMNS)
    df["multiply"] = df["multiply"].astype(np.int64)
    return df


def _truth_membership(org: Org, act: pd.DataFrame) -> pd.DataFrame:
    staff, ms = org.staff, org.ms
    counts = act.groupby(["staff", "ms"]).size().rename("n").reset_index()
    counts["share"] = (counts["n"] / counts.groupby("staff")["n"].transform("sum")).round(3)
    main = staff["main_ms"].to_numpy()[counts["staff"]]
    return pd.DataFrame(
        {
            "staff_id": staff["staff_id"].to_numpy()[counts["staff"]],
            "microsystem_id": ms["microsystem_id"].to_numpy()[counts["ms"]],
            "share": counts["share"].to_numpy(),
            "main": counts["ms"].to_numpy() == main,
            "role": staff["role"].to_numpy()[counts["staff"]],
            "floater": staff["second_ms"].to_numpy()[counts["staff"]] >= 0,
            "declared_home_unit": staff["home_unit"].to_numpy()[counts["staff"]],
            "home_unit_wrong": staff["home_unit_wrong"].to_numpy()[counts["staff"]],
            "activities": counts["n"].to_numpy(),
        }
    ).astype(
        {"staff_id": "str", "microsystem_id": "str", "role": "str", "declared_home_unit": "str"}
    )


def _truth_microsystems(org: Org) -> pd.DataFrame:
    ms = org.ms
    n_core = np.bincount(org.staff["main_ms"], minlength=len(ms))
    micro = pd.DataFrame(
        {
            "microsystem_id": ms["microsystem_id"].to_numpy(),
            "name": ms["name"],
            "kind": ms["kind"],
            "site": ms["site"],
            "locations": ms["location"],
            "planted_role": ms["planted_role"],
            "pilot_of": ms["pilot_of"],
            "unstable": ms["unstable"],
            "low_volume": ms["low_volume"],
            "low_readiness": ms["low_readiness"],
            "core_staff": n_core,
            "panel_size": ms["panel_size"].astype(np.int64),
            "beds": ms["beds"].astype(np.int64),
        }
    )
    return micro.astype({c: "str" for c in micro.columns[:7]})


#: The column of the microsystems giving the weekly cases of each measure counted per case.
_VOLUME = {
    "pc_hba1c_tested": "v_hba1c",
    "pc_recommend": "v_recommend",
    "lab_tat": "v_tat",
    "lab_rejected": "v_rejected",
    "cc_abandon": "v_calls",
    "cc_answer_sec": "v_calls",
}


def _weekly_cases(r: pd.Series, mid: str) -> float:
    """The weekly cases of measure ``mid`` in the microsystem of row ``r``."""
    if mid == "cc_answer_sec":
        return r["v_calls"] * (1 - r["b_cc_abandon"])
    if mid == "pc_ttna":
        return 1.0
    if mid == "ward_falls":
        return 7.0
    if mid in ("ward_los", "ward_readmit30"):
        return r["beds"] * 0.9 * 7 / r["b_ward_los"]
    return r[_VOLUME[mid]]


def _truth_baselines(org: Org) -> pd.DataFrame:
    ms = org.ms
    ids = ms["microsystem_id"].to_numpy()
    meas = _measures_table().set_index("measure_id")
    rows = []
    for m, r in ms.iterrows():
        for mid in meas.index[meas["kind"] == r["kind"]]:
            b = float(r["b_" + mid]) / (1000 if mid == "ward_falls" else 1)
            rows.append(
                dict(
                    microsystem_id=ids[m],
                    measure_id=mid,
                    baseline=round(b, 5),
                    baseline_charted=round(b * meas.loc[mid, "multiply"], 3),
                    weekly_cases=round(float(_weekly_cases(r, mid)), 1),
                )
            )
    return pd.DataFrame(rows)


def _truth_effects(org: Org) -> pd.DataFrame:
    ms = org.ms
    ids = ms["microsystem_id"].to_numpy()
    rows = []
    for e in org.plan:
        b = float(ms.loc[e["ms"], "b_" + e["measure_id"]])
        b /= 1000 if e["measure_id"] == "ward_falls" else 1
        after = b + e["effect"] if e["effect_type"] == "absolute" else b * (1 + e["effect"])
        rows.append(
            dict(
                microsystem_id=ids[e["ms"]],
                measure_id=e["measure_id"],
                change=e["change"],
                start=pd.Timestamp(cat.START_DATE) + pd.Timedelta(weeks=e["week"]),
                start_week=e["week"],
                effect_type=e["effect_type"],
                effect=e["effect"],
                baseline=round(b, 5),
                expected=round(after, 5),
                planted_as=e["planted_as"],
                expected_verdict=e["expected_verdict"],
                note=e["note"],
            )
        )
    effects = pd.DataFrame(rows)
    effects = effects.sort_values(["start", "microsystem_id", "measure_id"], kind="stable")
    return effects.reset_index(drop=True)


def _truth_tables(org: Org, act: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {
        "truth_microsystems": _truth_microsystems(org),
        "truth_membership": _truth_membership(org, act),
        "truth_effects": _truth_effects(org),
        "truth_baselines": _truth_baselines(org),
    }


def make_demo(
    size: str = "small", seed: int = 0, mix: DemoMix | None = None
) -> dict[str, pd.DataFrame]:
    """Generate the demo health system and its truth.

    Parameters
    ----------
    size : {"small", "medium", "large"}
        How big an organisation (see :data:`DEMO_SIZES`): ``small`` has 20 microsystems and is
        used by the tests; ``large`` has 502 microsystems and over 5 million activities.
    seed : int
        Seed of every random draw; the same size and seed give the same tables.
    mix : DemoMix, optional
        Variety planted on top of the organisation (:mod:`qi_helpers.demo.variety`): service
        teams (site pharmacies, imaging departments, phlebotomy clinics, a contact centre serving
        every site), cross-cover, bank and agency staff, students. Without it the demo is the
        default one, unchanged. With it the activities, the staff roster, ``truth_microsystems``
        (a row per service team) and ``truth_membership`` (plus a ``staff_type`` column:
        core, floater, service, cross_cover, bank, student) are rebuilt; the measures, PDSA log
        and the other tables stay the default demo's.

    Returns
    -------
    dict of str to pandas.DataFrame
        The contract tables (columns as in ``docs/architecture.md``; identifiers are strings,
        timestamps are ``datetime64[s]``, dates are midnight timestamps):

        ``activities``: timestamp, patient_id, staff_id, activity, location, encounter_id,
        duration_min -- sorted by timestamp then staff_id.
        ``staff``: staff_id, role, fte, home_unit (the declared unit, wrong for ~10%).
        ``patients``: patient_id, age_band, sex, conditions (``;``-separated, may be empty).
        ``measures``: measure_id, name, family, chart, improvement, aim, unit, multiply, target
        (on the charted scale), period, kind, balances.
        ``measure_events``: measure_id, timestamp, patient_id, staff_id, location, value,
        denominator_weight (patient-days for ``ward_falls``, empty otherwise).
        ``observations``: microsystem_id, measure_id, period (Monday), value (``pc_ttna``).
        ``pdsa``: microsystem_id, cycle_id, change, start, end, prediction, result, decision,
        measure_ids.
        ``readiness``: staff_id, characteristic, score (1, 2, 3 or missing = can't rate), round
        (2024-05-06 for everyone who answered; 2025-03-03 for the pilots' staff again, after
        their tests).
        ``adoption``: microsystem_id, change, adopted.
        ``drivers``: microsystem_id (empty: the organisation), aim, primary_driver,
        secondary_driver, change, measure_id -- a driver diagram per pilot (its planted change
        and one idea not tested yet) and the organisation's (every planted change).

        and the truth:

        ``truth_microsystems``: microsystem_id, name, kind, site, locations, planted_role
        (pilot/adopter/none), pilot_of, unstable, low_volume, low_readiness, core_staff,
        panel_size, beds.
        ``truth_membership``: staff_id, microsystem_id, share (of the person's activities),
        main, role, floater, declared_home_unit, home_unit_wrong, activities.
        ``truth_effects``: microsystem_id, measure_id, change, start, start_week, effect_type
        (relative/absolute), effect (on the value scale, proportions 0-1), baseline, expected,
        planted_as (pilot/harm/failed/adopter/adopter_no_effect/unstable_baseline),
        expected_verdict (improved/worsened/no_change), note.
        ``truth_baselines``: microsystem_id, measure_id, baseline (value scale),
        baseline_charted (times ``multiply``), weekly_cases.

    Raises
    ------
    ConfigError
        If ``size`` is not one of :data:`DEMO_SIZES`, or ``mix`` has a setting out of range.
    """
    if mix is not None:
        mix.check()
    if size not in DEMO_SIZES:
        raise ConfigError(
            f"Unknown demo size {size!r}: expected one of {', '.join(map(repr, DEMO_SIZES))}."
        )
    org = build_org(size, _rng(seed, "org"))
    add_baselines(org, _rng(seed, "baselines"))
    stays = ward_stays(org, _rng(seed, "stays"))
    kinds = ("inpatient_ward", "primary_care", "laboratory", "call_centre")
    act = _activities(org, stays, {k: _rng(seed, k) for k in (*kinds, "floaters")})
    ev = measure_events(org, stays, _rng(seed, "events"))
    obs = ttna_observations(org, _rng(seed, "observations"))

    ms_ids = org.ms["microsystem_id"].tolist()
    staff_ids = org.staff["staff_id"].tolist()
    locations = org.ms["location"].tolist()
    patients, patient_ids = _patients_table(org)
    width = max(8, len(str(int(act["enc"].max()) + 1)))
    enc_ids = _numbered("E", act["enc"].to_numpy() + 1, width)
    activities = pd.DataFrame(
        {
            "timestamp": _stamp(act["t"].to_numpy()),
            "patient_id": _take(patient_ids, act["patient"].to_numpy()),
            "staff_id": _take(staff_ids, act["staff"].to_numpy()),
            "activity": _take(act.attrs["activity_names"], act["act"].to_numpy()),
            "location": _take(locations, act["ms"].to_numpy()),
            "encounter_id": pd.Series(enc_ids, dtype="str"),
            "duration_min": act["duration"].to_numpy().astype(np.int64),
        }
    )
    events = pd.DataFrame(
        {
            "measure_id": _take([m[0] for m in cat.MEASURES], ev["measure"]),
            "timestamp": _stamp(ev["t"]),
            "patient_id": _take(patient_ids, ev["patient"]),
            "staff_id": _take(staff_ids, ev["staff"]),
            "location": _take(locations, ev["ms"]),
            "value": ev["value"],
            "denominator_weight": ev["weight"],
        }
    )
    observations = pd.DataFrame(
        {
            "microsystem_id": _take(ms_ids, obs["ms"]),
            "measure_id": pd.Series(["pc_ttna"] * len(obs["ms"]), dtype="str"),
            "period": pd.Series(_START + (obs["week"] * 7).astype("timedelta64[D]")),
            "value": obs["value"],
        }
    )
    staff = org.staff[["staff_id", "role", "fte", "home_unit"]].astype(
        {"staff_id": "str", "role": "str", "home_unit": "str"}
    )
    tables = {
        "activities": activities,
        "staff": staff.reset_index(drop=True),
        "patients": patients,
        "measures": _measures_table(),
        "measure_events": events,
        "observations": observations,
        "pdsa": pdsa_log(org),
        "readiness": readiness_survey(org, _rng(seed, "readiness")),
        "adoption": adoption_table(org),
        "drivers": driver_diagrams(org),
    }
    tables.update(_truth_tables(org, act))
    for name in ("pdsa", "adoption", "truth_effects"):
        df = tables[name]
        for col in df.columns:
            if df[col].dtype == object:
                df[col] = df[col].astype("str")
    tables["pdsa"]["start"] = tables["pdsa"]["start"].astype("datetime64[s]")
    tables["pdsa"]["end"] = tables["pdsa"]["end"].astype("datetime64[s]")
    tables["adoption"]["adopted"] = tables["adoption"]["adopted"].astype("datetime64[s]")
    tables["truth_effects"]["start"] = tables["truth_effects"]["start"].astype("datetime64[s]")
    tables["observations"]["period"] = tables["observations"]["period"].astype("datetime64[s]")
    if mix is not None:
        tables.update(add_variety(tables, mix, _rng(seed, "variety")))
    return tables


# --------------------------------------------------------------------------------------- writing


def _as_text_table(df: pd.DataFrame) -> pa.Table:
    """Every column as text with fixed formatting (ISO dates and timestamps, no index)."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    cols = []
    for name, col in zip(table.column_names, table.columns, strict=True):
        t = col.type
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            if name in DATE_COLUMNS:
                col = pc.cast(pc.cast(col, pa.timestamp("s")), pa.date32())
                col = pc.cast(col, pa.string())
            else:
                col = pc.replace_substring(
                    pc.cast(pc.cast(col, pa.timestamp("s")), pa.string()), " ", "T"
                )
        elif not pa.types.is_string(t) and not pa.types.is_large_string(t):
            col = pc.cast(col, pa.string())
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def _needs_quoting(table: pa.Table) -> bool:
    """Whether any value needs quoting (comma, quote or line break)."""
    for col in table.columns:
        if pc.any(pc.match_substring_regex(col, r'[,"\r\n]')).as_py():
            return True
    return False


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    """The table as CSV; cells like ``=HYPERLINK(...)`` are written as text."""
    table = _as_text_table(neutralise_formulas(df))
    if not _needs_quoting(table):
        opts = pacsv.WriteOptions(quoting_style="none", quoting_header="none", batch_size=65536)
        pacsv.write_csv(table, path, write_options=opts)
        return
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.column_names)
    columns = [c.to_pylist() for c in table.columns]
    writer.writerows([["" if v is None else v for v in row] for row in zip(*columns, strict=True)])
    path.write_bytes(buf.getvalue().encode("utf-8"))


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    """The table as Parquet, date columns (:data:`DATE_COLUMNS`) as dates.

    Not :func:`qi_helpers.io.write_parquet`: the demo's files keep their own column types and
    pyarrow's default compression, so the files published so far keep their bytes.
    """
    table = pa.Table.from_pandas(df, preserve_index=False)
    cols = []
    for name, col in zip(table.column_names, table.columns, strict=True):
        if name in DATE_COLUMNS and pa.types.is_timestamp(col.type):
            col = pc.cast(col, pa.date32())
        cols.append(col)
    pq.write_table(pa.table(cols, names=table.column_names), path)


def demo_table_specs(
    folder: str | os.PathLike[str] = "data/demo", *, fmt: str = "csv"
) -> dict[str, dict[str, str]]:
    """The ``data.tables`` section of ``parameters/project.yaml`` for a demo written by
    :func:`write_demo`.

    Parameters
    ----------
    folder : path
        The folder the demo was written to: relative to the project folder (as the committed
        ``parameters/project.yaml`` has it) or absolute.
    fmt : {"csv", "parquet"}
        The format it was written in.

    Returns
    -------
    dict
        ``{table: {"path": "<folder>/<table>.<fmt>"}}`` for every table of
        :data:`CONTRACT_TABLES`, in that order (paths with ``/``).

    Raises
    ------
    ConfigError
        If ``fmt`` is not ``"csv"`` or ``"parquet"``.
    """
    if fmt not in ("csv", "parquet"):
        raise ConfigError(f"Unknown format {fmt!r}: expected 'csv' or 'parquet'.")
    base = Path(folder)
    return {name: {"path": (base / f"{name}.{fmt}").as_posix()} for name in CONTRACT_TABLES}


def write_demo(
    tables: Mapping[str, pd.DataFrame], out_dir: str | os.PathLike[str], *, fmt: str = "csv"
) -> list[Path]:
    """Write the demo tables, the truth and a README; same tables give byte-identical files.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        The result of :func:`make_demo`.
    out_dir : path
        Folder to write to (created if missing). Contract tables go to ``<out_dir>/<name>.csv``,
        truth tables to ``<out_dir>/truth/<name>.csv`` (without the ``truth_`` prefix), and a
        description of both to ``<out_dir>/README.md``.
    fmt : {"csv", "parquet"}
        File format. CSV has no index, ISO dates (``YYYY-MM-DD``) and timestamps
        (``YYYY-MM-DDTHH:MM:SS``), empty cells for missing values and quotes only where needed.

    Returns
    -------
    list of pathlib.Path
        The files written, in writing order (README last).

    Raises
    ------
    ConfigError
        If ``fmt`` is not ``"csv"`` or ``"parquet"``.
    DataError
        If a contract table is missing from ``tables``.
    """
    if fmt not in ("csv", "parquet"):
        raise ConfigError(f"Unknown format {fmt!r}: expected 'csv' or 'parquet'.")
    missing = [name for name in CONTRACT_TABLES if name not in tables]
    if missing:
        raise DataError(
            f"write_demo needs every contract table; missing {', '.join(missing)}. "
            "Pass the dictionary returned by make_demo()."
        )
    out = Path(out_dir)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    writer = _write_csv if fmt == "csv" else _write_parquet
    written: list[Path] = []
    for name in (*CONTRACT_TABLES, *TRUTH_TABLES):
        if name not in tables:
            continue
        folder = out / "truth" if name.startswith("truth_") else out
        path = folder / f"{name.removeprefix('truth_')}.{fmt}"
        atomic_write(path, lambda p, df=tables[name]: writer(df, p))
        written.append(path)
    readme = out / "README.md"
    write_text(readme, readme_text(tables, fmt))
    written.append(readme)
    return written
