"""Summary first on the index: the organisation at a glance, after the "Changed since" panel.

Four cards answer what a leader asks first: how many microsystems there are and how many have
tested a change, with the verdicts of their measures counted (each measure's latest change); the
Making Data Count icons of the latest point of every measure, counted; the pilots, each linked
to its report, with a link to workbook 02; and the spread: for each change, how many adopters
each wave holds and when it starts, with a link to workbook 04.

It stays light at any size: every figure is a count, computed from what the index has already
read (each microsystem's results, tallied once by :func:`microsystem_tally` while its row is
built) and from the two small tables ``pilots.parquet`` and ``spread_plan.parquet``. The cards
use the markup every summary shares (:func:`qi_helpers.readable_tables.summary_card`).
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from qi_helpers.changes.summary import ASSURANCE_BADGES, VARIATION_BADGES, VERDICT_BADGES
from qi_helpers.changes.verdicts import VERDICTS
from qi_helpers.project import Project
from qi_helpers.publish.provenance import format_day
from qi_helpers.publish.tables import read_output_table
from qi_helpers.readable_tables import icon_badge, status_badge, summary_card, summary_region
from qi_helpers.spread.summary import wave_summary
from qi_helpers.workflow import WORKBOOKS

#: The columns of :attr:`OrganisationSummary.counts`.
COUNT_COLUMNS = ["group", "key", "label", "count"]

#: What a measure without an icon is counted as.
NO_ICON = "none"

#: The words beside each counted icon (the icon's full meaning is in its title and the legend).
ICON_WORDS: dict[str, str] = {
    "common_cause": "common cause",
    "improvement_high": "improvement, higher",
    "improvement_low": "improvement, lower",
    "concern_high": "concern, higher",
    "concern_low": "concern, lower",
    "neutral_high": "special cause, higher",
    "neutral_low": "special cause, lower",
    "consistent_pass": "meets the target",
    "consistent_fail": "misses the target",
    "inconsistent": "may or may not meet it",
}


def _key(value: Any) -> str:
    """An icon or verdict as a key (``""`` when missing)."""
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def microsystem_tally(results: pd.DataFrame) -> dict[str, Any]:
    """What the index's summary counts of one microsystem's results (workbook 03's table).

    Parameters
    ----------
    results : pandas.DataFrame
        The microsystem's ``outputs/data/results/<id>.parquet`` (one row per measure and
        change, each measure's changes in order); empty when it has none.

    Returns
    -------
    dict
        ``tested`` (bool: a change was tested on some measure) and, for each measure, from its
        latest row: ``verdicts``, ``variation`` and ``assurance`` (lists of keys, ``""`` for a
        missing icon).
    """
    if results.empty or "measure_id" not in results.columns:
        return {"tested": False, "verdicts": [], "variation": [], "assurance": []}
    latest = results.drop_duplicates("measure_id", keep="last")

    def keys(column: str) -> list[str]:
        if column not in latest.columns:
            return [""] * len(latest)
        return [_key(v) for v in latest[column]]

    tested = "change" in results.columns and bool(results["change"].notna().any())
    return {
        "tested": tested,
        "verdicts": keys("verdict"),
        "variation": keys("variation_icon"),
        "assurance": keys("assurance_icon"),
    }


@dataclass
class OrganisationSummary:
    """The index's summary of the organisation: tidy tables and their HTML cards.

    Attributes
    ----------
    counts : pandas.DataFrame
        ``group`` (``microsystems``, ``verdict``, ``variation``, ``assurance``), ``key``,
        ``label`` (in words) and ``count``. The ``microsystems`` group has ``all`` (rows of the
        index), ``tested`` (with a tested change) and ``measures`` (measures with results).
        Verdicts and icons are those of each measure's latest change, every verdict of
        :data:`~qi_helpers.changes.verdicts.VERDICTS` and every icon listed (``none``: no
        icon), zeros included.
    pilots : pandas.DataFrame
        ``pick, microsystem_id, name, href`` (its report, ``""`` when none), in pick order.
    waves : pandas.DataFrame
        :func:`qi_helpers.spread.summary.wave_summary` of the spread plan.
    links : dict
        ``pilots`` and ``spread``: the pages of workbooks 02 and 04 (``""`` when not
        published).
    """

    counts: pd.DataFrame
    pilots: pd.DataFrame
    waves: pd.DataFrame
    links: dict[str, str] = field(default_factory=dict)

    def count(self, group: str, key: str) -> int:
        """One count of :attr:`counts` (0 when it is not there)."""
        found = self.counts[(self.counts["group"] == group) & (self.counts["key"] == key)]
        return int(found["count"].iloc[0]) if len(found) else 0

    def _repr_html_(self) -> str:
        cards = [_microsystems_card(self), _icons_card(self), _pilots_card(self)]
        cards.append(_spread_card(self))
        return summary_region(cards, "Summary of the organisation", "Nothing to summarise yet.")


def _counts(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    tallies = [r.get("tally") or microsystem_tally(pd.DataFrame()) for r in rows]
    found = {g: Counter(k for t in tallies for k in t[g]) for g in ("verdicts", "variation")}
    found["assurance"] = Counter(k for t in tallies for k in t["assurance"])
    records = [
        ("microsystems", "all", "microsystems", len(rows)),
        ("microsystems", "tested", "with a tested change", sum(t["tested"] for t in tallies)),
        ("microsystems", "measures", "measures", sum(len(t["verdicts"]) for t in tallies)),
    ]
    records += [("verdict", v, v, found["verdicts"].get(v, 0)) for v in VERDICTS]
    for group, table in (("variation", VARIATION_BADGES), ("assurance", ASSURANCE_BADGES)):
        counted = found[group]
        records += [(group, k, table[k][2], counted.get(k, 0)) for k in table]
        other = sum(n for k, n in counted.items() if k not in table)
        records.append((group, NO_ICON, f"no {group} icon", other))
    return pd.DataFrame(records, columns=COUNT_COLUMNS)


def _pilots(project: Project, rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    table = read_output_table(project.data_dir / "pilots.parquet")
    columns = ["pick", "microsystem_id", "name", "href"]
    if not {"microsystem_id", "selected"} <= set(table.columns):
        return pd.DataFrame(columns=columns)
    chosen = table[table["selected"].fillna(False).astype(bool)]
    if "pick" in chosen.columns:
        chosen = chosen.sort_values("pick", kind="stable")
    by_id = {str(r["id"]): r for r in rows}
    out = []
    for n, ms in enumerate(chosen["microsystem_id"].astype(str), start=1):
        row = by_id.get(ms, {})
        out.append((n, ms, str(row.get("name") or ""), str(row.get("href") or "")))
    return pd.DataFrame(out, columns=columns)


def organisation_summary(
    project: Project, rows: Sequence[Mapping[str, Any]], cards: Sequence[Mapping[str, Any]]
) -> OrganisationSummary:
    """The organisation at a glance, for the top of the index.

    Parameters
    ----------
    project : Project
    rows : sequence of dict
        The index's microsystem rows (``id``, ``name``, ``href``, and ``tally``:
        :func:`microsystem_tally` of its results).
    cards : sequence of dict
        The index's organisation-level cards, in :data:`~qi_helpers.workflow.WORKBOOKS` order
        (``href``).

    Returns
    -------
    OrganisationSummary
    """
    org = [wb.code for wb in WORKBOOKS.values() if not wb.per_microsystem]
    by_code = dict(zip(org, cards, strict=False))
    links = {
        "pilots": str(by_code.get("02", {}).get("href") or ""),
        "spread": str(by_code.get("04", {}).get("href") or ""),
    }
    plan = read_output_table(project.data_dir / "spread_plan.parquet")
    if not {"change", "microsystem_id", "wave"} <= set(plan.columns):
        plan = pd.DataFrame()  # no plan yet, or not one workbook 04 wrote
    waves = wave_summary(plan)
    return OrganisationSummary(_counts(rows), _pilots(project, rows), waves, links)


# --- the cards --------------------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _link_line(href: str, text: str) -> list[str]:
    """A paragraph with one link (none when there is no page to link)."""
    if not href:
        return []
    return [
        f'<p class="qi-summary-latest"><a href="{html.escape(href)}">{html.escape(text)}</a></p>'
    ]


def _count_item(badge: str, count: int, ident: str) -> str:
    return f'<li id="{html.escape(ident)}">{badge} <strong>{count:,}</strong></li>'


def _slug(key: str) -> str:
    return key.replace(" ", "-").replace("_", "-")


def _microsystems_card(s: OrganisationSummary) -> str:
    n, tested = s.count("microsystems", "all"), s.count("microsystems", "tested")
    measures = s.count("microsystems", "measures")
    items = [
        _count_item(
            status_badge(v, VERDICT_BADGES.get(v, "qi-status-none")), c, f"org-verdict-{_slug(v)}"
        )
        for v, c in zip(*_group(s, "verdict"), strict=True)
        if c or v in ("improved", "worsened", "no signal yet")
    ]
    body = [
        f'<p class="qi-summary-latest"><strong id="org-tested">{tested:,}</strong> with a tested '
        f'change; <strong id="org-measures">{measures:,}</strong> measures, each by the verdict '
        "of its latest change:</p>",
        f'<ul class="qi-summary-counts">{"".join(items)}</ul>',
    ]
    badges = status_badge(_plural(n, "microsystem"), "qi-status-none")
    return summary_card("Microsystems", badges, body, href="#microsystems")


def _group(s: OrganisationSummary, group: str) -> tuple[list[str], list[int]]:
    rows = s.counts[s.counts["group"] == group]
    return list(rows["key"]), [int(c) for c in rows["count"]]


def _icons_card(s: OrganisationSummary) -> str:
    body = []
    for group, table in (("variation", VARIATION_BADGES), ("assurance", ASSURANCE_BADGES)):
        items = []
        for key, count in zip(*_group(s, group), strict=True):
            if not count:
                continue
            css, glyph, text = table.get(key, ("mdc-none", "", f"No {group} icon"))
            words = f'<span aria-hidden="true">{ICON_WORDS.get(key, "no icon")}</span>'
            badge = icon_badge(css, glyph, text) + words
            items.append(_count_item(badge, count, f"org-{group}-{_slug(key)}"))
        body.append(
            f'<p class="qi-summary-latest">{group.capitalize()}, latest point:</p>'
            f'<ul class="qi-summary-counts">{"".join(items) or "<li>none yet</li>"}</ul>'
        )
    badges = status_badge("Making Data Count", "qi-status-none")
    return summary_card("Icons across measures", badges, body, href="#legend")


def _pilots_card(s: OrganisationSummary) -> str:
    e = html.escape
    items = []
    for p in s.pilots.itertuples():
        label = e(f"{p.name} ({p.microsystem_id})" if p.name else str(p.microsystem_id))
        items.append(
            f'<li><a href="{e(p.href)}">{label}</a></li>' if p.href else f"<li>{label}</li>"
        )
    n = len(items)
    body = (
        [f'<ul class="qi-summary-list">{"".join(items)}</ul>']
        if items
        else ['<p class="qi-summary-latest">No pilot selected yet.</p>']
    )
    body += _link_line(s.links.get("pilots", ""), "Why these pilots: workbook 02")
    badges = status_badge(f"{n} chosen", "qi-status-ok" if n else "qi-status-none")
    return summary_card("Pilots", badges, body, href=s.links.get("pilots", ""))


def _spread_card(s: OrganisationSummary) -> str:
    e = html.escape
    items = []
    for change, group in s.waves.groupby("change", sort=True):
        waves = "; ".join(
            f"wave {int(w.wave)}: {_plural(int(w.adopters), 'team')}"
            + (f" from {format_day(w.wave_start)}" if pd.notna(w.wave_start) else "")
            for w in group.itertuples()
        )
        items.append(f"<li><strong>{e(str(change))}</strong>: {e(waves)}</li>")
    body = (
        [f'<ul class="qi-summary-list">{"".join(items)}</ul>']
        if items
        else ['<p class="qi-summary-latest">No change ready to spread yet.</p>']
    )
    body += _link_line(s.links.get("spread", ""), "The plan, and whether gains hold: workbook 04")
    n = s.waves["change"].nunique() if len(s.waves) else 0
    badges = status_badge(
        f"{_plural(n, 'change')} spreading", "qi-status-ok" if n else "qi-status-none"
    )
    return summary_card("Spread", badges, body, href=s.links.get("spread", ""))
