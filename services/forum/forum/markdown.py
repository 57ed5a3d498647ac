"""Post bodies: Markdown rendered by markdown-it-py, then cleaned by nh3's allow-list.

Rendering and cleaning are two steps on purpose. markdown-it-py (CommonMark, with raw HTML
switched off) turns what the author typed into HTML; nh3 (the Rust `ammonia` sanitiser) then
keeps only the tags, attributes and URL schemes listed here, whatever the renderer produced.
So a `<script>`, an `onerror=` or a `javascript:` link cannot survive even if a future
renderer version lets one through.
"""

from __future__ import annotations

import html

import nh3
from markdown_it import MarkdownIt

_renderer = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)

ALLOWED_TAGS = {
    "p", "br", "hr", "blockquote", "pre", "code", "em", "strong", "del", "s", "a", "img",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "code": {"class"},  # "language-python" from fenced blocks, for highlighting
    "th": {"style"},
    "td": {"style"},
}
ALLOWED_SCHEMES = {"http", "https", "mailto"}


def render(body: str) -> str:
    """The Markdown `body` as HTML that is safe to put in a page as it is."""
    return nh3.clean(
        _renderer.render(body),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_SCHEMES,
        link_rel="nofollow ugc noopener noreferrer",
        filter_style_properties={"text-align"},
        strip_comments=True,
    )


def plain_text(body_html: str) -> str:
    """The words of rendered HTML without its markup: what search indexes and quotes."""
    return html.unescape(nh3.clean(body_html, tags=set()))
