"""Text from data on its way to a page: escaped, one line, and HTML sanitised.

Every name that comes from data enters HTML through :func:`escape` and Markdown through
:func:`escape_markdown`; all HTML a notebook outputs goes through :func:`clean_html` before it
becomes part of a report, and the page's :func:`content_security_policy` lets nothing load and
only the template's own code run.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Sequence

import nh3
import numpy as np

# Control characters and line breaks: a name from data is one line of plain text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# Every ASCII punctuation character that means something to Markdown (CommonMark lets any of
# them be escaped with a backslash); `<`, `>` and `&` become entities instead.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$=:^'\"])")


def plain_text(value: object) -> str:
    """One line of text from any value: control characters and line breaks become spaces."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return " ".join(_CONTROL.sub(" ", str(value)).split())


def escape(text: object) -> str:
    """HTML-escape any value for inclusion in a page (quotes included)."""
    return html.escape("" if text is None else str(text), quote=True)


def escape_markdown(value: object) -> str:
    """Text from data, made safe to put inside Markdown: it shows as itself, nothing more.

    The one function through which names from input tables (measures, changes, groups) enter
    Markdown that a workbook displays. The value becomes one line (:func:`plain_text`), every
    Markdown punctuation character is backslash-escaped (no emphasis, link, heading, table or
    maths: ``$`` pairs show as ``$``), and ``<``, ``>`` and ``&`` become HTML entities, so a tag
    written in the data shows as text and never becomes markup, in JupyterLab or in a report.

    Examples
    --------
    >>> print(escape_markdown('<img src=x onerror="alert(1)"> *$x$*'))
    &lt;img src\\=x onerror\\=\\"alert\\(1\\)\\"&gt; \\*\\$x\\$\\*
    """
    return html.escape(_MARKDOWN_SPECIAL.sub(r"\\\1", plain_text(value)), quote=False)


# --- sanitising the HTML of notebook output -----------------------------------------------------

#: Elements a report page may carry from notebook output. No ``style``, ``script``, ``iframe``,
#: ``object``, ``svg``, form or ``link`` element: the page's look comes only from its template.
ALLOWED_TAGS = frozenset(
    "a abbr b blockquote br caption code col colgroup dd del details div dl dt em figcaption "
    "figure h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p pre q s small span strong sub summary "
    "sup table tbody td tfoot th thead tr u ul".split()
)
#: Attributes allowed on every element: no ``style`` and no event handler (``on...``).
ALLOWED_ATTRIBUTES = frozenset(
    "class id title colspan rowspan align valign scope role aria-label aria-hidden lang "
    "dir headers abbr".split()
)
_TAG_ATTRIBUTES = {
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "ol": {"start"},
    "details": {"open"},
}
# Elements whose content goes with them (the text of a script or style block is not prose).
_DROPPED_WITH_CONTENT = frozenset({"script", "style", "template", "noscript", "title", "textarea"})


def _attribute_filter(tag: str, name: str, value: str) -> str | None:
    """Keep only links that stay links and images that are inline (a page never fetches)."""
    url = value.strip().lower()
    if tag == "img" and name == "src":
        return value if url.startswith("data:image/") else None
    if tag == "a" and name == "href":
        return None if url.startswith(("javascript:", "data:", "vbscript:", "file:")) else value
    return value


def clean_html(fragment: str) -> str:
    """Sanitise HTML from a notebook's output (tables, rendered Markdown, cards) for a report.

    An allow-list sanitiser (nh3, the Python binding of the Rust library ammonia; maintained,
    where bleach is archived and nbconvert is moving off it): only the elements of
    :data:`ALLOWED_TAGS` and attributes of :data:`ALLOWED_ATTRIBUTES` survive; no ``<style>``
    element or ``style`` attribute, no script and no event handler; images only inline
    (``data:image/``); comments removed. Other tags are removed with their markup (their text
    stays, as text); ``script`` and ``style`` blocks with their content. The report's own CSS
    comes only from its template, so text from data can neither run nor restyle a page.
    """
    attributes = {tag: set(names) for tag, names in _TAG_ATTRIBUTES.items()}
    attributes["*"] = set(ALLOWED_ATTRIBUTES)
    return nh3.clean(
        fragment,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(_DROPPED_WITH_CONTENT),
        attributes=attributes,
        attribute_filter=_attribute_filter,
        strip_comments=True,
        link_rel="noopener noreferrer",
        url_schemes={"http", "https", "mailto", "data"},
    )


def content_security_policy(*, styles: Sequence[str] = (), scripts: Sequence[str] = ()) -> str:
    """The Content-Security-Policy of a published page: nothing loads, only its own code runs.

    No request to any host (``default-src 'none'``; images only inline), and only the style and
    script blocks the template wrote, named by the SHA-256 of their exact text: a ``<style>`` or
    ``<script>`` that came from data anyway, or a ``style`` attribute, is ignored by the browser.
    A second line of defence behind :func:`clean_html`.

    Parameters
    ----------
    styles, scripts : sequence of str
        The exact text inside each ``<style>`` and ``<script>`` element of the template.

    Returns
    -------
    str
        The value of a ``<meta http-equiv="Content-Security-Policy">`` element.
    """

    def sources(blocks: Sequence[str]) -> str:
        hashes = [
            "'sha256-" + base64.b64encode(hashlib.sha256(b.encode("utf-8")).digest()).decode() + "'"
            for b in blocks
        ]
        return " ".join(hashes) if hashes else "'none'"

    return (
        f"default-src 'none'; img-src data:; style-src {sources(styles)}; "
        f"script-src {sources(scripts)}; base-uri 'none'; form-action 'none'"
    )
