"""How much each candidate looks like the other microsystems of its kind (workbook 02).

A pilot that resembles its peers makes it likelier that what works there works where the change
spreads. :func:`candidate_profiles` finds the profiles to compare (workbook 01's 5 Ps mixes, else
:func:`qi_helpers.identify.mix.mix_profiles` of the input tables) and :func:`representativeness`
compares every microsystem with the mean of its peers, block by block (role mix, activity mix,
patients).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from qi_helpers.errors import DataError
from qi_helpers.identify.mix import mix_profiles

#: Plain names of the profile blocks, for the explanation of the least alike block.
PROFILE_BLOCKS: dict[str, str] = {
    "role": "role mix",
    "activity": "activity mix",
    "age": "patients' ages",
    "sex": "patients' sex",
    "age_band": "patients' ages",
    "condition": "patients' conditions",
}

#: Dimensions of a long 5 Ps profile table (``qi_helpers.identify.profiles``) used here.
_MIX_DIMENSIONS = ("role", "activity", "age_band", "sex", "condition")


def candidate_profiles(project: Any, membership: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The profiles used for representativeness: workbook 01's, else the mix profiles.

    Parameters
    ----------
    project : qi_helpers.project.Project
        The project (its ``outputs/data`` and its input tables).
    membership : dict of DataFrame
        Workbook 01's membership tables.

    Returns
    -------
    DataFrame
        ``outputs/data/profiles.parquet`` when workbook 01 wrote one (its numeric columns are
        the profile), otherwise :func:`qi_helpers.identify.mix.mix_profiles` of the ``staff``,
        ``activities`` and ``patients`` tables.
    """
    path = project.data_dir / "profiles.parquet"
    if path.is_file():
        return pd.read_parquet(path)
    tables = project.load_tables("staff", "activities", "patients", required=False)
    if tables["staff"] is None:
        raise DataError("pilots: representativeness needs the `staff` table or profiles.parquet.")
    return mix_profiles(tables["staff"], membership, tables["activities"], tables["patients"])


def representativeness(profiles: pd.DataFrame, registry: pd.DataFrame) -> pd.DataFrame:
    """How much each microsystem looks like the other microsystems of its kind.

    Parameters
    ----------
    profiles : DataFrame
        ``microsystem_id`` and numeric profile columns (e.g. from
        :func:`qi_helpers.identify.mix.mix_profiles`, or the 5 Ps profiles of workbook 01).
        Columns named ``"<block>: <category>"`` are grouped into blocks (role mix, activity mix,
        ...); other numeric columns form one block. A long table ``microsystem_id, dimension,
        category, share`` (``outputs/data/profiles.parquet``) is pivoted first, using its role,
        activity, age band, sex and condition mixes.
    registry : DataFrame
        ``microsystem_id, kind``.

    Returns
    -------
    DataFrame
        One row per microsystem of the registry with a profile: ``microsystem_id, kind,
        peers`` (others of its kind with a profile), ``similarity`` (0-1; NaN without peers),
        one ``similarity_<block>`` column per block, and ``least_alike`` (the block where it
        differs most from its peers).

    Notes
    -----
    Within each block the profile is scaled to shares; the similarity of a block is the cosine
    similarity between the microsystem's shares and the mean shares of its peers (1 = the same
    mix); ``similarity`` is the mean over blocks. A pilot that resembles its peers makes it
    likelier that what works there works where the change spreads (Rogers, *Diffusion of
    Innovations*, 2003, on trialability and compatibility; IHI, *A Framework for Spread*, 2006).
    """
    numeric = _numeric_profiles(profiles)
    blocks: dict[str, list[str]] = {}
    for column in numeric.columns:
        block = str(column).split(":", 1)[0].strip() if ":" in str(column) else "profile"
        blocks.setdefault(block, []).append(column)
    kinds = registry.drop_duplicates("microsystem_id").set_index("microsystem_id")["kind"]
    ids = [m for m in kinds.index if m in numeric.index]
    rows = []
    for ms in sorted(ids):
        peers = [p for p in ids if p != ms and kinds[p] == kinds[ms]]
        row = {"microsystem_id": ms, "kind": kinds[ms], "peers": len(peers)}
        for block, cols in blocks.items():
            row[f"similarity_{block}"] = _block_similarity(numeric, ms, peers, cols)
        rows.append(row)
    out = pd.DataFrame(rows)
    sim_cols = [f"similarity_{b}" for b in blocks]
    if out.empty:
        return pd.DataFrame(
            columns=["microsystem_id", "kind", "peers", "similarity", *sim_cols, "least_alike"]
        )
    out["similarity"] = out[sim_cols].mean(axis=1, skipna=True)
    least = out[sim_cols].fillna(np.inf).idxmin(axis=1).str.removeprefix("similarity_")
    out["least_alike"] = least.where(out["similarity"].notna())
    return out[["microsystem_id", "kind", "peers", "similarity", *sim_cols, "least_alike"]]


def _numeric_profiles(profiles: pd.DataFrame) -> pd.DataFrame:
    """The numeric profile columns by microsystem, non-negative (a long table pivoted first)."""
    if "microsystem_id" not in profiles.columns:
        raise DataError("representativeness: the profile table needs a microsystem_id column.")
    if {"dimension", "category", "share"} <= set(profiles.columns):  # long 5 Ps mixes
        long = profiles[profiles["dimension"].isin(_MIX_DIMENSIONS)]
        profiles = long.pivot_table(
            index="microsystem_id",
            columns=long["dimension"].astype(str) + ": " + long["category"].astype(str),
            values="share",
            aggfunc="sum",
            fill_value=0.0,
        ).reset_index()
    table = profiles.drop_duplicates("microsystem_id").set_index("microsystem_id")
    numeric = table.select_dtypes("number").astype(float).fillna(0.0).clip(lower=0)
    if numeric.shape[1] == 0:
        raise DataError("representativeness: the profile table has no numeric columns.")
    return numeric


def _block_similarity(numeric: pd.DataFrame, ms: str, peers: list[str], cols: list[str]) -> float:
    """Cosine similarity of one block's shares to the mean shares of the peers (NaN if none)."""
    own = numeric.loc[ms, cols].to_numpy()
    if not peers or own.sum() <= 0:
        return np.nan
    ref = numeric.loc[peers, cols].to_numpy()
    totals = ref.sum(axis=1, keepdims=True)
    ref = np.where(totals > 0, ref / np.where(totals > 0, totals, 1), 0).mean(axis=0)
    own = own / own.sum()
    denom = np.linalg.norm(own) * np.linalg.norm(ref)
    return float(own @ ref / denom) if denom > 0 else np.nan
