"""Rank the candidate pilots and select them; check how much the choice depends on the weights.

:func:`rank` weights the criteria scores of :func:`qi_helpers.pilots.scoring.criteria`, selects
the pilots down the ranking (under caps per site and per kind) and says in words why each
candidate was picked or passed over; :func:`sensitivity` perturbs the weights at random and counts
how often each candidate stays selected; :func:`shortlist` is the ranked table as a coach reads it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qi_helpers.data.columns import require_columns
from qi_helpers.errors import ConfigError
from qi_helpers.pilots.scoring import CRITERIA, CRITERIA_LABELS


def rank(
    criteria: pd.DataFrame,
    weights: dict[str, float],
    *,
    k: int = 3,
    max_per_site: int | None = None,
    max_per_kind: int | None = None,
) -> pd.DataFrame:
    """Rank candidates by the weighted mean of their criteria scores and select ``k`` pilots.

    Parameters
    ----------
    criteria : DataFrame
        From :func:`qi_helpers.pilots.scoring.criteria` (any table with ``microsystem_id, site,
        kind`` and the weighted score columns).
    weights : dict of str to float
        Weight of each criterion of :data:`qi_helpers.pilots.scoring.CRITERIA` (missing ones
        weigh 0); only their ratios matter.
    k : int
        How many pilots to select.
    max_per_site, max_per_kind : int, optional
        At most this many pilots from one site / of one kind (to spread the learning).

    Returns
    -------
    DataFrame
        The criteria table sorted by rank, plus ``score`` (the weighted mean, 0-1), ``rank``
        (1 = best; ties broken by microsystem id), ``selected`` (bool), ``pick`` (1..k among the
        selected, ``<NA>`` otherwise) and ``rationale`` (a plain-language reason for the pick or
        for passing over the candidate).

    Notes
    -----
    Selection goes down the ranking and skips a candidate whose site or kind has reached its
    cap, so a capped selection can pass over a higher-ranked candidate (the rationale says so).
    """
    weights = _check_weights(weights)
    _check_criteria(criteria, weights)
    if not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"pilots.k must be a whole number of 1 or more; got {k!r}.")
    total = sum(weights.values())
    table = criteria.copy()
    scores = sum(table[c].astype(float).fillna(0.0) * w for c, w in weights.items()) / total
    table["score"] = scores.round(4)
    order, ranks, selected, skip = _ranking(
        table["score"].to_numpy(),
        table["microsystem_id"].astype(str).to_numpy(),
        table["site"].to_numpy(),
        table["kind"].to_numpy(),
        k,
        max_per_site,
        max_per_kind,
    )
    table["rank"] = ranks
    table["selected"] = selected
    picks = pd.Series(pd.NA, index=table.index, dtype="Int64")
    picks.iloc[order[selected[order]]] = np.arange(1, selected.sum() + 1)
    table["pick"] = picks
    table["rationale"] = _rationales(table, weights, selected, skip)
    return table.iloc[order].reset_index(drop=True)


def sensitivity(
    criteria: pd.DataFrame,
    weights: dict[str, float],
    *,
    spread: float = 0.2,
    draws: int = 1000,
    seed: int = 0,
    k: int = 3,
    max_per_site: int | None = None,
    max_per_kind: int | None = None,
) -> pd.DataFrame:
    """How often each candidate stays selected when the weights are perturbed at random.

    Parameters
    ----------
    criteria : DataFrame
        From :func:`qi_helpers.pilots.scoring.criteria`.
    weights : dict of str to float
        The weights agreed, as for :func:`rank`.
    spread : float
        Each weight is multiplied by an independent uniform factor in ``[1 - spread,
        1 + spread]`` (0.2 = up to 20% up or down).
    draws : int
        Number of perturbed weightings.
    seed : int
        Seed of the random generator.
    k, max_per_site, max_per_kind
        As :func:`rank`.

    Returns
    -------
    DataFrame
        One row per candidate, in the order of :func:`rank` at the agreed weights:
        ``microsystem_id, name, site, kind``, ``rank`` and ``selected`` at the agreed weights,
        ``share_selected`` (share of perturbed weightings in which it is selected),
        ``rank_best``, ``rank_median``, ``rank_worst`` (over the perturbed weightings) and
        ``verdict`` (``"robust pick"`` when selected in at least 90% of them, ``"robust pass"``
        when in at most 10%, else ``"depends on the weights"``).

    Notes
    -----
    A one-at-a-time check of weights misses interactions; random joint perturbation is the
    usual Monte Carlo sensitivity analysis of a weighted-sum decision (Butler, Jia & Dyer 1997,
    Eur J Oper Res 103:531-546).
    """
    weights = _check_weights(weights)
    _check_criteria(criteria, weights)
    if not 0 <= spread < 1:
        raise ConfigError(f"pilots sensitivity: spread must be in [0, 1); got {spread!r}.")
    if not isinstance(draws, int | np.integer) or draws < 1:
        raise ConfigError(f"pilots sensitivity: draws must be a positive integer; got {draws!r}.")
    base = rank(criteria, weights, k=k, max_per_site=max_per_site, max_per_kind=max_per_kind)
    names = list(weights)
    w = np.array([weights[c] for c in names])
    scores = base[names].astype(float).fillna(0.0).to_numpy()
    ids = base["microsystem_id"].astype(str).to_numpy()
    sites, kinds = base["site"].to_numpy(), base["kind"].to_numpy()
    rng = np.random.default_rng(seed)
    factors = rng.uniform(1 - spread, 1 + spread, size=(draws, len(names)))
    weighted = factors * w
    totals = (scores @ weighted.T) / weighted.sum(axis=1)  # candidates x draws
    chosen = np.zeros(len(base))
    ranks = np.empty((draws, len(base)), dtype=np.int64)
    for d in range(draws):
        _, ranks[d], sel, _ = _ranking(
            totals[:, d], ids, sites, kinds, k, max_per_site, max_per_kind
        )
        chosen += sel
    share = chosen / draws
    out = base[["microsystem_id", "name", "site", "kind", "rank", "selected"]].copy()
    out["share_selected"] = share.round(3)
    out["rank_best"] = ranks.min(axis=0)
    out["rank_median"] = np.median(ranks, axis=0)
    out["rank_worst"] = ranks.max(axis=0)
    out["verdict"] = np.where(
        share >= 0.9, "robust pick", np.where(share <= 0.1, "robust pass", "depends on the weights")
    )
    return out


def shortlist(ranked: pd.DataFrame, top: int | None = None) -> pd.DataFrame:
    """The ranked table as a coach reads it: rank, candidate, scores, selection and rationale.

    Returns
    -------
    DataFrame
        ``rank, microsystem_id, site, kind, score``, the criteria scores present,
        ``selected, rationale``; the first ``top`` rows (all when None).
    """
    cols = ["rank", "microsystem_id", "site", "kind", "score"]
    cols += [c for c in CRITERIA if c in ranked.columns] + ["selected", "rationale"]
    shown = ranked[[c for c in cols if c in ranked.columns]]
    return (shown if top is None else shown.head(top)).reset_index(drop=True)


def _check_weights(weights: dict[str, float]) -> dict[str, float]:
    if not isinstance(weights, dict) or not weights:
        raise ConfigError(
            f"pilots.weights must map criteria to weights, e.g. {{'readiness': 0.3}}; got "
            f"{weights!r}."
        )
    unknown = sorted(set(weights) - set(CRITERIA))
    if unknown:
        hint = " (`volume` is now `time_to_detect`)" if "volume" in unknown else ""
        raise ConfigError(
            f"pilots.weights: unknown criteria {unknown}{hint}; use {list(CRITERIA)}."
        )
    clean = {}
    for name, w in weights.items():
        if not isinstance(w, int | float) or not np.isfinite(w) or w < 0:
            raise ConfigError(f"pilots.weights.{name} must be a number of 0 or more; got {w!r}.")
        clean[name] = float(w)
    if sum(clean.values()) <= 0:
        raise ConfigError("pilots.weights: the weights must add up to more than 0.")
    return clean


def _check_criteria(table: pd.DataFrame, weights: dict[str, float]) -> None:
    require_columns(
        table,
        [*weights, "microsystem_id", "site", "kind"],
        "pilots: the criteria table",
        advice="Build it with qi_helpers.pilots.criteria().",
    )


def _select(
    order: np.ndarray,
    sites: np.ndarray,
    kinds: np.ndarray,
    k: int,
    max_per_site: int | None,
    max_per_kind: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy selection down the ranking under the caps; selected flags and skip reasons."""
    selected = np.zeros(order.size, dtype=bool)
    reason = np.full(order.size, "", dtype=object)
    per_site: dict = {}
    per_kind: dict = {}
    for i in order:
        if selected.sum() >= k:
            reason[i] = "ranked below the last pick"
            continue
        if max_per_site is not None and per_site.get(sites[i], 0) >= max_per_site:
            reason[i] = f"site {sites[i]} already has {max_per_site} pilot(s)"
            continue
        if max_per_kind is not None and per_kind.get(kinds[i], 0) >= max_per_kind:
            reason[i] = f"already {max_per_kind} pilot(s) of kind {kinds[i]}"
            continue
        selected[i] = True
        per_site[sites[i]] = per_site.get(sites[i], 0) + 1
        per_kind[kinds[i]] = per_kind.get(kinds[i], 0) + 1
    return selected, reason


def _order(scores: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Best first; ties broken by microsystem id, so the ranking is deterministic."""
    return np.lexsort((ids, -np.round(scores, 12)))


def _ranking(
    scores: np.ndarray,
    ids: np.ndarray,
    sites: np.ndarray,
    kinds: np.ndarray,
    k: int,
    max_per_site: int | None,
    max_per_kind: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rank candidates by score and select ``k`` under the caps (what :func:`rank` and each
    perturbed weighting of :func:`sensitivity` do).

    Returns the order (positions, best first), each candidate's rank (1 = best), the selected
    flags and the reason each candidate was passed over, all by position.
    """
    order = _order(scores, ids)
    ranks = np.empty(order.size, dtype=np.int64)
    ranks[order] = np.arange(1, order.size + 1)
    selected, reason = _select(order, sites, kinds, int(k), max_per_site, max_per_kind)
    return order, ranks, selected, reason


def _rationales(
    table: pd.DataFrame, weights: dict[str, float], selected: np.ndarray, skip: np.ndarray
) -> list[str]:
    """Why each candidate was picked or passed over, in the table's row order.

    A pick names the (at most two) criteria on which it stands out among the candidates; every
    candidate names the criteria on which it is weak, and the explanation of the weakest.
    """
    used = [c for c in CRITERIA if weights.get(c, 0) > 0 and c in table.columns]
    # criteria that tell the candidates apart (a range of 0.05 or more), and where each stands
    telling = [c for c in used if float(table[c].max() - table[c].min()) >= 0.05]
    standing = {c: table[c].rank(pct=True, method="average") for c in telling}
    last_pick = table.loc[selected, "score"].min() if selected.any() else np.nan
    rationale = []
    for i, row in table.iterrows():
        ordered = sorted(telling, key=lambda c: (-standing[c][i], -weights[c]))
        strong = [c for c in ordered if standing[c][i] > 0.5][:2]
        weak = [c for c in used if float(row[c]) < 0.5]
        weak += [
            c for c in telling if standing[c][i] <= 1 / 3 and float(row[c]) < 0.75 and c not in weak
        ]
        named = [f"{CRITERIA_LABELS[c]} ({float(row[c]):.2f})" for c in strong]
        flagged = [f"{CRITERIA_LABELS[c]} ({float(row[c]):.2f})" for c in weak]
        if row["selected"]:
            text = f"Pick {row['pick']} of {int(selected.sum())} (score {row['score']:.2f})"
            text += f": stands out on {' and '.join(named)}" if named else ""
            text += f"; watch {', '.join(flagged)}" if flagged else ""
        else:
            text = f"Not selected (rank {row['rank']}, score {row['score']:.2f}): {skip[i]}"
            if skip[i] == "ranked below the last pick" and pd.notna(last_pick):
                text += f" ({last_pick:.2f})"
            text += f"; weaker on {', '.join(flagged)}" if flagged else ""
        if weak:
            worst = min(weak, key=lambda c: float(row[c]))
            why = row.get(f"{worst}_why", "")
            text += f" [{why}]" if isinstance(why, str) and why else ""
        rationale.append(text + ".")
    return rationale
