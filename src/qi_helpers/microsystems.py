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
   J Gen Intern Med 26(8):917; Kuo et al. found that a threshold around six shared patients
   separates working relationships from chance);
3. communities of that network by Louvain modularity optimisation (Blondel et al. 2008), seeded,
   through networkx;
4. "smallest measurable": a cluster with fewer than ``min_weekly_volume`` activities a week is
   merged into the cluster it is most strongly tied to, or kept and flagged when it has no ties.

Work areas (locations) are attached to the cluster that does most of the work there; each
patient's panel shares are the share of their activities delivered by each cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp

from qi_helpers.errors import DataError
from qi_helpers.privacy import safe_filename


@dataclass
class Identification:
    """The microsystems found, with their members.

    Attributes
    ----------
    registry : DataFrame
        One row per microsystem: ``microsystem_id, name, kind, site, locations, n_staff,
        n_patients, weekly_volume, measurable, why``.
    staff : DataFrame
        ``staff_id, microsystem_id, share``: share of that person's activity done in the
        microsystem's work areas; floating staff have a row per microsystem they work in.
    patients : DataFrame
        ``patient_id, microsystem_id, share``: share of the patient's activities delivered by the
        microsystem's staff (the panel).
    locations : DataFrame
        ``location, microsystem_id, share``: each work area and the microsystem doing most of the
        work there.
    merges : DataFrame
        ``microsystem_id`` (the cluster merged away, described by its staff count and main work
        area), ``merged_into``, ``reason``: every merge the algorithm made.
    ties : DataFrame
        ``staff_a, staff_b, shared_patients``: the kept ties of the staff network.
    notes : list of str
        Data-quality messages (rows dropped, staff missing from the roster).
    """

    registry: pd.DataFrame
    staff: pd.DataFrame
    patients: pd.DataFrame
    locations: pd.DataFrame
    merges: pd.DataFrame
    ties: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)


def _window(activities: pd.DataFrame, start, end) -> tuple[pd.DataFrame, list[str]]:
    notes = []
    acts = activities
    if start is not None:
        acts = acts[acts["timestamp"] >= pd.Timestamp(start)]
    if end is not None:
        acts = acts[acts["timestamp"] < pd.Timestamp(end)]
    missing = acts["staff_id"].isna() | acts["patient_id"].isna()
    if missing.any():
        notes.append(
            f"{int(missing.sum())} activity rows without a staff or patient identifier "
            "were left out."
        )
        acts = acts[~missing]
    if acts.empty:
        raise DataError(
            "activities: no rows with staff and patient identifiers between "
            f"{start or 'the start'} "
            f"and {end or 'the end'}; widen the window (start/end parameters)."
        )
    return acts, notes


def _staff_projection(acts: pd.DataFrame, min_shared: int):
    staff_codes, staff_ids = pd.factorize(acts["staff_id"], sort=True)
    patient_codes, _ = pd.factorize(acts["patient_id"], sort=True)
    pairs = np.unique(np.stack([staff_codes, patient_codes], axis=1), axis=0)
    incidence = sp.csr_matrix(
        (np.ones(len(pairs), dtype=np.int32), (pairs[:, 0], pairs[:, 1])),
        shape=(len(staff_ids), patient_codes.max() + 1),
    )
    shared = (incidence @ incidence.T).tocoo()
    keep = (shared.row < shared.col) & (shared.data >= min_shared)
    edges = sp.coo_matrix(
        (shared.data[keep], (shared.row[keep], shared.col[keep])), shape=shared.shape
    )
    return staff_ids, staff_codes, edges


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
    seed: int = 0,
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
        Not needed to cluster; accepted for symmetry with :func:`profile`.
    start, end : str, optional
        The window (ISO dates; ``end`` excluded).
    min_shared_patients : int
        Keep staff-staff ties with at least this many shared patients.
    resolution : float
        Louvain resolution; above 1 favours smaller clusters.
    min_weekly_volume : float
        Activities per week below which a cluster is merged into its strongest neighbour.
    kind_by_activity : dict, optional
        Maps an activity to a microsystem kind; the kind is the one of the cluster's most common
        activities. Unmapped: ``"unknown"``.
    site_pattern : str, optional
        A regular expression whose first group, matched on the main work area, is the site; when it
        does not match, the site is ``"organisation-wide"``. Default: the first word of the area.
    seed : int
        Seed of the Louvain algorithm; the same seed gives the same result.

    Returns
    -------
    Identification
    """
    acts, notes = _window(activities, start, end)
    if staff is not None:
        unknown = sorted(set(acts["staff_id"].unique()) - set(staff["staff_id"]))
        if unknown:
            shown = ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else "")
            notes.append(f"{len(unknown)} staff in the activities are not in the roster: {shown}")
    staff_ids, staff_codes, edges = _staff_projection(acts, min_shared_patients)
    graph = nx.Graph()
    graph.add_nodes_from(range(len(staff_ids)))
    graph.add_weighted_edges_from(
        zip(edges.row.tolist(), edges.col.tolist(), edges.data.tolist(), strict=True)
    )
    communities = nx.community.louvain_communities(
        graph, weight="weight", resolution=resolution, seed=seed
    )
    communities = sorted((sorted(c) for c in communities), key=lambda c: c[0])
    cluster_of = np.empty(len(staff_ids), dtype=np.int64)
    for label, members in enumerate(communities):
        cluster_of[members] = label
    n_weeks = max(1.0, (acts["timestamp"].max() - acts["timestamp"].min()).days / 7)
    acts = acts.assign(_cluster=cluster_of[staff_codes])
    cluster_of, merges = _merge_small(
        acts, graph, cluster_of, staff_codes, n_weeks, min_weekly_volume
    )
    acts = acts.assign(_cluster=cluster_of[staff_codes])
    labels = _name_clusters(acts, staff, cluster_of, staff_ids)
    acts["microsystem_id"] = acts["_cluster"].map(labels)
    merges["merged_into"] = merges["merged_into"].map(labels)
    result = _assemble(
        acts, staff, n_weeks, min_weekly_volume, kind_by_activity or {}, site_pattern, merges, notes
    )
    names = np.asarray(staff_ids, dtype=object)
    result.ties = pd.DataFrame(
        {"staff_a": names[edges.row], "staff_b": names[edges.col], "shared_patients": edges.data}
    )
    return result


def _merge_small(acts, graph, cluster_of, staff_codes, n_weeks, min_weekly_volume):
    """Merge clusters below the volume threshold into their most strongly tied neighbour."""
    cluster_of = cluster_of.copy()
    merges = []
    while True:
        volume = pd.Series(cluster_of[staff_codes]).value_counts() / n_weeks
        small = volume[volume < min_weekly_volume].sort_values()
        if small.empty:
            break
        merged_any = False
        for cluster in small.index:
            members = np.flatnonzero(cluster_of == cluster)
            area = acts.loc[cluster_of[staff_codes] == cluster, "location"].value_counts().idxmax()
            ties: dict[int, float] = {}
            for node in members:
                for other, data in graph[node].items():
                    target = cluster_of[other]
                    if target != cluster:
                        ties[target] = ties.get(target, 0) + data["weight"]
            if not ties:
                continue
            target = max(sorted(ties), key=lambda t: ties[t])
            cluster_of[members] = target
            merges.append(
                {
                    "microsystem_id": f"{len(members)} staff working mainly at {area}",
                    "merged_into": int(target),
                    "reason": f"{volume[cluster]:.1f} activities a week, below the minimum of "
                    f"{min_weekly_volume:g}; most strongly tied to this microsystem "
                    f"({ties[target]:.0f} shared-patient ties)",
                }
            )
            merged_any = True
            break
        if not merged_any:
            break
    return cluster_of, pd.DataFrame(merges, columns=["microsystem_id", "merged_into", "reason"])


def _name_clusters(acts, staff, cluster_of, staff_ids) -> dict[int, str]:
    """Name each cluster after the declared unit most of its members give (else its location)."""
    members = pd.DataFrame({"staff_id": staff_ids.astype(str), "_cluster": cluster_of})
    volume = acts["_cluster"].value_counts()
    proposals: dict[int, str] = {}
    if staff is not None and "home_unit" in staff.columns:
        declared = members.merge(staff[["staff_id", "home_unit"]], on="staff_id", how="left")
        declared = declared.dropna(subset=["home_unit"])
        for cluster, group in declared.groupby("_cluster"):
            proposals[cluster] = str(group["home_unit"].value_counts().sort_index().idxmax())
    main_location = acts.groupby("_cluster")["location"].agg(lambda s: s.value_counts().idxmax())
    labels: dict[int, str] = {}
    taken: set[str] = set()
    for cluster in volume.sort_values(ascending=False, kind="stable").index:
        base = proposals.get(cluster) or "MS-" + re.sub(
            r"[^A-Za-z0-9]+", "-", str(main_location[cluster])
        ).strip("-")
        base = safe_filename(base)
        label, k = base, 2
        while label in taken:
            label, k = f"{base}-{k}", k + 1
        taken.add(label)
        labels[cluster] = label
    return labels


def _site(location: str, pattern: str | None) -> str:
    if pattern is None:
        return location.split()[0] if location.strip() else ""
    match = re.search(pattern, location)
    return match.group(1) if match else "organisation-wide"


def _assemble(
    acts, staff, n_weeks, min_weekly_volume, kind_by_activity, site_pattern, merges, notes
):
    loc = acts.groupby(["location", "microsystem_id"]).size().rename("n").reset_index()
    loc["share"] = loc["n"] / loc.groupby("location")["n"].transform("sum")
    locations = (
        loc.sort_values(["location", "n"], ascending=[True, False])
        .drop_duplicates("location")[["location", "microsystem_id", "share"]]
        .reset_index(drop=True)
    )
    owner = locations.set_index("location")["microsystem_id"]
    acts = acts.assign(_area=acts["location"].map(owner))
    st = acts.groupby(["staff_id", "_area"]).size().rename("n").reset_index()
    st["share"] = st["n"] / st.groupby("staff_id")["n"].transform("sum")
    staff_table = (
        st.rename(columns={"_area": "microsystem_id"})
        .sort_values(["staff_id", "share"], ascending=[True, False])[
            ["staff_id", "microsystem_id", "share"]
        ]
        .reset_index(drop=True)
    )
    pt = acts.groupby(["patient_id", "microsystem_id"]).size().rename("n").reset_index()
    pt["share"] = pt["n"] / pt.groupby("patient_id")["n"].transform("sum")
    patient_table = pt.sort_values(["patient_id", "share"], ascending=[True, False])[
        ["patient_id", "microsystem_id", "share"]
    ].reset_index(drop=True)
    rows = []
    for ms, group in acts.groupby("microsystem_id", sort=True):
        top_activity = group["activity"].value_counts().sort_index().idxmax()
        kinds = group["activity"].map(kind_by_activity).astype("string").fillna("unknown")
        kinds = kinds.value_counts()
        kind = str(kinds.sort_index().idxmax())
        areas = locations.loc[locations["microsystem_id"] == ms, "location"].tolist()
        main = group["location"].value_counts().sort_index().idxmax()
        site = _site(str(main), site_pattern)
        weekly = len(group) / n_weeks
        measurable = weekly >= min_weekly_volume
        why = (
            f"{weekly:.0f} activities a week (minimum {min_weekly_volume:g})"
            if measurable
            else f"only {weekly:.1f} activities a week and no tie to merge into; measure with care"
        )
        roles = ""
        if staff is not None:
            mix = staff[staff["staff_id"].isin(group["staff_id"].unique())]["role"].value_counts()
            roles = ", ".join(f"{n} {r}" for r, n in mix.head(3).items())
        rows.append(
            {
                "microsystem_id": ms,
                "name": f"{main}: {top_activity}" + (f" ({roles})" if roles else ""),
                "kind": kind,
                "site": site,
                "locations": "; ".join(sorted(areas)),
                "n_staff": int(group["staff_id"].nunique()),
                "n_patients": int(group["patient_id"].nunique()),
                "weekly_volume": round(weekly, 1),
                "measurable": bool(measurable),
                "why": why,
            }
        )
    registry = pd.DataFrame(rows)
    return Identification(registry, staff_table, patient_table, locations, merges, notes=notes)


def write_identification(result: Identification, folder) -> list:
    """Write the registry and membership tables as Parquet under ``folder`` (atomically).

    Returns the paths written: ``registry.parquet``, ``membership_staff.parquet``,
    ``membership_patients.parquet``, ``membership_locations.parquet``, ``merges.parquet``.
    """
    from pathlib import Path

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
    return out


def adjusted_rand_index(labels_a: pd.Series, labels_b: pd.Series) -> float:
    """Adjusted Rand index of two partitions of the same items (Hubert & Arabie 1985).

    1 for identical partitions, about 0 for chance agreement. Items are matched by index; items
    in only one of the two series are ignored.
    """
    from scipy.special import comb

    common = labels_a.index.intersection(labels_b.index)
    table = pd.crosstab(labels_a[common], labels_b[common]).to_numpy()
    pairs = comb(table, 2).sum()
    rows, cols = comb(table.sum(axis=1), 2).sum(), comb(table.sum(axis=0), 2).sum()
    total = comb(table.sum(), 2)
    expected = rows * cols / total if total else 0.0
    maximum = (rows + cols) / 2
    return 1.0 if maximum == expected else float((pairs - expected) / (maximum - expected))


def main_microsystem(membership_staff: pd.DataFrame) -> pd.Series:
    """Each staff member's main microsystem (largest share), indexed by ``staff_id``."""
    ordered = membership_staff.sort_values(["staff_id", "share"], ascending=[True, False])
    return ordered.drop_duplicates("staff_id").set_index("staff_id")["microsystem_id"]
