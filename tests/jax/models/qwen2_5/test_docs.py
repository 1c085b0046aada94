"""The documentation holds together: every relative link of every Markdown file reaches a file or a
directory, every ``#anchor`` names a heading of its target (GitHub's heading slugs), the package's own
docs never link outside the package (only the package is copied into tt-xla), and the repository's
front page stays a front page (short, set-up and test commands at the top).

Markdown files checked: every ``.md`` under the package, plus the repository's top-level ``README.md``
when the package sits in this repository (its root, four directories up, holds ``.ci/run``); inside a
tt-xla checkout that root and its README are tt-xla's. Links inside fenced code blocks and inline code
are not links; links with a scheme (``https:``, ``mailto:``, ...) are not checked.
"""

import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.cpu

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parents[3]  # tests/jax/models/qwen2_5 -> the repository holding tests/
IN_THIS_REPOSITORY = (REPO_ROOT / ".ci" / "run").is_file()
ROOT_README = REPO_ROOT / "README.md"
FRONT_PAGE_MAX_LINES = 300
FRONT_PAGE_COMMANDS_WITHIN = 80


def package_markdown():
    return sorted(p for p in PACKAGE_DIR.rglob("*.md") if "__pycache__" not in p.parts)


def checked_markdown():
    files = package_markdown()
    if IN_THIS_REPOSITORY and ROOT_README.is_file():
        files.append(ROOT_README)
    return files


def shown(path):
    return os.path.relpath(path, REPO_ROOT if IN_THIS_REPOSITORY else PACKAGE_DIR)


# --- reading Markdown ---------------------------------------------------------------------------------

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?:.+?)\1")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def prose_lines(text, blank_code=True):
    """(line number, line) outside fenced code blocks, inline code spans blanked (or kept: headings)."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = None
            continue
        if match:
            fence = match.group(1)
            continue
        yield number, INLINE_CODE.sub("", line) if blank_code else line


def links(path):
    """[(line number, target)] of the file's links, schemes and all."""
    found = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        targets = [m.group(1) for m in INLINE_LINK.finditer(line)]
        definition = REFERENCE_DEFINITION.match(line)
        if definition:
            targets.append(definition.group(1))
        found += [(number, t[1:-1] if t.startswith("<") else t) for t in targets]
    return found


def relative_links(path):
    """[(line number, file part, anchor or None)]: the links without a scheme."""
    out = []
    for number, target in links(path):
        if SCHEME.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        out.append((number, file_part, anchor if "#" in target else None))
    return out


def slug(heading):
    """GitHub's anchor for a heading's text: link markup reduced to its text, lowercased, every character
    but letters, digits, underscores, hyphens and spaces dropped (backticks included), spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    """Every heading's anchor; a repeated one gets -1, -2, ... as GitHub gives them."""
    seen, out = {}, set()
    for _, line in prose_lines(path.read_text(encoding="utf-8"), blank_code=False):
        match = ATX_HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2) or "")
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def resolve(path, file_part):
    return (path.parent / file_part).resolve() if file_part else path.resolve()


# --- the rules ----------------------------------------------------------------------------------------

def test_heading_anchors_follow_githubs_slug_rule(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Set-up and tests\n## The `tt-run` command\n## Compile options and the decode step's cost\n"
                    "## Limits\n## Limits\n```\n# not a heading\n```\n### See [GSM8K](gsm8k.md) (acceptance run)\n"
                    "## Limits\n", encoding="utf-8")
    assert anchors(page) == {"set-up-and-tests", "the-tt-run-command", "compile-options-and-the-decode-steps-cost",
                             "limits", "limits-1", "limits-2", "see-gsm8k-acceptance-run"}


def test_links_in_code_are_not_links(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[a](a.md) `[b](b.md)` [c](c.md#x \"title\")\n```bash\n[d](d.md)\n```\n"
                    "[e](https://example.com) [f](#g)\n[ref]: h.md\n", encoding="utf-8")
    assert relative_links(page) == [(1, "a.md", None), (1, "c.md", "x"), (5, "", "g"), (6, "h.md", None)]


def test_every_relative_link_reaches_a_file_or_directory():
    broken = [f"{shown(path)}:{number}: {file_part} (no such file or directory)"
              for path in checked_markdown()
              for number, file_part, _ in relative_links(path)
              if file_part and not resolve(path, file_part).exists()]
    assert not broken, "\n".join(broken)


def test_every_anchor_names_a_heading_of_its_target():
    missing = []
    for path in checked_markdown():
        for number, file_part, anchor in relative_links(path):
            if anchor is None:
                continue
            target = resolve(path, file_part)
            if target.suffix != ".md" or not target.is_file():
                continue  # an anchor into a non-Markdown file is not checked; a missing file fails above
            if anchor not in anchors(target):
                missing.append(f"{shown(path)}:{number}: #{anchor} is not a heading of {shown(target)}")
    assert not missing, "\n".join(missing)


def test_package_docs_link_only_inside_the_package():
    """The package travels alone into tt-xla: a link from its Markdown to the repository around it would break."""
    outside = [f"{shown(path)}:{number}: {file_part}"
               for path in package_markdown()
               for number, file_part, _ in relative_links(path)
               if file_part and not resolve(path, file_part).is_relative_to(PACKAGE_DIR)]
    assert not outside, "\n".join(outside)


def test_the_package_has_docs():
    assert (PACKAGE_DIR / "docs" / "README.md").is_file()


@pytest.mark.skipif(not IN_THIS_REPOSITORY, reason="the repository root is not this suite's (inside tt-xla)")
def test_the_front_page_is_short_and_starts_with_set_up_and_test_commands():
    lines = ROOT_README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= FRONT_PAGE_MAX_LINES, f"README.md has {len(lines)} lines; a front page has at most 300"
    top = lines[:FRONT_PAGE_COMMANDS_WITHIN]
    assert any("pip install -r requirements.txt" in line for line in top), \
        f"no 'pip install -r requirements.txt' in README.md's first {FRONT_PAGE_COMMANDS_WITHIN} lines"
    assert any(re.search(r"(^|\s)pytest(\s|$)", line) for line in top), \
        f"no pytest command in README.md's first {FRONT_PAGE_COMMANDS_WITHIN} lines"
