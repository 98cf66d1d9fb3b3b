"""dlcourse.data.movietweetings: parsing, the temporal split and leave-last-out (chapter 8)."""

import os

import pytest
import torch

from dlcourse.data import DataError
from dlcourse.data import movietweetings as mt

needs_data = pytest.mark.skipif(not os.environ.get("DLCOURSE_DATA"), reason="needs the data mirror (DLCOURSE_DATA)")


def toy(times, users=None):
    n = len(times)
    users = torch.zeros(n, dtype=torch.long) if users is None else torch.tensor(users)
    return mt.Ratings(users, torch.arange(n), torch.arange(n, dtype=torch.float32), torch.tensor(times),
                      int(users.max()) + 1, n, [f"m{i}" for i in range(n)], [[] for _ in range(n)])


def test_temporal_split_orders_by_time_and_keeps_ties_in_file_order():
    r = toy([50, 10, 40, 20, 30, 30, 60, 70, 80, 90])
    train, val, test = mt.temporal_split(r, fractions=(0.6, 0.2))
    assert train.item.tolist() == [1, 3, 4, 5, 2, 0] and val.item.tolist() == [6, 7] and test.item.tolist() == [8, 9]
    assert train.time.max() <= val.time.min() and val.time.max() <= test.time.min()
    for bad in [(0.9, 0.1), (0.0, 0.5), (0.5,)]:
        with pytest.raises(ValueError, match="fractions"):
            mt.temporal_split(r, fractions=bad)


def test_last_per_user_holds_out_each_users_latest():
    r = toy([5, 1, 3, 2, 9, 7], users=[0, 0, 0, 1, 1, 2])  # user 0: 3 ratings, user 1: 2, user 2: 1
    earlier, held = mt.last_per_user(r, holdout=1, min_ratings=2)
    assert sorted(held.item.tolist()) == [0, 4]  # user 0's time 5, user 1's time 9; user 2 has too few
    assert len(earlier) + len(held) == len(r)
    assert mt.last_per_user(r, holdout=2, min_ratings=3)[1].item.tolist() == [0, 2]
    with pytest.raises(ValueError, match="holdout"):
        mt.last_per_user(r, holdout=0)
    with pytest.raises(ValueError, match="min_ratings"):
        mt.last_per_user(r, holdout=2, min_ratings=2)


def test_subset_checks_its_mask_and_bad_snapshots_are_refused():
    r = toy([1, 2, 3])
    assert r.subset(torch.tensor([True, False, True])).item.tolist() == [0, 2]
    with pytest.raises(ValueError, match="shape"):
        r.subset(torch.tensor([True, False]))
    with pytest.raises(ValueError, match="snapshot"):
        mt.load("1M")


def test_a_malformed_movie_line_names_the_file_and_line():
    with pytest.raises(DataError, match="movies.dat, line 2"):
        mt._parse_movies("1::A (2000)::Drama\nbroken line", "movies.dat")


@needs_data
def test_the_100k_snapshot_as_chapter_8_loads_it():
    r = mt.load()
    assert (len(r), r.num_users, r.num_items) == (100_000, 16_554, 10_506)
    assert r.rating.min() == 0 and r.rating.max() == 10 and r.titles[r.item[0]] == "Skyfall (2012)"
    train, _, test = mt.temporal_split(r)
    rmse = ((test.rating - train.rating.mean()) ** 2).mean().sqrt()
    assert abs(float(rmse) - 1.90) < 0.01  # the global-mean baseline measured for DATA.md
    assert len(mt.load("10K")) == 10_000
