"""The documentation can be walked: the README is a front page, every doc in docs/ is
linked from it and says first what it covers, and every relative link (and its anchor)
leads somewhere that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
MAX_README_LINES = 350

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
_LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)


def prose(text: str) -> str:
    """The text without fenced code blocks and code spans (neither holds links or titles)."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def slug(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).replace("`", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file (repeated titles get -1, -2, ...)."""
    seen: dict[str, int] = {}
    found = set()
    for match in _HEADING.finditer(_FENCE.sub("", path.read_text())):
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> list[str]:
    return [target for target in _LINK.findall(prose(path.read_text()))
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]


def test_the_readme_is_a_front_page() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines; keep it a front page (at most "
        f"{MAX_README_LINES}) and move detail into docs/")


def test_the_readme_links_every_doc() -> None:
    linked = {(README.parent / t.split("#", 1)[0]).resolve() for t in relative_links(README)}
    assert DOCS, "docs/ holds no document"
    missing = [d.name for d in DOCS if d.resolve() not in linked]
    assert not missing, f"docs not linked from README.md: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_each_doc_says_first_what_it_covers(doc: Path) -> None:
    """A title, then one paragraph of prose before any other heading, list or table."""
    blocks = [b for b in doc.read_text().split("\n\n") if b.strip()]
    assert blocks[0].startswith("# ") and "\n" not in blocks[0].strip(), doc.name
    first = blocks[1].lstrip()
    assert first and first[0] not in "#|-*`>", f"{doc.name} starts without a paragraph"
    assert len(first.split()) >= 25, f"{doc.name}: its first paragraph says too little"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_leads_somewhere(page: Path) -> None:
    broken = []
    for target in relative_links(page):
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_page_sends_the_reader_to_a_document_outside_the_repository(page: Path) -> None:
    """The design is written in docs/architecture.md; no page may lean on another design
    file a reader of the repository cannot open."""
    text = page.read_text()
    for name in ("design.md", "design-changes"):
        assert name not in text, f"{page.relative_to(ROOT)} mentions {name}"


def test_the_link_checker_finds_a_broken_link_and_anchor(tmp_path: Path) -> None:
    """The checks above can fail: a missing file and a missing anchor are both caught,
    a link in a code block is not a link."""
    (tmp_path / "a.md").write_text("# A\n\n## Some `code` title\n\ntext\n")
    page = tmp_path / "b.md"
    page.write_text("# B\n\n[ok](a.md#some-code-title) [gone](nope.md) [bad](a.md#other)\n"
                    "`[not](a link)`\n\n```\n[not](either.md)\n```\n")
    assert relative_links(page) == ["a.md#some-code-title", "nope.md", "a.md#other"]
    assert "some-code-title" in anchors(tmp_path / "a.md")
    assert "other" not in anchors(tmp_path / "a.md")
