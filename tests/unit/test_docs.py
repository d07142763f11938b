"""Every relative link in the guides points at a file that exists, and at a heading it has."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDES = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.MULTILINE)


def _prose(path: Path) -> str:
    """The Markdown outside code, where a link is a link."""
    return _FENCED.sub("", path.read_text(encoding="utf-8"))


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces as -."""
    headings = _HEADING.findall(_prose(path))
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def _relative_links(path: Path) -> list[str]:
    targets = _LINK.findall(_CODE.sub("", _prose(path)))
    return [target for target in targets if not re.match(r"[a-z]+:", target)]


def test_the_guides_exist() -> None:
    assert (ROOT / "docs" / "README.md") in GUIDES
    assert len(GUIDES) > 3


@pytest.mark.parametrize("guide", GUIDES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_reaches_an_existing_file_and_heading(guide: Path) -> None:
    broken = []
    for target in _relative_links(guide):
        file_part, _, anchor = target.partition("#")
        linked = (guide.parent / file_part).resolve() if file_part else guide
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    assert broken == [], f"{guide.relative_to(ROOT)}: broken links: {broken}"
