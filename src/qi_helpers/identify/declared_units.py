"""The microsystems found against the units staff declared (``staff.home_unit``).

:func:`compare_to_declared` matches the microsystems to the declared units one to one so that
most staff agree (Hungarian method, Kuhn 1955, :func:`qi_helpers.identify.registry.match_units`)
and scores the agreement: adjusted Rand index (Hubert & Arabie 1985) and normalised mutual
information (Strehl & Ghosh 2002; Vinh, Epps & Bailey 2010), from
:mod:`qi_helpers.identify.partition_scores`, and purity (Manning, Raghavan & Schutze 2008,
Introduction to Information Retrieval, sec. 16.3). It lists the staff whose team differs from
their declared unit, a finding to discuss with the team rather than an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from qi_helpers.data.columns import require_dataframe
from qi_helpers.errors import DataError
from qi_helpers.identify.microsystems import Identification
from qi_helpers.identify.partition_scores import adjusted_rand_index, normalised_mutual_information
from qi_helpers.identify.registry import main_microsystem, match_units

__all__ = ["Comparison", "compare_to_declared"]


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
    roster, pairs = _declared_pairs(identification, staff)
    purity, counts = _purity(pairs)
    unit_of = purity.set_index("microsystem_id")["declared_unit"]
    differences = _differences(identification, pairs, unit_of, roster)
    found, declared = pairs["microsystem_id"], pairs["declared_unit"]
    scores = pd.DataFrame(
        {
            "n_staff": [len(pairs)],
            "adjusted_rand_index": [adjusted_rand_index(found, declared)],
            "normalised_mutual_information": [normalised_mutual_information(found, declared)],
            "purity": [float(counts.max(axis=1).sum() / counts.sum())],
            "agreement": [1 - len(differences) / len(pairs)],
            "n_differ": [len(differences)],
        }
    )
    return Comparison(
        scores=scores,
        purity=purity.reset_index(drop=True),
        differences=differences.reset_index(drop=True),
        by_unit=_by_unit(differences).reset_index(drop=True),
    )


def _declared_pairs(
    identification: Identification, staff: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The roster indexed by ``staff_id``, and each member's main microsystem and declared unit.

    Only staff both in the identification and with a declared unit are paired (``pairs`` is
    indexed by ``staff_id``, columns ``microsystem_id`` and ``declared_unit``).
    """
    require_dataframe(staff, ("staff_id", "home_unit"), "staff")
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
    return roster, pd.DataFrame({"microsystem_id": found, "declared_unit": declared})


def _purity(pairs: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """:attr:`Comparison.purity`, and the staff counts of microsystems by declared units."""
    ms_code, ms_names = pd.factorize(pairs["microsystem_id"], sort=True)
    unit_code, unit_names = pd.factorize(pairs["declared_unit"], sort=True)
    counts = sp.coo_matrix(
        (np.ones(len(pairs)), (ms_code, unit_code)), shape=(len(ms_names), len(unit_names))
    ).toarray()
    matched = match_units(counts)
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
    return purity, counts


def _differences(
    identification: Identification,
    pairs: pd.DataFrame,
    unit_of: pd.Series,
    roster: pd.DataFrame,
) -> pd.DataFrame:
    """:attr:`Comparison.differences`: the staff whose declared unit is not their team's."""
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
    return pd.DataFrame(
        {
            "staff_id": differ.index.astype(str),
            "role": differ.index.map(role).astype("string").fillna("unknown"),
            "declared_unit": differ["declared_unit"].to_numpy(),
            "microsystem_id": differ["microsystem_id"].to_numpy(),
            "share": share.reindex(keys_found).to_numpy(),
            "declared_share": declared_share.reindex(keys_declared).fillna(0.0).to_numpy(),
        }
    ).sort_values(["declared_unit", "microsystem_id", "staff_id"])


def _by_unit(differences: pd.DataFrame) -> pd.DataFrame:
    """:attr:`Comparison.by_unit`: the differences counted, without names."""
    return (
        differences.groupby(["declared_unit", "microsystem_id"])
        .agg(
            n_staff=("staff_id", "size"),
            roles=("role", lambda r: ", ".join(f"{n} {k}" for k, n in r.value_counts().items())),
        )
        .reset_index()
        .sort_values(["n_staff", "declared_unit"], ascending=[False, True])
    )
