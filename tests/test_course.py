"""Course-wide consistency: glossary terms and citations across every page."""

import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
TERM_ROLE = re.compile(r"\{term\}`([^`]+)`")
CITE_ROLE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")


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


def test_glossary_entries_give_the_korean_term_and_a_definition():
    body = (ROOT / "glossary.md").read_text(encoding="utf-8")
    for term in glossary_terms():
        entry = body.split(f"\n{term}\n", 1)[1].split("\n\n", 1)[0]
        assert re.match(r"\s+\*\*[^*]*[\uac00-\ud7a3][^*]*\*\* — \S", entry), f"{term}: expected '**<Korean>** — definition'"


def test_every_citation_resolves_and_every_reference_is_cited():
    keys = set(re.findall(r"@\w+\{([^,\s]+),", (ROOT / "references.bib").read_text(encoding="utf-8")))
    cited = {k.strip() for text in page_texts().values() for group in CITE_ROLE.findall(text) for k in group.split(",")}
    assert cited - keys == set(), f"cited but not in references.bib: {sorted(cited - keys)}"
    assert keys - cited == set(), f"in references.bib but never cited: {sorted(keys - cited)}"
