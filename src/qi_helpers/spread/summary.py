"""Summary first: one card per change being spread at the top of workbook 04's report.

Workbook 04 decides what to spread where and when, and follows whether adopters hold the gain.
Its summary answers that first, one card per change: the evidence (where it improved which
measure: the pilots' verdicts), the waves (how many adopters in each, from when), the adopters'
sustain verdicts counted (holding, gain lost, no signal yet, worsened, too little data) and who
needs attention first (a gain worsened or lost, then no signal long after adoption). A change
that worsened a measure where it was tested gets a card too, "held back", with that evidence.

:func:`spread_summary` and :func:`wave_summary` compute the cards' content as tidy tables;
:func:`spread_cards` shows them as HTML cards, with the markup every summary shares
(:func:`qi_helpers.readable_tables.summary_card`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from qi_helpers.data.columns import require_columns
from qi_helpers.privacy.screen import active_screen
from qi_helpers.readable_tables import status_badge, summary_card, summary_region
from qi_helpers.spread.ready import RERUN_ADVICE, held_back, successful_changes
from qi_helpers.spread.tracking import SUSTAIN_VERDICTS
from qi_helpers.table_formats import column_format, format_value

__all__ = [
    "SPREAD_SUMMARY_COLUMNS",
    "SUSTAIN_BADGES",
    "WAVE_SUMMARY_COLUMNS",
    "SpreadCards",
    "spread_cards",
    "spread_summary",
    "wave_summary",
]

#: A sustain verdict on a card: its column in :func:`spread_summary`, its words, its style.
SUSTAIN_BADGES: dict[str, tuple[str, str, str]] = {
    "worsened": ("worsened", "worsened", "qi-status-failed"),
    "lost": ("lost", "gain lost", "qi-status-failed"),
    "no signal yet": ("no_signal_yet", "no signal yet", "qi-status-stale"),
    "improved and holding": ("holding", "holding", "qi-status-ok"),
    "too little data": ("too_little_data", "too little data", "qi-status-none"),
}

#: The columns of :func:`spread_summary`.
SPREAD_SUMMARY_COLUMNS = [
    "change",
    "status",
    "evidence",
    "adopters",
    "waves",
    "first_start",
    "adopted",
    *[SUSTAIN_BADGES[v][0] for v in SUSTAIN_VERDICTS],
    "attention",
]

#: The columns of :func:`wave_summary`.
WAVE_SUMMARY_COLUMNS = [
    "change",
    "wave",
    "adopter_category",
    "adopters",
    "wave_start",
    "wave_end",
    "support",
]

#: Periods after adoption after which "no signal yet" asks for a visit (about three months).
LONG_WITHOUT_SIGNAL = 13

#: Adopters named under "attention first"; the others are counted.
NAMED = 3

_DATE = column_format("start")


def _day(value: object) -> str:
    """A date as a page shows it ("5 Jan 2026"); ``""`` when missing."""
    return format_value(value, _DATE)


def wave_summary(spread_plan: pd.DataFrame) -> pd.DataFrame:
    """How many adopters each change's waves hold, and when each wave starts and ends.

    Parameters
    ----------
    spread_plan : pandas.DataFrame
        :func:`qi_helpers.spread.waves.plan`'s table (``change, microsystem_id, wave``,
        ``adopter_category``, ``wave_start``, ``wave_end``).

    Returns
    -------
    pandas.DataFrame
        ``change, wave, adopter_category, adopters`` (rows of the plan in the wave),
        ``wave_start, wave_end`` and ``support`` (the wave's adopters that need support first,
        with their gaps: "RIV-PC3: organisational support 1.1 of 3, ..."; ``""`` when none or
        when the plan has no ``support``, :func:`qi_helpers.spread.support.support_needed`);
        one row per change and wave, sorted by change and wave.
    """
    if spread_plan.empty:
        return pd.DataFrame(columns=WAVE_SUMMARY_COLUMNS)
    require_columns(
        spread_plan, ["change", "microsystem_id", "wave"], "spread plan", advice=RERUN_ADVICE
    )
    plan = spread_plan.assign(wave=spread_plan["wave"].astype(int))
    for column in ("adopter_category", "wave_start", "wave_end"):
        if column not in plan:
            plan[column] = pd.NA
    needs = plan["support"].fillna("") if "support" in plan else pd.Series("", index=plan.index)
    plan["needs"] = [
        f"{ms}: {text.split(': needs support')[0]}" if text else ""
        for ms, text in zip(plan["microsystem_id"].astype(str), needs, strict=True)
    ]
    waves = plan.groupby(["change", "wave"], sort=True).agg(
        adopter_category=("adopter_category", "first"),
        adopters=("microsystem_id", "size"),
        wave_start=("wave_start", "min"),
        wave_end=("wave_end", "max"),
        support=("needs", lambda s: "; ".join(t for t in s if t)),
    )
    return waves.reset_index()[WAVE_SUMMARY_COLUMNS]


def _evidence(rows: pd.DataFrame, verdict: str) -> str:
    """Where a change gave a verdict, by measure: "HbA1c tested improved in NOR-PC1"."""
    rows = rows[rows["verdict"] == verdict]
    parts = []
    for name, group in rows.groupby(rows["name"].fillna(rows["measure_id"]), sort=True):
        where = ", ".join(sorted(set(group["microsystem_id"].astype(str))))
        parts.append(f"{name} {verdict} in {where}")
    return "; ".join(parts)


def _attention(verdicts: pd.DataFrame) -> str:
    """Who needs attention first: worsened, then gain lost, then no signal long after adoption."""
    order = {"worsened": 0, "lost": 1, "no signal yet": 2}
    late = (verdicts["verdict"] != "no signal yet") | (
        verdicts["n_after"].fillna(0) >= LONG_WITHOUT_SIGNAL
    )
    flagged = verdicts[verdicts["verdict"].isin(list(order)) & late]
    flagged = flagged.assign(_order=flagged["verdict"].map(order), _after=-flagged["n_after"])
    flagged = flagged.sort_values(["_order", "_after", "microsystem_id"], kind="stable")
    flagged = flagged.drop_duplicates("microsystem_id")
    named = []
    for row in flagged.head(NAMED).itertuples():
        what = SUSTAIN_BADGES[row.verdict][1]
        if row.verdict == "no signal yet":
            what += f" after {int(row.n_after)} periods"
        named.append(f"{row.microsystem_id} ({what}, {row.name})")
    more = len(flagged) - len(named)
    return "; ".join(named) + (f"; and {more} more" if more > 0 else "")


def _sustain_counts(verdicts: pd.DataFrame) -> dict[str, int]:
    counts = verdicts["verdict"].value_counts()
    return {SUSTAIN_BADGES[v][0]: int(counts.get(v, 0)) for v in SUSTAIN_VERDICTS}


def spread_summary(
    results: pd.DataFrame, spread_plan: pd.DataFrame, sustain_verdicts: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per change ready to spread or held back: what its summary card shows.

    Parameters
    ----------
    results : pandas.DataFrame
        Every workbook 03 verdict (``microsystem_id, measure_id, name, change, verdict,
        reason``).
    spread_plan : pandas.DataFrame
        :func:`qi_helpers.spread.waves.plan`'s table.
    sustain_verdicts : pandas.DataFrame, optional
        :func:`qi_helpers.spread.tracking.sustain`'s ``verdicts`` (``microsystem_id, change,
        name, n_after, verdict``); None: nobody adopted yet.

    Returns
    -------
    pandas.DataFrame
        ``change``; ``status`` ("ready to spread" or "held back", when it worsened a measure
        where it was tested); ``evidence`` (the pilots' verdicts in words, e.g. "HbA1c tested
        improved in NOR-PC1"); ``adopters`` and ``waves`` (planned, from the plan);
        ``first_start`` (the first wave's start); ``adopted`` (adopters judged so far: rows of
        the sustain verdicts); one count per sustain verdict (``holding``, ``lost``,
        ``no_signal_yet``, ``worsened``, ``too_little_data``); ``attention`` (who needs
        attention first, in words: worsened, then gain lost, then no signal yet after
        :data:`LONG_WITHOUT_SIGNAL` periods or more; ``""`` when nobody). Ready changes come
        first, each group sorted by change.
    """
    require_columns(
        results,
        ["microsystem_id", "measure_id", "name", "change", "verdict", "reason"],
        "results",
        advice=RERUN_ADVICE,
    )
    sustained = sustain_verdicts if sustain_verdicts is not None else pd.DataFrame()
    if not sustained.empty:
        require_columns(
            sustained,
            ["microsystem_id", "change", "name", "n_after", "verdict"],
            "sustain verdicts",
            advice="Build them with qi_helpers.spread.sustain().",
        )
    else:
        sustained = pd.DataFrame(columns=["microsystem_id", "change", "name", "n_after", "verdict"])
    waves = wave_summary(spread_plan)
    tested = results[results["change"].notna()]
    rows = []
    ready = list(successful_changes(results)["change"])
    held = sorted(set(held_back(results)["change"]))
    for change, status in [(c, "ready to spread") for c in ready] + [
        (c, "held back") for c in held
    ]:
        own = tested[tested["change"] == change]
        evidence = _evidence(own, "improved")
        if status == "held back":
            evidence = "; ".join(x for x in (evidence, _evidence(own, "worsened")) if x)
        planned = waves[waves["change"] == change]
        judged = sustained[sustained["change"] == change]
        rows.append(
            {
                "change": str(change),
                "status": status,
                "evidence": evidence,
                "adopters": int(planned["adopters"].sum()),
                "waves": len(planned),
                "first_start": planned["wave_start"].min() if len(planned) else pd.NaT,
                "adopted": len(judged),
                **_sustain_counts(judged),
                "attention": _attention(judged) if len(judged) else "",
            }
        )
    return pd.DataFrame(rows, columns=SPREAD_SUMMARY_COLUMNS)


def _wave_list(waves: pd.DataFrame) -> str:
    items = []
    for w in waves.itertuples():
        category = f" ({w.adopter_category})" if isinstance(w.adopter_category, str) else ""
        teams = "team" if w.adopters == 1 else "teams"
        when = f", from {_day(w.wave_start)}" if _day(w.wave_start) else ""
        support = (
            f"; support first with {w.support}" if isinstance(w.support, str) and w.support else ""
        )
        items.append(
            f'<li class="qi-wave">Wave {int(w.wave)}{html.escape(category)}: '
            f"<strong>{int(w.adopters)}</strong> {teams}{html.escape(when + support)}</li>"
        )
    return f'<ul class="qi-summary-list">{"".join(items)}</ul>'


def _sustain_list(row: Mapping[str, object]) -> str:
    items = []
    for verdict in SUSTAIN_VERDICTS:
        column, words, css = SUSTAIN_BADGES[verdict]
        if int(row[column]):
            items.append(f"<li>{status_badge(words, css)} <strong>{int(row[column])}</strong></li>")
    return f'<ul class="qi-summary-counts">{"".join(items)}</ul>'


def _card(row: Mapping[str, object], waves: pd.DataFrame) -> str:
    e = html.escape
    ready = row["status"] == "ready to spread"
    badges = status_badge(str(row["status"]), "qi-status-ok" if ready else "qi-status-failed")
    body = [f'<p class="qi-summary-effect">Evidence: {e(str(row["evidence"]))}.</p>']
    if ready and len(waves):
        n = int(row["adopters"])
        body.append(
            f'<p class="qi-summary-latest">{n} adopter{"s" if n != 1 else ""} planned in '
            f"{int(row['waves'])} wave{'s' if int(row['waves']) != 1 else ''}:</p>"
            + _wave_list(waves)
        )
    elif ready:
        body.append('<p class="qi-summary-latest">No other team of its kind to spread it to.</p>')
    else:
        body.append(
            '<p class="qi-summary-latest">Not spread: study the cost with the pilot team, '
            "adapt the change and test again.</p>"
        )
    if int(row["adopted"]):
        body.append('<p class="qi-summary-latest">Adopters so far, does the gain hold?</p>')
        body.append(_sustain_list(row))
    elif ready:
        body.append('<p class="qi-summary-latest">No adopter in the adoption log yet.</p>')
    if row["attention"]:
        body.append(
            f'<p class="qi-summary-effect">Attention first: {e(str(row["attention"]))}.</p>'
        )
    return summary_card(str(row["change"]), badges, body)


@dataclass
class SpreadCards:
    """The summary cards of workbook 04: HTML in a notebook and on its report page.

    Attributes
    ----------
    table : pandas.DataFrame
        :func:`spread_summary`'s table, one row per change.
    waves : pandas.DataFrame
        :func:`wave_summary`'s table, one row per change and wave.
    """

    table: pd.DataFrame
    waves: pd.DataFrame

    def _repr_html_(self) -> str:
        cards = [
            _card(r, self.waves[self.waves["change"] == r["change"]])
            for r in self.table.to_dict("records")
        ]
        return summary_region(
            cards,
            "Summary: one card per change to spread",
            "No change to spread yet: no tested change improved a measure without harm.",
        )


def spread_cards(
    results: pd.DataFrame, spread_plan: pd.DataFrame, sustain_verdicts: pd.DataFrame | None = None
) -> SpreadCards:
    """One card per change: its evidence, its waves, whether adopters hold the gain, who first.

    The tables are screened for identifiers first (the active screen, as every displayed table
    is), so the cards show no identifier in JupyterLab either.

    Parameters
    ----------
    results, spread_plan, sustain_verdicts
        As :func:`spread_summary`.

    Returns
    -------
    SpreadCards
        Shown as HTML cards when it is a cell's value; ``.table`` holds
        :func:`spread_summary`, ``.waves`` :func:`wave_summary`.
    """
    screen = active_screen()
    if screen is not None:
        results, _ = screen.redact_frame(results)
        spread_plan, _ = screen.redact_frame(spread_plan)
        if sustain_verdicts is not None:
            sustain_verdicts, _ = screen.redact_frame(sustain_verdicts)
    table = spread_summary(results, spread_plan, sustain_verdicts)
    return SpreadCards(table, wave_summary(spread_plan))
