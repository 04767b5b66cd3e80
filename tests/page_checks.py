"""Reading a page as a browser would: its elements, attributes and text (shared by tests)."""

from __future__ import annotations

from html.parser import HTMLParser


class Dom(HTMLParser):
    """Collects elements, attributes and text of an HTML fragment (the standard library parser)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(fragment: str) -> Dom:
    dom = Dom()
    dom.feed(fragment)
    dom.close()
    return dom


def live_markup(dom: Dom) -> list[str]:
    """Everything in a fragment that could run, restyle the page or make a request."""
    problems = []
    for tag, attrs in dom.elements:
        if tag in ("script", "style", "link", "iframe", "object", "embed", "meta", "base", "svg"):
            problems.append(f"<{tag}>")
        for name, value in attrs.items():
            if name.startswith("on") or name in ("style", "srcset", "formaction", "action"):
                problems.append(f"{tag}[{name}]")
            if name in ("src", "href") and value:
                url = value.strip().lower()
                if url.startswith(("javascript:", "vbscript:")):
                    problems.append(f"{tag}[{name}={value}]")
                if name == "src" and not url.startswith("data:image/"):
                    problems.append(f"{tag}[src={value}]")
    return problems
