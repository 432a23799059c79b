"""User Markdown → safe HTML: markdown-it renders (raw HTML off), nh3 sanitises what remains."""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token
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


def markdown_lines(text: str | None) -> list[str]:
    """A Markdown text as the plain lines a reader sees: marks gone, list items bulleted.

    Revisions are compared on these lines, so a diff shows text rather than Markdown syntax.
    """
    if not text:
        return []
    lines: list[str] = []
    lists: list[int | None] = []  # None for a bulleted list, else the next number
    marker = ""  # the bullet or number of the list item whose first line comes next
    row: list[str] | None = None  # cells of the table row being read
    for token in _md.parse(text):
        if token.type == "bullet_list_open":
            lists.append(None)
        elif token.type == "ordered_list_open":
            lists.append(int(str(token.attrGet("start") or 1)))
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif token.type == "list_item_open" and lists:
            number = lists[-1]
            marker = "• " if number is None else f"{number}. "
            if number is not None:
                lists[-1] = number + 1
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            lines.append(" | ".join(row))
            row = None
        elif token.type == "inline":
            content = _inline_text(token.children or [])
            if row is not None:
                row.append(content.replace("\n", " "))
                continue
            indent = "  " * max(len(lists) - 1, 0)
            for index, line in enumerate(content.split("\n")):
                lead = marker if index == 0 else " " * len(marker)
                lines.append(f"{indent}{lead}{line}")
            marker = ""
        elif token.type in ("fence", "code_block"):
            lines.extend(token.content.rstrip("\n").split("\n"))
        elif token.type == "hr":
            lines.append("———")
    return lines


def _inline_text(children: list[Token]) -> str:
    """The text of inline tokens, emphasis and link marks dropped, line breaks kept."""
    parts: list[str] = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "image":
            parts.append(_inline_text(child.children or []))
    return "".join(parts)
