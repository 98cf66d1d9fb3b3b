"""Grid, random and TPE hyperparameter search and their comparison over seeds (chapter 3).

The plots and the search-curves widget are in ``dlcourse.topics.hpsearch_plots``; the digits
objective is ``dlcourse.topics.recipe.digits_objective`` (re-exported here).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from .recipe import digits_objective  # noqa: F401 (re-exported: it lives next to the recipe it runs)

METHODS = ("grid", "random", "tpe")
LABELS = {"grid": "grid search", "random": "random search", "tpe": "TPE (Optuna)"}

Objective = Callable[[dict, int], float]  # (params, seed) -> validation score, higher is better


@dataclass(frozen=True)
class Param:
    """A real hyperparameter searched between ``low`` and ``high``, on a log scale if ``log``."""

    low: float
    high: float
    log: bool = True

    def __post_init__(self):
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"a Param needs finite low < high, got low={self.low!r}, high={self.high!r}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scale Param needs low > 0, got {self.low!r}; use log=False for a linear range")


# The course's default space: the learning rate and weight decay of SGD, both log-uniform.
DEFAULT_SPACE = {"lr": Param(1e-4, 10.0), "weight_decay": Param(1e-6, 1e-1)}


def _check_space(space: Mapping[str, Param]) -> None:
    if not isinstance(space, Mapping) or not space:
        raise ValueError("space must be a non-empty mapping of name -> Param")
    for name, param in space.items():
        if not isinstance(param, Param):
            raise TypeError(f"space[{name!r}] is a {type(param).__name__}; expected a hpsearch.Param")


def _check_budget(budget) -> None:
    if not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be a positive int (number of trials), got {budget!r}")


def sample(space: Mapping[str, Param], n: int, generator: torch.Generator) -> list[dict]:
    """``n`` independent points, each parameter uniform on its (log) range."""
    _check_space(space)
    u = torch.rand(n, len(space), generator=generator, dtype=torch.float64)  # (n, d) in [0, 1)
    points = [{} for _ in range(n)]
    for j, (name, p) in enumerate(space.items()):
        lo, hi = (math.log(p.low), math.log(p.high)) if p.log else (p.low, p.high)
        values = lo + (hi - lo) * u[:, j]
        values = values.exp() if p.log else values
        for point, v in zip(points, values.tolist()):
            point[name] = v
    return points


def grid(space: Mapping[str, Param], points_per_axis: int) -> list[dict]:
    """Every combination of ``points_per_axis`` values per parameter, evenly spaced (in log if log)."""
    _check_space(space)
    if not isinstance(points_per_axis, int) or points_per_axis < 2:
        raise ValueError(f"points_per_axis must be an int >= 2, got {points_per_axis!r}")
    axes = [np.geomspace(p.low, p.high, points_per_axis) if p.log else np.linspace(p.low, p.high, points_per_axis)
            for p in space.values()]
    mesh = np.meshgrid(*axes, indexing="ij")
    return [dict(zip(space, (float(m.flat[i]) for m in mesh))) for i in range(mesh[0].size)]


def grid_side(budget: int, dims: int) -> int:
    """The largest k with k**dims <= budget: a grid can only spend a whole number of rows."""
    _check_budget(budget)
    k = int(round(budget ** (1.0 / dims)))
    while k ** dims > budget:
        k -= 1
    while (k + 1) ** dims <= budget:
        k += 1
    if k < 2:
        raise ValueError(f"a grid over {dims} parameters needs a budget of at least {2 ** dims}, got {budget}")
    return k


@dataclass
class SearchResult:
    """The trials of one search, in the order they ran."""

    method: str
    seed: int
    params: list[dict]
    scores: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def best_so_far(self) -> np.ndarray:
        return np.maximum.accumulate(self.scores)

    @property
    def best_index(self) -> int:
        return int(np.argmax(self.scores))

    @property
    def best_score(self) -> float:
        return float(self.scores[self.best_index])

    @property
    def best_params(self) -> dict:
        return dict(self.params[self.best_index])

    def head(self, budget: int) -> "SearchResult":
        """The first ``budget`` trials (what a sequential search with that budget would have run)."""
        _check_budget(budget)
        return SearchResult(self.method, self.seed, self.params[:budget], self.scores[:budget])


def _evaluate(objective: Objective, points: list[dict], seed: int, method: str, progress) -> SearchResult:
    scores = []
    for point in points:
        scores.append(float(objective(dict(point), seed)))
        if progress is not None:
            progress.update(1)
    return SearchResult(method, seed, points, np.array(scores))


def grid_search(objective: Objective, space: Mapping[str, Param], budget: int, seed: int = 0,
                *, progress=None) -> SearchResult:
    """Evaluate the largest full grid that fits in ``budget``, in an order shuffled by ``seed``."""
    points = grid(space, grid_side(budget, len(space)))
    order = torch.randperm(len(points), generator=torch.Generator().manual_seed(seed)).tolist()
    return _evaluate(objective, [points[i] for i in order], seed, "grid", progress)


def random_search(objective: Objective, space: Mapping[str, Param], budget: int, seed: int = 0,
                  *, progress=None) -> SearchResult:
    """Evaluate ``budget`` points drawn independently, log-uniform where the parameter is log."""
    _check_budget(budget)
    points = sample(space, budget, torch.Generator().manual_seed(seed))
    return _evaluate(objective, points, seed, "random", progress)


def tpe_search(objective: Objective, space: Mapping[str, Param], budget: int, seed: int = 0, *,
               storage: str | None = None, study_name: str | None = None, n_startup_trials: int = 5,
               progress=None) -> SearchResult:
    """Optuna's TPE sampler for ``budget`` trials; the first ``n_startup_trials`` are random.

    ``storage`` is an Optuna storage URL (``sqlite:///study.db``, or a shared PostgreSQL or
    MySQL database); ``None`` keeps the study in memory.
    """
    import optuna

    _check_space(space)
    _check_budget(budget)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials, multivariate=True)
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=storage,
                                study_name=study_name or f"tpe-seed{seed}", load_if_exists=False)

    def optuna_objective(trial):
        point = {name: trial.suggest_float(name, p.low, p.high, log=p.log) for name, p in space.items()}
        score = float(objective(point, seed))
        if progress is not None:
            progress.update(1)
        return score

    study.optimize(optuna_objective, n_trials=budget)
    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return SearchResult("tpe", seed, [dict(t.params) for t in trials], np.array([t.value for t in trials]))


def cached(objective: Objective) -> Objective:
    """``objective`` remembering its results, keyed by the point and the seed."""
    memo: dict = {}

    def wrapper(params: dict, seed: int) -> float:
        key = (tuple(sorted(params.items())), seed)
        if key not in memo:
            memo[key] = objective(params, seed)
        return memo[key]

    wrapper.memo = memo
    return wrapper


@dataclass
class SearchComparison:
    """Grid, random and TPE searches over several seeds, up to one maximum budget."""

    space: dict
    seeds: list[int]
    max_budget: int
    runs: dict = field(repr=False)  # (method, seed) -> SearchResult; grids as ("grid", seed, k)

    def result(self, method: str, seed: int, budget: int) -> SearchResult:
        """What ``method`` with ``budget`` trials found for ``seed``."""
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        if seed not in self.seeds:
            raise ValueError(f"seed {seed!r} was not run; this comparison has seeds {self.seeds}")
        _check_budget(budget)
        if budget > self.max_budget:
            raise ValueError(f"budget {budget} exceeds the comparison's max_budget {self.max_budget}")
        if method == "grid":
            return self.runs[("grid", seed, grid_side(budget, len(self.space)))]
        return self.runs[(method, seed)].head(budget)

    def best_scores(self, method: str, budget: int) -> np.ndarray:
        """The best score each seed's search reached with ``budget`` trials, shape (seeds,)."""
        return np.array([self.result(method, s, budget).best_score for s in self.seeds])

    def all_scores(self) -> np.ndarray:
        return np.concatenate([r.scores for r in self.runs.values()])


def compare_searches(objective: Objective, space: Mapping[str, Param] = DEFAULT_SPACE, *,
                     seeds: Iterable[int] = range(5), max_budget: int = 25,
                     progress: bool = True) -> SearchComparison:
    """Run grid (every square budget up to ``max_budget``), random and TPE searches for every seed.

    The objective is cached, so grid points that several grid sizes share are trained once.
    """
    from ..progress import progress

    _check_space(space)
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    sides = range(2, grid_side(max_budget, len(space)) + 1)
    total = len(seeds) * (2 * max_budget + sum(k ** len(space) for k in sides))
    objective = cached(objective)
    runs = {}
    with progress(total=total, desc="trials", disable=not progress) as bar:
        for seed in seeds:
            for k in sides:
                runs[("grid", seed, k)] = grid_search(objective, space, k ** len(space), seed, progress=bar)
            runs[("random", seed)] = random_search(objective, space, max_budget, seed, progress=bar)
            runs[("tpe", seed)] = tpe_search(objective, space, max_budget, seed, progress=bar)
    return SearchComparison(dict(space), seeds, max_budget, runs)
