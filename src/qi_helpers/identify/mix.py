"""The role, activity and patient mixes of every microsystem, as one row of shares each.

Three of a microsystem's 5 Ps (Purpose, Patients, Professionals, Processes, Patterns; Nelson,
Batalden & Godfrey, *Quality by Design*, 2007) are mixes: who works there (the professionals'
roles), what is done there (the processes' activities) and who is cared for there (the patients'
age bands and sexes). :func:`mix_profiles` builds them as wide share columns from the input tables
and workbook 01's membership, for the steps that compare microsystems by their profile (the
representativeness of a pilot in workbook 02, the similarity of an adopter in workbook 04) when
workbook 01 has not written its own profile table. A :class:`MixStyle` says how the columns are
named and ordered. The tables hold shares only, never an identifier of a person.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from qi_helpers.errors import DataError

__all__ = ["DIMENSION_MIXES", "MixStyle", "mix_profiles"]


@dataclass(frozen=True)
class MixStyle:
    """How :func:`mix_profiles` names and orders its share columns.

    Attributes
    ----------
    prefixes : mapping of str to str
        The column prefix of each dimension (``role``, ``activity``, ``age_band``, ``sex``); a
        column is named by its prefix followed by the category, and a dimension left out is not
        built. The text before the prefix's ``:`` names the mix the column belongs to: dimensions
        of the same mix share it equally (with two, each part sums to 1/2), so that every mix of
        a microsystem sums to 1.
    sort_columns : bool
        Sort the share columns by name; otherwise they come dimension by dimension (roles,
        activities, age bands, sexes), each sorted by category.
    """

    prefixes: Mapping[str, str]
    sort_columns: bool = False


#: One mix per dimension, named ``"<dimension>: <category>"`` (``role: GP``, ``activity: triage``,
#: ``age: 18-39``, ``sex: F``), dimension by dimension: the profiles of workbook 02.
DIMENSION_MIXES = MixStyle(
    {"role": "role: ", "activity": "activity: ", "age_band": "age: ", "sex": "sex: "}
)


def mix_profiles(
    staff: pd.DataFrame,
    membership: Mapping[str, pd.DataFrame],
    activities: pd.DataFrame | None = None,
    patients: pd.DataFrame | None = None,
    *,
    style: MixStyle = DIMENSION_MIXES,
) -> pd.DataFrame:
    """The role, activity and patient mixes of every microsystem, as shares.

    The professionals' mix is the role mix of its staff, each person weighted by their share of
    work there and their FTE; the processes' mix is the mix of activities in its work areas (an
    activity counts for the microsystem that owns its location); the patients' mix is the age band
    and sex of its patients, each weighted by their share. A mix is built only when its tables
    are given and workbook 01's membership has rows for it; people, activities and patients
    without a category are left out of that mix.

    Parameters
    ----------
    staff : DataFrame
        ``staff_id, role`` (``fte`` weights a person when present; blank means 1).
    membership : mapping of DataFrame
        Workbook 01's membership tables: ``staff`` (``staff_id, microsystem_id, share``),
        ``locations`` (``location, microsystem_id, share``) and ``patients`` (``patient_id,
        microsystem_id, share``).
    activities : DataFrame, optional
        ``activity, location``.
    patients : DataFrame, optional
        ``patient_id`` with ``age_band`` and/or ``sex``.
    style : MixStyle
        How the columns are named and ordered (default :data:`DIMENSION_MIXES`).

    Returns
    -------
    DataFrame
        One row per microsystem, sorted: ``microsystem_id`` and one share column per category
        (0 where absent), named and ordered by ``style``; each mix of a microsystem sums to 1.

    Raises
    ------
    DataError
        When no mix can be built (no membership table to build it from).
    """
    parts = Counter(_mix_of(prefix) for prefix in style.prefixes.values())
    blocks = []
    for dimension, weights in _weights(staff, membership, activities, patients).items():
        prefix = style.prefixes.get(dimension)
        if prefix is None:
            continue
        shares = _shares(weights)
        shares.columns = [prefix + str(category) for category in shares.columns]
        blocks.append(shares / parts[_mix_of(prefix)])
    if not blocks:
        raise DataError(
            "mix_profiles: no membership table to build profiles from; run workbook 01 first."
        )
    table = pd.concat(blocks, axis=1).fillna(0.0)
    if style.sort_columns:
        table = table.reindex(sorted(table.columns), axis=1)
    table = table.sort_index()
    table.index.name = "microsystem_id"
    return table.reset_index()


def _mix_of(prefix: str) -> str:
    return prefix.split(":", 1)[0]


def _weights(
    staff: pd.DataFrame,
    membership: Mapping[str, pd.DataFrame],
    activities: pd.DataFrame | None,
    patients: pd.DataFrame | None,
) -> dict[str, pd.DataFrame]:
    """``microsystem_id, category, weight`` of every dimension that can be built, in order."""
    found: dict[str, pd.DataFrame] = {}
    member_staff = membership.get("staff")
    if member_staff is not None and not member_staff.empty:
        people = member_staff.merge(staff, on="staff_id", how="inner")
        fte = people["fte"].fillna(1.0).astype(float) if "fte" in people.columns else 1.0
        found["role"] = pd.DataFrame(
            {
                "microsystem_id": people["microsystem_id"],
                "category": people["role"],
                "weight": people["share"] * fte,
            }
        )
    member_locations = membership.get("locations")
    if activities is not None and member_locations is not None and not member_locations.empty:
        owner = (
            member_locations.sort_values("share", ascending=False, kind="stable")
            .drop_duplicates("location")
            .set_index("location")["microsystem_id"]
        )
        found["activity"] = pd.DataFrame(
            {
                "microsystem_id": activities["location"].map(owner),
                "category": activities["activity"],
                "weight": 1.0,
            }
        )
    member_patients = membership.get("patients")
    if patients is not None and member_patients is not None and not member_patients.empty:
        panel = member_patients.merge(patients, on="patient_id", how="inner")
        for column in ("age_band", "sex"):
            if column in panel.columns:
                found[column] = pd.DataFrame(
                    {
                        "microsystem_id": panel["microsystem_id"],
                        "category": panel[column],
                        "weight": panel["share"],
                    }
                )
    return found


def _shares(weights: pd.DataFrame) -> pd.DataFrame:
    """Weights summed per microsystem and category, as shares summing to 1 per microsystem."""
    known = weights.dropna(subset=["microsystem_id", "category"])
    known = known.assign(
        category=known["category"].astype(str), weight=known["weight"].astype(float)
    )
    table = known.pivot_table(
        index="microsystem_id", columns="category", values="weight", aggfunc="sum", fill_value=0.0
    )
    totals = table.sum(axis=1).replace(0, np.nan)
    return table.div(totals, axis=0).fillna(0.0)
