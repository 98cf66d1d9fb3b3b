"""Course-wide consistency: glossary terms and citations across every page."""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
TERM_ROLE = re.compile(r"\{term\}`([^`]+)`")
CITE_ROLE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
SEEDS = ROOT.parent / "shared" / "seeds"
COURSE_TERM = "(course term; not in the source)"
HANGUL = "[\uac00-\ud7a3]"
# "**<Korean>** — definition", with "(standard: <usual form>)" or the course-term mark before the dash.
GLOSSARY_ENTRY = re.compile(rf"\s+\*\*([^*]*{HANGUL}[^*]*)\*\*( \(standard: [^()]+\)| {re.escape(COURSE_TERM)})? — \S")


def page_texts() -> dict[str, str]:
    """Markdown of every page of the book: .md files and the markdown cells of notebooks."""
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    texts = {}
    for name in re.findall(r"(?:file|root):\s*(\S+)", toc):
        md, ipynb = ROOT / f"{name}.md", ROOT / f"{name}.ipynb"
        if md.is_file():
            texts[name] = md.read_text(encoding="utf-8")
        else:
            nb = nbformat.read(ipynb, as_version=4)
            texts[name] = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return texts


def glossary_terms() -> set[str]:
    body = (ROOT / "glossary.md").read_text(encoding="utf-8").split("```{glossary}", 1)[1].rsplit("```", 1)[0]
    return {line.strip() for line in body.splitlines() if line.strip() and not line.startswith(" ")}


def term_targets(text: str) -> set[str]:
    targets = set()
    for role in TERM_ROLE.findall(text):
        match = re.search(r"<([^>]+)>$", role)
        targets.add((match.group(1) if match else role).strip().lower())
    return targets


def test_every_glossary_term_is_used_and_every_used_term_is_defined():
    terms = {t.lower() for t in glossary_terms()}
    used = set().union(*(term_targets(t) for name, t in page_texts().items() if name != "glossary"))
    assert used - terms == set(), f"terms linked in the book but missing from glossary.md: {sorted(used - terms)}"
    assert terms - used == set(), f"glossary terms no page links with {{term}}: {sorted(terms - used)}"


def glossary_entry(term: str) -> str:
    body = (ROOT / "glossary.md").read_text(encoding="utf-8")
    return body.split(f"\n{term}\n", 1)[1].split("\n\n", 1)[0]


def test_glossary_entries_give_the_korean_term_and_a_definition():
    for term in glossary_terms():
        assert GLOSSARY_ENTRY.match(glossary_entry(term)), (
            f"{term}: expected '**<Korean>** — definition', optionally with '(standard: ...)' or "
            f"'{COURSE_TERM}' before the dash")


def test_every_korean_glossary_term_is_the_sources_or_marked_as_the_courses_own():
    """Bold Korean terms are quoted from the source notes; a term they lack carries the mark, and only such a term."""
    if not SEEDS.is_dir():
        pytest.skip(f"the source notes are not here ({SEEDS}), so the glossary's Korean terms cannot be checked")
    source = " ".join(re.sub(r"\s+", " ", p.read_text(encoding="utf-8")) for p in sorted(SEEDS.glob("*.txt")))
    for term in glossary_terms():
        entry = glossary_entry(term)
        marked = GLOSSARY_ENTRY.match(entry).group(2) == f" {COURSE_TERM}"
        bold = [b for b in re.findall(r"\*\*([^*]+)\*\*", entry) if re.search(HANGUL, b)]
        missing = [b for b in bold if re.sub(r"\s+", " ", b) not in source]
        if marked:
            assert missing, f"{term}: marked {COURSE_TERM!r}, but the source does contain {bold}: quote it instead"
        else:
            assert not missing, (f"{term}: {missing} not found in the source notes ({SEEDS}); use the source's "
                                 f"term, giving the usual form as '(standard: ...)', or mark it {COURSE_TERM!r}")


def test_every_citation_resolves_and_every_reference_is_cited():
    keys = set(re.findall(r"@\w+\{([^,\s]+),", (ROOT / "references.bib").read_text(encoding="utf-8")))
    cited = {k.strip() for text in page_texts().values() for group in CITE_ROLE.findall(text) for k in group.split(",")}
    assert cited - keys == set(), f"cited but not in references.bib: {sorted(cited - keys)}"
    assert keys - cited == set(), f"in references.bib but never cited: {sorted(keys - cited)}"


def _minutes(text: str) -> list[int]:
    """Every duration in ``text`` ("4 h 10 min", "35 minutes", "about 90 minutes"), in minutes, in order."""
    found = re.findall(r"(?:(\d+) h )?(\d+) min", text)
    return [60 * int(h or 0) + int(m) for h, m in found]


def _stated_time(text: str) -> list[int]:
    match = re.search(r"\*\*Time:\*\*([^\n]*)", text)
    assert match, "no '**Time:**' line"
    return _minutes(match.group(1))


def test_every_landing_page_states_the_sum_of_its_sections_and_its_lab():
    for index in sorted((ROOT / "chapters").glob("*/index.md")):
        chapter = index.parent
        sections = sum(_stated_time(nbformat.read(p, as_version=4).cells[1].source)[0]
                       for p in sorted(chapter.glob("*.ipynb")))
        labs = sorted((ROOT / "labs").glob(f"lab{chapter.name[2:4]}_*.ipynb"))
        lab = sum(_stated_time(nbformat.read(p, as_version=4).cells[1].source)[0] for p in labs)
        stated = _stated_time(index.read_text(encoding="utf-8"))
        want = [sections + lab, sections] + ([lab] if labs else [])
        assert stated == want, (f"{index.relative_to(ROOT)} states {stated} minutes (total, sections, lab); its "
                                f"notebooks' own estimates give {want}")
