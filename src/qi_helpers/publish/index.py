"""The site's index: a dashboard of the organisation-level reports and of every microsystem.

One card per organisation-level workbook, then one row per microsystem with its roles (pilot,
adopter), a Making Data Count variation and assurance badge per measure, the last data period,
the run status and the link to its report. Rendered with the ``qi_report`` template's
``site_index.html.j2``; every value from data is HTML-escaped.
"""

from __future__ import annotations

from typing import Any

import jinja2
import pandas as pd

from qi_helpers import __version__
from qi_helpers.changes.summary import ASSURANCE_BADGES, VARIATION_BADGES
from qi_helpers.privacy.html import content_security_policy, escape
from qi_helpers.privacy.screen import REDACTED
from qi_helpers.project import Project
from qi_helpers.publish.context import SiteContext, site_context
from qi_helpers.publish.digest_panel import digest_panel
from qi_helpers.publish.org_summary import microsystem_tally, organisation_summary
from qi_helpers.publish.pages import Page
from qi_helpers.publish.progress_cell import progress_cells
from qi_helpers.publish.provenance import format_day, format_period
from qi_helpers.publish.run_record import read_run_manifest
from qi_helpers.publish.tables import read_output_table, read_results
from qi_helpers.publish.theme import TEMPLATE, template_text, templates_dir
from qi_helpers.workflow import WORKBOOKS

#: The short names screen readers give each icon in the microsystems table (the legend has the
#: full text): about 500 microsystems with two or three measures each make 3,000 icons, and the
#: index must stay under 1 MB.
BADGE_LABELS: dict[str, str] = {
    "common_cause": "Variation: common cause",
    "improvement_high": "Variation: improvement, higher",
    "improvement_low": "Variation: improvement, lower",
    "concern_high": "Variation: concern, higher",
    "concern_low": "Variation: concern, lower",
    "neutral_high": "Variation: special cause, higher",
    "neutral_low": "Variation: special cause, lower",
    "consistent_pass": "Assurance: consistently meets target",
    "consistent_fail": "Assurance: consistently misses target",
    "inconsistent": "Assurance: may or may not meet target",
}

#: The per-microsystem workbook, whose reports are the rows of the dashboard.
_ROWS_WORKBOOK = "03_analyse_tests"

#: Reports of one microsystem or workbook by status (``"ok"``, ``"failed"``).
_Found = dict[str, Page]


def _badge(kind: str, value: Any) -> dict[str, str]:
    """A variation or assurance badge for the template (an empty one when ``value`` is none)."""
    table = VARIATION_BADGES if kind == "variation" else ASSURANCE_BADGES
    key = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    if key in table:
        css, glyph, _ = table[key]
        return {"css": css, "glyph": glyph, "text": BADGE_LABELS[key], "key": key}
    text = "No variation icon" if kind == "variation" else "No assurance icon (no target)"
    return {"css": "mdc-none", "glyph": "", "text": text, "key": ""}


def _number(value: Any, unit: str = "") -> str:
    """A measure's value, rounded for a dashboard cell, with its unit."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    text = f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}" if abs(v) >= 1 else f"{v:.2g}"
    unit = str(unit or "")
    if unit in ("", "nan", "None"):
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def _measure_rows(results: pd.DataFrame, measures: pd.DataFrame) -> list[dict[str, Any]]:
    """One entry per measure of a microsystem's results: name, verdict, badges, last value."""
    units = {}
    if not measures.empty and {"measure_id", "unit"} <= set(measures.columns):
        units = dict(zip(measures["measure_id"].astype(str), measures["unit"], strict=False))
    rows = []
    for _, r in results.iterrows():
        mid = str(r.get("measure_id", ""))
        rows.append(
            {
                "id": mid,
                "name": str(r.get("name", mid) or mid),
                "verdict": str(r.get("verdict", "") or ""),
                "variation": _badge("variation", r.get("variation_icon")),
                "assurance": _badge("assurance", r.get("assurance_icon")),
                "last_value": _number(r.get("last_value"), units.get(mid, "")),
            }
        )
    return rows


def _roles(project: Project, ctx: SiteContext) -> dict[str, list[str]]:
    """Each microsystem's roles: pilot (workbook 02), spread wave (04), changes adopted."""
    roles: dict[str, list[str]] = {}
    pilots = read_output_table(project.data_dir / "pilots.parquet")
    if {"microsystem_id", "selected"} <= set(pilots.columns):
        for ms in pilots.loc[pilots["selected"].fillna(False).astype(bool), "microsystem_id"]:
            roles.setdefault(str(ms), []).append("Pilot")
    plan = read_output_table(project.data_dir / "spread_plan.parquet")
    if {"microsystem_id", "wave"} <= set(plan.columns):
        for ms, group in plan.groupby(plan["microsystem_id"].astype(str), sort=True):
            waves = sorted({int(w) for w in group["wave"].dropna()})
            if waves:
                label = "Adopter, wave " + ", ".join(str(w) for w in waves)
                roles.setdefault(ms, []).append(label)
    if {"microsystem_id", "change"} <= set(ctx.adoption.columns):
        adopted = ctx.adoption.groupby(ctx.adoption["microsystem_id"].astype(str))["change"]
        for ms, changes in adopted:
            n = changes.nunique()
            roles.setdefault(ms, []).append(f"Adopted {n} change{'s' if n != 1 else ''}")
    return roles


def _role_tags(roles: list[str]) -> str:
    """The roles as filter tags for the dashboard's script (``pilot``, ``adopter``, ``none``)."""
    tags = ["pilot"] if "Pilot" in roles else []
    tags += ["adopter"] if any(r.startswith("Adopt") for r in roles) else []
    return " ".join(tags) or "none"


def _links(found: _Found) -> dict[str, str]:
    """The link to a good report and to the error of a failed one (``""`` when there is none)."""
    good, bad = found.get("ok"), found.get("failed")
    return {"href": good.href if good else "", "error_href": f"{bad.href}#error" if bad else ""}


def _status(found: _Found, is_stale: bool) -> str:
    """``failed``, ``stale``, ``ok`` or ``not run``, in that order of precedence."""
    if found.get("failed"):
        return "failed"
    if is_stale:
        return "stale"
    return "ok" if found.get("ok") else "not run"


def _org_cards(
    by_key: dict[tuple[str, str], _Found], stale: dict[tuple[str, str], str]
) -> list[dict[str, Any]]:
    """One card per organisation-level workbook, in run order."""
    cards = []
    for workbook in (wb for wb in WORKBOOKS.values() if not wb.per_microsystem):
        key = (workbook.name, workbook.name)
        found = by_key.get(key, {})
        cards.append(
            {
                "title": workbook.title,
                "purpose": workbook.purpose,
                **_links(found),
                "status": _status(found, key in stale),
                "why": stale.get(key, ""),
            }
        )
    return cards


def _funnel_card(page: Page) -> dict[str, Any]:
    """The card of the funnel page among the organisation's reports."""
    return {
        "title": page.title,
        "purpose": "Every measure, the microsystems of each kind compared: who stands out.",
        "href": page.href,
        "error_href": "",
        "status": "ok",
        "why": "",
    }


def _microsystem_row(
    project: Project,
    ms_id: str,
    registry: pd.DataFrame,
    found: _Found,
    stale: dict[tuple[str, str], str],
    roles: list[str],
    measures: pd.DataFrame,
) -> tuple[dict[str, Any], pd.Timestamp | None]:
    """A microsystem's row, and the last period of its results (None when it has none)."""
    info = registry.loc[ms_id] if ms_id in registry.index else pd.Series(dtype=object)
    key = (_ROWS_WORKBOOK, ms_id)
    results = read_results(project, ms_id)
    last = None
    if "last_period" in results.columns and results["last_period"].notna().any():
        last = pd.to_datetime(results["last_period"]).max()
    links = _links(found)
    row = {
        "id": ms_id,
        "name": str(info.get("name", "") or ""),
        "kind": str(info.get("kind", "") or "").replace("_", " "),
        "site": str(info.get("site", "") or ""),
        "roles": roles,
        "role_tags": _role_tags(roles),
        "measures": _measure_rows(results, measures),
        "last": format_day(last) if last is not None else "",
        "last_sort": last.strftime("%Y-%m-%d") if last is not None else "",
        "status": _status(found, key in stale),
        "why": stale.get(key, ""),
        "href": links["href"],
        "error_href": links["error_href"],
        "tally": microsystem_tally(results),
    }
    return row, last


def _summary(
    rows: list[dict[str, Any]], cards: list[dict[str, Any]], project: Project
) -> dict[str, int]:
    """The counts above the table: microsystems, pilots, adopters, failed and stale, run tasks."""
    tasks = read_run_manifest(project).get("tasks", [])
    return {
        "microsystems": len(rows),
        "pilots": sum("Pilot" in r["roles"] for r in rows),
        "adopters": sum(any(x.startswith("Adopt") for x in r["roles"]) for r in rows),
        "failed": sum(r["status"] == "failed" for r in rows + cards),
        "stale": sum(r["status"] == "stale" for r in rows + cards),
        "run_tasks": len(tasks),
        "run_failed": sum(t.get("status") != "ok" for t in tasks),
    }


def render_index(
    project: Project,
    pages: list[Page],
    registry: pd.DataFrame,
    *,
    context: SiteContext | None = None,
    stale: dict[tuple[str, str], str] | None = None,
    funnels: Page | None = None,
    downloads: dict[str, list[Any]] | None = None,
) -> str:
    """The site's index: a dashboard of the organisation-level reports and every microsystem.

    When the last ``qi run`` found changes since the run before, a "Changed since" panel comes
    first (:func:`~qi_helpers.publish.digest_panel.digest_panel`), each change linked to its
    report; then the summary of the organisation
    (:func:`~qi_helpers.publish.org_summary.organisation_summary`).
    Every microsystem in the registry (or with a report) gets a row: kind, site, pilot or
    adopter status, its progress score now (and a coach's, if any) with its history as a small
    chart and in words (:mod:`~qi_helpers.publish.progress_cell`), for each measure a Making
    Data Count variation and assurance badge with its
    last value, the last data period, the run status (``ok``, ``failed`` linking to the error,
    ``stale``, ``not run``) and the report link. Sorting and filtering use a small inline script;
    without it the table is a plain table. Every value from data is HTML-escaped. ``funnels``,
    the funnel page (:mod:`~qi_helpers.publish.funnels`), gets a card among the organisation's
    reports. ``downloads`` (``{microsystem_id: [Download, ...]}``,
    :class:`~qi_helpers.publish.report_files.Download`) links each microsystem's slides and
    PDF report card beside its report.
    """
    ctx = context or site_context(project)
    stale = stale or {}
    by_key: dict[tuple[str, str], _Found] = {}
    for page in pages:
        by_key.setdefault((page.workbook, page.name), {})[page.status] = page
    cards = _org_cards(by_key, stale)
    if funnels is not None:
        cards.append(_funnel_card(funnels))
    ids = list(registry.index) if not registry.empty else []
    ids += sorted({p.name for p in pages if p.workbook == _ROWS_WORKBOOK} - set(map(str, ids)))
    roles = _roles(project, ctx)
    progress, progress_note = progress_cells(project, list(map(str, ids)))
    rows, last_periods = [], []
    for ms_id in map(str, ids):
        found = by_key.get((_ROWS_WORKBOOK, ms_id), {})
        row, last = _microsystem_row(
            project, ms_id, registry, found, stale, roles.get(ms_id, []), ctx.measures
        )
        row["downloads"] = [
            {"href": d.href, "short": d.short} for d in (downloads or {}).get(ms_id, [])
        ]
        row["progress"] = progress.get(ms_id)
        rows.append(row)
        if last is not None:
            last_periods.append(last)
    summary = _summary(rows, cards, project)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir() / TEMPLATE)),
        autoescape=True,
        keep_trailing_newline=True,
    )
    css = template_text("report.css") + template_text("dashboard.css") + template_text("digest.css")
    script = template_text("dashboard.js")
    return env.get_template("site_index.html.j2").render(
        organisation=ctx.organisation,
        project_name=str(project.section("project").get("name", "")),
        period=format_period(
            ctx.period_start, max(last_periods) if last_periods else ctx.period_end
        ),
        org=cards,
        rows=rows,
        kinds=sorted({r["kind"] for r in rows if r["kind"]}),
        sites=sorted({r["site"] for r in rows if r["site"]}),
        summary=summary,
        progress_note=progress_note,
        changes=digest_panel(project, rows, cards),
        overview=organisation_summary(project, rows, cards)._repr_html_(),
        css=css,
        script=script,
        csp=content_security_policy(styles=[css], scripts=[script]),
        variation_legend=[(k, *v) for k, v in VARIATION_BADGES.items() if k != "neutral_low"],
        assurance_legend=[(k, *v) for k, v in ASSURANCE_BADGES.items()],
        version=__version__,
        commit=ctx.commit,
        inputs=ctx.hashes,
        generated=ctx.generated,
        redacted_mark=REDACTED,
        escape=escape,
    )
