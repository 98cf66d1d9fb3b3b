"""Grid, random and TPE hyperparameter search, and the search-curves widget (chapter 3)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

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
    from tqdm.auto import tqdm

    _check_space(space)
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    sides = range(2, grid_side(max_budget, len(space)) + 1)
    total = len(seeds) * (2 * max_budget + sum(k ** len(space) for k in sides))
    objective = cached(objective)
    runs = {}
    with tqdm(total=total, desc="trials", disable=not progress) as bar:
        for seed in seeds:
            for k in sides:
                runs[("grid", seed, k)] = grid_search(objective, space, k ** len(space), seed, progress=bar)
            runs[("random", seed)] = random_search(objective, space, max_budget, seed, progress=bar)
            runs[("tpe", seed)] = tpe_search(objective, space, max_budget, seed, progress=bar)
    return SearchComparison(dict(space), seeds, max_budget, runs)


def plot_search_curves(comparison: SearchComparison, budget: int, *, ax=None, highlight_seed: int | None = None):
    """Best-so-far score against trials for each method: median over seeds, min-max band."""
    import matplotlib.pyplot as plt

    from ..plot import PALETTE

    if ax is None:
        _, ax = plt.subplots()
    for method, colour in zip(METHODS, PALETTE):
        curves = [comparison.result(method, s, budget).best_so_far for s in comparison.seeds]
        trials = np.arange(1, len(curves[0]) + 1)
        stack = np.stack(curves)  # (seeds, trials)
        ax.fill_between(trials, stack.min(0), stack.max(0), color=colour, alpha=0.18, lw=0)
        ax.plot(trials, np.median(stack, 0), color=colour, lw=2,
                label=f"{LABELS[method]} (median {np.median(stack[:, -1]):.1%})")
        if highlight_seed is not None:
            ax.plot(trials, comparison.result(method, highlight_seed, budget).best_so_far,
                    color=colour, lw=1, ls=":")
    ax.set_xlim(1, budget)
    finals = [comparison.result(m, s, budget).best_score for m in METHODS for s in comparison.seeds]
    ax.set_ylim(max(0.0, min(finals) - 0.1), min(1.0, max(finals) + 0.02))  # zoom on where searches end
    seeds_note = f", seed {highlight_seed} dotted" if highlight_seed is not None else ""
    ax.set(xlabel="trials", ylabel="best validation accuracy so far",
           title=f"Best so far over {len(comparison.seeds)} seeds (band: min-max{seeds_note})")
    ax.legend(loc="lower right", fontsize=8)
    return ax.figure


def plot_search_scatter(result: SearchResult, space: Mapping[str, Param], *, ax=None,
                        vmin: float | None = None, vmax: float | None = None, colorbar: bool = True):
    """The trials of one search in the plane of its first two parameters, coloured by score."""
    import matplotlib.pyplot as plt

    if len(space) < 2:
        raise ValueError("a scatter needs a space with at least two parameters")
    if ax is None:
        _, ax = plt.subplots()
    (nx, px), (ny, py) = list(space.items())[:2]
    xs = [p[nx] for p in result.params]
    ys = [p[ny] for p in result.params]
    points = ax.scatter(xs, ys, c=result.scores, cmap="viridis", vmin=vmin, vmax=vmax, s=36,
                        edgecolors="black", linewidths=0.4)
    best = result.best_params
    ax.scatter([best[nx]], [best[ny]], marker="*", s=260, facecolors="none", edgecolors="#D55E00",
               linewidths=1.6, label=f"best: {result.best_score:.1%}")
    ax.set_xscale("log" if px.log else "linear")
    ax.set_yscale("log" if py.log else "linear")
    pad = lambda p: (p.low / 1.6, p.high * 1.6) if p.log else (p.low - 0.03 * (p.high - p.low),  # noqa: E731
                                                                 p.high + 0.03 * (p.high - p.low))
    ax.set(xlim=pad(px), ylim=pad(py), xlabel=f"{nx} (log scale)" if px.log else nx,
           ylabel=f"{ny} (log scale)" if py.log else ny,
           title=f"{LABELS.get(result.method, result.method)}, seed {result.seed}: {len(result)} trials")
    ax.legend(loc="upper left", fontsize=8)
    if colorbar:
        ax.figure.colorbar(points, ax=ax, label="validation accuracy", extend="min" if vmin is not None else "neither")
    return ax.figure


def plot_search_comparison(comparison: SearchComparison, method: str = "random", budget: int = 16,
                           seed: int | None = None):
    """The widget's figure: best-so-far curves of all methods, and one search's scatter."""
    import matplotlib.pyplot as plt

    seed = comparison.seeds[0] if seed is None else seed
    result = comparison.result(method, seed, budget)
    scores = comparison.all_scores()
    vmin = float(np.quantile(scores, 0.5))  # the worse half of all trials shares one colour
    fig, (ax_c, ax_s) = plt.subplots(1, 2, figsize=(11.5, 4.0), layout="constrained")
    plot_search_curves(comparison, budget, ax=ax_c, highlight_seed=seed)
    plot_search_scatter(result, comparison.space, ax=ax_s, vmin=vmin, vmax=float(scores.max()))
    fig.suptitle(f"Hyperparameter search with a budget of {budget} trials")
    return fig


def search_widget(comparison: SearchComparison, *, method: str = "random", budget: int = 16,
                  seed: int | None = None):
    """The search-curves widget: the default comparison as a normal output, then live controls."""
    import ipywidgets as w

    from ..widgets import interactive_figure

    seed = comparison.seeds[0] if seed is None else seed
    comparison.result(method, seed, budget)  # a clear error now rather than in the first redraw
    controls = {
        "method": w.Dropdown(options=[(LABELS[m], m) for m in METHODS], value=method, description="method"),
        "budget": w.IntSlider(value=budget, min=2 ** len(comparison.space), max=comparison.max_budget,
                              description="budget", continuous_update=False),
        "seed": w.Dropdown(options=comparison.seeds, value=seed, description="seed"),
    }

    def draw(method, budget, seed):
        return plot_search_comparison(comparison, method, budget, seed)

    return interactive_figure(draw, controls)


def digits_objective(data=None, *, num_epochs: int = 5, batch_size: int = 64,
                     hidden: tuple[int, ...] = (64,), momentum: float = 0.0) -> Objective:
    """Validation accuracy of a digits MLP trained with SGD at the point's ``lr`` and ``weight_decay``."""
    from ..data.digits import digits_data
    from .recipe import RunConfig, train_run

    data = digits_data() if data is None else data

    def objective(params: dict, seed: int) -> float:
        unknown = set(params) - {"lr", "weight_decay"}
        if unknown or "lr" not in params:
            raise ValueError(f"digits_objective takes lr and optionally weight_decay, got {sorted(params)}")
        config = RunConfig(hidden=hidden, lr=params["lr"], weight_decay=params.get("weight_decay", 0.0),
                           momentum=momentum, num_epochs=num_epochs, batch_size=batch_size)
        return train_run(config, data, seed=seed)["val_acc"][-1]

    return objective
