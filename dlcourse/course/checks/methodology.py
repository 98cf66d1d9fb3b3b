"""Checks for lab 3: random search, the learning-rate range test, Polyak averaging, reading curves (chapter 3)."""

from __future__ import annotations

import copy
import math
from dataclasses import fields, is_dataclass

import torch
from torch import nn

from ...data.digits import digits_data
from ...topics.recipe import PATHOLOGIES, REMEDIES, RunConfig, mystery_answers, train_run
from . import (CheckFailed, Exercise, Mistake, call, close_all, diagnose, expect_raises, facing_students, fresh,
               isclose_all, passed)

# Exercise 1 -----------------------------------------------------------------------------


def check_log_uniform(log_uniform) -> None:
    """The sampler: shape, range, log-uniformity, its own generator, and clear errors."""
    state = torch.random.get_rng_state()
    values = call(log_uniform, "log_uniform", 1e-5, 1e-1, 4000, torch.Generator().manual_seed(fresh(0)))
    if not isinstance(values, torch.Tensor) or tuple(values.shape) != (4000,):
        raise CheckFailed(f"log_uniform(low, high, n, generator) should return a tensor of shape (n,), got "
                          f"{type(values).__name__} {tuple(getattr(values, 'shape', ()))}")
    if not torch.equal(state, torch.random.get_rng_state()):
        raise CheckFailed("log_uniform changed the global random state: draw with the generator you are given "
                          "(torch.rand(n, generator=generator))")
    values = values.double()
    if values.min() < 1e-5 * (1 - 1e-9) or values.max() > 1e-1 * (1 + 1e-9):
        raise CheckFailed(f"samples fall outside [1e-5, 1e-1]: min {values.min():.3g}, max {values.max():.3g}")
    below = (values < 1e-3).double().mean().item()  # 1e-3 is the geometric midpoint
    if abs(below - 0.5) > 0.04:
        diagnose([Mistake(lambda: below < 0.1, f"only {below:.1%} of your samples lie below 1e-3, the midpoint of "
                          "the range in log scale; you sampled uniformly in the value. Draw u uniformly between "
                          "log(low) and log(high), then return exp(u)")],
                 otherwise=f"{below:.1%} of your samples lie below 1e-3; a log-uniform sampler puts half of them there")
    again = call(log_uniform, "log_uniform", 1e-5, 1e-1, 4000, torch.Generator().manual_seed(fresh(0)))
    other = call(log_uniform, "log_uniform", 1e-5, 1e-1, 4000, torch.Generator().manual_seed(fresh(1)))
    if not torch.equal(torch.as_tensor(again).double(), values):
        raise CheckFailed("the same generator seed gave different samples: draw only from the generator")
    if torch.equal(torch.as_tensor(other).double(), values):
        raise CheckFailed("different generator seeds gave the same samples: use the generator you are given")
    for bad in ((0.0, 1.0, 3), (1e-2, 1e-3, 3), (-1.0, 1.0, 3)):
        expect_raises(lambda *a: log_uniform(*a, torch.Generator()), "log_uniform", bad,
                      "a log-uniform range needs 0 < low < high")
    passed("log_uniform draws log-uniformly from its own generator and rejects bad ranges")


def check_random_search(log_uniform, random_search) -> None:
    """The sampler, then a search on a cheap objective whose best point is known."""
    check_log_uniform(log_uniform)
    space = {"lr": (1e-4, 10.0), "weight_decay": (1e-6, 1e-1)}
    seen = []

    def objective(params):
        if set(params) != set(space):
            raise CheckFailed(f"random_search should call objective with a dict of {sorted(space)}, got {params!r}")
        seen.append(dict(params))
        return -abs(math.log10(params["lr"]) + 0.5)  # best at lr = 10**-0.5; weight decay does not matter

    out = call(random_search, "random_search", objective, space, 30, torch.Generator().manual_seed(fresh(0)))
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], dict)):
        raise CheckFailed("random_search should return the pair (best_params, best_score)")
    best_params, best_score = out
    if len(seen) != 30:
        raise CheckFailed(f"random_search called the objective {len(seen)} times; it should make exactly n_trials "
                          "= 30 trials")
    for name, (low, high) in space.items():
        values = [p[name] for p in seen]
        if min(values) < low or max(values) > high:
            raise CheckFailed(f"a trial's {name} fell outside its range {low:g}..{high:g}")
        if len(set(values)) < 30:
            raise CheckFailed(f"{name} repeated across trials: draw a fresh value for every trial")
    decades_wd = {math.floor(math.log10(p["weight_decay"])) for p in seen}
    if len(decades_wd) < 3:
        raise CheckFailed(f"30 weight decays all fell within {len(decades_wd)} decade(s) of 1e-6..1e-1: sample "
                          "every parameter log-uniformly with your log_uniform")
    scores = [-abs(math.log10(p["lr"]) + 0.5) for p in seen]
    if not math.isclose(float(best_score), max(scores), rel_tol=1e-9):
        raise CheckFailed(f"best_score {float(best_score):.4g} is not the highest score seen ({max(scores):.4g}); "
                          "keep the trial with the largest objective value")
    if best_params != seen[scores.index(max(scores))]:
        raise CheckFailed("best_params are not the parameters of the best trial")
    passed("random_search makes n_trials log-uniform trials and keeps the best")


# Exercise 2 -----------------------------------------------------------------------------

def reference_lr_range_test(model, X, y, *, lr_min, lr_max, num_steps, batch_size, generator,
                            beta=0.9, stop_factor=4.0, debias=True, early_stop=True, geometric=True):
    """The lab's range test; the keywords build the typical wrong variants the check recognises."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr_min)
    lrs, losses, avg, best = [], [], 0.0, math.inf
    for i in range(num_steps):
        frac = i / (num_steps - 1)
        lr = lr_min * (lr_max / lr_min) ** frac if geometric else lr_min + (lr_max - lr_min) * frac
        for group in optimizer.param_groups:
            group["lr"] = lr
        idx = torch.randint(len(X), (batch_size,), generator=generator)
        loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
        avg = beta * avg + (1 - beta) * loss.item()
        smoothed = avg / (1 - beta ** (i + 1)) if debias else avg
        lrs.append(lr)
        losses.append(smoothed)
        best = min(best, smoothed)
        if early_stop and (not math.isfinite(smoothed) or smoothed > stop_factor * best):
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return lrs, losses


def reference_suggest_lr(lrs, losses) -> float:
    return lrs[min(range(len(losses)), key=losses.__getitem__)] / 10


def _range_case():
    data = digits_data()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    return model, data.X_train, data.y_train


def check_lr_range_test(lr_range_test, suggest_lr) -> None:
    """Compare with the reference on the same model, data and generator; name the usual slips."""
    model, X, y = _range_case()
    settings = dict(lr_min=1e-5, lr_max=10.0, num_steps=150, batch_size=64)
    out = call(lr_range_test, "lr_range_test", copy.deepcopy(model), X, y,
               generator=torch.Generator().manual_seed(fresh(0)), **settings)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise CheckFailed("lr_range_test should return the pair (lrs, losses): two lists of the same length")
    lrs, losses = [list(map(float, v)) for v in out]

    def ref(**kw):
        return reference_lr_range_test(copy.deepcopy(model), X, y, generator=torch.Generator().manual_seed(fresh(0)),
                                       **settings, **kw)

    want_lrs, want_losses = ref()
    if len(lrs) != len(losses):
        raise CheckFailed(f"lrs has {len(lrs)} entries but losses {len(losses)}: record one of each per step")
    if not (isclose_all(lrs, want_lrs, 1e-6) and isclose_all(losses, want_losses, 1e-4)):
        diagnose([
            Mistake(dict(debias=False), "the first losses are about 10x too small: divide the running average by "
                                        "1 - beta**(i + 1) to remove the bias towards its zero start"),
            Mistake(dict(early_stop=False), f"you ran all {settings['num_steps']} steps; stop as soon as the "
                    "smoothed loss exceeds stop_factor times the best smoothed loss so far (or is not finite)"),
            Mistake(dict(geometric=False), "your learning rates grow linearly; they should grow geometrically, "
                                           "lr_min * (lr_max / lr_min) ** (i / (num_steps - 1))"),
        ], lambda **kw: isclose_all(losses, ref(**kw)[1], 1e-4))
        if len(lrs) == 0:
            raise CheckFailed("lr_range_test returned no steps")
        if not math.isclose(lrs[0], settings["lr_min"], rel_tol=1e-6):
            raise CheckFailed(f"the first learning rate should be lr_min = {settings['lr_min']:g}, got {lrs[0]:.3g}")
        n = min(len(losses), len(want_losses))
        first = next((i for i in range(n) if not math.isclose(losses[i], want_losses[i], rel_tol=1e-4)), n)
        raise CheckFailed(
            f"your run and the reference agree for {first} steps, then differ (step {first}: loss "
            f"{losses[first] if first < len(losses) else 'missing'} vs {want_losses[first] if first < len(want_losses) else 'missing'}; "
            f"you ran {len(lrs)} steps, the reference {len(want_lrs)}). Per step: set the lr, draw the batch with "
            "torch.randint(len(X), (batch_size,), generator=generator), compute the loss, update the smoothed "
            "loss, record, test the stop rule, and only then step")
    lr = call(suggest_lr, "suggest_lr", want_lrs, want_losses)
    if not isinstance(lr, (float, int)) or not math.isclose(float(lr), reference_suggest_lr(want_lrs, want_losses),
                                                             rel_tol=1e-6):
        raise CheckFailed(f"suggest_lr should return one tenth of the learning rate at the lowest smoothed loss, "
                          f"{reference_suggest_lr(want_lrs, want_losses):.3g} here; got {lr!r}")
    passed("lr_range_test matches the reference step for step, and suggest_lr picks a tenth of the best rate")


# Exercise 3 -----------------------------------------------------------------------------

def _averaging_case(seed=0):
    torch.manual_seed(fresh(seed))
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    g = torch.Generator().manual_seed(fresh(seed))
    X, y = torch.randn(64, 6, generator=g), torch.randint(3, (64,), generator=g)
    return model, X, y


def _polyak_mistakes(got, history, decay, step, model) -> list[Mistake]:
    """The typical mistakes of an average ``got`` of the parameters in ``history``, after update ``step + 1``."""
    def swapped():
        average = [h.clone() for h in history[0]]
        for h in history[1:]:
            average = [(1 - decay) * a + decay * p for a, p in zip(average, h)]
        return close_all(got, average, 1e-6)

    return [
        Mistake(swapped, "decay and 1 - decay are swapped: the average keeps `decay` of itself, "
                         "avg = decay * avg + (1 - decay) * param"),
        Mistake(lambda: step > 0 and close_all(got, [torch.stack(ps).mean(0) for ps in zip(*history)], 1e-6),
                "you computed the equal-weight running mean (SWA); Polyak averaging here is the exponential moving "
                "average avg = decay * avg + (1 - decay) * param"),
        Mistake(lambda: step == 0, "after the first update the average should equal the model's weights: like "
                "AveragedModel, copy the parameters on the first update instead of mixing them with the weights "
                "you started from"),
        Mistake(lambda: any(g is p for g, p in zip(got, model.parameters())),
                "self.params holds the model's own tensors; keep detached copies (p.detach().clone())"),
    ]


def check_polyak_average(PolyakAverage) -> None:
    """Train a model, update the student's average and AveragedModel side by side, compare every step."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    decay = 0.9
    model, X, y = _averaging_case()
    ours = call(PolyakAverage, "PolyakAverage", model, decay)
    theirs = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    history = []
    for step in range(12):
        loss = nn.functional.cross_entropy(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append([p.detach().clone() for p in model.parameters()])
        call(ours.update, "PolyakAverage.update", model)
        theirs.update_parameters(model)
        got = list(getattr(ours, "params", []))
        want = [p.detach() for p in theirs.module.parameters()]
        if len(got) != len(want) or not all(isinstance(g, torch.Tensor) for g in got):
            raise CheckFailed(f"self.params should be a list of {len(want)} tensors, one per model parameter")
        if close_all(got, want, 1e-6):
            continue
        worst = max((g - w).abs().max().item() for g, w in zip(got, want))
        diagnose(_polyak_mistakes(got, history, decay, step, model),
                 otherwise=f"after update {step + 1} your average differs from AveragedModel's by up to {worst:.3g}")
    passed("PolyakAverage equals torch.optim.swa_utils.AveragedModel with get_ema_multi_avg_fn after 12 updates")


# Exercise 4 -----------------------------------------------------------------------------

EVIDENCE = {
    "healthy": "its loss falls fast, keeps falling after the learning rate drops, and validation accuracy stays "
               "close to training accuracy at a high level",
    "bad initialisation": "its loss sits flat near log 10 = 2.30 for the first stretch of steps, then falls",
    "needs decay": "its learning rate never changes and its loss stops improving at a noisy level",
    "decay too early": "its learning rate drops a hundredfold after the first epoch and the loss then crawls",
    "overfitting": "its training accuracy reaches 100 % while validation accuracy stays far lower, and the "
                   "validation loss rises after its minimum",
    "underfitting": "its training and validation accuracy move together, both well below what the healthy run "
                    "reaches",
}


def check_diagnosis(diagnosis, seed: int = 1) -> None:
    """Every letter named, with one of the known pathologies, and named right."""
    answers = mystery_answers(seed)
    if not isinstance(diagnosis, dict):
        raise CheckFailed("diagnosis should be a dict mapping each letter to a pathology, e.g. {'A': 'overfitting'}")
    missing = sorted(set(answers) - set(diagnosis))
    if missing:
        raise CheckFailed(f"diagnosis has no entry for {', '.join(missing)}: name all six curves A-F")
    names = sorted(PATHOLOGIES)
    for letter in sorted(answers):
        if diagnosis[letter] not in PATHOLOGIES:
            raise CheckFailed(f"curve {letter}: {diagnosis[letter]!r} is not one of {', '.join(map(repr, names))}")
    wrong = [letter for letter in sorted(answers) if diagnosis[letter] != answers[letter]]
    if wrong:
        letter = wrong[0]
        raise CheckFailed(f"{len(wrong)} of 6 wrong. Look again at curve {letter}, which you called "
                          f"{diagnosis[letter]!r}: {EVIDENCE[answers[letter]]}")
    passed("all six curves diagnosed correctly")


# Exercise 5 -----------------------------------------------------------------------------

def check_fixed_schedule(fixed_config) -> None:
    """Only the schedule may change; the fixed run must reach the healthy run's accuracy."""
    broken = PATHOLOGIES["decay too early"]
    if not (is_dataclass(fixed_config) and isinstance(fixed_config, RunConfig)):
        raise CheckFailed("fixed_config should be a RunConfig, e.g. dataclasses.replace(broken, decay_epochs=(...,))")
    allowed = {"decay_epochs", "decay_factor"}
    changed = sorted(f.name for f in fields(RunConfig)
                     if getattr(fixed_config, f.name) != getattr(broken, f.name) and f.name not in allowed)
    if changed:
        raise CheckFailed(f"you changed {', '.join(changed)}; fix the run by changing only decay_epochs and "
                          "decay_factor")
    history = train_run(fixed_config, digits_data(), seed=0)
    if history["val_acc"][-1] < 0.95:
        raise CheckFailed(f"your schedule ends at {history['val_acc'][-1]:.1%} validation accuracy; the target is "
                          f"95 %. {REMEDIES['decay too early'].capitalize()}.")
    passed("the rescheduled run reaches the 95 % target on validation data")


CHECKS = {
    "Exercise 1": Exercise(("log_uniform", "random_search"), check_random_search),
    "Exercise 2": Exercise(("lr_range_test", "suggest_lr"), check_lr_range_test),
    "Exercise 3": Exercise("PolyakAverage", check_polyak_average),
    "Exercise 4": Exercise("diagnosis", check_diagnosis),
    "Exercise 5": Exercise("fixed_config", check_fixed_schedule),
}

facing_students(globals())  # a stub's NotImplementedError becomes a one-line ExerciseNotDone
