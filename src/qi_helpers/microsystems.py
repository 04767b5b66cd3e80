"""Identify the smallest measurable clinical microsystems from activity data (workbook 01).

Method
------
Clinical microsystems are "the small, functional, front-line units that provide most health care
to most people" (Nelson et al. 2002, Jt Comm J Qual Improv 28(9):472-493): a core team, the
patients they regularly care for, a work area and linked processes. They show in who actually
works with whom on which patients, which an organisation chart rarely records:

1. a bipartite staff-patient network from the activities in the window;
2. its projection on staff, weighted by the number of shared patients, keeping ties of at least
   ``min_shared_patients`` (patient-sharing networks of physicians, Barnett et al. 2011,
   Health Serv Res 46(5):1592-1609; Kuo et al. found that a threshold around six shared patients
   separates working relationships from chance); the projection is one sparse matrix product
   ``B @ B.T`` of the staff-patient incidence matrix;
3. communities of that network by Louvain modularity optimisation (Blondel et al. 2008, J Stat
   Mech P10008), seeded, through networkx;
4. refinement: modularity cannot see communities smaller than about the square root of the
   network's size and merges them (the resolution limit, Fortunato & Barthelemy 2007, PNAS
   104(1):36-41). Following the recursive use of modularity of Ruan & Zhang (2008, Phys Rev E
   77:016104), Louvain is run again inside each community; a split is kept only when every part
   is a community in the weak sense of Radicchi et al. (2004, PNAS 101(9):2658-2663), with more
   shared-patient ties inside it than to its sibling parts. A part that fails is put back with
   the sibling it is most tied to. A single well-knit team never passes the test, so real teams
   are not cut; every split is reported in ``merges``;
5. "smallest measurable": a cluster with fewer than ``min_weekly_volume`` activities a week is
   merged into the cluster it is most strongly tied to, or kept and flagged when it has no ties.

Work areas (locations) are attached to the cluster that does most of the work there; each
patient's panel shares are the share of their activities delivered by each cluster; the linked
microsystems are those sharing most patients with it (the linked processes of the care journey).
Everything after the projection works on sparse staff-by-X matrices, so the cost grows with the
number of activities once and with the number of staff and clusters afterwards.

Validation against the declared units (:func:`compare_to_declared`) uses the adjusted Rand index
(Hubert & Arabie 1985) and normalised mutual information (Strehl & Ghosh 2002; Vinh, Epps &
Bailey 2010). Profiles of the 5 Ps are in :mod:`qi_helpers.profiles`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp

from qi_helpers.errors import DataError, format_rows
from qi_helpers.privacy import safe_filename, small_cell_label

ACTIVITY_COLUMNS = ("timestamp", "patient_id", "staff_id", "activity", "location")

REGISTRY_COLUMNS = [
    "microsystem_id",
    "name",
    "kind",
    "site",
    "locations",
    "linked_microsystems",
    "n_staff",
    "n_patients",
    "weekly_volume",
    "measurable",
    "why",
]
MERGE_COLUMNS = ["step", "action", "cluster", "n_staff", "weekly_volume", "result", "reason"]


@dataclass
class Identification:
    """The microsystems found, with their members.

    Attributes
    ----------
    registry : DataFrame
        One row per microsystem, sorted by id:

        - ``microsystem_id``: stable, file-name-safe id (the declared unit most of its staff
          give, else ``MS-<main work area>``);
        - ``name``: readable: main work area, main activities and role mix;
        - ``kind``: the kind of most of its activities (``kind_by_activity``), else ``unknown``;
        - ``site``: read from the main work area (``site_pattern``);
        - ``locations``: its work areas, ``;``-separated;
        - ``linked_microsystems``: up to three microsystems sharing most patients with it, with
          the number shared (its linked processes);
        - ``n_staff``, ``n_patients``: staff in the cluster and patients they saw;
        - ``weekly_volume``: activities a week by its staff;
        - ``measurable`` (bool) and ``why``: enough volume to chart weekly measures, and why.
    staff : DataFrame
        ``staff_id, microsystem_id, share``: share of that person's activity done in the
        microsystem's work areas; floating staff have a row per microsystem they work in, the
        main one first.
    patients : DataFrame
        ``patient_id, microsystem_id, share``: share of the patient's activities delivered by the
        microsystem's staff (the panel), the main microsystem first.
    locations : DataFrame
        ``location, microsystem_id, share``: each work area, the microsystem doing most of the
        work there and its share of that work.
    merges : DataFrame
        Every split and merge the algorithm made, in order: ``step``, ``action`` (``split`` or
        ``merge``), ``cluster`` (the cluster acted on, by staff count and main work area),
        ``n_staff``, ``weekly_volume``, ``result`` (the microsystem it was merged into, or the
        ``;``-separated microsystems its parts became) and ``reason``.
    ties : DataFrame
        ``staff_a, staff_b, shared_patients``: the kept ties of the staff network.
    notes : list of str
        Data-quality messages (rows dropped, staff missing from the roster).
    settings : dict
        The window and parameters used (``start``, ``end``, ``n_weeks``, ``min_shared_patients``,
        ``resolution``, ``min_weekly_volume``, ``refine``, ``seed``).
    """

    registry: pd.DataFrame
    staff: pd.DataFrame
    patients: pd.DataFrame
    locations: pd.DataFrame
    merges: pd.DataFrame
    ties: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


# ---- reading the activities ------------------------------------------------------------------
@dataclass
class Encoded:
    """Activities in the window as integer codes and sparse staff-by-X count matrices.

    Built once by :func:`encode`; :func:`identify` and the explorer re-cluster from it without
    reading the activities again. Internal, but stable enough for the widgets.
    """

    staff_ids: np.ndarray  # sorted staff ids (str)
    patient_ids: pd.Index  # patient ids (codes index into it)
    location_names: np.ndarray  # sorted
    activity_names: np.ndarray  # sorted
    staff_patient: sp.csr_matrix  # counts, n_staff x n_patients
    staff_location: sp.csr_matrix  # counts, n_staff x n_locations
    staff_activity: sp.csr_matrix  # counts, n_staff x n_activities
    n_weeks: float
    notes: list[str]
    shared: sp.csr_matrix | None = None  # shared patients, n_staff x n_staff (lazy)

    @property
    def staff_volume(self) -> np.ndarray:
        """Activities per staff member."""
        return np.asarray(self.staff_location.sum(axis=1)).ravel()

    def shared_patients(self) -> sp.csr_matrix:
        """The staff projection: shared patients of every pair (diagonal: own patients)."""
        if self.shared is None:
            incidence = self.staff_patient.copy()
            incidence.data = np.ones_like(incidence.data, dtype=np.int32)
            self.shared = (incidence @ incidence.T).tocsr()
        return self.shared


def _check_columns(frame: pd.DataFrame, columns, table: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{table}: expected a DataFrame, found {type(frame).__name__}.")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{table}: column(s) {', '.join(f'`{c}`' for c in missing)} missing; found "
            f"{', '.join(map(str, frame.columns))}. Rename your columns (`columns:` in "
            "parameters/project.yaml) or add them."
        )


def _timestamps(activities: pd.DataFrame) -> pd.Series:
    ts = activities["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(ts):
        return ts
    parsed = pd.to_datetime(ts, errors="coerce", format="ISO8601")
    bad = parsed.isna() & ts.notna()
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy()) + 1
        raise DataError(
            f"activities: column `timestamp` has values that are not dates in "
            f"{format_rows(rows)}; write them as ISO dates (2024-01-31 or 2024-01-31T08:15)."
        )
    return parsed


def _blank(column: pd.Series) -> np.ndarray:
    missing = column.isna().to_numpy().copy()
    if pd.api.types.is_string_dtype(column.dtype):
        missing |= (column == "").fillna(True).to_numpy(dtype=bool)
    elif column.dtype == object:
        missing |= (column.astype("string").str.strip() == "").fillna(True).to_numpy(dtype=bool)
    return missing


def _codes(column: pd.Series, *, sort: bool) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and the distinct values as strings (a missing value becomes ``""``)."""
    codes, uniques = pd.factorize(column, sort=sort)
    names = np.asarray(pd.Index(uniques).astype(str), dtype=object)
    if (codes < 0).any():
        codes = np.where(codes < 0, len(names), codes)
        names = np.append(names, "")
    return codes, names


def _counts(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """Count matrix of (row, col) pairs; duplicates are summed."""
    data = np.ones(len(rows), dtype=np.int32)
    matrix = sp.csr_matrix((data, (rows, cols)), shape=shape)
    matrix.sum_duplicates()
    return matrix


def encode(
    activities: pd.DataFrame,
    staff: pd.DataFrame | None = None,
    *,
    start: str | None = None,
    end: str | None = None,
) -> Encoded:
    """Check the activities, keep the window and encode them (see :class:`Encoded`).

    Rows without a staff or patient identifier are dropped and counted in ``notes``; staff in the
    activities but not in the roster are listed there.

    Raises
    ------
    DataError
        A required column is missing, a timestamp is not a date, or the window holds no usable
        row.
    """
    _check_columns(activities, ACTIVITY_COLUMNS, "activities")
    notes: list[str] = []
    ts = _timestamps(activities)
    keep = np.ones(len(activities), dtype=bool)
    if start:
        keep &= (ts >= pd.Timestamp(start)).to_numpy()
    if end:
        keep &= (ts < pd.Timestamp(end)).to_numpy()
    in_window = int(keep.sum())
    missing = (_blank(activities["staff_id"]) | _blank(activities["patient_id"])) & keep
    if missing.any():
        notes.append(
            f"{int(missing.sum())} activity rows (of {in_window} in the window) have no staff "
            "or patient identifier and were left out."
        )
        keep &= ~missing
    if not keep.any():
        raise DataError(
            "activities: no rows with staff and patient identifiers between "
            f"{start or 'the start'} and {end or 'the end'} ({len(activities)} rows in the "
            "table); widen the window (start/end parameters) or check the identifiers."
        )
    cols = ["staff_id", "patient_id", "location", "activity"]
    acts = activities[cols] if keep.all() else activities.loc[keep, cols]
    ts = ts if keep.all() else ts[keep]
    s, staff_ids = _codes(acts["staff_id"], sort=True)
    p, patient_ids = _codes(acts["patient_id"], sort=False)
    loc, location_names = _codes(acts["location"], sort=True)
    act, activity_names = _codes(acts["activity"], sort=True)
    if staff is not None:
        _check_columns(staff, ("staff_id",), "staff")
        unknown = np.setdiff1d(staff_ids, staff["staff_id"].astype(str).to_numpy())
        if len(unknown):
            shown = ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else "")
            notes.append(
                f"{len(unknown)} staff in the activities are not in the staff roster (their role "
                f"is unknown): {shown}. Add them to the roster."
            )
    span = ts.max() - ts.min()
    n_weeks = max(1.0, span / pd.Timedelta(days=7))
    n_staff = len(staff_ids)
    return Encoded(
        staff_ids=staff_ids,
        patient_ids=pd.Index(patient_ids, dtype="string"),
        location_names=location_names,
        activity_names=activity_names,
        staff_patient=_counts(s, p, (n_staff, len(patient_ids))),
        staff_location=_counts(s, loc, (n_staff, len(location_names))),
        staff_activity=_counts(s, act, (n_staff, len(activity_names))),
        n_weeks=float(n_weeks),
        notes=notes,
    )


# ---- clustering ------------------------------------------------------------------------------
def kept_ties(encoded: Encoded, min_shared_patients: int) -> sp.csr_matrix:
    """Symmetric staff-staff matrix of the ties with at least ``min_shared_patients``."""
    shared = encoded.shared_patients().tocoo()
    keep = (shared.row != shared.col) & (shared.data >= min_shared_patients)
    return sp.csr_matrix(
        (shared.data[keep].astype(float), (shared.row[keep], shared.col[keep])),
        shape=shared.shape,
    )


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


def _merge_small(
    encoded: Encoded, ties: sp.csr_matrix, cluster_of: np.ndarray, min_weekly_volume: float
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Merge clusters below the volume threshold into their most strongly tied neighbour.

    The cluster-to-cluster ties are one sparse product ``M.T @ W @ M``; each merge updates the
    two clusters' neighbour maps, so the cost grows with the number of clusters, not of staff.
    """
    k = int(cluster_of.max()) + 1
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
    volume = np.bincount(cluster_of, weights=encoded.staff_volume, minlength=k) / encoded.n_weeks
    alive = np.ones(k, dtype=bool)
    has_ties = np.array([bool(n) for n in neighbours])
    owner = np.arange(k)  # cluster -> the cluster it now belongs to
    merges: list[dict[str, Any]] = []
    while True:
        small = np.flatnonzero(alive & has_ties & (volume < min_weekly_volume))
        if not len(small):
            break
        c = int(small[np.argmin(volume[small])])
        target = max(sorted(neighbours[c]), key=lambda t: neighbours[c][t])
        strength = neighbours[c][target]
        members = np.flatnonzero(owner[cluster_of] == c)
        cluster, _ = _describe(encoded, members)
        merges.append(
            {
                "action": "merge",
                "cluster": cluster,
                "n_staff": len(members),
                "weekly_volume": round(float(volume[c]), 1),
                "target": target,
                "reason": f"{volume[c]:.1f} activities a week, below the minimum of "
                f"{min_weekly_volume:g}; most strongly tied to this microsystem "
                f"({strength:.0f} shared patients over its staff's ties)",
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
        alive[c] = False
        has_ties = np.array([bool(n) for n in neighbours])
    for m in merges:  # a target merged later itself: follow it to the final cluster
        m["target"] = int(owner[m["target"]])
    return owner[cluster_of], merges


def _cluster(
    encoded: Encoded,
    *,
    min_shared_patients: int,
    resolution: float,
    min_weekly_volume: float,
    refine: bool,
    seed: int,
) -> tuple[np.ndarray, list[dict[str, Any]], sp.csr_matrix]:
    """Labels 0..k-1 per staff member, the split/merge log and the kept ties."""
    ties = kept_ties(encoded, min_shared_patients)
    communities = _louvain(ties, resolution, seed)
    log: list[dict[str, Any]] = []
    if refine:
        communities, log = _refine(encoded, ties, communities, resolution, seed)
    cluster_of = np.empty(len(encoded.staff_ids), dtype=np.int64)
    for label, members in enumerate(communities):
        cluster_of[members] = label
    cluster_of, merges = _merge_small(encoded, ties, cluster_of, min_weekly_volume)
    for m in merges:  # the merged-into cluster, named by a member
        m["parts"] = [np.flatnonzero(cluster_of == m.pop("target"))]
    log += merges
    _, cluster_of = np.unique(cluster_of, return_inverse=True)
    return cluster_of, log, ties


# ---- naming and assembling -------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-") or "unnamed"


def _site(location: str, pattern: str | None) -> str:
    if pattern is None:
        return location.split()[0] if location.strip() else ""
    match = re.search(pattern, location)
    return match.group(1) if match else "organisation-wide"


def _match_units(counts: np.ndarray) -> np.ndarray:
    """One-to-one match of clusters (rows) to declared units (columns) agreeing with most staff.

    ``counts[c, u]`` is the number of staff of cluster ``c`` declaring unit ``u``. An assignment
    problem, solved by the Hungarian method (Kuhn 1955, ``scipy.optimize.linear_sum_assignment``).
    Returns the unit of each cluster, ``-1`` when it gets none (or only one nobody declared).
    """
    from scipy.optimize import linear_sum_assignment

    matched = np.full(counts.shape[0], -1, dtype=np.int64)
    if counts.size:
        rows, cols = linear_sum_assignment(counts, maximize=True)
        ok = counts[rows, cols] > 0
        matched[rows[ok]] = cols[ok]
    return matched


def _labels(
    encoded: Encoded, staff: pd.DataFrame | None, cluster_of: np.ndarray, main_location
) -> list[str]:
    """Name each cluster after a declared unit of its members (else its main work area).

    Declared units are given to clusters one to one so that as many staff as possible find
    their declared code on their cluster (:func:`_match_units`). A cluster left without
    a unit takes the code most of its members declare with a suffix (``-2``), or
    ``MS-<main work area>`` when none declared one.
    """
    k = int(cluster_of.max()) + 1
    proposals: dict[int, str] = {}
    labels = [""] * k
    taken: set[str] = set()
    if staff is not None and "home_unit" in staff.columns:
        home = staff.assign(staff_id=staff["staff_id"].astype(str)).drop_duplicates("staff_id")
        declared = pd.Series(encoded.staff_ids).map(home.set_index("staff_id")["home_unit"])
        declared = declared.astype("string").str.strip().replace("", pd.NA)
        known = declared.notna().to_numpy()
        if known.any():
            codes, units = pd.factorize(declared[known], sort=True)
            counts = sp.coo_matrix(
                (np.ones(len(codes)), (cluster_of[known], codes)), shape=(k, len(units))
            ).toarray()
            for c, u in enumerate(_match_units(counts)):
                if u >= 0:
                    labels[c] = safe_filename(str(units[u]))
                    taken.add(labels[c])
            best = counts.argmax(axis=1)
            proposals = {c: str(units[best[c]]) for c in range(k) if counts[c, best[c]] > 0}
    volume = np.bincount(cluster_of, weights=encoded.staff_volume, minlength=k)
    for c in np.argsort(-volume, kind="stable"):
        if labels[c]:
            continue
        base = safe_filename(proposals.get(int(c)) or "MS-" + _slug(main_location[c]))
        label, n = base, 2
        while label in taken:
            label, n = f"{base}-{n}", n + 1
        taken.add(label)
        labels[c] = label
    return labels


def _roles(staff: pd.DataFrame | None, staff_ids: np.ndarray) -> pd.Series:
    if staff is None or "role" not in staff.columns:
        return pd.Series("unknown", index=staff_ids)
    roster = staff.assign(staff_id=staff["staff_id"].astype(str)).drop_duplicates("staff_id")
    roster = roster.set_index("staff_id")["role"]
    return pd.Series(staff_ids, index=staff_ids).map(roster).astype("string").fillna("unknown")


def _assemble(
    encoded: Encoded,
    staff: pd.DataFrame | None,
    cluster_of: np.ndarray,
    *,
    min_weekly_volume: float,
    kind_by_activity: dict[str, str],
    site_pattern: str | None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    n_staff = len(cluster_of)
    k = int(cluster_of.max()) + 1
    member = sp.csr_matrix((np.ones(n_staff), (np.arange(n_staff), cluster_of)), shape=(n_staff, k))
    by_location = (member.T @ encoded.staff_location).tocsr()  # k x locations
    main_location = encoded.location_names[np.asarray(by_location.argmax(axis=1)).ravel()]
    labels = _labels(encoded, staff, cluster_of, main_location)
    ids = np.asarray(labels, dtype=object)

    # work areas: each location goes to the cluster doing most of its work
    owner = np.asarray(by_location.argmax(axis=0)).ravel()
    loc_total = np.asarray(by_location.sum(axis=0)).ravel()
    loc_top = np.asarray(by_location.max(axis=0).toarray()).ravel()
    locations = pd.DataFrame(
        {
            "location": encoded.location_names,
            "microsystem_id": ids[owner],
            "share": loc_top / np.maximum(loc_total, 1),
        }
    )
    owns = np.bincount(owner, minlength=k) > 0

    # staff: share of each person's work done in each microsystem's work areas
    sl = encoded.staff_location.tocoo()
    where = np.where(owns[cluster_of[sl.row]], owner[sl.col], cluster_of[sl.row])
    per_ms = sp.csr_matrix((sl.data.astype(float), (sl.row, where)), shape=(n_staff, k)).tocoo()
    per_ms.sum_duplicates()
    totals = encoded.staff_volume
    staff_table = pd.DataFrame(
        {
            "staff_id": encoded.staff_ids[per_ms.row],
            "microsystem_id": ids[per_ms.col],
            "share": per_ms.data / totals[per_ms.row],
        }
    ).sort_values(["staff_id", "share", "microsystem_id"], ascending=[True, False, True])

    # patients: share of each patient's activities delivered by each cluster's staff
    by_patient = (member.T @ encoded.staff_patient).tocoo()  # k x patients
    patient_totals = np.asarray(encoded.staff_patient.sum(axis=0)).ravel()
    patient_rank = np.empty(len(encoded.patient_ids), dtype=np.int64)
    patient_rank[encoded.patient_ids.argsort()] = np.arange(len(encoded.patient_ids))
    order = np.lexsort((by_patient.row, -by_patient.data, patient_rank[by_patient.col]))
    patient_table = pd.DataFrame(
        {
            "patient_id": encoded.patient_ids.to_numpy(dtype=object)[by_patient.col[order]],
            "microsystem_id": ids[by_patient.row[order]],
            "share": by_patient.data[order] / patient_totals[by_patient.col[order]],
        }
    )
    patient_table["patient_id"] = patient_table["patient_id"].astype("string")

    # linked microsystems: those sharing most patients
    seen = by_patient.tocsr()
    seen.data = np.ones_like(seen.data)
    linked = (seen @ seen.T).tocsr()
    n_patients = linked.diagonal().astype(np.int64)
    linked.setdiag(0)
    linked.eliminate_zeros()

    by_activity = (member.T @ encoded.staff_activity).toarray()  # k x activities
    kinds = np.array([str(kind_by_activity.get(a, "unknown")) for a in encoded.activity_names])
    kind_names = np.unique(kinds)
    kind_counts = np.stack([by_activity[:, kinds == n].sum(axis=1) for n in kind_names], axis=1)
    roles = _roles(staff, encoded.staff_ids)
    n_members = np.bincount(cluster_of, minlength=k)
    volume = np.bincount(cluster_of, weights=encoded.staff_volume, minlength=k) / encoded.n_weeks
    rows = []
    for c in range(k):
        areas = sorted(encoded.location_names[owner == c]) or [f"{main_location[c]} (shared)"]
        top = np.argsort(-by_activity[c], kind="stable")[:2]
        activities = ", ".join(encoded.activity_names[top[by_activity[c, top] > 0]])
        mix = (
            roles[cluster_of == c]
            .value_counts()
            .sort_index()
            .sort_values(ascending=False, kind="stable")
        )
        role_text = ", ".join(f"{n} {r}" for r, n in mix.head(3).items())
        row = linked.getrow(c)
        best = np.argsort(-row.data, kind="stable")[:3]
        linked_text = "; ".join(
            f"{ids[row.indices[j]]} ({int(row.data[j])} patients)" for j in best
        )
        measurable = volume[c] >= min_weekly_volume
        rows.append(
            {
                "microsystem_id": ids[c],
                "name": f"{main_location[c]}: {activities} ({role_text})",
                "kind": str(kind_names[int(np.argmax(kind_counts[c]))]),
                "site": _site(str(main_location[c]), site_pattern),
                "locations": "; ".join(areas),
                "linked_microsystems": linked_text,
                "n_staff": int(n_members[c]),
                "n_patients": int(n_patients[c]),
                "weekly_volume": round(float(volume[c]), 1),
                "measurable": bool(measurable),
                "why": f"{volume[c]:.0f} activities a week (minimum {min_weekly_volume:g})"
                if measurable
                else f"only {volume[c]:.1f} activities a week and no tie to merge into; "
                "measure with care (pool it with a neighbour or chart monthly)",
            }
        )
    registry = pd.DataFrame(rows, columns=REGISTRY_COLUMNS).sort_values("microsystem_id")
    tidy = [t.reset_index(drop=True) for t in (registry, staff_table, patient_table, locations)]
    return (*tidy, labels)


def identify(
    activities: pd.DataFrame,
    staff: pd.DataFrame | None = None,
    patients: pd.DataFrame | None = None,
    *,
    start: str | None = None,
    end: str | None = None,
    min_shared_patients: int = 6,
    resolution: float = 1.0,
    min_weekly_volume: float = 20,
    kind_by_activity: dict[str, str] | None = None,
    site_pattern: str | None = None,
    refine: bool = True,
    seed: int = 0,
    encoded: Encoded | None = None,
) -> Identification:
    """Find the microsystems in an activity log.

    Parameters
    ----------
    activities : DataFrame
        The ``activities`` table (``timestamp, patient_id, staff_id, activity, location``).
    staff : DataFrame, optional
        The roster (``staff_id, role``, optional ``home_unit``). With ``home_unit``, a cluster is
        named after the declared unit most of its members give, so the organisation's own codes
        (used in the PDSA log) carry over.
    patients : DataFrame, optional
        Not needed to cluster; accepted for symmetry with :func:`qi_helpers.profiles.profile`.
    start, end : str, optional
        The window (ISO dates; ``end`` excluded).
    min_shared_patients : int
        Keep staff-staff ties with at least this many shared patients.
    resolution : float
        Louvain resolution, used in the first pass and in the refinement; above 1 favours
        smaller clusters, below 1 larger ones.
    min_weekly_volume : float
        Activities per week below which a cluster is merged into its strongest neighbour.
    kind_by_activity : dict, optional
        Maps an activity to a microsystem kind; the kind is the one of the cluster's most common
        activities. Unmapped: ``"unknown"``.
    site_pattern : str, optional
        A regular expression whose first group, matched on the main work area, is the site; when it
        does not match, the site is ``"organisation-wide"``. Default: the first word of the area.
    refine : bool
        Re-run Louvain inside each community and keep supported splits (see the module notes);
        False gives plain Louvain.
    seed : int
        Seed of the Louvain algorithm; the same seed gives the same result.
    encoded : Encoded, optional
        The activities already encoded by :func:`encode` with the same window (the explorer
        passes it to re-cluster quickly); ``activities`` is then not read again.

    Returns
    -------
    Identification
        ``registry``, ``staff``, ``patients``, ``locations``, ``merges``, ``ties``, ``notes`` and
        ``settings``; see :class:`Identification` for every column.

    Raises
    ------
    DataError
        A required column is missing, a timestamp is not a date, or the window is empty.

    Notes
    -----
    The method (module docstring): Nelson et al. (2002) for the microsystem; Barnett et al.
    (2011) and Kuo et al. for patient-sharing networks and the threshold of about six shared
    patients; Blondel et al. (2008) for Louvain; Fortunato & Barthelemy (2007) for its resolution
    limit; Ruan & Zhang (2008) and Radicchi et al. (2004) for the refinement.
    """
    if encoded is None:
        encoded = encode(activities, staff, start=start, end=end)
    cluster_of, log, ties = _cluster(
        encoded,
        min_shared_patients=min_shared_patients,
        resolution=resolution,
        min_weekly_volume=min_weekly_volume,
        refine=refine,
        seed=seed,
    )
    registry, staff_table, patient_table, locations, labels = _assemble(
        encoded,
        staff,
        cluster_of,
        min_weekly_volume=min_weekly_volume,
        kind_by_activity=kind_by_activity or {},
        site_pattern=site_pattern,
    )
    merges = pd.DataFrame(
        [
            {
                "step": i + 1,
                "action": entry["action"],
                "cluster": entry["cluster"],
                "n_staff": entry["n_staff"],
                "weekly_volume": entry["weekly_volume"],
                "result": "; ".join(
                    sorted(
                        {labels[int(np.bincount(cluster_of[p]).argmax())] for p in entry["parts"]}
                    )
                ),
                "reason": entry["reason"],
            }
            for i, entry in enumerate(log)
        ],
        columns=MERGE_COLUMNS,
    )
    tie = ties.tocoo()
    upper = tie.row < tie.col
    result = Identification(
        registry=registry,
        staff=staff_table,
        patients=patient_table,
        locations=locations,
        merges=merges,
        ties=pd.DataFrame(
            {
                "staff_a": encoded.staff_ids[tie.row[upper]],
                "staff_b": encoded.staff_ids[tie.col[upper]],
                "shared_patients": tie.data[upper].astype(np.int64),
            }
        ),
        notes=list(encoded.notes),
        settings={
            "start": start,
            "end": end,
            "n_weeks": encoded.n_weeks,
            "min_shared_patients": min_shared_patients,
            "resolution": resolution,
            "min_weekly_volume": min_weekly_volume,
            "refine": refine,
            "seed": seed,
        },
    )
    return result


def published_registry(registry: pd.DataFrame, threshold: int = 11) -> pd.DataFrame:
    """The registry as it may be published: small patient counts hidden.

    Parameters
    ----------
    registry : DataFrame
        :attr:`Identification.registry` (or ``outputs/data/registry.parquet``).
    threshold : int
        The project's ``publish.small_cell_threshold`` (11 by default, as in the CMS cell-size
        policy).

    Returns
    -------
    DataFrame
        A copy in which ``n_patients`` from 1 to ``threshold - 1`` shows as ``"<threshold"``
        (the column becomes text) and the shared-patient counts in ``linked_microsystems``
        (``"RIV-PC3 (9 patients)"``) from 1 to ``threshold - 1`` show as ``"(<threshold
        patients)"``. The registry under ``outputs/data/`` keeps the counts.
    """
    if int(threshold) < 1:
        raise DataError(f"published_registry: threshold must be 1 or more, found {threshold!r}.")
    out = registry.copy()
    label = small_cell_label(threshold)

    def small(count: int) -> bool:
        return 0 < count < threshold

    if "n_patients" in out.columns:
        hide = out["n_patients"].map(small).astype(bool)
        if hide.any():
            out["n_patients"] = out["n_patients"].astype(object).where(~hide, label)
    if "linked_microsystems" in out.columns:
        out["linked_microsystems"] = out["linked_microsystems"].str.replace(
            r"\((\d+) patients\)",
            lambda m: f"({label} patients)" if small(int(m.group(1))) else m.group(0),
            regex=True,
        )
    return out


def write_identification(
    result: Identification, folder, profiles=None, comparison: Comparison | None = None
) -> list[Path]:
    """Write the registry and membership tables as Parquet under ``folder`` (atomically).

    Parameters
    ----------
    result : Identification
    folder : str or Path
        Usually ``outputs/data``.
    profiles : qi_helpers.profiles.Profiles, optional
        Also write ``profiles.parquet`` (the mixes) and ``profile_summary.parquet``
        (see :func:`qi_helpers.profiles.write_profiles`).
    comparison : Comparison, optional
        Also write ``declared_purity.parquet`` and ``declared_differences.parquet`` (the staff
        whose team differs from their declared unit: for the coach, not for publishing).

    Returns
    -------
    list of Path
        ``registry.parquet``, ``membership_staff.parquet``, ``membership_patients.parquet``,
        ``membership_locations.parquet``, ``merges.parquet`` (and the optional tables).
    """
    from qi_helpers.tables import write_parquet

    folder = Path(folder)
    out = []
    for name, frame in [
        ("registry", result.registry),
        ("membership_staff", result.staff),
        ("membership_patients", result.patients),
        ("membership_locations", result.locations),
        ("merges", result.merges),
    ]:
        out.append(write_parquet(frame, folder / f"{name}.parquet"))
    if profiles is not None:
        from qi_helpers.profiles import write_profiles

        out += write_profiles(profiles, folder)
    if comparison is not None:
        out.append(write_parquet(comparison.purity, folder / "declared_purity.parquet"))
        out.append(write_parquet(comparison.differences, folder / "declared_differences.parquet"))
    return out


# ---- validation ------------------------------------------------------------------------------
def _table(labels_a: pd.Series, labels_b: pd.Series) -> np.ndarray:
    common = labels_a.index.intersection(labels_b.index)
    a = pd.factorize(labels_a[common].astype("string"))[0]
    b = pd.factorize(labels_b[common].astype("string"))[0]
    if not len(common):
        return np.zeros((0, 0))
    table = sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(a.max() + 1, b.max() + 1))
    return table.toarray()


def adjusted_rand_index(labels_a: pd.Series, labels_b: pd.Series) -> float:
    """Adjusted Rand index of two partitions of the same items (Hubert & Arabie 1985).

    1 for identical partitions, about 0 for chance agreement. Items are matched by index; items
    in only one of the two series are ignored.
    """
    from scipy.special import comb

    table = _table(labels_a, labels_b)
    pairs = comb(table, 2).sum()
    rows, cols = comb(table.sum(axis=1), 2).sum(), comb(table.sum(axis=0), 2).sum()
    total = comb(table.sum(), 2)
    expected = rows * cols / total if total else 0.0
    maximum = (rows + cols) / 2
    return 1.0 if maximum == expected else float((pairs - expected) / (maximum - expected))


def normalised_mutual_information(
    labels_a: pd.Series, labels_b: pd.Series, *, average: str = "arithmetic"
) -> float:
    """Normalised mutual information of two partitions of the same items.

    Parameters
    ----------
    labels_a, labels_b : Series
        Cluster labels, matched by index (items in only one series are ignored).
    average : {"arithmetic", "geometric", "max", "min"}
        How the two entropies are combined in the denominator: ``geometric`` is Strehl & Ghosh's
        NMI, ``arithmetic`` (the default, as scikit-learn) and ``max`` are the variants compared by
        Vinh et al.

    Returns
    -------
    float
        Between 0 (independent) and 1 (identical partitions, up to renaming). Two partitions
        that are both a single cluster give 1.

    Notes
    -----
    With :math:`n_{ij}` items in cluster :math:`i` of A and :math:`j` of B, :math:`a_i, b_j` the
    margins and :math:`N` the total,

    .. math:: I(A;B) = \\sum_{ij} \\frac{n_{ij}}{N} \\log \\frac{N n_{ij}}{a_i b_j}, \\quad
              H(A) = -\\sum_i \\frac{a_i}{N} \\log \\frac{a_i}{N},

    and :math:`NMI = I / \\mathrm{mean}(H(A), H(B))`. Strehl & Ghosh (2002), Cluster ensembles,
    J Mach Learn Res 3:583-617; Vinh, Epps & Bailey (2010), Information theoretic measures for
    clusterings comparison, J Mach Learn Res 11:2837-2854.
    """
    table = _table(labels_a, labels_b)
    total = table.sum()
    if total == 0:
        raise DataError("normalised_mutual_information: the two label series share no item.")
    p = table / total
    pa, pb = p.sum(axis=1), p.sum(axis=0)
    nz = p > 0
    mutual = float((p[nz] * np.log(p[nz] / np.outer(pa, pb)[nz])).sum())
    ha = float(-(pa[pa > 0] * np.log(pa[pa > 0])).sum())
    hb = float(-(pb[pb > 0] * np.log(pb[pb > 0])).sum())
    if ha == 0 and hb == 0:
        return 1.0
    means = {
        "arithmetic": (ha + hb) / 2,
        "geometric": np.sqrt(ha * hb),
        "max": max(ha, hb),
        "min": min(ha, hb),
    }
    if average not in means:
        raise DataError(f"average must be one of {', '.join(means)}, got {average!r}.")
    denominator = means[average]
    return 0.0 if denominator == 0 else float(max(0.0, min(1.0, mutual / denominator)))


def main_microsystem(membership_staff: pd.DataFrame) -> pd.Series:
    """Each staff member's main microsystem (largest share), indexed by ``staff_id``."""
    ordered = membership_staff.sort_values(
        ["staff_id", "share", "microsystem_id"], ascending=[True, False, True]
    )
    return ordered.drop_duplicates("staff_id").set_index("staff_id")["microsystem_id"]


@dataclass
class Comparison:
    """The microsystems found against the units staff declared (:func:`compare_to_declared`).

    Attributes
    ----------
    scores : DataFrame
        One row: ``n_staff`` (compared), ``adjusted_rand_index``,
        ``normalised_mutual_information``, ``purity`` (share of staff in the declared unit most
        common in their microsystem), ``agreement`` (share of staff who declared their
        microsystem's unit) and ``n_differ`` (staff who did not).
    purity : DataFrame
        One row per microsystem: ``microsystem_id``, ``n_staff`` (with a declared unit),
        ``declared_unit`` (the unit it corresponds to: declared units are matched to
        microsystems one to one so that most staff agree, Hungarian method, Kuhn 1955; a
        microsystem left over takes its most common unit), ``n_declared`` (its staff declaring
        that unit), ``agreement`` (their share) and ``purity`` (share of its staff declaring
        its most common unit).
    differences : DataFrame
        One row per member of staff whose actual team differs from the declared one:
        ``staff_id, role, declared_unit, microsystem_id`` (found, main), ``share`` (of their work
        there) and ``declared_share`` (of their work in the declared unit's microsystem, 0 when
        none): a floater who declared their second team has a large ``declared_share``.
    by_unit : DataFrame
        The differences without names, for reports: ``declared_unit, microsystem_id, n_staff,
        roles``.
    """

    scores: pd.DataFrame
    purity: pd.DataFrame
    differences: pd.DataFrame
    by_unit: pd.DataFrame


def compare_to_declared(identification: Identification, staff: pd.DataFrame) -> Comparison:
    """Compare the microsystems found with the units staff declared (``staff.home_unit``).

    A difference is a finding to discuss with the team (a floater, a move not yet recorded, a
    roster out of date), not an error.

    Parameters
    ----------
    identification : Identification
    staff : DataFrame
        The roster with ``staff_id``, ``home_unit`` and optionally ``role``.

    Returns
    -------
    Comparison
        ``scores``, ``purity``, ``differences`` and ``by_unit``; see :class:`Comparison`.

    Raises
    ------
    DataError
        When the roster has no ``home_unit`` column or no staff member in common with the
        identification.

    Notes
    -----
    Adjusted Rand index: Hubert & Arabie (1985), J Classif 2:193-218. Normalised mutual
    information: Strehl & Ghosh (2002); Vinh, Epps & Bailey (2010). Purity: Manning, Raghavan &
    Schutze (2008), Introduction to Information Retrieval, sec. 16.3.
    """
    _check_columns(staff, ("staff_id", "home_unit"), "staff")
    roster = staff.drop_duplicates("staff_id").copy()
    roster["staff_id"] = roster["staff_id"].astype(str)
    roster = roster.set_index("staff_id")
    declared = roster["home_unit"].astype("string")
    declared = declared[declared.notna() & (declared.str.strip() != "")]
    found = main_microsystem(identification.staff)
    common = found.index.intersection(declared.index)
    if not len(common):
        raise DataError(
            "staff: no staff member with a `home_unit` appears in the identification; check that "
            "the roster's staff_id match the activities'."
        )
    found, declared = found[common].astype(str), declared[common].astype(str)
    pairs = pd.DataFrame({"microsystem_id": found, "declared_unit": declared})
    ms_code, ms_names = pd.factorize(pairs["microsystem_id"], sort=True)
    unit_code, unit_names = pd.factorize(pairs["declared_unit"], sort=True)
    counts = sp.coo_matrix(
        (np.ones(len(pairs)), (ms_code, unit_code)), shape=(len(ms_names), len(unit_names))
    ).toarray()
    matched = _match_units(counts)
    unit = np.where(matched >= 0, matched, counts.argmax(axis=1))
    sizes = counts.sum(axis=1)
    n_declared = counts[np.arange(len(ms_names)), unit]
    purity = pd.DataFrame(
        {
            "microsystem_id": np.asarray(ms_names, dtype=object),
            "n_staff": sizes.astype(np.int64),
            "declared_unit": np.asarray(unit_names, dtype=object)[unit],
            "n_declared": n_declared.astype(np.int64),
            "agreement": n_declared / sizes,
            "purity": counts.max(axis=1) / sizes,
        }
    )
    unit_of = purity.set_index("microsystem_id")["declared_unit"]
    differ = pairs[pairs["declared_unit"] != pairs["microsystem_id"].map(unit_of)].copy()
    # the share of each person's work in the microsystem whose main declared unit they gave
    membership = identification.staff.assign(
        staff_id=identification.staff["staff_id"].astype(str),
        declared_as=identification.staff["microsystem_id"].map(unit_of),
    )
    share = membership.set_index(["staff_id", "microsystem_id"])["share"]
    declared_share = (
        membership.groupby(["staff_id", "declared_as"])["share"].sum()
        if len(membership)
        else pd.Series(dtype=float)
    )
    keys_found = list(zip(differ.index, differ["microsystem_id"], strict=True))
    keys_declared = list(zip(differ.index, differ["declared_unit"], strict=True))
    role = roster["role"] if "role" in roster.columns else pd.Series(dtype="string")
    differences = pd.DataFrame(
        {
            "staff_id": differ.index.astype(str),
            "role": differ.index.map(role).astype("string").fillna("unknown"),
            "declared_unit": differ["declared_unit"].to_numpy(),
            "microsystem_id": differ["microsystem_id"].to_numpy(),
            "share": share.reindex(keys_found).to_numpy(),
            "declared_share": declared_share.reindex(keys_declared).fillna(0.0).to_numpy(),
        }
    ).sort_values(["declared_unit", "microsystem_id", "staff_id"])
    by_unit = (
        differences.groupby(["declared_unit", "microsystem_id"])
        .agg(
            n_staff=("staff_id", "size"),
            roles=("role", lambda r: ", ".join(f"{n} {k}" for k, n in r.value_counts().items())),
        )
        .reset_index()
        .sort_values(["n_staff", "declared_unit"], ascending=[False, True])
    )
    scores = pd.DataFrame(
        {
            "n_staff": [len(common)],
            "adjusted_rand_index": [adjusted_rand_index(found, declared)],
            "normalised_mutual_information": [normalised_mutual_information(found, declared)],
            "purity": [float(counts.max(axis=1).sum() / counts.sum())],
            "agreement": [1 - len(differences) / len(common)],
            "n_differ": [len(differences)],
        }
    )
    return Comparison(
        scores=scores,
        purity=purity.reset_index(drop=True),
        differences=differences.reset_index(drop=True),
        by_unit=by_unit.reset_index(drop=True),
    )
