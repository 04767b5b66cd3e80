"""What workbook 01 may publish: its patient numbers under the small-cell rule.

The registry and the 5 Ps profiles hold, for each microsystem, patient numbers that add up
(:data:`PATIENT_TOTALS`): the panel (patients for whom it is the main microsystem) is part of the
patients it saw, and splits into age bands, sexes and conditions. Before a report shows them they
are judged together by the one small-cell rule of the privacy subpackage,
:func:`qi_helpers.privacy.small_cells.small_group_mask`: a number from 1 to ``threshold - 1`` is
hidden, and so is any number from which a hidden one could be worked out by subtraction
(complementary suppression). :func:`patient_numbers_mask` and :func:`published_registry` apply it
to the registry, :func:`patient_cells` and :func:`published_summary` to the profiles (the cards of
:mod:`qi_helpers.identify.cards` and :mod:`qi_helpers.identify.figures` use them too). The tables
under ``outputs/data/`` keep the counts: only what a report shows changes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qi_helpers.errors import DataError
from qi_helpers.identify.profiles import Profiles, _purpose_sentence, _top
from qi_helpers.privacy.small_cells import (
    COMPLEMENTARY_LABEL,
    SMALL_CELL_THRESHOLD,
    small_cell_label,
    small_group_mask,
)

__all__ = [
    "PATIENT_TOTALS",
    "PUBLISHED_CONDITIONS",
    "hidden_labels",
    "patient_cells",
    "patient_numbers_mask",
    "published_registry",
    "published_summary",
]

#: How the patient numbers a microsystem publishes add up (for :func:`small_group_mask`): the
#: panel (patients for whom it is the main microsystem) is part of the patients it saw
#: (``seen``, the registry's ``n_patients``), and the panel splits into age bands, sexes and
#: conditions (:mod:`qi_helpers.identify.profiles`).
PATIENT_TOTALS = {"panel": "seen", "age_band": "panel", "sex": "panel", "condition": "panel"}

#: How many leading conditions the published profiles name (the summary three, a card five).
PUBLISHED_CONDITIONS = 5


def hidden_labels(threshold: int) -> dict[str, str]:
    """What a hidden number shows, by the code of :func:`small_group_mask`.

    Parameters
    ----------
    threshold : int
        ``publish.small_cell_threshold``.

    Returns
    -------
    dict
        ``{"primary": "<threshold", "complementary": "*"}``.
    """
    return {"primary": small_cell_label(threshold), "complementary": COMPLEMENTARY_LABEL}


def patient_numbers_mask(
    numbers: pd.DataFrame, threshold: int = SMALL_CELL_THRESHOLD, *, seen: str = "n_patients"
) -> pd.DataFrame:
    """Which of each microsystem's patients seen and panel may not be published.

    The panel is part of the patients seen, so the two are a total and a part
    (:data:`PATIENT_TOTALS`): by :func:`qi_helpers.privacy.small_cells.small_group_mask`, a
    number from 1 to ``threshold - 1`` is hidden, and where patients seen minus the panel
    (patients seen whose main microsystem is another) is from 1 to ``threshold - 1``, patients
    seen is hidden too (the panel, the total of the profile's age bands, is kept).

    Parameters
    ----------
    numbers : DataFrame
        One row per microsystem with ``seen`` and ``panel_size`` (the registry, or
        :attr:`qi_helpers.identify.profiles.Profiles.summary` with ``seen="patients_seen"``).
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


def published_registry(
    registry: pd.DataFrame, threshold: int = SMALL_CELL_THRESHOLD
) -> pd.DataFrame:
    """The registry as it may be published: small patient numbers hidden.

    Parameters
    ----------
    registry : DataFrame
        :attr:`qi_helpers.identify.microsystems.Identification.registry` (or
        ``outputs/data/registry.parquet``).
    threshold : int
        The project's ``publish.small_cell_threshold`` (11 by default, as in the CMS cell-size
        policy).

    Returns
    -------
    DataFrame
        A copy in which, by the rule of :func:`qi_helpers.privacy.small_cells.small_group_mask`,
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
    labels = hidden_labels(threshold)
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


def patient_cells(profiles: Profiles, threshold: int = SMALL_CELL_THRESHOLD) -> pd.DataFrame:
    """Every patient number the profiles publish, and whether the small-cell rule hides it.

    The numbers of a microsystem add up (:data:`PATIENT_TOTALS`): its panel is part of the
    patients it saw, and splits into age bands, sexes and conditions. They are judged together by
    :func:`qi_helpers.privacy.small_cells.small_group_mask`, so that neither a small group nor a
    small remainder (patients seen minus the panel, an ``unknown`` age band a card leaves out,
    the panel minus its conditions) can be worked out by subtraction; the registry's patients
    seen and panel are hidden the same way (:func:`patient_numbers_mask`).

    Parameters
    ----------
    profiles : Profiles
        The result of :func:`qi_helpers.identify.profiles.profile`.
    threshold : int
        ``publish.small_cell_threshold``.

    Returns
    -------
    DataFrame
        ``microsystem_id, dimension`` (``seen``, ``panel``, ``age_band``, ``sex``,
        ``condition``), ``category``, ``n``, ``share``, ``mix_row`` (the row of
        :attr:`qi_helpers.identify.profiles.Profiles.mix`, -1 for ``seen`` and ``panel``),
        ``published`` (shown in a table or card: not the ``unknown`` age band, nor conditions
        after the first :data:`PUBLISHED_CONDITIONS`), ``code`` (``"primary"``,
        ``"complementary"`` or ``""``) and ``label`` (``"<threshold"``, ``"*"`` or ``""``).
    """
    summary = profiles.summary
    ids = summary["microsystem_id"].to_numpy(dtype=object)
    head = pd.DataFrame(
        {
            "microsystem_id": np.concatenate([ids, ids]),
            "dimension": ["seen"] * len(ids) + ["panel"] * len(ids),
            "category": "all",
            "n": np.concatenate(
                [
                    summary["patients_seen"].to_numpy(dtype=float),
                    summary["panel_size"].to_numpy(dtype=float),
                ]
            ),
            "share": np.nan,
            "mix_row": -1,
        }
    )
    mix = profiles.mix[profiles.mix["dimension"].isin(["age_band", "sex", "condition"])]
    mix = mix[["microsystem_id", "dimension", "category", "n", "share"]].assign(mix_row=mix.index)
    cells = pd.concat([head, mix], ignore_index=True)
    rank = (
        cells[cells["dimension"] == "condition"]
        .sort_values(["microsystem_id", "n", "category"], ascending=[True, False, True])
        .groupby("microsystem_id")
        .cumcount()
    )
    cells["published"] = ~(cells["dimension"].eq("age_band") & cells["category"].eq("unknown"))
    cells.loc[rank.index, "published"] = rank < PUBLISHED_CONDITIONS
    mask = small_group_mask(
        cells,
        ["n"],
        threshold,
        dimension="dimension",
        totals=PATIENT_TOTALS,
        within=["microsystem_id"],
        published="published",
    )
    cells["code"] = mask["n"]
    labels = hidden_labels(threshold)
    cells["label"] = cells["code"].map(labels).fillna("")
    return cells


def published_summary(profiles: Profiles, threshold: int = SMALL_CELL_THRESHOLD) -> pd.DataFrame:
    """The 5 Ps summary as it may be published: small patient numbers hidden.

    Parameters
    ----------
    profiles : Profiles
        The result of :func:`qi_helpers.identify.profiles.profile`.
    threshold : int
        The project's ``publish.small_cell_threshold`` (11 by default, as in the CMS cell-size
        policy): patient numbers from 1 to ``threshold - 1`` are not published, nor any number
        from which one can be worked out.

    Returns
    -------
    DataFrame
        :attr:`qi_helpers.identify.profiles.Profiles.summary` with the rule of
        :func:`patient_cells`: ``panel_size`` and ``patients_seen`` shown as ``"<threshold"``
        (small) or ``"*"`` (``patients_seen`` minus the panel is small) where hidden (the
        columns become text); ``share_female`` and ``share_65_plus`` left empty when any count
        of their dimension (sex, age band, ``unknown`` included) is hidden, since a share times
        the panel gives a count; hidden leading conditions shown as ``"(<threshold)"`` or
        ``"(*)"`` instead of their prevalence; and the ``purpose`` sentence rebuilt from these
        values. The numbers in ``outputs/data/`` are not changed: only what a report shows.
    """
    if int(threshold) < 1:
        raise DataError(f"published_summary: threshold must be 1 or more, found {threshold!r}.")
    out = profiles.summary.copy()
    cells = patient_cells(profiles, threshold)
    ids = out["microsystem_id"]
    hidden = cells[cells["code"] != ""]
    for column, dimension in (("share_female", "sex"), ("share_65_plus", "age_band")):
        touched = set(hidden.loc[hidden["dimension"] == dimension, "microsystem_id"])
        out[column] = out[column].mask(ids.isin(touched).to_numpy())
    for column, dimension in (("panel_size", "panel"), ("patients_seen", "seen")):
        label = cells[cells["dimension"] == dimension].set_index("microsystem_id")["label"]
        label = ids.map(label).fillna("")
        out[column] = out[column].astype(object).where(label.eq(""), label)
    conditions = cells[cells["dimension"] == "condition"].set_index("mix_row")["label"]
    out["leading_conditions"] = ids.map(_top(profiles.mix, "condition", hidden=conditions))
    out["leading_conditions"] = out["leading_conditions"].fillna("")
    out["purpose"] = [_purpose_sentence(row["microsystem_id"], row) for _, row in out.iterrows()]
    return out
