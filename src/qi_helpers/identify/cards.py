"""The 5 Ps profile card of a microsystem as light, accessible HTML (workbook 01's reports).

A card drawn as a picture weighs about 60 KB; a report of a health system with a hundred
microsystems would take megabytes. As HTML a card weighs a few KB, whatever the number of
microsystems, and reads better: every number is text (searchable, copyable, read aloud by a
screen reader), the mixes are small tables with CSS bars, and the weekly run chart is a small SVG
(:mod:`qi_helpers.identify.card_chart`).

Every value that comes from data is HTML-escaped (:func:`qi_helpers.privacy.html.escape`). Cards
hold counts, shares and mixes only: no patient or staff identifier. Patient numbers follow the
publishing policy on small cells (``publish.small_cell_threshold``, 11 by default, as in the CMS
cell-size policy), the rule of :func:`qi_helpers.privacy.small_cells.small_group_mask` applied to
all the microsystem's patient numbers at once
(:func:`qi_helpers.identify.published.patient_cells`): a panel, an age band or a condition of 1
to 10 patients shows as ``<11`` rather than as a count or a share of the panel (from which the
count would follow), and further numbers are hidden (``*``) where the panel minus the others
would give a small one away (an ``unknown`` age band the card leaves out counts as a hidden
band). The shares female and aged 65 or over are left out when any count of their dimension is
hidden.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pandas as pd

from qi_helpers.errors import DataError
from qi_helpers.identify.card_chart import number_text, run_chart_figure
from qi_helpers.identify.profiles import DAYS, Profiles
from qi_helpers.identify.published import (
    PUBLISHED_CONDITIONS,
    hidden_labels,
    patient_cells,
    published_summary,
)
from qi_helpers.privacy.html import escape
from qi_helpers.privacy.small_cells import SMALL_CELL_THRESHOLD, small_group_mask

__all__ = [
    "CARD_CSS",
    "bar_class",
    "card_facts",
    "card_html",
    "cards_html",
    "duration_text",
    "profile_row",
    "small_cells",
]

#: The one style block of the cards: class names start with ``qi-card`` and every rule is
#: scoped to a card, so it looks the same in JupyterLab and in the published page.
CARD_CSS = """
.qi-cards{display:grid;gap:1rem;margin:.5rem 0}
.qi-card{border:1px solid #d9e2ec;border-radius:6px;padding:.6rem .9rem;max-width:68rem;
break-inside:avoid}
.qi-card h4.qi-card-title{margin:0 0 .3rem;font-size:1rem;line-height:1.3}
.qi-card ul.qi-card-facts{margin:0 0 .5rem;padding-left:1.1rem;font-size:.85rem}
.qi-card ul.qi-card-facts li{max-width:none;margin:.1rem 0}
.qi-card-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(11rem,1fr));
gap:.5rem 1rem}
.qi-card figure{margin:0}
.qi-card figcaption{font-weight:600;font-size:.8rem;margin-bottom:.1rem}
.qi-card .qi-card-wide{grid-column:1/-1}
.qi-card p.qi-card-note{font-size:.8rem;margin:.1rem 0;max-width:none}
.qi-card table.qi-card-mix{width:100%;margin:0;font-size:.78rem;border-collapse:collapse;
table-layout:auto;color:inherit}
.qi-card .qi-card-mix th,.qi-card .qi-card-mix td{padding:.05rem .3rem;border:0;
text-align:left;vertical-align:middle;font-weight:400;background:none;line-height:1.35}
.qi-card .qi-card-mix thead th{font-size:.72rem;opacity:.8}
.qi-card .qi-card-mix tbody tr:nth-child(n){background:none}
.qi-card .qi-card-mix td:nth-child(2){text-align:right;white-space:nowrap}
.qi-card .qi-card-mix td:last-child{width:40%}
.qi-card-mix td span{display:block;height:.6rem;background:#0072B2}
.qi-card-fte td span{background:#009E73}
.qi-card-ages td span{background:#E69F00}
.qi-card-conditions td span{background:#D55E00}
.qi-card-days td span{background:#56B4E9}
.qi-card img.qi-card-run{display:block;width:100%;max-width:44rem;height:auto}
.qi-card details{font-size:.78rem}
"""
# Bar lengths are classes in steps of 5%, not inline styles: a report page admits no style
# from notebook output (qi_helpers.privacy.html.clean_html), only the CSS of its template.
CARD_CSS += "".join(f".qi-card-mix span.qi-w{w}{{width:{w}%}}" for w in range(0, 101, 5)) + "\n"


def bar_class(width: float) -> str:
    """The class of a bar ``width`` percent long, to the nearest 5% (``qi-w40``)."""
    step = 0 if pd.isna(width) else int(round(min(max(float(width), 0.0), 100.0) / 5.0)) * 5
    return f"qi-w{step}"


def _percent(share: float) -> str:
    return "?" if pd.isna(share) else f"{100 * share:.0f}%"


def _count_text(count: object) -> str:
    """A published count: ``1,707``, or the small-cell label it already is (``<11``)."""
    return count if isinstance(count, str) else f"{int(count):,}"


def small_cells(counts: pd.Series, threshold: int, *, partition: bool) -> pd.Series:
    """What each count of a one-way table shows under the small-cell policy.

    Parameters
    ----------
    counts : Series
        Patient counts, one per category.
    threshold : int
        Counts from 1 to ``threshold - 1`` are hidden (``"<threshold"``).
    partition : bool
        True when the categories split a total that is known (the total is taken as known):
        further counts are then hidden (``"*"``) until no hidden count, alone or summed with
        the other hidden ones, can be worked out as the total minus the rest
        (:func:`qi_helpers.privacy.small_cells.small_group_mask`). False hides the small counts
        only. Cards judge all of a microsystem's patient numbers together instead
        (:func:`qi_helpers.identify.published.patient_cells`).

    Returns
    -------
    Series
        ``""`` where the count may be shown, else the label shown instead.
    """
    frame = pd.DataFrame({"n": counts.to_numpy(), "dimension": "all"})
    dimension = "dimension" if partition else None
    codes = small_group_mask(frame, ["n"], threshold, dimension=dimension)["n"].to_numpy()
    labels = hidden_labels(threshold)
    return pd.Series([labels.get(c, "") for c in codes], index=counts.index, dtype=object)


def duration_text(minutes: float) -> str:
    """A time between two steps in words: ``45 min``, ``5 h`` or ``3 days`` (``?`` if unknown).

    Parameters
    ----------
    minutes : float
        Minutes, possibly missing.

    Returns
    -------
    str
    """
    if pd.isna(minutes):
        return "?"
    if minutes < 120:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.0f} h" if minutes < 72 * 60 else f"{minutes / 1440:.0f} days"


def profile_row(profiles: Profiles, microsystem_id: str) -> pd.Series:
    """One microsystem's row of :attr:`Profiles.summary`.

    Parameters
    ----------
    profiles : qi_helpers.identify.profiles.Profiles
    microsystem_id : str

    Returns
    -------
    Series
        Indexed by the summary's columns (``microsystem_id`` as the series name).

    Raises
    ------
    DataError
        No profile for ``microsystem_id``.
    """
    summary = profiles.summary.set_index("microsystem_id")
    if microsystem_id not in summary.index:
        raise DataError(
            f"no profile for microsystem {microsystem_id!r}; known: "
            f"{', '.join(summary.index[:10])}{' ...' if len(summary) > 10 else ''}."
        )
    return summary.loc[microsystem_id]


def _own(profiles: Profiles, microsystem_id: str) -> Profiles:
    """The profiles of one microsystem (the small-cell rule judges each on its own)."""
    return dataclasses.replace(
        profiles,
        summary=profiles.summary[profiles.summary["microsystem_id"] == microsystem_id],
        mix=profiles.mix[profiles.mix["microsystem_id"] == microsystem_id],
    )


def _published_row(profiles: Profiles, microsystem_id: str, threshold: int) -> pd.Series:
    """One microsystem's row of :func:`qi_helpers.identify.published.published_summary`."""
    return published_summary(_own(profiles, microsystem_id), threshold).iloc[0]


def card_facts(
    profiles: Profiles, microsystem_id: str, *, threshold: int = SMALL_CELL_THRESHOLD
) -> list[tuple[str, str]]:
    """The card's summary in words, one plain-text sentence per P (not escaped).

    Parameters
    ----------
    profiles : qi_helpers.identify.profiles.Profiles
    microsystem_id : str
    threshold : int
        Patient numbers from 1 to ``threshold - 1`` are not shown (see the module notes).

    Returns
    -------
    list of (str, str)
        ``(P, sentence)`` for Purpose, Patients, Professionals, Processes and Patterns, from
        :attr:`Profiles.summary` and the three most frequent steps of
        :attr:`Profiles.processes`.
    """
    raw = profile_row(profiles, microsystem_id)
    return _facts(profiles, raw, _published_row(profiles, microsystem_id, threshold))


def _facts(profiles: Profiles, raw: pd.Series, row: pd.Series) -> list[tuple[str, str]]:
    """:func:`card_facts` from a microsystem's summary row and its published row."""
    microsystem_id = raw.name
    patients = f"a panel of {_count_text(row['panel_size'])} patients"
    hidden = []
    for column, words in (("share_female", "female"), ("share_65_plus", "aged 65 or over")):
        if pd.notna(row[column]):
            patients += f", {_percent(row[column])} {words}"
        elif pd.notna(raw[column]):
            hidden.append(words)
    if hidden:
        patients += f" (share {' and '.join(hidden)} not shown: small numbers)"
    professionals = (
        f"{row['n_core_staff']} core staff, {row['n_floating_staff']} floating; "
        f"{row['fte']:.1f} FTE" + (f" ({row['role_mix']})" if row["role_mix"] else "")
    )
    processes = profiles.processes
    steps = processes[processes["microsystem_id"] == microsystem_id].head(3)
    flow = "; ".join(
        f"{s.from_activity} -> {s.to_activity} ({100 * s.share:.0f}% of steps, median "
        f"{duration_text(s.median_minutes)} apart)"
        for s in steps.itertuples()
    )
    patterns = "no weekly data"
    if pd.notna(row["weekly_median"]):
        patterns = (
            f"median {number_text(row['weekly_median'])} activities a week (from "
            f"{number_text(row['weekly_min'])} to {number_text(row['weekly_max'])}); busiest day "
            f"{row['busiest_day']}, {_percent(row['weekend_share'])} at weekends"
        )
    return [
        ("Purpose", str(row["purpose"])),  # rebuilt without small numbers
        ("Patients", patients + "."),
        ("Professionals", professionals + "."),
        ("Processes", "Steps within an encounter: " + (flow or "none recorded") + "."),
        ("Patterns", patterns[0].upper() + patterns[1:] + "."),
    ]


# ---- the card --------------------------------------------------------------------------------


def _mix_row(category: object, amount: float, largest: float, value: str, hidden: str = "") -> str:
    """A table row: the category, its share (or FTE) as text, and a bar scaled to the largest.

    ``hidden`` is the small-cell label shown instead of the value (then no bar is drawn).
    """
    if hidden:
        text, width = hidden, 0.0
    else:
        text = _percent(amount) if value == "share" else f"{amount:.1f}"
        width = 0.0 if pd.isna(amount) else 100 * amount / largest
    return (
        f'<tr><th scope="row">{escape(category)}</th><td>{escape(text)}</td>'
        f'<td><span class="{bar_class(width)}"></span></td></tr>'
    )


def _mix_table(
    mix: pd.DataFrame,
    caption: str,
    heading: str,
    css: str,
    *,
    top: int | None = 6,
    value: str = "share",
    order: Sequence[str] | None = None,
    labels: pd.Series | None = None,
) -> str:
    """One mix as a figure: a caption and a table of category, value and a CSS bar.

    ``labels`` (patient mixes: category -> ``"<11"``, ``"*"`` or ``""``, from
    :func:`qi_helpers.identify.published.patient_cells`) is shown instead of a hidden value.
    """
    if order is not None:
        part = mix.set_index("category").reindex(order).fillna({"n": 0.0, "share": 0.0})
        part = part.reset_index()
    else:
        part = mix.sort_values(["n", "category"], ascending=[False, True])
        part = part.head(top) if top else part
    if part.empty:
        body = '<p class="qi-card-note">No data.</p>'
    else:
        hidden = pd.Series("", index=part.index, dtype=object)
        if labels is not None:
            hidden = part["category"].map(labels).fillna("").astype(object)
        largest = float(part.loc[hidden == "", value].max()) if (hidden == "").any() else 1.0
        largest = largest or 1.0
        rows = "".join(
            _mix_row(r.category, r.share if value == "share" else r.n, largest, value, label)
            for r, label in zip(part.itertuples(), hidden, strict=True)
        )
        body = (
            f'<table class="qi-card-mix {css}"><thead><tr><th scope="col">{escape(heading[0])}'
            f'</th><th scope="col" colspan="2">{escape(heading[1])}</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )
    return f"<figure><figcaption>{escape(caption)}</figcaption>{body}</figure>"


def card_html(
    profiles: Profiles, microsystem_id: str, *, threshold: int = SMALL_CELL_THRESHOLD
) -> str:
    """One microsystem's 5 Ps card as an HTML fragment (without the style block).

    Parameters
    ----------
    profiles : qi_helpers.identify.profiles.Profiles
        The result of :func:`qi_helpers.identify.profiles.profile`.
    microsystem_id : str
        Which microsystem.
    threshold : int
        Patient numbers from 1 to ``threshold - 1`` show as ``"<threshold"`` (the project's
        ``publish.small_cell_threshold``; see the module notes).

    Returns
    -------
    str
        A ``<div class="qi-card">``: a heading (id and name), the summary in words
        (:func:`card_facts`), then tables with CSS bars for the activity mix, FTE by role, age
        bands and leading conditions (% of the panel) and the day-of-week mix, and the weekly
        run chart (:func:`qi_helpers.identify.card_chart.run_chart_figure`) with its description
        and values as text.

    Raises
    ------
    DataError
        No profile for ``microsystem_id``.
    """
    row = profile_row(profiles, microsystem_id)
    name = row.get("name")
    title = f"{microsystem_id}: {name if isinstance(name, str) and name else row['kind']}"
    published = _published_row(profiles, microsystem_id, threshold)
    facts = "".join(
        f"<li><b>{p}</b>: {escape(text)}</li>" for p, text in _facts(profiles, row, published)
    )
    mix = profiles.mix[profiles.mix["microsystem_id"] == microsystem_id]
    dimension = mix["dimension"]
    ages = mix[(dimension == "age_band") & (mix["category"] != "unknown")]
    panel = published["panel_size"]
    cells = patient_cells(_own(profiles, microsystem_id), threshold)
    labels = {d: part.set_index("category")["label"] for d, part in cells.groupby("dimension")}
    panels = [
        _mix_table(
            mix[dimension == "activity"],
            "Purpose: main activities",
            ("activity", "% of activities"),
            "qi-card-activities",
        ),
        _mix_table(
            mix[dimension == "role_fte"],
            f"Professionals: FTE by role ({row['fte']:.1f} FTE)",
            ("role", "FTE"),
            "qi-card-fte",
            value="n",
        ),
        _mix_table(
            ages,
            f"Patients: age bands (panel of {_count_text(panel)})",
            ("age band", "% of panel"),
            "qi-card-ages",
            order=sorted(ages["category"]),
            labels=labels.get("age_band"),
        ),
        _mix_table(
            mix[dimension == "condition"],
            "Patients: leading conditions",
            ("condition", "% of panel"),
            "qi-card-conditions",
            top=PUBLISHED_CONDITIONS,
            labels=labels.get("condition"),
        ),
        _mix_table(
            mix[dimension == "day_of_week"],
            "Patterns: day of the week",
            ("day", "% of activities"),
            "qi-card-days",
            order=DAYS,
        ),
        run_chart_figure(profiles.weekly[profiles.weekly["facet1"] == microsystem_id]),
    ]
    return (
        f'<div class="qi-card" role="group" aria-label="{escape(title)}">'
        f'<h4 class="qi-card-title">{escape(title)}</h4>'
        f'<ul class="qi-card-facts">{facts}</ul>'
        f'<div class="qi-card-grid">{"".join(panels)}</div></div>'
    )


def cards_html(
    profiles: Profiles,
    microsystem_ids: Sequence[str] | None = None,
    *,
    threshold: int = SMALL_CELL_THRESHOLD,
) -> str:
    """The 5 Ps cards of several microsystems, with their one style block.

    Parameters
    ----------
    profiles : qi_helpers.identify.profiles.Profiles
    microsystem_ids : sequence of str, optional
        Which cards, in this order (default: every microsystem, by id).
    threshold : int
        Patient numbers from 1 to ``threshold - 1`` are not shown (:func:`card_html`).

    Returns
    -------
    str
        ``<style>`` (:data:`CARD_CSS`) followed by a ``<div class="qi-cards">`` of
        :func:`card_html` cards; a few KB per card.
    """
    ids = list(microsystem_ids or sorted(profiles.summary["microsystem_id"]))
    cards = "".join(card_html(profiles, ms, threshold=threshold) for ms in ids)
    return f'<style>{CARD_CSS.strip()}</style><div class="qi-cards">{cards}</div>'
