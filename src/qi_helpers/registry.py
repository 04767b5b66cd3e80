"""The registry of microsystems: naming, describing and publishing the clusters found.

:func:`assemble_tables` turns the staff labels of :func:`qi_helpers.communities.cluster_staff`
into the tables of :class:`qi_helpers.microsystems.Identification`: each cluster is named after
the declared unit of its members (declared units are matched to clusters one to one by the
Hungarian method, Kuhn 1955, :func:`match_units`), else ``MS-<main work area>``; it gets a kind,
a site, its work areas (each location goes to the cluster doing most of the work there), its
linked microsystems (those sharing most patients: the linked processes of the care journey), and
the staff, patient and location membership shares. :func:`main_microsystem` reads a member's
main microsystem back from the staff membership; :func:`published_registry` hides the small
patient counts before publishing, and the patient numbers that would give one away by
subtraction (:func:`patient_numbers_mask`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import scipy.sparse as sp

from qi_helpers.activity_network import Encoded
from qi_helpers.errors import DataError
from qi_helpers.privacy import (
    COMPLEMENTARY_LABEL,
    safe_filename,
    small_cell_label,
    small_group_mask,
)

__all__ = [
    "REGISTRY_COLUMNS",
    "assemble_tables",
    "main_microsystem",
    "PATIENT_TOTALS",
    "match_units",
    "patient_numbers_mask",
    "published_registry",
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

#: How the patient numbers a microsystem publishes add up (for :func:`small_group_mask`): the
#: panel (patients for whom it is the main microsystem) is part of the patients it saw
#: (``seen``, the registry's ``n_patients``), and the panel splits into age bands, sexes and
#: conditions (:mod:`qi_helpers.profiles`).
PATIENT_TOTALS = {"panel": "seen", "age_band": "panel", "sex": "panel", "condition": "panel"}


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
        The activities, from :func:`qi_helpers.activity_network.encode`.
    staff : DataFrame or None
        The roster (``staff_id``, optional ``role`` and ``home_unit``).
    cluster_of : numpy.ndarray of int
        Cluster label 0..k-1 of each staff member (:func:`qi_helpers.communities.cluster_staff`).
    min_weekly_volume : float
        Activities per week a microsystem needs to be ``measurable``.
    kind_by_activity : dict
        Maps an activity to a microsystem kind (unmapped: ``"unknown"``).
    site_pattern : str or None
        Regular expression whose first group, on the main work area, is the site.

    Returns
    -------
    registry, staff, patients, locations : DataFrame
        The tables of :class:`qi_helpers.microsystems.Identification`.
    labels : list of str
        The microsystem id of each cluster label.
    """
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
    main_of_patient = patient_table.drop_duplicates("patient_id")["microsystem_id"]
    panel = main_of_patient.value_counts().reindex(ids, fill_value=0).to_numpy(dtype=np.int64)
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
                "panel_size": int(panel[c]),
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


def patient_numbers_mask(
    numbers: pd.DataFrame, threshold: int = 11, *, seen: str = "n_patients"
) -> pd.DataFrame:
    """Which of each microsystem's patients seen and panel may not be published.

    The panel is part of the patients seen, so the two are a total and a part
    (:data:`PATIENT_TOTALS`): by :func:`qi_helpers.privacy.small_group_mask`, a number from 1 to
    ``threshold - 1`` is hidden, and where patients seen minus the panel (patients seen whose
    main microsystem is another) is from 1 to ``threshold - 1``, patients seen is hidden too (the
    panel, the total of the profile's age bands, is kept).

    Parameters
    ----------
    numbers : DataFrame
        One row per microsystem with ``seen`` and ``panel_size`` (the registry, or
        :attr:`qi_helpers.profiles.Profiles.summary` with ``seen="patients_seen"``).
    threshold : int
        ``publish.small_cell_threshold``.
    seen : str
        The column of patients seen.

    Returns
    -------
    DataFrame
        Same index, columns ``seen`` and ``panel_size``: ``"primary"``, ``"complementary"`` or
        ``""``.
    """
    n = len(numbers)
    long = pd.DataFrame(
        {
            "row": np.tile(np.arange(n), 2),
            "dimension": ["seen"] * n + ["panel"] * n,
            "n": np.concatenate(
                [numbers[seen].to_numpy(dtype=float), numbers["panel_size"].to_numpy(dtype=float)]
            ),
        }
    )
    mask = small_group_mask(
        long, ["n"], threshold, dimension="dimension", totals=PATIENT_TOTALS, within=["row"]
    )["n"].to_numpy()
    return pd.DataFrame({seen: mask[:n], "panel_size": mask[n:]}, index=numbers.index)


def published_registry(registry: pd.DataFrame, threshold: int = 11) -> pd.DataFrame:
    """The registry as it may be published: small patient numbers hidden.

    Parameters
    ----------
    registry : DataFrame
        :attr:`qi_helpers.microsystems.Identification.registry` (or
        ``outputs/data/registry.parquet``).
    threshold : int
        The project's ``publish.small_cell_threshold`` (11 by default, as in the CMS cell-size
        policy).

    Returns
    -------
    DataFrame
        A copy in which, by the rule of :func:`qi_helpers.privacy.small_group_mask`,
        ``n_patients`` (patients seen) and ``panel_size`` from 1 to ``threshold - 1`` show as
        ``"<threshold"``; ``n_patients`` shows as ``"*"`` where it minus the panel is from 1 to
        ``threshold - 1`` (:func:`patient_numbers_mask`; the profiles hide it the same way), or
        where the registry has no ``panel_size`` to check against (a registry written by an
        older version); and the shared-patient counts in ``linked_microsystems``
        (``"RIV-PC3 (9 patients)"``) from 1 to ``threshold - 1`` show as ``"(<threshold
        patients)"``. A column that hides something becomes text. The registry under
        ``outputs/data/`` keeps the counts.
    """
    if int(threshold) < 1:
        raise DataError(f"published_registry: threshold must be 1 or more, found {threshold!r}.")
    out = registry.copy()
    labels = {"primary": small_cell_label(threshold), "complementary": COMPLEMENTARY_LABEL}
    if "n_patients" in out.columns:
        if "panel_size" in out.columns:
            codes = patient_numbers_mask(out, threshold)
        else:  # nothing to check the difference against: only the small counts may be told
            codes = small_group_mask(out, ["n_patients"], threshold)
            codes["n_patients"] = codes["n_patients"].where(
                codes["n_patients"].ne("") | out["n_patients"].fillna(0).eq(0), "complementary"
            )
        for column in codes.columns:
            hide = codes[column].ne("")
            if hide.any():
                out[column] = out[column].astype(object).where(~hide, codes[column].map(labels))
    if "linked_microsystems" in out.columns:
        shared = out["linked_microsystems"].astype("string").str.findall(r"\((\d+) patients\)")
        found = sorted({int(n) for counts in shared.dropna() for n in counts})
        small = small_group_mask(pd.DataFrame({"n": found}), ["n"], threshold)["n"]
        hidden = {n for n, code in zip(found, small, strict=True) if code}
        out["linked_microsystems"] = out["linked_microsystems"].str.replace(
            r"\((\d+) patients\)",
            lambda m: (
                f"({labels['primary']} patients)" if int(m.group(1)) in hidden else m.group(0)
            ),
            regex=True,
        )
    return out


def main_microsystem(membership_staff: pd.DataFrame) -> pd.Series:
    """Each staff member's main microsystem (largest share), indexed by ``staff_id``."""
    ordered = membership_staff.sort_values(
        ["staff_id", "share", "microsystem_id"], ascending=[True, False, True]
    )
    return ordered.drop_duplicates("staff_id").set_index("staff_id")["microsystem_id"]
