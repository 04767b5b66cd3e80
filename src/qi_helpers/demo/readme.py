"""The README written next to the demo tables (used by :mod:`qi_helpers.demo.health_system`)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from qi_helpers.demo import catalogue as cat

TABLE_NOTES = {
    "activities": "one row per care activity (the staff-patient network of workbook 01)",
    "staff": "one row per staff member; `home_unit` is the declared unit (wrong for ~10%)",
    "patients": "one row per patient: PC panel patients and hospital catchment patients",
    "measures": "the measure catalogue; `target` is on the charted scale (after `multiply`)",
    "measure_events": "one row per measured case (ward_falls: one row per ward-day, `value` = "
    "falls, `denominator_weight` = patient-days)",
    "observations": "pre-aggregated weekly points: time to third next available appointment",
    "pdsa": "the PDSA log; each pilot's last cycle starts on the date its effect starts",
    "readiness": "survey of the ten success characteristics (1 poor, 2 mixed, 3 ideal, empty = "
    "can't rate); non-responders have no rows; `round` 2024-05-06 for everyone, 2025-03-03 for "
    "the pilots' staff again after their tests",
    "adoption": "later adopters of the successful changes (the pilots' own adoption is in pdsa)",
    "drivers": "driver diagrams: each pilot's (its planted change and an idea not tested yet) "
    "and the organisation's (`microsystem_id` empty)",
    "truth_microsystems": "the planted microsystems and their role in the story",
    "truth_membership": "the true share of each person's activities in each team (floaters: 2 "
    "rows)",
    "truth_effects": "every planted effect: start date, size, and the verdict an analyst should "
    "reach",
    "truth_baselines": "the planted level of each measure in each microsystem before any effect",
}


def _cell(v: object) -> str:
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d")
    if isinstance(v, float):
        return f"{v:+.2f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def _tables_section(tables: Mapping[str, pd.DataFrame], fmt: str) -> list[str]:
    lines = [
        "# Demo health system (synthetic)",
        "",
        "Written by `qi_helpers.demo.health_system.write_demo`. Every person, patient and number "
        "here is invented. Time: 104 weeks from Monday " + cat.START_DATE + ".",
        "",
        "## Tables",
        "",
        "| file | rows | columns | what |",
        "|---|---:|---|---|",
    ]
    for name, df in tables.items():
        folder = "truth/" if name.startswith("truth_") else ""
        file = f"{folder}{name.removeprefix('truth_')}.{fmt}"
        cols = ", ".join(f"`{c}`" for c in df.columns)
        lines.append(f"| `{file}` | {len(df):,} | {cols} | {TABLE_NOTES.get(name, '')} |")
    return lines


def _organisation_section(micro: pd.DataFrame) -> list[str]:
    n_sites = micro.loc[micro["site"] != "Organisation", "site"].nunique()
    kinds = micro["kind"].value_counts().reindex(list(cat.KINDS)).fillna(0).astype(int)
    return [
        "",
        "## The organisation",
        "",
        f"{len(micro)} microsystems on {n_sites} sites plus organisation-wide call "
        "centres: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in kinds.items()) + ".",
        "Microsystem ids are `<SITE>-PC<n>` (primary care team), `<SITE>-W<n>` (ward), "
        "`<SITE>-LAB` (laboratory) and `ORG-CC<n>` (call centre); each works in one location "
        "(`truth/microsystems` `locations`). Staff of a team share many patients; staff of "
        "different teams share few (mostly fewer than 6). Floaters (`truth/membership`, "
        "two rows each) also work in a second team's location.",
    ]


def _effects_table(effects: pd.DataFrame) -> list[str]:
    """Every planted effect except the later adopters with the full effect."""
    lines = [
        "",
        "## Planted truth",
        "",
        "Effects are on the value scale of `measure_events` (proportions 0-1; relative "
        "effects are fractions of the baseline) and start on the Monday given.",
        "",
        "| microsystem | measure | change | start | effect | planted as | expected verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    shown = effects[effects["planted_as"] != "adopter"]
    for r in shown.itertuples():
        eff = f"{r.effect:+.2f} {r.effect_type}"
        lines.append(
            f"| {r.microsystem_id} | {r.measure_id} | {r.change or '(none)'} | "
            f"{_cell(r.start)} | {eff} | {r.planted_as} | {r.expected_verdict} |"
        )
    return lines


def _adopters(effects: pd.DataFrame) -> list[str]:
    """The later adopters with the full effect, by change."""
    adopters = effects[effects["planted_as"] == "adopter"]
    if not len(adopters):
        return []
    lines = [
        "",
        "Later adopters with the full effect (waves at weeks "
        + ", ".join(map(str, cat.WAVE_WEEKS))
        + "):",
        "",
    ]
    for change, grp in adopters.groupby("change", sort=True):
        lines.append(
            f"- {change}: "
            + ", ".join(f"{r.microsystem_id} ({_cell(r.start)})" for r in grp.itertuples())
        )
    return lines


def _selection_flags(micro: pd.DataFrame) -> list[str]:
    """The microsystems planted with an unstable baseline, low volume or low readiness."""
    flags = []
    for col, label in (
        ("unstable", "unstable baseline"),
        ("low_volume", "low volume"),
        ("low_readiness", "low readiness"),
    ):
        ids = micro.loc[micro[col], "microsystem_id"].tolist()
        flags.append(f"- {label}: {', '.join(ids) or '(none)'}")
    return ["", "Pilot-selection flags:", "", *flags]


def readme_text(tables: Mapping[str, pd.DataFrame], fmt: str) -> str:
    """Describe the tables and the planted truth in Markdown (deterministic)."""
    micro = tables.get("truth_microsystems")
    lines = _tables_section(tables, fmt)
    if micro is not None:
        lines += _organisation_section(micro)
    effects = tables.get("truth_effects")
    if effects is not None:
        lines += _effects_table(effects)
        lines += _adopters(effects)
        if micro is not None:
            lines += _selection_flags(micro)
        lines += [
            "",
            "Every microsystem and measure not listed above has a stable series (no planted "
            "signal), apart from seasonal changes in volume.",
        ]
    return "\n".join(lines) + "\n"
