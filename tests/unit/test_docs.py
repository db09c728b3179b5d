"""The README and docs/*.md: every relative link and image leads to a file
that exists, every #anchor to a heading of its page, the README stays a
first page (at most 150 lines, every docs page listed, its folder tree
true) and no table cell holds a paragraph.

Anchors are GitHub's: a heading's text, lowercased, with punctuation other
than '-' and '_' dropped and each space made a '-'; a repeated heading
gets -1, -2, ...  Code (fenced blocks, indented blocks after a blank line,
inline spans) is not searched for links.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
DOCUMENTS = [README, *PAGES]
MOST_README_LINES = 150
LONGEST_CELL = 120     # characters: a table cell is a value and a few words, never a paragraph

LINK = re.compile(r"(!?)\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$")
HTML_TARGET = re.compile(r"<(img|a)\b[^>]*?\b(src|href)=\"([^\"]*)\"", re.IGNORECASE)
HTML_ANCHOR = re.compile(r"<a\b[^>]*?\b(?:name|id)=\"([^\"]*)\"", re.IGNORECASE)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:|^//")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of everything that is not code; inline code spans
    are blanked, so a link whose text is code still counts."""
    lines, fence, previous_blank, in_indented = [], None, True, False
    for number, line in enumerate(text.splitlines(), 1):
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
            continue
        if m := FENCE.match(line):
            fence = m.group(1)
            continue
        indented = line.startswith("    ") or line.startswith("\t")
        in_indented = indented and line.strip() != "" and (previous_blank or in_indented)
        previous_blank = line.strip() == ""
        if in_indented:
            continue
        lines.append((number, CODE_SPAN.sub(lambda m: "x" * len(m.group(0)), line)))
    return lines


def targets(text: str) -> list[tuple[int, bool, str]]:
    """(line number, is an image, target) of every link and image."""
    found = []
    for number, line in prose_lines(text):
        found += [(number, bang == "!", target) for bang, target in LINK.findall(line)]
        if m := REFERENCE.match(line):
            found.append((number, False, m.group(1)))
        found += [(number, tag.lower() == "img", target)
                  for tag, _, target in HTML_TARGET.findall(line)]
    return found


def slug(heading: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # a link shows its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    raw = text.splitlines()
    for number, _ in prose_lines(text):
        line = raw[number - 1]   # the heading as written, code spans and all
        found.update(HTML_ANCHOR.findall(line))
        if m := HEADING.match(line):
            base = slug(m.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken(document: Path, root: Path = ROOT) -> list[str]:
    """Every link or image of document that leads nowhere, as 'line: why'."""
    problems = []
    for number, image, target in targets(document.read_text()):
        if not target:
            problems.append(f"{number}: an empty link")
            continue
        if SCHEME.match(target):
            continue   # another site: not this repository's to check
        path_part, _, anchor = target.partition("#")
        path = (document.parent / path_part).resolve() if path_part else document.resolve()
        if not path.is_relative_to(root):
            problems.append(f"{number}: {target} leads out of the repository")
        elif not path.exists():
            problems.append(f"{number}: {target}: no such file")
        elif image and not path.is_file():
            problems.append(f"{number}: image {target} is not a file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path.read_text()):
            problems.append(f"{number}: {target}: {path.name} has no heading #{anchor}")
    return problems


def long_cells(document: Path) -> list[str]:
    problems = []
    for number, line in prose_lines(document.read_text()):
        if not line.lstrip().startswith("|"):
            continue
        cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
        problems += [f"{number}: {len(cell.strip())} characters: {cell.strip()[:60]}..."
                     for cell in cells if len(cell.strip()) > LONGEST_CELL]
    return problems


# -- the checks themselves, on hand-built pages -----------------------------

SAMPLE = """# Top `code` heading

![plot](results/a.png) and [a page](other.md#a-section) and [site](https://x.org/y).
Text with `[not a link](nowhere.md)` inline.

    [indented code](nowhere.md)

```
[fenced code](nowhere.md)
```

- a list item
    [continued, not code](kept.md)

[ref]: refs/file.txt
<img src="html.png">

## A section: with punctuation, `p4src/` and tau_min
## A section: with punctuation, `p4src/` and tau_min
"""


def test_links_and_images_are_found_outside_code_only():
    assert [(image, target) for _, image, target in targets(SAMPLE)] == [
        (True, "results/a.png"), (False, "other.md#a-section"), (False, "https://x.org/y"),
        (False, "kept.md"), (False, "refs/file.txt"), (True, "html.png")]


def test_anchors_follow_githubs_slugs():
    assert anchors(SAMPLE) == {
        "top-code-heading",
        "a-section-with-punctuation-p4src-and-tau_min",
        "a-section-with-punctuation-p4src-and-tau_min-1"}


def test_a_missing_file_image_or_heading_is_reported(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "there.md").write_text("# Here it is\n")
    page = tmp_path / "docs" / "page.md"
    page.write_text("[ok](there.md#here-it-is) [gone](gone.md) ![dir](../docs)\n"
                    "[no heading](there.md#elsewhere) [out](../../x.md) [self](#nowhere)\n")
    assert broken(page, root=tmp_path) == [
        "1: gone.md: no such file",
        "1: image ../docs is not a file",
        "2: there.md#elsewhere: there.md has no heading #elsewhere",
        "2: ../../x.md leads out of the repository",
        "2: #nowhere: page.md has no heading #nowhere"]


# -- the README and docs/ --------------------------------------------------

@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_image_exists(document):
    assert targets(document.read_text()), f"{document.name} links nothing: is it parsed?"
    assert broken(document) == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_table_cell_holds_a_paragraph(document):
    assert long_cells(document) == []


def test_the_readme_is_a_first_page():
    lines = README.read_text().splitlines()
    assert len(lines) <= MOST_README_LINES, f"README.md has {len(lines)} lines"


def test_the_readme_lists_every_docs_page():
    linked = {(README.parent / target.partition("#")[0]).resolve()
              for _, _, target in targets(README.read_text()) if not SCHEME.match(target)}
    assert PAGES and [p.name for p in PAGES if p.resolve() not in linked] == []


def test_the_readme_tree_names_real_folders():
    tree = re.findall(r"^ {4}([\w./-]+/) ", README.read_text(), re.MULTILINE)
    assert len(tree) >= 10, "the README's folder tree is not where it was"
    assert [folder for folder in tree if not (ROOT / folder).is_dir()] == []
