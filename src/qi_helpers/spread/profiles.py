"""How alike two teams are, from their 5 Ps profile (workbook 04).

A change spreads first to the teams most like the pilots (the *early adopters* of Rogers,
*Diffusion of Innovations*, 2003). A team is described by three of its 5 Ps as mixes, each a set
of ``<mix>:<category>`` share columns: its professionals (``role:<role>``), its processes
(``activity:<activity>``) and its patients (``patient:age <band>``, ``patient:sex <sex>``).
:func:`spread_profiles` reads them from workbook 01 (:func:`wide_profiles` turns its long table
into these columns) or builds them with :func:`qi_helpers.identify.mix.mix_profiles`;
:func:`similarity` compares every team with the pilots, mix by mix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from qi_helpers.data.columns import require_columns
from qi_helpers.identify.mix import MixStyle, mix_profiles
from qi_helpers.spread.ready import RERUN_ADVICE

#: Readable names of the mixes of a profile (the prefix of a profile column before ``:``).
MIX_NAMES: dict[str, str] = {"role": "roles", "activity": "activities", "patient": "patients"}

#: The mixes of workbook 04, named ``<mix>:<category>``, sorted by name: the patients' age band
#: and sex are the two halves of one patient mix.
SPREAD_MIXES = MixStyle(
    {"role": "role:", "activity": "activity:", "age_band": "patient:age ", "sex": "patient:sex "},
    sort_columns=True,
)

#: Workbook 01's long profile dimensions used for similarity, and the mix each belongs to.
LONG_DIMENSIONS: dict[str, tuple[str, str]] = {
    "role": ("role", ""),
    "activity": ("activity", ""),
    "age_band": ("patient", "age "),
    "sex": ("patient", "sex "),
}


def spread_profiles(project: Any) -> pd.DataFrame:
    """The profiles to judge similarity by: workbook 01's, else built from the input tables.

    Reads ``outputs/data/profiles.parquet`` when it exists and has ``<mix>:<category>`` share
    columns; otherwise builds the mixes from the input tables (``staff``, ``activities``,
    ``patients``) and workbook 01's membership with
    :func:`qi_helpers.identify.mix.mix_profiles` in the style :data:`SPREAD_MIXES`.

    Returns
    -------
    DataFrame
        ``microsystem_id`` and the ``<mix>:<category>`` share columns: ``role:<role>``,
        ``activity:<activity>``, ``patient:age <band>`` and ``patient:sex <sex>``. Within each
        mix the shares of a microsystem sum to 1 (the patient mix's age and sex parts each sum
        to 1/2); 0 where absent. Contains no identifiers of people, only shares.
    """
    path = project.data_dir / "profiles.parquet"
    if path.is_file():
        shared = pd.read_parquet(path)
        if {"microsystem_id", "dimension", "category", "share"} <= set(shared.columns):
            shared = wide_profiles(shared)
        mix_columns = [c for c in shared.columns if ":" in str(c)]
        if "microsystem_id" in shared.columns and mix_columns:
            return shared[["microsystem_id", *mix_columns]]
    tables = project.load_tables("staff", "activities", "patients")
    return mix_profiles(
        tables["staff"],
        project.membership(),
        tables["activities"],
        tables["patients"],
        style=SPREAD_MIXES,
    )


def wide_profiles(mix: pd.DataFrame) -> pd.DataFrame:
    """Workbook 01's long mix table as the wide ``<mix>:<category>`` shares of :func:`similarity`.

    Parameters
    ----------
    mix : DataFrame
        ``microsystem_id, dimension, category, share`` (``outputs/data/profiles.parquet``).

    Returns
    -------
    DataFrame
        ``microsystem_id`` and ``role:<role>``, ``activity:<activity>``, ``patient:age <band>``,
        ``patient:sex <sex>`` share columns (0 where absent); other dimensions (conditions, FTE,
        days of the week) are left out, as :func:`qi_helpers.identify.mix.mix_profiles` leaves
        them out.
    """
    keep = mix[mix["dimension"].isin(list(LONG_DIMENSIONS))]
    prefix = keep["dimension"].map(lambda d: f"{LONG_DIMENSIONS[d][0]}:{LONG_DIMENSIONS[d][1]}")
    keep = keep.assign(column=prefix + keep["category"].astype(str))
    table = keep.pivot_table(
        index="microsystem_id", columns="column", values="share", aggfunc="sum", fill_value=0.0
    )
    table.columns.name = None
    return table.reset_index()


def similarity(profiles: pd.DataFrame, reference: list[str]) -> pd.DataFrame:
    """How alike each microsystem's mixes are to the reference microsystems' (the pilots').

    Parameters
    ----------
    profiles : DataFrame
        ``microsystem_id`` plus share columns named ``<mix>:<category>`` (:func:`spread_profiles`);
        other columns are ignored.
    reference : list of str
        The microsystems to compare with; their mixes are averaged.

    Returns
    -------
    DataFrame
        ``microsystem_id``, one ``similarity_<mix>`` column per mix (e.g. ``similarity_role``,
        ``similarity_activity``, ``similarity_patient``) and ``similarity``, their mean; all
        between 0 (nothing in common) and 1 (the same mix). NaN when a reference is not in the
        profiles.

    Notes
    -----
    For one mix, with shares ``a`` (the microsystem) and ``b`` (the reference mean), each
    normalised to sum to 1, the similarity is ``1 - TV(a, b)``, where the total variation distance
    ``TV = sum(|a_i - b_i|) / 2`` is the share of one mix that would have to change to match the
    other (Levin, Peres & Wilmer, Markov Chains and Mixing Times, 2009, ch. 4). It equals
    ``sum(min(a_i, b_i))``, the overlap of the two mixes.
    """
    require_columns(profiles, ["microsystem_id"], "profiles", advice=RERUN_ADVICE)
    table = profiles.set_index("microsystem_id")
    mix_of = {c: str(c).split(":", 1)[0] for c in table.columns if ":" in str(c)}
    out = pd.DataFrame(index=table.index)
    refs = [r for r in reference if r in table.index]
    names = sorted(set(mix_of.values()), key=lambda m: (list(MIX_NAMES).index(m)
                                                        if m in MIX_NAMES else 99, m))  # fmt: skip
    for mix in names:
        cols = [c for c, m in mix_of.items() if m == mix]
        shares = table[cols].astype(float).clip(lower=0)
        shares = shares.div(shares.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0)
        if refs:
            ref = shares.loc[refs].mean(axis=0)
            out[f"similarity_{mix}"] = 1 - 0.5 * (shares - ref).abs().sum(axis=1)
        else:
            out[f"similarity_{mix}"] = np.nan
    sims = [c for c in out.columns]
    out["similarity"] = out[sims].mean(axis=1) if sims else np.nan
    return out.round(4).reset_index()
