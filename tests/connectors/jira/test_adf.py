"""Markdown -> Atlassian Document Format, as sent in v3 descriptions and comments."""

from __future__ import annotations

from connectors.jira.adf import adf_problems, adf_to_text, markdown_to_adf


def test_markdown_blocks_and_marks_become_adf_nodes() -> None:
    doc = markdown_to_adf(
        "## Hub\n\nRun **now**, see [docs](https://x.org) and `cfg`.\nNext line\n\n"
        "1. one\n2. two\n\n```yaml\nkey: 1\n```\n- a *b*"
    )

    assert adf_problems(doc) == []
    kinds = [block["type"] for block in doc["content"]]
    assert kinds == ["heading", "paragraph", "orderedList", "codeBlock", "bulletList"]
    paragraph = doc["content"][1]["content"]
    assert {"type": "text", "text": "now", "marks": [{"type": "strong"}]} in paragraph
    assert {
        "type": "text",
        "text": "docs",
        "marks": [{"type": "link", "attrs": {"href": "https://x.org"}}],
    } in paragraph
    assert {"type": "hardBreak"} in paragraph
    assert doc["content"][3] == {
        "type": "codeBlock",
        "attrs": {"language": "yaml"},
        "content": [{"type": "text", "text": "key: 1"}],
    }
    assert doc["content"][4]["content"][0]["content"][0]["content"][1]["marks"] == [{"type": "em"}]


def test_plain_text_round_trips_and_empty_text_is_an_empty_document() -> None:
    assert adf_to_text(markdown_to_adf("Hello\n\nworld")) == "Hello\nworld"
    assert markdown_to_adf("") == {"type": "doc", "version": 1, "content": []}
    assert adf_problems("plain") != []
