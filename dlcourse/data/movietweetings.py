"""MovieTweetings: movie ratings collected from tweets (chapter 8).

Dooms, De Pessemier & Martens (2013) collected the ratings that IMDb users tweeted ("I rated
The Matrix 9/10"). Two snapshots are registered: ``"100K"`` (the first 100,000 ratings, Feb
to Sep 2013) and ``"10K"``. Each rating is ``user::movie::rating 0-10::unix time``; movies
are ``movie::title (year)::genres`` (genres separated by ``|``, possibly none). The data are
MIT-licensed (github.com/sidooms/MovieTweetings).

``load`` numbers users 0..U-1 in order of their original id and movies 0..I-1 in the order
of the movie file; ``temporal_split`` cuts the ratings at two moments in time, so that no
rating used for training comes after one used for validation or testing; ``last_per_user``
holds out each user's latest interactions for ranking evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

SNAPSHOTS = ("100K", "10K")


@dataclass
class Ratings:
    """Ratings as parallel tensors: ``user``, ``item`` (long), ``rating`` (float, 0-10), ``time`` (long, unix s).

    ``num_users`` and ``num_items`` are the sizes of the whole snapshot (ids of a subset
    keep their meaning); ``titles[i]`` and ``genres[i]`` describe movie ``i``.
    """

    user: torch.Tensor
    item: torch.Tensor
    rating: torch.Tensor
    time: torch.Tensor
    num_users: int
    num_items: int
    titles: list
    genres: list

    def __len__(self) -> int:
        return len(self.user)

    def __repr__(self) -> str:
        return f"Ratings({len(self)} ratings, {self.num_users} users, {self.num_items} movies)"

    def subset(self, index) -> "Ratings":
        """The ratings at ``index`` (a boolean mask or integer indices), same users and movies."""
        index = torch.as_tensor(index)
        if index.dtype == torch.bool and index.shape != (len(self),):
            raise ValueError(f"a boolean mask must have shape ({len(self)},), got {tuple(index.shape)}")
        return Ratings(self.user[index], self.item[index], self.rating[index], self.time[index],
                       self.num_users, self.num_items, self.titles, self.genres)


def _parse_movies(text: str, source: str):
    ids, titles, genres = [], [], []
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split("::")
        if len(parts) != 3:
            from . import DataError

            raise DataError(f"{source}, line {n}: expected 'movie::title (year)::genres', got {line[:80]!r}")
        ids.append(parts[0])
        titles.append(parts[1])
        genres.append([g for g in parts[2].split("|") if g])
    return ids, titles, genres


def load(snapshot: str = "100K") -> Ratings:
    """All ratings of one snapshot (``"100K"`` or ``"10K"``), read from the verified files."""
    from . import DataError, fetch

    if snapshot not in SNAPSHOTS:
        raise ValueError(f"unknown snapshot {snapshot!r}: choose one of {', '.join(SNAPSHOTS)}")
    movies_key, ratings_key = (f"movietweetings/snapshots/{snapshot}/{name}.dat" for name in ("movies", "ratings"))
    movie_ids, titles, genres = _parse_movies(fetch(movies_key).read_text(encoding="utf-8"), movies_key)
    item_of = {m: i for i, m in enumerate(movie_ids)}
    rows = []
    for n, line in enumerate(fetch(ratings_key).read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split("::")
        if len(parts) != 4 or parts[1] not in item_of or not parts[2].isdigit() or not 0 <= int(parts[2]) <= 10:
            raise DataError(f"{ratings_key}, line {n}: expected 'user::movie::rating 0-10::time' with a movie "
                            f"of the movie file, got {line[:80]!r}")
        rows.append((int(parts[0]), item_of[parts[1]], int(parts[2]), int(parts[3])))
    data = np.array(rows, dtype=np.int64)  # (N, 4): original user, item, rating, time
    user_ids, user = np.unique(data[:, 0], return_inverse=True)
    return Ratings(torch.from_numpy(user.astype(np.int64)), torch.from_numpy(data[:, 1].copy()),
                   torch.from_numpy(data[:, 2].astype(np.float32)), torch.from_numpy(data[:, 3].copy()),
                   len(user_ids), len(movie_ids), titles, genres)


def temporal_split(ratings: Ratings, fractions: tuple[float, float] = (0.8, 0.1)) -> tuple[Ratings, Ratings, Ratings]:
    """Train / validation / test by time: the earliest ``fractions[0]`` of the ratings, the next ``fractions[1]``, the rest.

    Ratings are ordered by time (ties keep file order), so every training rating is at most
    as recent as every validation rating, and those at most as recent as every test rating.
    Users and movies first seen after the cut appear only in the later parts (cold start).
    """
    if len(fractions) != 2 or not all(0.0 < f < 1.0 for f in fractions) or sum(fractions) >= 1.0:
        raise ValueError(f"fractions must be (train, validation), each in (0, 1) and summing to less than 1 "
                         f"(the rest is the test part), got {fractions!r}")
    order = torch.from_numpy(np.argsort(ratings.time.numpy(), kind="stable"))
    n_train, n_val = int(fractions[0] * len(order)), int(fractions[1] * len(order))
    return (ratings.subset(order[:n_train]), ratings.subset(order[n_train:n_train + n_val]),
            ratings.subset(order[n_train + n_val:]))


def last_per_user(ratings: Ratings, holdout: int = 1, min_ratings: int = 3) -> tuple[Ratings, Ratings]:
    """(earlier, held out): each user with at least ``min_ratings`` ratings gives their latest ``holdout`` to the second part.

    Users with fewer ratings keep them all in the first part. The usual leave-last-out split
    of implicit-feedback ranking: each held-out interaction is predicted from what came before.
    """
    if isinstance(holdout, bool) or not isinstance(holdout, int) or holdout < 1:
        raise ValueError(f"holdout must be a positive int, got {holdout!r}")
    if isinstance(min_ratings, bool) or not isinstance(min_ratings, int) or min_ratings <= holdout:
        raise ValueError(f"min_ratings must be an int larger than holdout = {holdout}, got {min_ratings!r}")
    order = np.lexsort((np.arange(len(ratings)), ratings.time.numpy(), ratings.user.numpy()))  # by user, then time
    users = ratings.user.numpy()[order]
    counts = np.bincount(users, minlength=ratings.num_users)
    end = np.cumsum(counts)[users]  # one past each user's last rating in ``order``
    rank_from_end = end - np.arange(len(order))  # 1 for a user's latest rating
    held = (rank_from_end <= holdout) & (counts[users] >= min_ratings)
    mask = np.zeros(len(ratings), dtype=bool)
    mask[order[held]] = True
    mask = torch.from_numpy(mask)
    return ratings.subset(~mask), ratings.subset(mask)
