"""Every relative link and image in README.md and docs/*.md points at a file of the repository, and every
``#anchor`` at a heading of the page it names (GitHub's heading ids)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.MULTILINE)


def prose_of(page: Path) -> str:
    """The page without its fenced code blocks (a ``#`` there is a comment, not a heading)."""
    return FENCE.sub("", page.read_text())


def github_anchor(heading: str) -> str:
    """GitHub's id of a heading: lower case, punctuation but ``-`` and ``_`` dropped, spaces to ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors_of(page: Path) -> set[str]:
    """The ids of a page's headings; a repeated heading gets ``-1``, ``-2``, ... as on GitHub."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in HEADING.findall(prose_of(page)):
        anchor = github_anchor(heading)
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        anchors.add(anchor if count == 0 else f"{anchor}-{count}")
    return anchors


def relative_links(page: Path) -> list[str]:
    return [target for target in LINK.findall(prose_of(page)) if not re.match(r"[a-z]+:", target)]


def test_github_anchor_matches_githubs_ids():
    assert github_anchor("Feature sets against npz folders (`--topics data`)") == (
        "feature-sets-against-npz-folders---topics-data"
    )
    assert github_anchor("Highlight-only checkpoints: top clips, not moments") == (
        "highlight-only-checkpoints-top-clips-not-moments"
    )
    assert github_anchor("TVSum (top-5 mAP)") == "tvsum-top-5-map"


def test_a_page_with_a_broken_link_is_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# A page\n\n[ok](#a-page) [gone](missing.md) [bad](#no-such-heading)\n```\n# not a heading\n```\n"
    )
    assert anchors_of(page) == {"a-page"}
    assert relative_links(page) == ["#a-page", "missing.md", "#no-such-heading"]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    broken = []
    for target in relative_links(page):
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists() or not linked.is_relative_to(ROOT):
            broken.append(f"{target}: no such file in the repository")
        elif anchor and linked.suffix == ".md" and anchor not in anchors_of(linked):
            broken.append(f"{target}: no heading with that id in {linked.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)
