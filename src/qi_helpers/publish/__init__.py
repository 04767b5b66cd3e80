"""Publishing: executed notebooks as a self-contained, offline, privacy-safe HTML site.

This subpackage owns ``qi publish`` (and the last step of ``qi run``): every executed notebook
under ``outputs/notebooks/`` becomes one sanitised page with no identifier of a patient, an
encounter or (by default) a staff member, the index is a dashboard of every microsystem, the
site's manifest ``site.json`` lists every file it wrote, and ``site.zip`` carries the site to a
shared drive. The same inputs give the same bytes. The nbconvert template lives in
``publish/templates/qi_report``.

Modules
-------
- ``site``: :func:`publish_site` (one :func:`~qi_helpers.publish.site.publish_page` per
  notebook, then the index and the manifest), :func:`build_site`, :class:`SiteReport`.
- ``pages``: :func:`export_report`, one notebook to one page; :class:`Page`.
- ``screening``: the privacy pass over a notebook (:func:`prepare_notebook`) and its page.
- ``images``: charts re-encoded as palette PNGs.
- ``theme``: the template's folder and files, :func:`report_css`.
- ``index``: :func:`render_index`, the dashboard.
- ``digest_panel``: the index's "Changed since" panel, from ``outputs/digest.json``.
- ``org_summary``: the index's summary of the organisation (verdicts and icons counted, pilots,
  spread waves), :func:`organisation_summary`.
- ``context``: what every page of a build shares (settings, identifier screen, provenance).
- ``provenance``: git commit, :func:`input_hashes`, the data period.
- ``run_record``: what ``qi run`` recorded in ``outputs/run.json``.
- ``stale``: whether a report is out of date.
- ``tables``: the tables under ``outputs/data/`` the site shows.
- ``manifest``: ``site.json`` (:func:`read_site_manifest`) and the reuse of unchanged pages.
- ``folder``: which folder may receive a site; removing an earlier build's files.
- ``archive``: :func:`zip_site`.
- ``report_files``: each workbook 03 page's slides and PDF report card, screened, copied beside
  the page and linked (:func:`~qi_helpers.publish.report_files.publish_report_files`).
"""

from qi_helpers.publish.archive import zip_site
from qi_helpers.publish.index import render_index
from qi_helpers.publish.manifest import read_site_manifest
from qi_helpers.publish.org_summary import organisation_summary
from qi_helpers.publish.pages import Page, export_report
from qi_helpers.publish.provenance import input_hashes
from qi_helpers.publish.screening import prepare_notebook
from qi_helpers.publish.site import SiteReport, build_site, publish_site
from qi_helpers.publish.theme import report_css

__all__ = [
    "Page",
    "SiteReport",
    "build_site",
    "export_report",
    "input_hashes",
    "organisation_summary",
    "prepare_notebook",
    "publish_site",
    "read_site_manifest",
    "render_index",
    "report_css",
    "zip_site",
]
