"""Published output that is safe to share: small cells, identifiers and HTML.

``privacy`` owns the rules that every published table, figure and page follows, because reports
are read outside the team: no count may identify a patient (small-cell suppression, primary and
complementary), no identifier of a patient, an encounter or staff may reach a page, a table or a
figure (identifier screening), no name from data may inject markup or restyle a page (escaping,
an allow-list HTML sanitiser and a Content-Security-Policy), and no name from data may write
outside its output folder. Modules:

- ``small_cells``: small-cell suppression (:data:`SMALL_CELL_THRESHOLD`,
  :func:`small_cell_mask`, :func:`small_group_mask`, :func:`suppress_small_counts`);
- ``screen``: identifier screening (:class:`IdentifierScreen`, :func:`project_screen`,
  :func:`screen_saved`, the screen of the running notebook, :class:`PrivacyError`);
- ``html``: text from data on its way to a page (:func:`escape`, :func:`escape_markdown`,
  :func:`plain_text`, :func:`clean_html`, :func:`content_security_policy`);
- ``names``: file names from data (:func:`safe_filename`, :func:`inside`).
"""

from qi_helpers.errors import PrivacyError
from qi_helpers.privacy.html import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    clean_html,
    content_security_policy,
    escape,
    escape_markdown,
    plain_text,
)
from qi_helpers.privacy.names import MAX_FILENAME, inside, safe_filename
from qi_helpers.privacy.screen import (
    PATIENT_COLUMNS,
    REDACTED,
    SCREENED_TABLES,
    STAFF_COLUMNS,
    IdentifierScreen,
    active_screen,
    identifier_variants,
    project_screen,
    read_screened_tables,
    screen_saved,
    set_active_screen,
)
from qi_helpers.privacy.small_cells import (
    COMPLEMENTARY_LABEL,
    SMALL_CELL_THRESHOLD,
    flag_small_denominators,
    small_cell_label,
    small_cell_mask,
    small_group_mask,
    suppress_small_counts,
)

__all__ = [
    "ALLOWED_ATTRIBUTES",
    "ALLOWED_TAGS",
    "COMPLEMENTARY_LABEL",
    "MAX_FILENAME",
    "PATIENT_COLUMNS",
    "REDACTED",
    "SCREENED_TABLES",
    "SMALL_CELL_THRESHOLD",
    "STAFF_COLUMNS",
    "IdentifierScreen",
    "PrivacyError",
    "active_screen",
    "clean_html",
    "content_security_policy",
    "escape",
    "escape_markdown",
    "flag_small_denominators",
    "identifier_variants",
    "inside",
    "plain_text",
    "project_screen",
    "read_screened_tables",
    "safe_filename",
    "screen_saved",
    "set_active_screen",
    "small_cell_label",
    "small_cell_mask",
    "small_group_mask",
    "suppress_small_counts",
]
