"""Release notes, news and document descriptions as safe, minimal Markdown.

Staff write them in Markdown; they are shown to customers, so the text is escaped first and
only then given a little formatting: paragraphs, line breaks, `#` headings (shown one level
below the page's own), `-`/`*`/`1.` lists, **bold**, *italic*, `code` and links to http(s)
addresses. Raw HTML in the text stays text: nothing the author typed becomes markup.
No dependency: the formats above are all release notes need.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_HEADING = re.compile(r"(#{1,6})\s+(.*?)\s*#*\s*\Z")
_BULLET = re.compile(r"[-*+]\s+(.*)\Z")
_NUMBERED = re.compile(r"\d{1,9}[.)]\s+(.*)\Z")
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])|(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])")
# Applied to escaped text: `&amp;` may be in the address, quotes cannot (escaped to `&#34;`).
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^\s()<>\"']+)\)")
_PLACEHOLDER = "\x00{}\x00"


def render(text: str | None) -> Markup:
    """The Markdown `text` as safe HTML."""
    if not text:
        return Markup("")
    blocks: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []
    list_tag = ""

    def close_paragraph():
        if paragraph:
            blocks.append("<p>" + "<br>\n".join(_inline(line) for line in paragraph) + "</p>")
            paragraph.clear()

    def close_list():
        nonlocal list_tag
        if items:
            blocks.append(f"<{list_tag}>" + "".join(f"<li>{_inline(item)}</li>" for item in items) + f"</{list_tag}>")
            items.clear()
        list_tag = ""

    for raw in str(text).replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip()
        heading = _HEADING.match(line)
        bullet = _BULLET.match(line)
        numbered = _NUMBERED.match(line)
        if not line:
            close_paragraph()
            close_list()
        elif heading:
            close_paragraph()
            close_list()
            level = min(6, len(heading.group(1)) + 2)  # the page has its h1, the item its h2/h3
            blocks.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif bullet or numbered:
            close_paragraph()
            tag = "ul" if bullet else "ol"
            if list_tag and list_tag != tag:
                close_list()
            list_tag = tag
            items.append((bullet or numbered).group(1))
        elif items and raw[:1].isspace():
            items[-1] += " " + line  # a continued list item
        else:
            close_list()
            paragraph.append(line)
    close_paragraph()
    close_list()
    return Markup("\n".join(blocks))


def _inline(text: str) -> str:
    escaped = str(escape(text))
    # Code first, kept aside so nothing inside it is formatted.
    kept: list[str] = []

    def keep(match: re.Match) -> str:
        kept.append(f"<code>{match.group(1)}</code>")
        return _PLACEHOLDER.format(len(kept) - 1)

    escaped = _CODE.sub(keep, escaped)
    escaped = _LINK.sub(lambda m: f'<a href="{m.group(2)}" rel="noopener noreferrer">{m.group(1)}</a>', escaped)
    escaped = _BOLD.sub(lambda m: f"<strong>{m.group(1) or m.group(2)}</strong>", escaped)
    escaped = _ITALIC.sub(lambda m: f"<em>{m.group(1) or m.group(2)}</em>", escaped)
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], escaped)
