"""The registry of microsystems: naming and describing the clusters found.

:func:`assemble_tables` turns the staff labels of
:func:`qi_helpers.identify.communities.cluster_staff` into the tables of
:class:`qi_helpers.identify.microsystems.Identification`: each cluster is named after the declared
unit of its members (declared units are matched to clusters one to one by the Hungarian method,
Kuhn 1955, :func:`match_units`), else ``MS-<main work area>``; it gets a kind, a site, its work
areas (each location goes to the cluster doing most of the work there), its linked microsystems
(those sharing most patients: the linked processes of the care journey), and the staff, patient
and location membership shares. :func:`main_microsystem` reads a member's main microsystem back
from the staff membership. What of the registry may be published is decided in
:mod:`qi_helpers.identify.published`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

from qi_helpers.identify.network import Encoded
from qi_helpers.privacy.names import safe_filename

__all__ = [
    "REGISTRY_COLUMNS",
    "assemble_tables",
    "main_microsystem",
    "match_units",
]

REGISTRY_COLUMNS = [
    "microsystem_id",
    "name",
    "kind",
    "site",
    "locations",
    "linked_microsystems",
    "n_staff",
    "n_patients",
    "panel_size",
    "weekly_volume",
    "measurable",
    "why",
]


#: Kinds of service team recognised from the words of an activity that ``kind_by_activity`` does
#: not name, checked in order (the first match wins); other unnamed activities are ``unknown``.
SERVICE_KIND_WORDS = (
    ("phlebotomy", r"venepuncture|venipuncture|phlebotom|blood (?:draw|taken)"),
    (
        "laboratory",
        r"specimen|assay|analys|patholog|microbiolog|haematolog|biochemist|\blab\b|laborator",
    ),
    ("pharmacy", r"dispens|pharmac"),
    ("imaging", r"x-?ray|radiograph|\bscan|imaging|ultrasound|\bmri\b|\bct\b|mammogra"),
    ("call_centre", r"\bcalls?\b|call cent|contact cent|helpline"),
)


def activity_kind(activity: str, kind_by_activity: dict[str, str]) -> str:
    """The kind of microsystem an activity belongs to.

    From ``kind_by_activity`` when it names the activity; else a kind of service team when the
    activity's words say so (:data:`SERVICE_KIND_WORDS`: "specimen analysis" is laboratory work,
    "venepuncture" phlebotomy); else ``"unknown"``.
    """
    if activity in kind_by_activity:
        return str(kind_by_activity[activity])
    for kind, words in SERVICE_KIND_WORDS:
        if re.search(words, str(activity), flags=re.IGNORECASE):
            return kind
    return "unknown"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-") or "unnamed"


def _site(location: str, pattern: str | None) -> str:
    if pattern is None:
        return location.split()[0] if location.strip() else ""
    match = re.search(pattern, location)
    return match.group(1) if match else "organisation-wide"


def match_units(counts: np.ndarray) -> np.ndarray:
    """One-to-one match of clusters (rows) to declared units (columns) agreeing with most staff.

    An assignment problem, solved by the Hungarian method (Kuhn 1955,
    ``scipy.optimize.linear_sum_assignment``).

    Parameters
    ----------
    counts : numpy.ndarray
        ``counts[c, u]`` is the number of staff of cluster ``c`` declaring unit ``u``.

    Returns
    -------
    numpy.ndarray of int
        The unit of each cluster, ``-1`` when it gets none (or only one nobody declared).
    """
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
    their declared code on their cluster (:func:`match_units`). A cluster left without
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
            for c, u in enumerate(match_units(counts)):
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


@dataclass
class _Clusters:
    """A staff labelling and what every table of :func:`assemble_tables` is read from.

    Attributes
    ----------
    encoded : Encoded
        The activities.
    cluster_of : numpy.ndarray of int
        Cluster label 0..k-1 of each staff member.
    member : scipy.sparse.csr_matrix
        Staff by clusters, 1 where a member belongs.
    ids : numpy.ndarray of str
        The microsystem id of each cluster.
    main_location : numpy.ndarray of str
        The work area where each cluster does most of its work.
    owner : numpy.ndarray of int
        The cluster doing most of the work in each location.
    """

    encoded: Encoded
    cluster_of: np.ndarray
    member: sp.csr_matrix
    ids: np.ndarray
    main_location: np.ndarray
    owner: np.ndarray

    @property
    def k(self) -> int:
        """The number of clusters."""
        return self.member.shape[1]


def assemble_tables(
    encoded: Encoded,
    staff: pd.DataFrame | None,
    cluster_of: np.ndarray,
    *,
    min_weekly_volume: float,
    kind_by_activity: dict[str, str],
    site_pattern: str | None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """Name and describe the clusters: the registry and the membership tables.

    Parameters
    ----------
    encoded : Encoded
        The activities, from :func:`qi_helpers.identify.network.encode`.
    staff : DataFrame or None
        The roster (``staff_id``, optional ``role`` and ``home_unit``).
    cluster_of : numpy.ndarray of int
        Cluster label 0..k-1 of each staff member
        (:func:`qi_helpers.identify.communities.cluster_staff`).
    min_weekly_volume : float
        Activities per week a microsystem needs to be ``measurable``.
    kind_by_activity : dict
        Maps an activity to a microsystem kind (unmapped: ``"unknown"``).
    site_pattern : str or None
        Regular expression whose first group, on the main work area, is the site.

    Returns
    -------
    registry, staff, patients, locations : DataFrame
        The tables of :class:`qi_helpers.identify.microsystems.Identification`.
    labels : list of str
        The microsystem id of each cluster label.
    """
    n_staff = len(cluster_of)
    k = int(cluster_of.max()) + 1
    member = sp.csr_matrix((np.ones(n_staff), (np.arange(n_staff), cluster_of)), shape=(n_staff, k))
    by_location = (member.T @ encoded.staff_location).tocsr()  # k x locations
    main_location = encoded.location_names[np.asarray(by_location.argmax(axis=1)).ravel()]
    labels = _labels(encoded, staff, cluster_of, main_location)
    clusters = _Clusters(
        encoded=encoded,
        cluster_of=cluster_of,
        member=member,
        ids=np.asarray(labels, dtype=object),
        main_location=main_location,
        owner=np.asarray(by_location.argmax(axis=0)).ravel(),
    )
    locations = _location_table(clusters, by_location)
    staff_table = _staff_table(clusters)
    by_patient = (member.T @ encoded.staff_patient).tocoo()  # k x patients
    patient_table = _patient_table(clusters, by_patient)
    registry = _registry(
        clusters,
        staff,
        by_patient,
        patient_table,
        min_weekly_volume=min_weekly_volume,
        kind_by_activity=kind_by_activity,
        site_pattern=site_pattern,
    )
    tidy = [t.reset_index(drop=True) for t in (registry, staff_table, patient_table, locations)]
    return (*tidy, labels)


def _location_table(clusters: _Clusters, by_location: sp.csr_matrix) -> pd.DataFrame:
    """Work areas: each location goes to the cluster doing most of its work."""
    loc_total = np.asarray(by_location.sum(axis=0)).ravel()
    loc_top = np.asarray(by_location.max(axis=0).toarray()).ravel()
    return pd.DataFrame(
        {
            "location": clusters.encoded.location_names,
            "microsystem_id": clusters.ids[clusters.owner],
            "share": loc_top / np.maximum(loc_total, 1),
        }
    )


def _staff_table(clusters: _Clusters) -> pd.DataFrame:
    """Staff: the share of each person's work done in each microsystem's work areas.

    Work in a location goes to the location's owner; a cluster that owns no location keeps
    its members' work.
    """
    encoded, cluster_of, owner = clusters.encoded, clusters.cluster_of, clusters.owner
    n_staff, k = len(cluster_of), clusters.k
    owns = np.bincount(owner, minlength=k) > 0
    sl = encoded.staff_location.tocoo()
    where = np.where(owns[cluster_of[sl.row]], owner[sl.col], cluster_of[sl.row])
    per_ms = sp.csr_matrix((sl.data.astype(float), (sl.row, where)), shape=(n_staff, k)).tocoo()
    per_ms.sum_duplicates()
    totals = encoded.staff_volume
    return pd.DataFrame(
        {
            "staff_id": encoded.staff_ids[per_ms.row],
            "microsystem_id": clusters.ids[per_ms.col],
            "share": per_ms.data / totals[per_ms.row],
        }
    ).sort_values(["staff_id", "share", "microsystem_id"], ascending=[True, False, True])


def _patient_table(clusters: _Clusters, by_patient: sp.coo_matrix) -> pd.DataFrame:
    """Patients: the share of each patient's activities delivered by each cluster's staff.

    Ordered by patient id, then the largest share first (the main microsystem).
    """
    encoded = clusters.encoded
    patient_totals = np.asarray(encoded.staff_patient.sum(axis=0)).ravel()
    patient_rank = np.empty(len(encoded.patient_ids), dtype=np.int64)
    patient_rank[encoded.patient_ids.argsort()] = np.arange(len(encoded.patient_ids))
    order = np.lexsort((by_patient.row, -by_patient.data, patient_rank[by_patient.col]))
    patient_table = pd.DataFrame(
        {
            "patient_id": encoded.patient_ids.to_numpy(dtype=object)[by_patient.col[order]],
            "microsystem_id": clusters.ids[by_patient.row[order]],
            "share": by_patient.data[order] / patient_totals[by_patient.col[order]],
        }
    )
    patient_table["patient_id"] = patient_table["patient_id"].astype("string")
    return patient_table


def _patients_shared(
    by_patient: sp.coo_matrix, patient_table: pd.DataFrame, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """Patients seen and panel size of each cluster, and the patients each pair shares.

    The shared patients (diagonal removed) give the linked microsystems. A cluster that is the
    main microsystem of fewer than half the patients it sees serves the patients of other teams
    (a laboratory, a pharmacy, a call centre): its row counts instead the patients it saw whose
    main microsystem is the other one, the teams whose patients it serves.
    """
    seen = by_patient.tocsr()
    seen.data = np.ones_like(seen.data)
    linked = (seen @ seen.T).tocsr()
    n_patients = linked.diagonal().astype(np.int64)
    main_of_patient = patient_table.drop_duplicates("patient_id")["microsystem_id"]
    panel = main_of_patient.value_counts().reindex(ids, fill_value=0).to_numpy(dtype=np.int64)
    serves = np.flatnonzero(panel < n_patients / 2)
    if len(serves):
        k, n = seen.shape
        main = np.asarray(by_patient.tocsc().argmax(axis=0)).ravel()
        onehot = sp.csr_matrix((np.ones(n), (np.arange(n), main)), shape=(n, k))
        served = (seen[serves] @ onehot).tocsr()
        row_of = dict(zip(serves.tolist(), range(len(serves)), strict=True))
        rows = [served[row_of[c]] if c in row_of else linked[c] for c in range(k)]
        linked = sp.vstack(rows).tocsr()
    linked.setdiag(0)
    linked.eliminate_zeros()
    return n_patients, panel, linked


def _role_text(roles: pd.Series) -> str:
    """The three most common roles of a cluster's members, with their counts."""
    mix = roles.value_counts().sort_index().sort_values(ascending=False, kind="stable")
    return ", ".join(f"{n} {r}" for r, n in mix.head(3).items())


#: Beyond the three sharing most patients, a microsystem sharing at least this share of a
#: microsystem's patients is also linked (a service team serves the patients of every team).
LINKED_SHARE = 0.1


def _linked_text(row: sp.csr_matrix, ids: np.ndarray, n_patients: int) -> str:
    """The microsystems sharing most patients with one, and how many: the three sharing most,
    and any other sharing at least :data:`LINKED_SHARE` of its patients."""
    order = np.argsort(-row.data, kind="stable")
    keep = (np.arange(len(order)) < 3) | (row.data[order] >= LINKED_SHARE * max(n_patients, 1))
    return "; ".join(f"{ids[row.indices[j]]} ({int(row.data[j])} patients)" for j in order[keep])


def _why(volume: float, min_weekly_volume: float) -> str:
    """Why a microsystem is measurable, or not."""
    if volume >= min_weekly_volume:
        return f"{volume:.0f} activities a week (minimum {min_weekly_volume:g})"
    return (
        f"only {volume:.1f} activities a week and no tie to merge into; "
        "measure with care (pool it with a neighbour or chart monthly)"
    )


def _registry(
    clusters: _Clusters,
    staff: pd.DataFrame | None,
    by_patient: sp.coo_matrix,
    patient_table: pd.DataFrame,
    *,
    min_weekly_volume: float,
    kind_by_activity: dict[str, str],
    site_pattern: str | None,
) -> pd.DataFrame:
    """One row per microsystem (:data:`REGISTRY_COLUMNS`), sorted by id."""
    encoded, cluster_of, ids, k = clusters.encoded, clusters.cluster_of, clusters.ids, clusters.k
    main_location = clusters.main_location
    n_patients, panel, linked = _patients_shared(by_patient, patient_table, ids)
    by_activity = (clusters.member.T @ encoded.staff_activity).toarray()  # k x activities
    kinds = np.array([activity_kind(a, kind_by_activity) for a in encoded.activity_names])
    kind_names = np.unique(kinds)
    kind_counts = np.stack([by_activity[:, kinds == n].sum(axis=1) for n in kind_names], axis=1)
    known = kind_counts * (kind_names != "unknown")  # the most common known kind, if any
    kind_counts = np.where(known.sum(axis=1, keepdims=True) > 0, known, kind_counts)
    roles = _roles(staff, encoded.staff_ids)
    n_members = np.bincount(cluster_of, minlength=k)
    volume = np.bincount(cluster_of, weights=encoded.staff_volume, minlength=k) / encoded.n_weeks
    rows = []
    for c in range(k):
        areas = sorted(encoded.location_names[clusters.owner == c])
        top = np.argsort(-by_activity[c], kind="stable")[:2]
        activities = ", ".join(encoded.activity_names[top[by_activity[c, top] > 0]])
        rows.append(
            {
                "microsystem_id": ids[c],
                "name": f"{main_location[c]}: {activities} ({_role_text(roles[cluster_of == c])})",
                "kind": str(kind_names[int(np.argmax(kind_counts[c]))]),
                "site": _site(str(main_location[c]), site_pattern),
                "locations": "; ".join(areas or [f"{main_location[c]} (shared)"]),
                "linked_microsystems": _linked_text(linked.getrow(c), ids, n_patients[c]),
                "n_staff": int(n_members[c]),
                "n_patients": int(n_patients[c]),
                "panel_size": int(panel[c]),
                "weekly_volume": round(float(volume[c]), 1),
                "measurable": bool(volume[c] >= min_weekly_volume),
                "why": _why(volume[c], min_weekly_volume),
            }
        )
    return pd.DataFrame(rows, columns=REGISTRY_COLUMNS).sort_values("microsystem_id")


def main_microsystem(membership_staff: pd.DataFrame) -> pd.Series:
    """Each staff member's main microsystem (largest share), indexed by ``staff_id``."""
    ordered = membership_staff.sort_values(
        ["staff_id", "share", "microsystem_id"], ascending=[True, False, True]
    )
    return ordered.drop_duplicates("staff_id").set_index("staff_id")["microsystem_id"]
