"""Every other team of the pilots' kind, scored as a candidate to adopt a change (workbook 04).

The most similar, readiest teams with the most to gain come first: the *early adopters* of Rogers
(*Diffusion of Innovations*, 5th ed., 2003), who make the change visible to the rest. Each
candidate's score and the reasons for it, in words, come from :func:`candidates`;
:func:`all_candidates` does it for every change ready to spread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from qi_helpers.spread.impact import IMPACT_COLUMNS, Projection, projected_impact, projection
from qi_helpers.spread.profiles import MIX_NAMES, similarity
from qi_helpers.spread.ready import successful_changes

#: Weights of the candidate score (similarity to the pilots, readiness, projected impact).
DEFAULT_WEIGHTS: dict[str, float] = {"similarity": 0.4, "readiness": 0.4, "impact": 0.2}

#: The columns of :func:`candidates`, in order.
CANDIDATE_COLUMNS = [
    "change",
    "microsystem_id",
    "name",
    "kind",
    "site",
    "similarity",
    "similarity_role",
    "similarity_activity",
    "similarity_patient",
    "readiness",
    "respondents",
    *IMPACT_COLUMNS,
    "score",
    "reason",
]


def candidates(
    registry: pd.DataFrame,
    profiles: pd.DataFrame | None,
    results: pd.DataFrame,
    readiness: pd.DataFrame,
    *,
    change: str,
    levels: pd.DataFrame | None = None,
    measures: pd.DataFrame | None = None,
    weights: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Every other microsystem of the pilots' kind, scored as a candidate to adopt ``change``.

    Parameters
    ----------
    registry : DataFrame
        From workbook 01 (``microsystem_id, name, kind, site``).
    profiles : DataFrame or None
        ``microsystem_id`` and ``<mix>:<category>`` shares
        (:func:`qi_helpers.spread.profiles.spread_profiles`); None leaves similarity out of the
        score.
    results : DataFrame
        All workbook 03 verdicts (``microsystem_id, measure_id, change, verdict, baseline_mean,
        after_mean``; ``effect`` is used when present).
    readiness : DataFrame
        From :func:`qi_helpers.pilots.readiness.readiness_by_microsystem`.
    change : str
        The change to spread.
    levels : DataFrame, optional
        From :func:`qi_helpers.spread.impact.measure_levels`: each candidate's current level of
        the change's measure.
    measures : DataFrame, optional
        The measure catalogue (``improvement``, ``target``, ``multiply``, ``chart``, ``unit``);
        needed, with ``levels``, for the projected impact.
    weights : mapping, optional
        ``similarity, readiness, impact`` weights of the score (default :data:`DEFAULT_WEIGHTS`).

    Returns
    -------
    DataFrame
        ``change, microsystem_id, name, kind, site, similarity`` (0-1, mean of the mixes),
        ``similarity_role, similarity_activity, similarity_patient`` (per mix; NaN without
        profiles), ``readiness`` (mean 1-3), ``respondents``, ``measure_id`` (the change's main
        measure), ``level`` (the candidate's level now), ``target``, ``projected_level``,
        ``projected_change`` (signed, charted scale), ``weekly_volume``, ``projected_impact``
        (the projected gain times the weekly volume: cases, events or units a week),
        ``impact_unit``, ``score`` (0-1) and ``reason`` (in words), best first. Empty (with
        these columns) when the change improved nowhere or was held back.

    Notes
    -----
    The candidates are every microsystem of a kind where the change improved results, except
    those that have tested or adopted it already (they appear in ``results`` with the change).
    Projected impact: when the measure has a target, the pilots' gain is read as the share of
    their gap to the target that they closed, and the candidate is projected to close the same
    share of its own gap (a team already at target has little to gain); without a target, the
    pilots' relative gain is applied to the candidate's level. The score is
    ``w_s * similarity + w_r * readiness_score + w_i * impact / max(impact)`` with missing parts
    counted as 0 (a team not surveyed is not known to be ready), so that the most similar, ready
    teams with the most to gain come first: the early adopters (Rogers 2003), who make the
    change visible to the rest.
    """
    won = successful_changes(results)
    row = won[won["change"] == change]
    if row.empty:
        return pd.DataFrame(columns=CANDIDATE_COLUMNS)
    pilots = row.iloc[0]["pilots"].split(";")
    measure_list = row.iloc[0]["measures"].split(";")
    kinds = set(registry.loc[registry["microsystem_id"].isin(pilots), "kind"])
    tested = set(results.loc[results["change"] == change, "microsystem_id"])
    pool = registry[registry["kind"].isin(kinds) & ~registry["microsystem_id"].isin(tested)]
    table = pool[["microsystem_id", "name", "kind", "site"]].reset_index(drop=True)
    table.insert(0, "change", change)
    if profiles is not None:
        sims = similarity(profiles, pilots)
        table = table.merge(sims, on="microsystem_id", how="left")
    ready = readiness[["microsystem_id", "readiness", "readiness_score", "respondents"]]
    table = table.merge(ready, on="microsystem_id", how="left")
    for column in ("similarity", "similarity_role", "similarity_activity", "similarity_patient"):
        if column not in table:
            table[column] = np.nan
    measure_id, proj = projection(results, measures, levels, change, pilots, measure_list)
    impact = projected_impact(table["microsystem_id"], measure_id, proj)
    for column in impact.columns:
        table[column] = impact[column]
    table["score"] = _score(table, weights)
    table = table.sort_values(["score", "microsystem_id"], ascending=[False, True], kind="stable")
    table["reason"] = [_reason(r, pilots, proj) for r in table.itertuples()]
    return table[CANDIDATE_COLUMNS].reset_index(drop=True)


def all_candidates(
    registry: pd.DataFrame,
    profiles: pd.DataFrame | None,
    results: pd.DataFrame,
    readiness: pd.DataFrame,
    *,
    levels: pd.DataFrame | None = None,
    measures: pd.DataFrame | None = None,
    weights: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """:func:`candidates` for every change ready to spread, in one table (changes sorted).

    Returns
    -------
    DataFrame
        The columns of :func:`candidates`.
    """
    frames = [
        candidates(
            registry,
            profiles,
            results,
            readiness,
            change=c,
            levels=levels,
            measures=measures,
            weights=weights,
        )  # fmt: skip
        for c in successful_changes(results)["change"]
    ]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=CANDIDATE_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def _score(table: pd.DataFrame, weights: Mapping[str, float] | None) -> pd.Series:
    """The weighted score (0-1) of similarity, readiness and the impact relative to the largest."""
    w = dict(DEFAULT_WEIGHTS)
    w.update(weights or {})
    size = table["projected_impact"].where(table["projected_impact"].notna(),
                                           table["projected_change"].abs())  # fmt: skip
    top = size.max()
    impact_part = (size / top).fillna(0.0) if top and top > 0 else pd.Series(0.0, table.index)
    total = sum(w.values()) or 1.0
    return (
        (
            w["similarity"] * table["similarity"].fillna(0.0)
            + w["readiness"] * table["readiness_score"].fillna(0.0)
            + w["impact"] * impact_part
        )
        / total
    ).round(4)


def _reason(r: Any, pilots: list[str], proj: Projection | None) -> str:
    """Why a candidate is where it is, in words: kind, similarity, readiness, projected gain."""
    parts = [f"same kind as {', '.join(pilots)}"]
    if pd.notna(r.similarity):
        mixes = [
            f"{MIX_NAMES.get(m, m)} {getattr(r, f'similarity_{m}'):.0%}"
            for m in ("role", "activity", "patient")
            if pd.notna(getattr(r, f"similarity_{m}"))
        ]
        parts.append(f"{r.similarity:.0%} similar ({', '.join(mixes)})")
    if pd.isna(r.readiness):
        parts.append("readiness not surveyed")
    else:
        parts.append(f"readiness {r.readiness:.1f} of 3 ({int(r.respondents)} respondents)")
    if proj is not None and pd.notna(r.level):
        unit = "%" if proj.measure.unit == "%" else f" {proj.measure.unit}".rstrip()
        text = f"{proj.measure.name} {_fmt(r.level)}{unit} now"
        if pd.notna(r.projected_change) and abs(r.projected_change) > 0:
            text += f", projected {_fmt(r.projected_level)}{unit}"
            if pd.notna(r.projected_impact) and r.impact_unit:
                text += f" (about {r.projected_impact:.2g} {r.impact_unit})"
        else:
            text += ", already at target: little to gain"
        parts.append(text)
    return "; ".join(parts)


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
