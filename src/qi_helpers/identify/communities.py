"""Communities of the staff network: Louvain, the supported-split refinement, small-cluster merges.

Steps 3 to 5 of :func:`qi_helpers.identify.microsystems.identify` (its module notes give the
method in full), on the kept ties of :func:`qi_helpers.identify.network.kept_ties`:

- ``_louvain``: Louvain modularity optimisation through networkx, seeded (Blondel et al. 2008,
  J Stat Mech P10008);
- ``_refine``: Louvain again inside each community, against the resolution limit of modularity
  (Fortunato & Barthelemy 2007, PNAS 104(1):36-41), after the recursive use of modularity of Ruan
  & Zhang (2008, Phys Rev E 77:016104); ``_weak_parts`` keeps a split only when every part has
  more shared-patient ties inside it than to its siblings, a community in the weak sense of
  Radicchi et al. (2004, PNAS 101(9):2658-2663), and puts a failing part back with the sibling it
  is most tied to, so a single well-knit team is never cut;
- ``_merge_small``: the "smallest measurable" rule: a cluster below ``min_weekly_volume``
  activities a week joins the cluster it is most strongly tied to among those doing the same kind
  of work; without such a tie, the cluster owning its main work area; else it is kept, flagged.

Between the first pass and the refinement, :func:`qi_helpers.identify.work_areas.split_by_work`
splits off the blocks of staff with work areas and activities of their own (service teams).
:func:`cluster_staff` runs the steps and returns the labels and the split/merge log.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import scipy.sparse as sp

from qi_helpers.identify.network import Encoded, kept_ties
from qi_helpers.identify.work_areas import same_work, split_by_work

__all__ = ["cluster_staff"]


def _louvain(weights: sp.csr_matrix, resolution: float, seed: int) -> list[np.ndarray]:
    """Louvain communities of a weighted graph given as a symmetric sparse matrix."""
    graph = nx.from_scipy_sparse_array(weights, edge_attribute="weight")
    found = nx.community.louvain_communities(
        graph, weight="weight", resolution=resolution, seed=seed
    )
    return sorted((np.sort(np.fromiter(c, dtype=np.int64)) for c in found), key=lambda c: c[0])


def _weak_parts(sub: sp.csr_matrix, labels: np.ndarray) -> np.ndarray:
    """Merge parts that are not weak communities into the sibling they are most tied to.

    Radicchi et al. (2004): a group is a community in the weak sense when the sum of its
    members' ties inside it exceeds the sum of their ties to the rest (here: to its siblings).
    """
    labels = labels.copy()
    while True:
        _, labels = np.unique(labels, return_inverse=True)
        k = labels.max() + 1
        if k == 1:
            return labels
        member = sp.csr_matrix(
            (np.ones(len(labels)), (np.arange(len(labels)), labels)), shape=(len(labels), k)
        )
        between = (member.T @ sub @ member).toarray()
        inside = np.diag(between).copy()
        outside = between.sum(axis=1) - inside
        ratio = np.where(outside > 0, inside / np.maximum(outside, 1e-12), np.inf)
        failing = np.flatnonzero(inside <= outside)
        if not len(failing):
            return labels
        worst = failing[np.argmin(ratio[failing])]
        ties = between[worst].copy()
        ties[worst] = -1
        labels[labels == worst] = int(np.argmax(ties))


def _describe(encoded: Encoded, members: np.ndarray) -> tuple[str, float]:
    """A cluster by its staff count and main work area, and its weekly volume."""
    per_location = np.asarray(encoded.staff_location[members].sum(axis=0)).ravel()
    area = encoded.location_names[int(np.argmax(per_location))]
    volume = float(per_location.sum()) / encoded.n_weeks
    return f"{len(members)} staff working mainly at {area}", volume


def _refine(
    encoded: Encoded, ties: sp.csr_matrix, communities, resolution: float, seed: int
) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
    """Re-run Louvain inside each community and keep the splits into weak communities."""
    queue = list(communities)
    final: list[np.ndarray] = []
    splits: list[dict[str, Any]] = []
    while queue:
        members = queue.pop(0)
        sub = ties[members][:, members].tocsr()
        if len(members) < 4 or sub.nnz == 0:
            final.append(members)
            continue
        parts = _louvain(sub, resolution, seed)
        if len(parts) == 1:
            final.append(members)
            continue
        labels = np.empty(len(members), dtype=np.int64)
        for k, part in enumerate(parts):
            labels[part] = k
        labels = _weak_parts(sub, labels)
        k = int(labels.max()) + 1
        if k == 1:
            final.append(members)
            continue
        groups = [members[labels == j] for j in range(k)]
        quality = nx.community.modularity(
            nx.from_scipy_sparse_array(sub, edge_attribute="weight"),
            [set(np.flatnonzero(labels == j).tolist()) for j in range(k)],
            weight="weight",
            resolution=resolution,
        )
        cluster, volume = _describe(encoded, members)
        splits.append(
            {
                "action": "split",
                "cluster": cluster,
                "n_staff": len(members),
                "weekly_volume": round(volume, 1),
                "parts": groups,
                "reason": f"Louvain run again inside this cluster found {k} groups, each with more "
                "shared-patient ties inside it than to the others (weak communities, Radicchi et "
                f"al. 2004; modularity within the cluster {quality:.2f}). The first pass had "
                "joined them: modularity cannot see teams this small in a network this large "
                "(resolution limit, Fortunato & Barthelemy 2007).",
            }
        )
        queue.extend(sorted(groups, key=lambda g: g[0]))
    return sorted(final, key=lambda c: c[0]), splits


def _neighbours(ties: sp.csr_matrix, cluster_of: np.ndarray, k: int) -> list[dict[int, float]]:
    """Cluster-to-cluster ties, one sparse product ``M.T @ W @ M``, as a map per cluster."""
    member = sp.csr_matrix(
        (np.ones(len(cluster_of)), (np.arange(len(cluster_of)), cluster_of)),
        shape=(len(cluster_of), k),
    )
    between = (member.T @ ties @ member).tocoo()
    neighbours: list[dict[int, float]] = [{} for _ in range(k)]
    for a, b, w in zip(
        between.row.tolist(), between.col.tolist(), between.data.tolist(), strict=True
    ):
        if a != b and w > 0:
            neighbours[a][b] = w
    return neighbours


def _target(
    encoded: Encoded,
    members_of,
    c: int,
    neighbours: dict[int, float],
    by_area: np.ndarray,
    by_work: bool,
) -> tuple[int | None, str]:
    """Where a small cluster goes, and why (``None``: it stays, flagged).

    Its most strongly tied neighbour; with ``by_work``, the most strongly tied one doing the
    same kind of work (:func:`qi_helpers.identify.work_areas.same_work`), else, when it has no
    such tie, the cluster doing most of the work in its main work area.
    """
    for t in sorted(sorted(neighbours), key=lambda t: -neighbours[t]):
        if not by_work or same_work(encoded, members_of(c), members_of(t)):
            return t, (
                f"most strongly tied to this microsystem ({neighbours[t]:.0f} shared patients "
                "over its staff's ties)"
            )
    if not by_work or not by_area[c].any():
        return None, ""
    area = int(np.argmax(by_area[c]))
    owner = int(np.argmax(by_area[:, area]))
    if owner == c:
        return None, ""
    share = by_area[c, area] / by_area[c].sum()
    return owner, (
        "no shared-patient tie to a team doing the same work; works "
        f"{100 * share:.0f}% at {encoded.location_names[area]}, the work area of this microsystem"
    )


def _merge_small(
    encoded: Encoded,
    ties: sp.csr_matrix,
    cluster_of: np.ndarray,
    min_weekly_volume: float,
    by_work: bool = True,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Merge clusters below the volume threshold into their most strongly tied neighbour.

    With ``by_work``, only into a neighbour doing the same kind of work (never a low-volume
    practice into the pharmacy that serves it), and a cluster without such a tie (a bank nurse
    with a few shifts) joins the cluster owning its main work area (:func:`_target`). Each merge
    updates the two clusters' neighbour maps, so the cost grows with the number of clusters, not
    of staff.
    """
    k = int(cluster_of.max()) + 1
    neighbours = _neighbours(ties, cluster_of, k)
    volume = np.bincount(cluster_of, weights=encoded.staff_volume, minlength=k) / encoded.n_weeks
    member = sp.csr_matrix(
        (np.ones(len(cluster_of)), (np.arange(len(cluster_of)), cluster_of)),
        shape=(len(cluster_of), k),
    )
    by_area = (member.T @ encoded.staff_location).toarray()
    settled = np.zeros(k, dtype=bool)  # merged away, or staying
    owner = np.arange(k)  # cluster -> the cluster it now belongs to
    merges: list[dict[str, Any]] = []
    members_of = lambda c: np.flatnonzero(owner[cluster_of] == c)  # noqa: E731
    while True:
        small = np.flatnonzero(~settled & (volume < min_weekly_volume))
        if not len(small):
            break
        c = int(small[np.argmin(volume[small])])
        settled[c] = True
        target, why = _target(encoded, members_of, c, neighbours[c], by_area, by_work)
        if target is None:
            continue
        members = members_of(c)
        cluster, _ = _describe(encoded, members)
        merges.append(
            {
                "action": "merge",
                "cluster": cluster,
                "n_staff": len(members),
                "weekly_volume": round(float(volume[c]), 1),
                "target": target,
                "reason": f"{volume[c]:.1f} activities a week, below the minimum of "
                f"{min_weekly_volume:g}; {why}",
            }
        )
        for other, w in neighbours[c].items():
            del neighbours[other][c]
            if other != target:
                neighbours[target][other] = neighbours[target].get(other, 0) + w
                neighbours[other][target] = neighbours[other].get(target, 0) + w
        neighbours[c] = {}
        owner[owner == c] = target
        volume[target] += volume[c]
        by_area[target] += by_area[c]
        by_area[c] = 0
    for m in merges:  # a target merged later itself: follow it to the final cluster
        m["target"] = int(owner[m["target"]])
    return owner[cluster_of], merges


def cluster_staff(
    encoded: Encoded,
    *,
    min_shared_patients: int,
    resolution: float,
    min_weekly_volume: float,
    refine: bool,
    seed: int,
    work_areas: bool = True,
) -> tuple[np.ndarray, list[dict[str, Any]], sp.csr_matrix]:
    """Cluster the staff: Louvain, the work-area split, the refinement, the small-cluster merges.

    Parameters
    ----------
    encoded : Encoded
        The activities, from :func:`qi_helpers.identify.network.encode`.
    min_shared_patients : int
        Keep staff-staff ties with at least this many shared patients.
    resolution : float
        Louvain resolution, used in the first pass and in the refinement.
    min_weekly_volume : float
        Activities per week below which a cluster is merged into its strongest neighbour.
    refine : bool
        Re-run Louvain inside each community and keep the splits into weak communities.
    seed : int
        Seed of the Louvain algorithm.
    work_areas : bool
        Split off the blocks of staff with work areas and activities of their own
        (:func:`qi_helpers.identify.work_areas.split_by_work`) after the first pass, and merge
        small clusters only into clusters doing the same kind of work; False gives the clusters
        of shared patients alone.

    Returns
    -------
    cluster_of : numpy.ndarray of int
        Labels 0..k-1 per staff member (in the order of ``encoded.staff_ids``).
    log : list of dict
        The splits, then the merges, in order: ``action``, ``cluster``, ``n_staff``,
        ``weekly_volume``, ``parts`` (staff indices of the resulting clusters) and ``reason``.
    ties : scipy.sparse.csr_matrix
        The kept ties (:func:`qi_helpers.identify.network.kept_ties`).
    """
    ties = kept_ties(encoded, min_shared_patients)
    communities = _louvain(ties, resolution, seed)
    log: list[dict[str, Any]] = []
    if work_areas:
        communities, log = split_by_work(encoded, communities, min_weekly_volume)
    if refine:
        communities, splits = _refine(encoded, ties, communities, resolution, seed)
        log += splits
    cluster_of = np.empty(len(encoded.staff_ids), dtype=np.int64)
    for label, members in enumerate(communities):
        cluster_of[members] = label
    cluster_of, merges = _merge_small(encoded, ties, cluster_of, min_weekly_volume, work_areas)
    for m in merges:  # the merged-into cluster, named by a member
        m["parts"] = [np.flatnonzero(cluster_of == m.pop("target"))]
    log += merges
    _, cluster_of = np.unique(cluster_of, return_inverse=True)
    return cluster_of, log, ties
