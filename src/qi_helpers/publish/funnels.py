"""The site's funnel page: every measure's microsystems compared, made by publish itself.

Workbook 03 looks at one microsystem over time; the funnel page looks at all the microsystems of
one kind over the latest periods (``funnels.periods`` in ``project.yaml``, 13 by default), one
funnel plot per measure and kind (:func:`qi_helpers.spc.funnel.funnel_table`), with a table of
the microsystems outside the limits. It is made from ``outputs/data/slices/series.parquet``,
the organisation's measure series that ``qi run`` writes once when it prepares the slices
(:func:`qi_helpers.changes.prepare.prepare_slices`), so it never reads 500 slices.

Why a page made by publish rather than a fifth workbook: the page has no decision to teach and
no parameter a coach changes between runs; it is a view of the organisation like the index
dashboard, from one compact table. Made here it adds no notebook, kernel or task to ``qi run``,
keeps the four workbooks of the method as they are, and is reused like any page: its key is the
digest of the series, the registry and the catalogue with the build's shared key
(:func:`qi_helpers.publish.manifest.cached_page`), so a run that changed nothing makes it
again not at all. Like the index it is rendered with autoescape, screened for identifiers
(:func:`qi_helpers.publish.screening.screen_page`), carries a Content-Security-Policy and
loads nothing from another host.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from qi_helpers import __version__
from qi_helpers.chart_display import chart_png
from qi_helpers.errors import ConfigError, PrivacyError
from qi_helpers.io import sha256_bytes, sha256_file, write_text
from qi_helpers.privacy.html import content_security_policy, escape
from qi_helpers.privacy.names import inside
from qi_helpers.privacy.screen import active_screen, set_active_screen
from qi_helpers.project import Project
from qi_helpers.publish.context import SiteContext
from qi_helpers.publish.images import shrink_png
from qi_helpers.publish.manifest import cached_page
from qi_helpers.publish.pages import Page
from qi_helpers.publish.provenance import format_day
from qi_helpers.publish.screening import screen_page
from qi_helpers.publish.theme import TEMPLATE, template_text, templates_dir
from qi_helpers.slices import SERIES, slices_dir

__all__ = ["FUNNEL_PAGE", "funnel_settings", "publish_funnel_page", "render_funnel_page"]

#: The funnel page, at the top of the site beside ``index.html``.
FUNNEL_PAGE = "funnels.html"

#: The page's title (also the index card's).
FUNNEL_TITLE = "Funnel plots: microsystems compared"


def funnel_settings(project: Project) -> dict[str, Any]:
    """``funnels`` of ``project.yaml`` with its defaults: ``periods`` 13, ``overdispersion``
    ``multiplicative``, ``winsor`` 0.1."""
    settings = {"periods": 13, "overdispersion": "multiplicative", "winsor": 0.1}
    settings.update({k: v for k, v in project.section("funnels").items() if v is not None})
    if settings["overdispersion"] in ("none", "", False):
        settings["overdispersion"] = None
    where = project.root / "parameters" / "project.yaml"
    if settings["overdispersion"] not in ("multiplicative", "additive", None):
        raise ConfigError(
            f"{where}: `funnels.overdispersion` must be multiplicative, additive or none, "
            f"found {settings['overdispersion']!r}."
        )
    try:
        settings["periods"] = int(settings["periods"])
        settings["winsor"] = float(settings["winsor"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{where}: `funnels.periods` must be a whole number and `funnels.winsor` a number "
            f"from 0 to below 0.5; found {settings['periods']!r} and {settings['winsor']!r}."
        ) from exc
    return settings


def _png(fig: Any) -> str:
    """A figure as a light base64 PNG (a palette PNG, as the pages' charts), as wide as the text
    column with its text at least the body's (:func:`qi_helpers.chart_display.chart_png`)."""
    return shrink_png(base64.b64encode(chart_png(fig)).decode("ascii"))


def _charts(table: pd.DataFrame, measures: pd.DataFrame, threshold: int) -> list[dict[str, str]]:
    """One chart per measure and kind: its heading, picture and caption (also its alt text)."""
    from qi_helpers.spc.funnel_plots import funnel_caption, plot_funnel

    info = measures.drop_duplicates("measure_id").set_index(measures["measure_id"].astype(str))
    charts = []
    for (measure_id, kind), _ in table.groupby(["measure_id", "kind"], sort=False):
        row = info.loc[measure_id] if measure_id in info.index else pd.Series(dtype=object)
        name = str(row.get("name", measure_id) or measure_id)
        unit = row.get("unit", "")
        unit = "" if unit is None or pd.isna(unit) else str(unit)
        fig = plot_funnel(table, measure_id, kind, name=name, unit=unit, threshold=threshold)
        caption = funnel_caption(table, measure_id, kind, name=name, unit=unit)
        charts.append(
            {
                "id": f"funnel-{measure_id}-{kind}",
                "heading": f"{name} ({str(kind).replace('_', ' ')})",
                "png": _png(fig),
                "caption": caption,
            }
        )
    return charts


def render_funnel_page(
    project: Project, ctx: SiteContext, registry: pd.DataFrame, series: pd.DataFrame
) -> str:
    """The funnel page's HTML (before screening): plots, outliers, how to read them.

    Parameters
    ----------
    project : Project
    ctx : SiteContext
        The build's settings (small-cell threshold, catalogue, provenance).
    registry : DataFrame
        Workbook 01's registry (indexed by ``microsystem_id``, with ``kind``).
    series : DataFrame
        The organisation's measure series (:func:`qi_helpers.changes.prepare.organisation_series`).
    """
    from qi_helpers.spc.funnel import funnel_table
    from qi_helpers.spc.funnel_plots import funnel_outliers

    settings = funnel_settings(project)
    measures = ctx.measures
    table = funnel_table(
        series,
        measures,
        registry.reset_index() if "microsystem_id" not in registry.columns else registry,
        periods=int(settings["periods"]),
        overdispersion=settings["overdispersion"],
        winsor=float(settings["winsor"]),
        threshold=ctx.threshold,
    )
    names = measures.drop_duplicates("measure_id").set_index("measure_id")["name"]
    outliers = funnel_outliers(table, names=names, threshold=ctx.threshold)
    window = ""
    if not table.empty:
        window = (
            f"{format_day(table['first_period'].min())} to {format_day(table['last_period'].max())}"
        )
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir() / TEMPLATE)),
        autoescape=True,
        keep_trailing_newline=True,
    )
    css = template_text("report.css") + template_text("funnels.css")
    return env.get_template("funnels.html.j2").render(
        title=FUNNEL_TITLE,
        organisation=ctx.organisation,
        window=window,
        periods=int(settings["periods"]),
        threshold=ctx.threshold,
        overdispersion=settings["overdispersion"] or "none",
        charts=_charts(table, measures, ctx.threshold),
        outliers=outliers.to_dict("records"),
        outlier_columns=list(outliers.columns),
        css=css,
        csp=content_security_policy(styles=[css]),
        version=__version__,
        commit=ctx.commit,
        generated=ctx.generated,
        escape=escape,
    )


def _key(build: Any, series_path: Path) -> str:
    """What the page's bytes depend on: the series, registry and catalogue, and the build."""
    project = build.project
    registry = project.data_dir / "registry.parquet"
    content = {
        "series": build.digest(series_path),
        "registry": build.digest(registry) if registry.is_file() else "",
        "measures": build.ctx.hashes.get("measures", ""),
        "settings": funnel_settings(project),
        "threshold": build.ctx.threshold,
        "shared": build.shared,
    }
    return sha256_bytes(json.dumps(content, sort_keys=True, default=str).encode("utf-8"))


def publish_funnel_page(build: Any) -> Page | None:
    """Write (or reuse) ``<site>/funnels.html`` and add it to the build's manifest.

    Parameters
    ----------
    build : qi_helpers.publish.site.SiteBuild
        The build under way (its project, site, context, registry, digests and manifest).

    Returns
    -------
    Page or None
        None when there is no organisation series yet (slices never prepared) or no catalogue.

    Raises
    ------
    PrivacyError
        With ``publish.on_identifier: refuse`` when the page would show an identifier.
    """
    series_path = slices_dir(build.project) / SERIES
    if not series_path.is_file() or build.ctx.measures.empty or build.registry.empty:
        return None
    key = _key(build, series_path)
    page = cached_page(build.site, FUNNEL_PAGE, key, build.cache)
    path = inside(build.site, build.site / FUNNEL_PAGE)
    if page is None:
        series = pd.read_parquet(series_path)
        before = active_screen()
        set_active_screen(build.ctx.screen)  # what the figures draw is screened too
        try:
            html = render_funnel_page(build.project, build.ctx, build.registry, series)
        finally:
            set_active_screen(before)
        html, redacted = screen_page(html, build.ctx.screen)
        if redacted and build.ctx.on_identifier == "refuse":
            raise PrivacyError(f"{FUNNEL_PAGE}: the page would show {redacted} identifier(s).")
        write_text(path, html)
        page = Page("", "", "", FUNNEL_PAGE, "ok", redacted, len(html.encode("utf-8")))
    entry = {"key": key, "redacted": page.redacted, "bytes": page.bytes}
    build.made[FUNNEL_PAGE] = {**entry, "sha256": sha256_file(path)}
    page.title = FUNNEL_TITLE
    return page
