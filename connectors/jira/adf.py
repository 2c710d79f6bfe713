"""Atlassian Document Format (ADF): what Jira Cloud's v3 API takes for descriptions and comments.

`markdown_to_adf` covers the markdown mapping templates produce: paragraphs, headings, bullet
and numbered lists, fenced code, and inline **bold**, *italic*, `code` and [links](url).
Anything else stays plain text, which is always valid ADF. `adf_problems` is the structural
check the fake applies to what it receives.
"""

from __future__ import annotations

import re
from typing import Any

_INLINE = re.compile(
    r"\*\*(?P<bold>.+?)\*\*"
    r"|`(?P<code>[^`]+)`"
    r"|\[(?P<label>[^\]]+)\]\((?P<href>[^)\s]+)\)"
    r"|(?<![\w*])[*_](?P<em>[^*_\s][^*_]*?)[*_](?![\w*])"
)
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_ORDERED = re.compile(r"^\s*\d+[.)]\s+(.*)$")

BLOCK_TYPES = {
    "paragraph",
    "heading",
    "bulletList",
    "orderedList",
    "listItem",
    "codeBlock",
    "blockquote",
    "rule",
    "panel",
    "table",
    "tableRow",
    "tableCell",
    "tableHeader",
    "mediaSingle",
    "mediaGroup",
    "media",
    "expand",
    "nestedExpand",
    "taskList",
    "taskItem",
}
INLINE_TYPES = {"text", "hardBreak", "mention", "emoji", "inlineCard", "date", "status"}


def _text(value: str, *marks: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": value}
    if marks:
        node["marks"] = list(marks)
    return node


def inline_nodes(line: str) -> list[dict[str, Any]]:
    """One line of markdown as ADF inline nodes."""
    nodes: list[dict[str, Any]] = []
    pos = 0
    for match in _INLINE.finditer(line):
        if match.start() > pos:
            nodes.append(_text(line[pos : match.start()]))
        if match.group("bold"):
            nodes.append(_text(match.group("bold"), {"type": "strong"}))
        elif match.group("code"):
            nodes.append(_text(match.group("code"), {"type": "code"}))
        elif match.group("label"):
            link = {"type": "link", "attrs": {"href": match.group("href")}}
            nodes.append(_text(match.group("label"), link))
        else:
            nodes.append(_text(match.group("em"), {"type": "em"}))
        pos = match.end()
    if pos < len(line):
        nodes.append(_text(line[pos:]))
    return nodes


def _paragraph(lines: list[str]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for index, line in enumerate(lines):
        if index:
            content.append({"type": "hardBreak"})
        content.extend(inline_nodes(line))
    return {"type": "paragraph", "content": content}


def _list(kind: str, items: list[str]) -> dict[str, Any]:
    return {
        "type": kind,
        "content": [{"type": "listItem", "content": [_paragraph([item])]} for item in items],
    }


def markdown_to_adf(text: str) -> dict[str, Any]:
    """A markdown (or plain) text as an ADF document."""
    blocks: list[dict[str, Any]] = []
    lines = text.replace("\r\n", "\n").split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.strip():
            index += 1
            continue
        if line.lstrip().startswith("```"):
            language = line.strip()[3:].strip()
            end = index + 1
            while end < len(lines) and not lines[end].lstrip().startswith("```"):
                end += 1
            code = "\n".join(lines[index + 1 : end])
            block: dict[str, Any] = {"type": "codeBlock", "content": [_text(code)] if code else []}
            if language:
                block["attrs"] = {"language": language}
            blocks.append(block)
            index = end + 1
            continue
        heading = _HEADING.match(line)
        if heading:
            blocks.append(
                {
                    "type": "heading",
                    "attrs": {"level": len(heading.group(1))},
                    "content": inline_nodes(heading.group(2).strip()),
                }
            )
            index += 1
            continue
        for pattern, kind in ((_BULLET, "bulletList"), (_ORDERED, "orderedList")):
            if pattern.match(line):
                items = []
                while index < len(lines) and pattern.match(lines[index]):
                    items.append(pattern.match(lines[index]).group(1))  # type: ignore[union-attr]
                    index += 1
                blocks.append(_list(kind, items))
                break
        else:
            paragraph = []
            while index < len(lines) and lines[index].strip() and not _starts_block(lines[index]):
                paragraph.append(lines[index])
                index += 1
            blocks.append(_paragraph(paragraph))
    return {"type": "doc", "version": 1, "content": blocks}


def _starts_block(line: str) -> bool:
    return bool(
        line.lstrip().startswith("```")
        or _HEADING.match(line)
        or _BULLET.match(line)
        or _ORDERED.match(line)
    )


def adf_to_text(node: Any) -> str:
    """The plain text of an ADF document (for reading descriptions and comments back)."""
    if isinstance(node, str):
        return node
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text":
        return str(node.get("text", ""))
    if node.get("type") == "hardBreak":
        return "\n"
    parts = [adf_to_text(child) for child in node.get("content", [])]
    joiner = "\n" if node.get("type") in ("doc", "bulletList", "orderedList") else ""
    return joiner.join(parts)


def adf_problems(doc: Any) -> list[str]:
    """Why `doc` is not an ADF document, or [] when it is one."""
    if not isinstance(doc, dict) or doc.get("type") != "doc":
        return ["Operation value must be an Atlassian Document (see the Atlassian Document Format)"]
    problems = []
    if doc.get("version") != 1:
        problems.append("ADF document must have version 1")
    if not isinstance(doc.get("content"), list):
        return [*problems, "ADF document must have a content array"]
    stack = list(doc["content"])
    while stack:
        node = stack.pop()
        kind = node.get("type") if isinstance(node, dict) else None
        if kind not in BLOCK_TYPES | INLINE_TYPES:
            problems.append(f"unknown ADF node type {kind!r}")
            continue
        if kind == "text" and not (isinstance(node.get("text"), str) and node["text"]):
            problems.append("ADF text nodes need a non-empty 'text'")
        content = node.get("content", [])
        if not isinstance(content, list):
            problems.append(f"ADF node {kind!r} has a content that is not a list")
            continue
        stack.extend(content)
    return problems
