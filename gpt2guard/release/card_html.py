"""A self-contained HTML page from a model card's Markdown.

It renders the Markdown subset the cards use: headings, paragraphs, ``- `` bullet lists,
pipe tables, ``> `` block quotes, fenced code, stand-alone images, and inline ``**bold**``
and ```code```. The YAML front matter is shown in a collapsed block. Images are embedded as
base64 ``data:`` URIs read from files under the card's directory; nothing is fetched, and no
script or external style sheet is referenced.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

STYLE = """
body{font-family:system-ui,sans-serif;max-width:64em;margin:2em auto;padding:0 1em;line-height:1.5;color:#222}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
td.num{text-align:right}
th{background:#f3f3f3}
blockquote{border-left:4px solid #d95f02;margin:1em 0;padding:.4em 1em;background:#fff6ee}
code{background:#f3f3f3;padding:0 .2em;border-radius:3px;font-size:.9em}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto}
figure{margin:1em 0}
figcaption{font-size:.85em;color:#555}
img{max-width:100%}
details{margin:1em 0}
"""

NUM = ' class="num"'
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_SEPARATOR = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")


def inline(text: str) -> str:
    """Escape ``text`` and render ```code``` and ``**bold**`` in it."""
    out = []
    for i, part in enumerate(re.split(r"(`[^`]*`)", text)):
        if i % 2:
            out.append(f"<code>{html.escape(part[1:-1].replace(chr(92) + '|', '|'))}</code>")
        else:
            out.append(re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(part).replace("\\|", "|")))
    return "".join(out)


def slug(text: str) -> str:
    """An ``id`` for a heading: lower case, runs of other characters as ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def data_uri(path: str, base_dir) -> str | None:
    """A ``data:image/png;base64,...`` URI of a PNG under ``base_dir``, or None (remote, missing, outside)."""
    if base_dir is None or re.match(r"^[a-z][a-z0-9+.-]*:", path, re.I):
        return None
    base = Path(base_dir).resolve()
    file = (base / path).resolve()
    if base not in file.parents or not file.is_file() or file.suffix.lower() != ".png":
        return None
    return "data:image/png;base64," + base64.b64encode(file.read_bytes()).decode("ascii")


def _cells(line: str) -> list[str]:
    line = line.strip()
    line = line[1:] if line.startswith("|") else line
    line = line[:-1] if line.endswith("|") and not line.endswith("\\|") else line
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)]


def _table(lines: list[str]) -> str:
    header, aligns = _cells(lines[0]), [c.endswith(":") for c in _cells(lines[1])]
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{inline(c)}</th>" for c in header) + "</tr></thead>", "<tbody>"]
    for line in lines[2:]:
        cells = _cells(line)
        out.append("<tr>" + "".join(f"<td{NUM if i < len(aligns) and aligns[i] else ''}>{inline(c)}</td>"
                                    for i, c in enumerate(cells)) + "</tr>")
    return "\n".join(out + ["</tbody></table>"])


def _image(alt: str, path: str, base_dir) -> str:
    uri = data_uri(path, base_dir)
    if uri is None:
        return f"<p><em>[plot not embedded: {html.escape(alt)} ({html.escape(path)})]</em></p>"
    return f'<figure><img alt="{html.escape(alt)}" src="{uri}"><figcaption>{html.escape(alt)}</figcaption></figure>'


def _take(lines: list[str], i: int, test) -> tuple[list[str], int]:
    start = i
    while i < len(lines) and test(lines[i]):
        i += 1
    return lines[start:i], i


def _block(lines: list[str], i: int, base_dir) -> tuple[str, int]:
    """Render the block starting at line ``i``; returns its HTML and the next line's index."""
    line = lines[i]
    if line.startswith("```"):
        body, j = _take(lines, i + 1, lambda s: not s.startswith("```"))
        return f"<pre><code>{html.escape(chr(10).join(body))}</code></pre>", j + 1
    m = _HEADING.match(line)
    if m:
        n, text = len(m.group(1)), m.group(2).strip()
        return f'<h{n} id="{slug(text)}">{inline(text)}</h{n}>', i + 1
    m = _IMAGE.match(line.strip())
    if m:
        return _image(m.group(1), m.group(2), base_dir), i + 1
    if line.startswith("|") and i + 1 < len(lines) and _SEPARATOR.match(lines[i + 1].strip()):
        rows, j = _take(lines, i, lambda s: s.startswith("|"))
        return _table(rows), j
    if line.startswith(">"):
        quote, j = _take(lines, i, lambda s: s.startswith(">"))
        return "<blockquote><p>" + inline(" ".join(q[1:].strip() for q in quote)) + "</p></blockquote>", j
    if re.match(r"^[-*] ", line):
        items, j = _take(lines, i, lambda s: bool(re.match(r"^([-*] |  \S)", s)))
        merged: list[str] = []
        for it in items:
            if re.match(r"^[-*] ", it):
                merged.append(it[2:].strip())
            else:
                merged[-1] += " " + it.strip()
        return "<ul>\n" + "\n".join(f"<li>{inline(t)}</li>" for t in merged) + "\n</ul>", j
    para, j = _take(lines, i, lambda s: s.strip() and not re.match(r"^(#{1,6}\s|```|[-*] |\||>|!\[)", s))
    return "<p>" + inline(" ".join(p.strip() for p in para or [line])) + "</p>", max(j, i + 1)


def markdown_body(text: str, base_dir=None) -> str:
    """HTML of Markdown text (without front matter)."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        block, i = _block(lines, i, base_dir)
        out.append(block)
    return "\n".join(out)


def split_yaml(text: str) -> tuple[str | None, str]:
    """``(front matter text or None, the rest)`` of a card."""
    m = re.match(r"\A\ufeff?---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*\r?$\n?", text, re.S | re.M)
    return (m.group(1), text[m.end():]) if m else (None, text)


def render_html(markdown: str, base_dir=None, title: str | None = None) -> str:
    """A self-contained HTML page of a card.

    Parameters
    ----------
    markdown : str
        The card, with or without YAML front matter.
    base_dir : path, optional
        The card's directory: images with relative paths under it are embedded.
    title : str, optional
        The page title (default: the first ``#`` heading, else "Model card").
    """
    meta, body = split_yaml(markdown)
    if title is None:
        m = re.search(r"^# (.+)$", body, re.M)
        title = m.group(1).strip() if m else "Model card"
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{html.escape(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
             markdown_body(body, base_dir)]
    if meta is not None:
        parts.append("<details><summary>Metadata (YAML front matter)</summary>"
                     f"<pre><code>{html.escape(meta)}</code></pre></details>")
    return "\n".join(parts + ["</body>", "</html>", ""])
