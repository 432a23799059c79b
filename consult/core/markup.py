"""User Markdown → safe HTML: markdown-it renders (raw HTML off), nh3 sanitises what remains."""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True}).enable("table")
_TAGS = {"p", "br", "strong", "em", "ul", "ol", "li", "blockquote", "code", "pre", "h3", "h4",
         "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "a", "hr"}


def render_markdown(text: str | None) -> Markup:
    """Sanitised HTML for a Markdown text; headings are demoted so pages keep their outline."""
    if not text:
        return Markup("")
    html = _md.render(text)
    for level in (2, 1):  # h1/h2 in user text would break the page's heading order
        html = html.replace(f"<h{level}>", f"<h{level + 2}>").replace(
            f"</h{level}>", f"</h{level + 2}>")
    clean = nh3.clean(html, tags=_TAGS, attributes={"a": {"href", "title"}},
                      url_schemes={"http", "https", "mailto"},
                      link_rel="noopener noreferrer nofollow")
    return Markup(clean)  # noqa: S704 - sanitised by nh3 just above
