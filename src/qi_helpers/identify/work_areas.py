"""Work areas and activity mixes: the split of clusters that hold teams doing different work.

A microsystem is a core team caring for a group of patients, but also "a work area or department
with the same aims, linked processes and shared information": a group of lab technicians, the
staff of a call centre (Nelson et al. 2002, Jt Comm J Qual Improv 28(9):472-493). A service team
of that kind (laboratory, pharmacy, imaging, phlebotomy, a call centre) touches the patients of
many teams, so on shared patients alone it joins the team it shares most patients with. What
sets it apart is the rest of its 5 Ps: it works in its own area, on its own kind of work.

:func:`split_by_work` looks at every cluster of the first pass through those two Ps:

1. each member's **main work area** is the location of most of their activities; the members
   sharing a main work area form a *block*; the block doing most of the cluster's work is its
   core;
2. another block is **distinct** when both its work areas and its activities barely overlap
   those of the rest of the cluster: the proportional similarity of the two mixes,
   ``PS = sum_i min(p_i, q_i)`` (0: nothing in common, 1: the same mix; Czekanowski's index,
   as used for niche overlap by Feinsinger, Spears & Poole 1981, Ecology 62(1):27-32), is at
   most :data:`MAX_OVERLAP` for both;
3. distinct blocks leave their cluster: to the cluster whose core works in the same area when
   there is one (a member of the ward's staff caught in another cluster goes back to the ward),
   else the distinct blocks of that area from every cluster become a microsystem of their own
   when it is a team (at least :data:`MIN_TEAM` staff) measurable on its own (at least
   ``min_weekly_volume`` activities a week). Otherwise they stay where they were.

Blocks doing the same kind of work are never split here (two practices joined by shared
patients are left to the refinement, which reads the ties). :func:`same_work` is the other side
of the rule, used by the small-cluster merges: a cluster is never merged into one whose work
areas and activities are distinct from its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qi_helpers.identify.network import Encoded

__all__ = ["MAX_OVERLAP", "MIN_TEAM", "overlap", "same_work", "split_by_work"]

#: Work areas and activity mixes overlapping at most this much (proportional similarity) are
#: distinct: the kinds of work of a service team and of the teams it serves.
MAX_OVERLAP = 0.2
#: The fewest staff a work-area block needs to become a microsystem of its own.
MIN_TEAM = 2


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Proportional similarity ``sum_i min(p_i, q_i)`` of two count vectors (0 when one is empty).

    Czekanowski's index; Feinsinger, Spears & Poole (1981), Ecology 62(1):27-32.
    """
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.sum() <= 0 or b.sum() <= 0:
        return 0.0
    return float(np.minimum(a / a.sum(), b / b.sum()).sum())


def _mixes(encoded: Encoded, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The work-area and activity counts of a group of staff."""
    areas = np.asarray(encoded.staff_location[members].sum(axis=0)).ravel()
    acts = np.asarray(encoded.staff_activity[members].sum(axis=0)).ravel()
    return areas, acts


def same_work(encoded: Encoded, a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two groups of staff share work areas or activities (either overlap above
    :data:`MAX_OVERLAP`): the complement of the distinct blocks of :func:`split_by_work`."""
    areas_a, acts_a = _mixes(encoded, a)
    areas_b, acts_b = _mixes(encoded, b)
    return overlap(areas_a, areas_b) > MAX_OVERLAP or overlap(acts_a, acts_b) > MAX_OVERLAP


def main_areas(encoded: Encoded) -> np.ndarray:
    """The location index of each staff member's main work area."""
    return np.asarray(encoded.staff_location.argmax(axis=1)).ravel()


def _blocks(encoded: Encoded, members: np.ndarray, area_of: np.ndarray):
    """The members by main work area: ``(core area, {area: members})``."""
    areas = area_of[members]
    blocks = {int(a): members[areas == a] for a in np.unique(areas)}
    volume = {a: encoded.staff_volume[m].sum() for a, m in blocks.items()}
    core = max(sorted(volume), key=lambda a: volume[a])
    return core, blocks


def _distinct(encoded: Encoded, block: np.ndarray, rest: np.ndarray) -> tuple[float, float]:
    """Overlap of the work areas and of the activities of a block with the rest of its cluster."""
    areas_b, acts_b = _mixes(encoded, block)
    areas_r, acts_r = _mixes(encoded, rest)
    return overlap(areas_b, areas_r), overlap(acts_b, acts_r)


def _describe_block(encoded: Encoded, members: np.ndarray, area: int) -> str:
    """ "4 staff who work 99% in Eastgate Laboratory on analysis and specimen received"."""
    areas, acts = _mixes(encoded, members)
    top = np.argsort(-acts, kind="stable")[:2]
    what = " and ".join(str(encoded.activity_names[i]) for i in top if acts[i] > 0)
    share = 100 * areas[area] / max(areas.sum(), 1)
    return f"{len(members)} staff who work {share:.0f}% in {encoded.location_names[area]} on {what}"


def _describe_cluster(encoded: Encoded, members: np.ndarray) -> tuple[str, float]:
    areas, _ = _mixes(encoded, members)
    main = encoded.location_names[int(np.argmax(areas))]
    return f"{len(members)} staff working mainly at {main}", float(areas.sum()) / encoded.n_weeks


def split_by_work(
    encoded: Encoded, communities: list[np.ndarray], min_weekly_volume: float
) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
    """Split off the blocks of staff whose work areas and activities are their own.

    Parameters
    ----------
    encoded : Encoded
        The activities, from :func:`qi_helpers.identify.network.encode`.
    communities : list of numpy.ndarray
        Staff indices of each cluster (the first pass of Louvain).
    min_weekly_volume : float
        Activities a week a new microsystem needs (the "measurable on its own" rule).

    Returns
    -------
    communities : list of numpy.ndarray
        The clusters after the splits, sorted by their first member.
    log : list of dict
        One ``split`` per cluster that lost a block: ``action``, ``cluster``, ``n_staff``,
        ``weekly_volume``, ``parts`` (staff indices of the resulting clusters) and ``reason``
        (each block in words: its staff, share of work in its area, main activities, overlaps).
    """
    area_of = main_areas(encoded)
    label = np.empty(len(encoded.staff_ids), dtype=np.int64)
    home: dict[int, int] = {}  # area -> the cluster whose core works there
    candidates: dict[int, list[tuple[int, np.ndarray, float, float]]] = {}
    for c, members in enumerate(communities):
        label[members] = c
        core, blocks = _blocks(encoded, members, area_of)
        home.setdefault(core, c)
        for area, block in blocks.items():
            if area == core:
                continue
            rest = np.setdiff1d(members, block)
            areas_overlap, acts_overlap = _distinct(encoded, block, rest)
            if areas_overlap <= MAX_OVERLAP and acts_overlap <= MAX_OVERLAP:
                candidates.setdefault(area, []).append((c, block, areas_overlap, acts_overlap))
    moved: dict[int, list[tuple[np.ndarray, str]]] = {}  # source cluster -> blocks and reasons
    n_clusters = len(communities)
    for area, found in sorted(candidates.items()):
        pooled = np.concatenate([block for _, block, _, _ in found])
        if area in home:
            target, why = home[area], "placed with the team whose work area it is"
        elif (
            len(pooled) >= MIN_TEAM
            and encoded.staff_volume[pooled].sum() / encoded.n_weeks >= min_weekly_volume
        ):
            target, why = n_clusters, "a microsystem of its own"
            n_clusters += 1
        else:
            continue
        for source, block, areas_overlap, acts_overlap in found:
            label[block] = target
            moved.setdefault(source, []).append(
                (
                    block,
                    f"{_describe_block(encoded, block, area)}: {why} (their work areas overlap "
                    f"the rest of the cluster's {areas_overlap:.2f}, their activities "
                    f"{acts_overlap:.2f})",
                )
            )
    log = [_split_entry(encoded, communities[s], label, moved[s]) for s in sorted(moved)]
    clusters = [np.flatnonzero(label == c) for c in range(n_clusters)]
    return sorted((c for c in clusters if len(c)), key=lambda c: c[0]), log


def _split_entry(
    encoded: Encoded, members: np.ndarray, label: np.ndarray, blocks: list[tuple[np.ndarray, str]]
) -> dict[str, Any]:
    """The log entry of one cluster that lost blocks."""
    cluster, volume = _describe_cluster(encoded, members)
    parts = [members[label[members] == c] for c in np.unique(label[members])]
    parts += [np.flatnonzero(label == label[block[0]]) for block, _ in blocks]
    return {
        "action": "split",
        "cluster": cluster,
        "n_staff": len(members),
        "weekly_volume": round(volume, 1),
        "parts": parts,
        "reason": "Work areas and activities of their own (a microsystem is also a work area "
        "with its own processes, Nelson et al. 2002; proportional similarity of the mixes at "
        f"most {MAX_OVERLAP:g}): " + "; ".join(why for _, why in blocks) + ".",
    }
