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
3b. work areas and activities (:mod:`qi_helpers.identify.work_areas`): a microsystem is also "a
   work area or department with the same aims, linked processes and shared information"
   (Nelson et al. 2002), such as a laboratory or a call centre. Such a service team touches the
   patients of many teams, so shared patients alone put it in the team it shares most patients
   with. Inside each community, the staff are grouped by their main work area; a group whose
   work areas and activities barely overlap those of the rest of the community (proportional
   similarity at most 0.2 for both; Feinsinger et al. 1981) is split off: into the community
   that works in that area, else as a microsystem of its own when it has at least two staff and
   is measurable on its own. Each split is reported in ``merges`` with the group in words;
4. refinement: modularity cannot see communities smaller than about the square root of the
   network's size and merges them (the resolution limit, Fortunato & Barthelemy 2007, PNAS
   104(1):36-41). Following the recursive use of modularity of Ruan & Zhang (2008, Phys Rev E
   77:016104), Louvain is run again inside each community; a split is kept only when every part
   is a community in the weak sense of Radicchi et al. (2004, PNAS 101(9):2658-2663), with more
   shared-patient ties inside it than to its sibling parts. A part that fails is put back with
   the sibling it is most tied to. A single well-knit team never passes the test, so real teams
   are not cut; every split is reported in ``merges``;
5. "smallest measurable": a cluster with fewer than ``min_weekly_volume`` activities a week is
   merged into the cluster it is most strongly tied to among those doing the same kind of work
   (a low-volume practice never joins the pharmacy serving it); without such a tie, into the
   cluster that owns its main work area (a bank nurse with a few shifts joins the ward); else it
   is kept and flagged.

Work areas (locations) are attached to the cluster that does most of the work there; each
patient's panel shares are the share of their activities delivered by each cluster; the linked
microsystems are those sharing most patients with it (the linked processes of the care journey).
Everything after the projection works on sparse staff-by-X matrices, so the cost grows with the
number of activities once and with the number of staff and clusters afterwards.

Validation against the declared units
(:func:`qi_helpers.identify.declared_units.compare_to_declared`) uses the adjusted Rand index
(Hubert & Arabie 1985) and normalised mutual information (Strehl & Ghosh 2002; Vinh, Epps &
Bailey 2010). Profiles of the 5 Ps are in :mod:`qi_helpers.identify.profiles`.

Modules
-------
This module holds :func:`identify` and its result, :class:`Identification`. The steps live in
:mod:`qi_helpers.identify.network` (1-2: encoding, staff projection),
:mod:`qi_helpers.identify.communities` (3-5: Louvain, refinement, merges),
:mod:`qi_helpers.identify.work_areas` (3b: the split by work area and activities) and
:mod:`qi_helpers.identify.registry` (naming and describing the clusters); the public names of
all of them are gathered in :mod:`qi_helpers.identify`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from qi_helpers.identify.communities import cluster_staff
from qi_helpers.identify.network import Encoded, encode
from qi_helpers.identify.registry import assemble_tables

__all__ = ["MERGE_COLUMNS", "Identification", "identify"]

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
        - ``kind``: the most common kind of its activities (``kind_by_activity``, else read from
          the words of a service activity), ``unknown`` when none of its activities has a kind;
        - ``site``: read from the main work area (``site_pattern``);
        - ``locations``: its work areas, ``;``-separated;
        - ``linked_microsystems``: the three microsystems sharing most patients with it, and any
          other sharing at least a tenth of its patients (the teams a service team serves), with
          the number shared (its linked processes);
        - ``n_staff``, ``n_patients``: staff in the cluster and patients they saw;
        - ``panel_size``: patients for whom it is the main microsystem (the first of their
          rows in ``patients``), part of ``n_patients``;
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
        ``resolution``, ``min_weekly_volume``, ``refine``, ``seed``, ``work_areas``).
    """

    registry: pd.DataFrame
    staff: pd.DataFrame
    patients: pd.DataFrame
    locations: pd.DataFrame
    merges: pd.DataFrame
    ties: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


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
    work_areas: bool = True,
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
        Not needed to cluster; accepted for symmetry with
        :func:`qi_helpers.identify.profiles.profile`.
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
        activities. An unmapped activity whose words name a service (specimen, venepuncture,
        dispensing, x-ray, call; :data:`qi_helpers.identify.registry.SERVICE_KIND_WORDS`) has
        that kind; any other is ``"unknown"``.
    site_pattern : str, optional
        A regular expression whose first group, matched on the main work area, is the site; when it
        does not match, the site is ``"organisation-wide"``. Default: the first word of the area.
    refine : bool
        Re-run Louvain inside each community and keep supported splits (see the module notes);
        False gives plain Louvain.
    seed : int
        Seed of the Louvain algorithm; the same seed gives the same result.
    encoded : Encoded, optional
        The activities already encoded by :func:`qi_helpers.identify.network.encode` with the
        same window (the explorer passes it to re-cluster quickly); ``activities`` is then not
        read again.
    work_areas : bool
        Use the work areas (``location``) and activity mix of each member of staff too: split
        off the blocks of staff with work areas and activities of their own (service teams such
        as a laboratory, a pharmacy or a call centre), and merge small clusters only into
        clusters doing the same kind of work (see the module notes). False clusters on shared
        patients alone.

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
    limit; Ruan & Zhang (2008) and Radicchi et al. (2004) for the refinement; Feinsinger,
    Spears & Poole (1981) for the proportional similarity of work areas and activity mixes.
    """
    if encoded is None:
        encoded = encode(activities, staff, start=start, end=end)
    cluster_of, log, ties = cluster_staff(
        encoded,
        min_shared_patients=min_shared_patients,
        resolution=resolution,
        min_weekly_volume=min_weekly_volume,
        refine=refine,
        seed=seed,
        work_areas=work_areas,
    )
    registry, staff_table, patient_table, locations, labels = assemble_tables(
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
            "work_areas": work_areas,
        },
    )
    return result
