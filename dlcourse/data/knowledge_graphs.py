"""Knowledge-graph link-prediction benchmarks, as released with ConvE (chapter 9).

Each graph is a set of facts (head entity, relation, tail entity) split into training,
validation and test triples. Five graphs are registered, all from the ConvE repository
(Dettmers et al. 2018; github.com/TimDettmers/ConvE, MIT), which redistributes them:

* ``"umls"``: 135 biomedical concept types of the UMLS Semantic Network and 46 relations
  between them (Kok & Domingos 2007 version);
* ``"kinship"``: 104 members of an Alyawarra community and 25 kinship terms (Denham);
* ``"nations"``: 14 countries and 55 relations of Rummel's Dimensionality of Nations;
* ``"wn18rr"``: 40,943 WordNet synsets and 11 relations (Dettmers et al. 2018);
* ``"fb15k-237"``: 14,541 Freebase entities and 237 relations (Toutanova & Chen 2015).

ConvE's README warns that Kinship and Nations contain many inverse relations (a test fact
is often the mirror image of a training fact), and that the WN18RR test split has entities
never seen in training. ``load`` numbers entities and relations by sorted name over all
three splits, so ids are the same on every machine.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass

import torch

ARCHIVES = {"umls": "umls.tar.gz", "kinship": "kinship.tar.gz", "nations": "nations.tar.gz",
            "wn18rr": "WN18RR.tar.gz", "fb15k-237": "FB15k-237.tar.gz"}
SPLITS = ("train", "valid", "test")


@dataclass
class KnowledgeGraph:
    """A knowledge graph's ``entities`` and ``relations`` (names; the id is the position) and
    its ``train``, ``valid`` and ``test`` triples, each a long tensor of rows (head, relation, tail)."""

    name: str
    entities: list
    relations: list
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor

    @property
    def num_entities(self) -> int:
        return len(self.entities)

    @property
    def num_relations(self) -> int:
        return len(self.relations)

    def split(self, name: str) -> torch.Tensor:
        """The triples of split ``name`` ("train", "valid" or "test")."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}: choose one of {', '.join(SPLITS)}")
        return getattr(self, name)

    def all_triples(self) -> torch.Tensor:
        """Training, validation and test triples together, (n, 3)."""
        return torch.cat([self.train, self.valid, self.test])

    def entity_id(self, name: str) -> int:
        return _index(self.entities, name, "entity", self.name)

    def relation_id(self, name: str) -> int:
        return _index(self.relations, name, "relation", self.name)

    def encode(self, rows) -> torch.Tensor:
        """Named triples (head, relation, tail) as an (n, 3) id tensor; an unknown name is an error naming its row."""
        ids = []
        for n, row in enumerate(rows):
            if not (isinstance(row, (tuple, list)) and len(row) == 3):
                raise ValueError(f"row {n}: expected a (head, relation, tail) triple of names, got {row!r}")
            h, r, t = row
            try:
                ids.append((self.entity_id(h), self.relation_id(r), self.entity_id(t)))
            except KeyError as err:
                raise KeyError(f"row {n} {tuple(row)!r}: {err.args[0]}") from None
        return torch.tensor(ids, dtype=torch.long).reshape(-1, 3)

    def describe(self, triples: torch.Tensor) -> list[tuple[str, str, str]]:
        """Triples as (head, relation, tail) names."""
        triples = check_triples(triples, self.num_entities, self.num_relations)
        return [(self.entities[h], self.relations[r], self.entities[t]) for h, r, t in triples.tolist()]

    def __repr__(self) -> str:
        return (f"KnowledgeGraph({self.name!r}: {self.num_entities} entities, {self.num_relations} relations, "
                f"{len(self.train)}/{len(self.valid)}/{len(self.test)} train/valid/test triples)")


def _index(names: list, name: str, what: str, graph: str) -> int:
    try:
        return names.index(name)
    except ValueError:
        close = [n for n in names if str(name).lower() in n.lower()][:5]
        hint = f" (names containing it: {', '.join(close)})" if close else ""
        raise KeyError(f"{graph} has no {what} named {name!r}{hint}") from None


def check_triples(triples, num_entities: int, num_relations: int) -> torch.Tensor:
    """``triples`` as an (n, 3) long tensor of (head, relation, tail) ids in range, or a clear error."""
    triples = torch.as_tensor(triples)
    if triples.ndim != 2 or triples.shape[1] != 3:
        raise ValueError(f"triples must have shape (n, 3) with columns head, relation, tail; got {tuple(triples.shape)}")
    if triples.is_floating_point() or triples.dtype == torch.bool:
        raise ValueError(f"triples must hold integer ids, got dtype {triples.dtype}")
    triples = triples.long()
    if len(triples):
        heads_tails = triples[:, [0, 2]]
        if int(heads_tails.min()) < 0 or int(heads_tails.max()) >= num_entities:
            raise ValueError(f"entity ids must lie in 0..{num_entities - 1}")
        if int(triples[:, 1].min()) < 0 or int(triples[:, 1].max()) >= num_relations:
            raise ValueError(f"relation ids must lie in 0..{num_relations - 1}")
    return triples


def parse_triples(text: str, source: str) -> list[tuple[str, str, str]]:
    """Tab-separated (head, relation, tail) lines; blank lines are skipped."""
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rstrip("\r").split("\t")
        if len(parts) != 3 or not all(p.strip() for p in parts):
            from . import DataError

            raise DataError(f"{source}, line {n}: expected 'head<TAB>relation<TAB>tail', got {line[:80]!r}")
        rows.append(tuple(p.strip() for p in parts))
    return rows


def _read_archive(path, name: str) -> dict[str, str]:
    from . import DataError

    texts = {}
    with tarfile.open(path, "r:gz") as archive:
        for member in archive.getmembers():
            base = member.name.rsplit("/", 1)[-1]
            if member.isfile() and base in {f"{s}.txt" for s in SPLITS}:
                texts[base[:-4]] = archive.extractfile(member).read().decode("utf-8")
    missing = [s for s in SPLITS if s not in texts]
    if missing:
        raise DataError(f"{path} (knowledge graph {name!r}) lacks {', '.join(m + '.txt' for m in missing)}; "
                        "it should hold train.txt, valid.txt and test.txt as released with ConvE")
    return texts


def from_rows(name: str, rows: dict[str, list[tuple[str, str, str]]]) -> KnowledgeGraph:
    """A ``KnowledgeGraph`` from named triples per split, ids by sorted name."""
    entities = sorted({x for split in rows.values() for h, _, t in split for x in (h, t)})
    relations = sorted({r for split in rows.values() for _, r, _ in split})
    e_id, r_id = {e: i for i, e in enumerate(entities)}, {r: i for i, r in enumerate(relations)}
    tensors = {s: torch.tensor([(e_id[h], r_id[r], e_id[t]) for h, r, t in rows[s]], dtype=torch.long).reshape(-1, 3)
               for s in SPLITS}
    return KnowledgeGraph(name, entities, relations, tensors["train"], tensors["valid"], tensors["test"])


def load(name: str = "umls") -> KnowledgeGraph:
    """One of the registered graphs (``ARCHIVES``), read from its verified archive."""
    from . import fetch

    if name not in ARCHIVES:
        raise ValueError(f"unknown knowledge graph {name!r}: choose one of {', '.join(ARCHIVES)}")
    key = f"kg-conve/{ARCHIVES[name]}"
    path = fetch(key)
    texts = _read_archive(path, name)
    return from_rows(name, {s: parse_triples(texts[s], f"{key}:{s}.txt") for s in SPLITS})


def with_inverses(triples: torch.Tensor, num_relations: int) -> torch.Tensor:
    """``triples`` followed by their mirror images (tail, relation + ``num_relations``, head).

    Answering "which head?" for relation r is then answering "which tail?" for its
    inverse r + R, so a model scores tails only (reciprocal relations, Lacroix et al. 2018).
    """
    triples = torch.as_tensor(triples).long()
    if triples.ndim != 2 or triples.shape[1] != 3:
        raise ValueError(f"triples must have shape (n, 3), got {tuple(triples.shape)}")
    mirrored = torch.stack([triples[:, 2], triples[:, 1] + num_relations, triples[:, 0]], 1)
    return torch.cat([triples, mirrored])
