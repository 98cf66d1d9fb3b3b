"""dlcourse.data.knowledge_graphs: parsing, ids by sorted name, inverse triples (chapter 9)."""

import os

import pytest
import torch

from dlcourse.data import DataError
from dlcourse.data import knowledge_graphs as kgd

needs_data = pytest.mark.skipif(not os.environ.get("DLCOURSE_DATA"), reason="needs the data mirror (DLCOURSE_DATA)")


def toy():
    rows = {"train": [("b", "likes", "a"), ("a", "likes", "c")], "valid": [("c", "knows", "a")],
            "test": [("d", "likes", "b")]}
    return kgd.from_rows("toy", rows)


def test_ids_follow_sorted_names_over_all_splits():
    g = toy()
    assert g.entities == ["a", "b", "c", "d"] and g.relations == ["knows", "likes"]
    assert g.train.tolist() == [[1, 1, 0], [0, 1, 2]] and g.test.tolist() == [[3, 1, 1]]
    assert g.describe(g.valid) == [("c", "knows", "a")]
    assert g.all_triples().shape == (4, 3) and g.entity_id("d") == 3 and g.relation_id("likes") == 1
    with pytest.raises(KeyError, match="no entity named 'e'"):
        g.entity_id("e")
    with pytest.raises(ValueError, match="unknown split"):
        g.split("dev")


def test_with_inverses_appends_mirrored_triples_with_shifted_relations():
    t = torch.tensor([[0, 1, 2], [3, 0, 4]])
    assert kgd.with_inverses(t, 5).tolist() == [[0, 1, 2], [3, 0, 4], [2, 6, 0], [4, 5, 3]]
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        kgd.with_inverses(torch.zeros(3, 2), 5)


def test_bad_lines_and_ids_give_clear_errors():
    with pytest.raises(DataError, match="line 2"):
        kgd.parse_triples("a\tr\tb\na r b\n", "x.txt")
    assert kgd.parse_triples("a\tr\tb\n\n", "x.txt") == [("a", "r", "b")]
    with pytest.raises(ValueError, match="entity ids"):
        kgd.check_triples(torch.tensor([[0, 0, 9]]), 4, 2)
    with pytest.raises(ValueError, match="integer ids"):
        kgd.check_triples(torch.zeros(1, 3), 4, 2)
    with pytest.raises(ValueError, match="unknown knowledge graph"):
        kgd.load("freebase")


@needs_data
@pytest.mark.parametrize("name, sizes", [("umls", (135, 46, 5216, 652, 661)), ("nations", (14, 55, 1592, 199, 201)),
                                         ("kinship", (104, 25, 8544, 1068, 1074))])
def test_benchmarks_have_their_published_sizes(name, sizes):
    g = kgd.load(name)
    assert (g.num_entities, g.num_relations, len(g.train), len(g.valid), len(g.test)) == sizes
    assert g.train.dtype == torch.long and g.train.shape[1] == 3


def test_encode_turns_names_into_ids_and_names_the_bad_row():
    g = toy()
    assert g.encode([("a", "likes", "c"), ("d", "knows", "b")]).tolist() == [[0, 1, 2], [3, 0, 1]]
    with pytest.raises(KeyError, match=r"row 1 .*no entity named 'e'"):
        g.encode([("a", "likes", "c"), ("e", "likes", "a")])
    with pytest.raises(KeyError, match="no relation named 'hates'"):
        g.encode([("a", "hates", "c")])
    with pytest.raises(ValueError, match="row 0: expected a"):
        g.encode([("a", "likes")])
