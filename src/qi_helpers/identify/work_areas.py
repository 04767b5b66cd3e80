"""Work areas and activity mixes: the split of clusters that hold teams doing different work.

A microsystem is a core team caring for a group of patients, but also "a work area or department
with the same aims, linked processes and shared information": a group of lab technicians, the
staff of a call centre (Nelson et al. 2002, Jt Comm J Qual Improv 28(9):472-493). A service team
of that kind (laboratory, pharmacy, imaging, phlebotomy, a call centre) touches the patients of
many teams, so on shared patients alone it joins the team it shares most patients with. What
sets it apart is the rest of its 5 Ps: it works in its own area, on its own kind of work.

:func:`split_by_work` looks at every cluster of the first pass through those two Ps:

1. each member's **main work area** is the location of most of their activities; the members
   sharing a main work area form a *block*;
2. two blocks do **the same kind of work** when their work areas or their activities overlap:
   the proportional similarity of the two mixes, ``PS = sum_i min(p_i, q_i)`` (0: nothing in
   common, 1: the same mix; Czekanowski's index, as used for niche overlap by Feinsinger,
   Spears & Poole 1981, Ecology 62(1):27-32), is above :data:`MAX_OVERLAP` for either. Blocks
   linked that way form a *work group*; the group doing most of the cluster's work is its core;
3. every other work group leaves the cluster: to the cluster whose core works in the group's
   main area when there is one (ward staff caught in another cluster go back to the ward), else
   the groups of that main area from every cluster become a microsystem of their own when it is
   a team (at least :data:`MIN_TEAM` staff) measurable on its own (at least
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


def _work_groups(encoded: Encoded, members: np.ndarray, area_of: np.ndarray) -> list[np.ndarray]:
    """The members by kind of work, the largest (by volume) first.

    Members sharing a main work area form a block; two blocks do the same kind of work when
    their work areas or their activities overlap more than :data:`MAX_OVERLAP`; a group is a
    connected set of such blocks.
    """
    areas = area_of[members]
    blocks = [members[areas == a] for a in np.unique(areas)]
    mixes = [_mixes(encoded, b) for b in blocks]
    group = list(range(len(blocks)))
    for i in range(len(blocks)):
        for j in range(i + 1, len(blocks)):
            (areas_i, acts_i), (areas_j, acts_j) = mixes[i], mixes[j]
            if overlap(areas_i, areas_j) > MAX_OVERLAP or overlap(acts_i, acts_j) > MAX_OVERLAP:
                old, new = max(group[i], group[j]), min(group[i], group[j])
                group = [new if g == old else g for g in group]
    groups = [np.sort(np.concatenate([blocks[i] for i in range(len(blocks)) if group[i] == g]))
              for g in sorted(set(group))]  # fmt: skip
    return sorted(groups, key=lambda g: -encoded.staff_volume[g].sum())


def _main_area(encoded: Encoded, members: np.ndarray) -> int:
    """The location index where a group of staff does most of its work."""
    return int(np.argmax(np.asarray(encoded.staff_location[members].sum(axis=0)).ravel()))


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
    home: dict[int, tuple[float, int]] = {}  # area -> (volume, cluster) of the core working there
    candidates: dict[int, list[tuple[int, np.ndarray, float, float]]] = {}
    for c, members in enumerate(communities):
        label[members] = c
        core, *others = _work_groups(encoded, members, area_of)
        area = _main_area(encoded, core)
        home[area] = max(home.get(area, (-1.0, -1)), (encoded.staff_volume[core].sum(), -c))
        for block in others:
            areas_overlap, acts_overlap = _distinct(encoded, block, np.setdiff1d(members, block))
            candidates.setdefault(_main_area(encoded, block), []).append(
                (c, block, areas_overlap, acts_overlap)
            )
    owner = {area: -c for area, (_, c) in home.items()}
    moved: dict[int, list[tuple[np.ndarray, str]]] = {}  # source cluster -> blocks and reasons
    n_clusters = len(communities)
    for area, found in sorted(candidates.items()):
        pooled = np.concatenate([block for _, block, _, _ in found])
        if area in owner:
            target, why = owner[area], "placed with the team whose work area it is"
        elif (
            len(pooled) >= MIN_TEAM
            and encoded.staff_volume[pooled].sum() / encoded.n_weeks >= min_weekly_volume
        ):
            target, why = n_clusters, "a microsystem of its own"
            n_clusters += 1
        else:
            continue
        for source, block, areas_overlap, acts_overlap in found:
            if source == target:
                continue
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
    log += _gather_lone(encoded, communities, label, owner)
    clusters = [np.flatnonzero(label == c) for c in range(n_clusters)]
    return sorted((c for c in clusters if len(c)), key=lambda c: c[0]), log


def _gather_lone(
    encoded: Encoded, communities: list[np.ndarray], label: np.ndarray, owner: dict[int, int]
) -> list[dict[str, Any]]:
    """Clusters of fewer than :data:`MIN_TEAM` staff join the team owning their work area.

    Louvain at a high resolution can leave the members of a service team, each tied to the
    patients of many teams, in clusters of their own; a microsystem is a team.
    """
    log = []
    for c, members in enumerate(communities):
        members = members[label[members] == c]
        if not len(members) or len(members) >= MIN_TEAM:
            continue
        area = _main_area(encoded, members)
        target = owner.get(area, c)
        if target == c or not len(np.flatnonzero(label == target)):
            continue
        cluster, volume = _describe_cluster(encoded, members)
        label[members] = target
        log.append(
            {
                "action": "merge",
                "cluster": cluster,
                "n_staff": len(members),
                "weekly_volume": round(volume, 1),
                "parts": [np.flatnonzero(label == target)],
                "reason": f"{_describe_block(encoded, members, area)}: alone in its cluster (a "
                "microsystem is a team); placed with the team whose work area it is",
            }
        )
    return log


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
