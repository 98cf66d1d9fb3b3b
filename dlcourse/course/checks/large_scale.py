"""Checks for lab 4: a data-parallel step, global magnitude pruning and fine-tuning, distillation, a cascade under a budget."""

from __future__ import annotations

import copy
import functools
import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ...data.digits import digits_data
from ...topics.dynamic import linear_macs
from . import (CheckFailed, Exercise, Mistake, as_float, call, close, close_all, diagnose, expect_raises,
               facing_students, fresh, isclose_all, passed)


def _seeded(build, seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


# Exercise 1 -----------------------------------------------------------------------------

def reference_data_parallel_step(replicas, X, y, lr, *, reduce="weighted", zero_grad=True):
    """Shard k of (X, y) on replica k, all-reduce the gradients, one SGD step everywhere; keywords build mistakes."""
    shards = list(zip(X.tensor_split(len(replicas)), y.tensor_split(len(replicas))))
    for model, (X_k, y_k) in zip(replicas, shards):
        if zero_grad:
            model.zero_grad()
        F.cross_entropy(model(X_k), y_k).backward()
    sizes = [len(y_k) for _, y_k in shards]
    weights = {"weighted": [n / len(y) for n in sizes], "mean": [1 / len(sizes)] * len(sizes),
               "sum": [1.0] * len(sizes)}[reduce]
    for params in zip(*(m.parameters() for m in replicas)):  # one parameter, on every replica
        average = sum(w * p.grad for w, p in zip(weights, params))
        for p in params:
            p.grad = average.clone()
    with torch.no_grad():
        for model in replicas:
            for p in model.parameters():
                p -= lr * p.grad


def _dp_case(num_replicas):
    model = _seeded(lambda: nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10)).double())
    data = digits_data()
    X, y = data.X_train[:100].double(), data.y_train[:100]
    return [copy.deepcopy(model) for _ in range(num_replicas)], [(X[:50], y[:50]), (X[50:], y[50:])]


def check_data_parallel_step(data_parallel_step) -> None:
    """Two steps with 4 replicas on batches of 50 (shards 13, 13, 12, 12) against one process on the whole batch."""
    K, lr = 4, 0.5
    (single,), batches = _dp_case(1)
    replicas, _ = _dp_case(K)
    seen = [[] for _ in range(K)]
    for k, model in enumerate(replicas):
        model.register_forward_pre_hook(lambda module, args, k=k: seen[k].append(len(args[0])))
    for step, (X, y) in enumerate(batches):
        single.zero_grad()
        F.cross_entropy(single(X), y).backward()
        with torch.no_grad():
            for p in single.parameters():
                p -= lr * p.grad
        call(data_parallel_step, "data_parallel_step", replicas, X.clone(), y.clone(), lr)
        sizes = [len(s) for s in y.tensor_split(K)]
        for k in range(K):
            if seen[k] != [sizes[k]]:
                raise CheckFailed(f"in step {step + 1} replica {k} ran forward passes on {seen[k]} examples; it "
                                  f"should run once, on its own shard of {sizes[k]} (X.tensor_split({K})[{k}])")
            seen[k].clear()
        params = [[p.detach() for p in m.parameters()] for m in replicas]
        for k in range(1, K):
            if not close_all(params[k], params[0], 1e-12):
                raise CheckFailed(f"after step {step + 1} replica {k}'s weights differ from replica 0's: an "
                                  "all-reduce leaves the same averaged gradient on every worker, so write it into "
                                  "every replica's .grad and step every replica")
        want = [p.detach() for p in single.parameters()]
        if close_all(params[0], want, 1e-6):
            continue

        def matches(**kw):
            variant, _ = _dp_case(K)
            for X_s, y_s in batches[:step + 1]:
                reference_data_parallel_step(variant, X_s, y_s, lr, **kw)
            return close_all(params[0], [p.detach() for p in variant[0].parameters()], 1e-6)

        worst = max((a - b).abs().max().item() for a, b in zip(params[0], want))
        diagnose([
            Mistake(dict(reduce="sum"), f"your step is about {K} times too large: you summed the {K} replicas' "
                    "gradients; the all-reduce must average them"),
            Mistake(dict(reduce="mean"), f"you averaged with equal weights, but the shards hold {sizes} examples: each "
                    "replica's loss is a mean over its own shard, so weight replica k's gradient by n_k / N to get "
                    "the gradient of the mean loss over the whole batch"),
            Mistake(dict(zero_grad=False), "step 2 adds step 1's gradient: .grad accumulates across backward "
                    "passes, so zero each replica's gradients (model.zero_grad()) before its backward pass"),
            Mistake(lambda: step > 0, "step 1 matches but step 2 does not: something from step 1 (stale gradients "
                    "in .grad?) leaks into step 2"),
        ], matches, otherwise=f"after step {step + 1} your weights differ from the single-process step by up to "
                              f"{worst:.3g}: average the replicas' gradients with weights n_k / N, then "
                              "p -= lr * grad on every replica")
    passed("data_parallel_step equals one SGD step on the whole batch, and the 4 replicas stay identical")


# Exercise 2 -----------------------------------------------------------------------------

def reference_magnitude_prune(model, sparsity, *, per_layer=False):
    """Zero the round(sparsity * n) smallest |w| of the weight matrices (globally), in place; return the masks."""
    weights = {name: p for name, p in model.named_parameters() if p.dim() > 1}
    masks = {}
    for names in ([[n] for n in weights] if per_layer else [list(weights)]):
        scores = torch.cat([weights[n].detach().abs().flatten() for n in names])
        keep = torch.ones(len(scores), dtype=torch.bool)
        keep[torch.argsort(scores, stable=True)[:round(sparsity * len(scores))]] = False
        for name, part in zip(names, keep.split([weights[n].numel() for n in names])):
            masks[name] = part.reshape(weights[name].shape).to(weights[name].dtype)
    with torch.no_grad():
        for name, w in weights.items():
            w.mul_(masks[name])
    return masks


def _prune_case(sizes, scales, decimals, seed):
    """Linear layers whose weights have very different scales (ties where rounded), with tiny non-zero biases."""
    g = torch.Generator().manual_seed(fresh(seed))
    layers = []
    for n_in, n_out, scale in zip(sizes[:-1], sizes[1:], scales):
        linear = nn.Linear(n_in, n_out)
        with torch.no_grad():
            w = torch.randn(n_out, n_in, generator=g) * scale
            linear.weight.copy_(w if decimals is None else torch.round(w, decimals=decimals))
            linear.bias.fill_(1e-3)  # smaller than every weight: ranking the biases too would prune them first
        layers += [linear, nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _check_prune_case(magnitude_prune, model, sparsity) -> None:
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    names = [n for n, p in model.named_parameters() if p.dim() > 1]
    masks = call(magnitude_prune, "magnitude_prune", model, sparsity)
    where = f"magnitude_prune(model, {sparsity})"
    if not isinstance(masks, dict):
        raise CheckFailed(f"{where} should return a dict: weight name -> mask, got {type(masks).__name__}")
    if any(n.endswith("bias") for n in masks) or any(not torch.equal(p, before[n]) for n, p in
                                                     model.named_parameters() if p.dim() < 2):
        raise CheckFailed("you pruned biases: prune only the weight matrices (parameters with 2 or more "
                          "dimensions); biases are few, and zeroing them saves nothing")
    if sorted(masks) != sorted(names):
        raise CheckFailed(f"{where} should return one mask per weight matrix, keys {names}; got {sorted(masks)}")
    for n in names:
        mask = masks[n]
        if not isinstance(mask, torch.Tensor) or mask.shape != before[n].shape:
            raise CheckFailed(f"the mask for {n} should be a tensor of shape {tuple(before[n].shape)}")
        if not ((mask == 0) | (mask == 1)).all():
            raise CheckFailed(f"the mask for {n} holds values other than 0 and 1: a mask says keep (1) or prune (0)")
    W = dict(model.named_parameters())
    for n in names:
        if not torch.equal(W[n].detach(), before[n] * masks[n].to(before[n].dtype)):
            raise CheckFailed(f"{n} is not its old value times its mask: apply each mask to its weight in place "
                              "(under torch.no_grad(): w.mul_(mask))" if torch.equal(W[n].detach(), before[n]) else
                              f"{n} changed where its mask keeps it, or is non-zero where it prunes: w.mul_(mask)")
    scores = {n: before[n].abs().flatten() for n in names}
    pruned = torch.cat([scores[n][masks[n].flatten() == 0] for n in names])
    kept = torch.cat([scores[n][masks[n].flatten() != 0] for n in names])
    total = sum(s.numel() for s in scores.values())
    k = round(sparsity * total)
    ordered = len(pruned) == 0 or len(kept) == 0 or pruned.max() <= kept.min()
    per_layer = [round(sparsity * s.numel()) for s in scores.values()]
    if not ordered and [int((masks[n] == 0).sum()) for n in names] == per_layer:
        raise CheckFailed(f"each weight matrix is pruned to {sparsity:.0%} on its own ({per_layer} zeros): prune "
                          "globally, ranking the magnitudes of all the matrices together, so that a layer of small "
                          "weights loses more than a layer of large ones")
    if len(pruned) != k:
        threshold = torch.cat(list(scores.values())).sort().values[max(k - 1, 0)]
        ties = int((torch.cat(list(scores.values())) == threshold).sum())
        raise CheckFailed(f"{where} pruned {len(pruned)} of {total} weights; round({sparsity} * {total}) = {k} were "
                          f"expected. {ties} weights tie at |w| = {threshold:.3g}, the k-th smallest: a comparison "
                          "with a threshold prunes all or none of them. Rank the entries (torch.argsort of the "
                          "flattened magnitudes) and prune exactly the first k" if ties > 1 else
                          f"{where} pruned {len(pruned)} of {total} weights; exactly k = round(sparsity * n) = {k} "
                          "should go (off by one? the k-th smallest magnitude is pruned too)")
    if not ordered:
        raise CheckFailed(f"a kept weight (|w| = {kept.min():.3g}) is smaller than a pruned one ({pruned.max():.3g}): "
                          "prune the k smallest magnitudes over all weight matrices")


def _tie_case() -> nn.Sequential:
    """Twelve weights whose 6th smallest magnitude, 0.3, is shared by the 4th to the 7th: a threshold fails."""
    model = _prune_case((4, 2, 2), (1.0, 1.0), None, seed=0)
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.1, -0.3, 0.3, 0.9], [0.5, -0.3, 0.7, 0.2]]))
        model[2].weight.copy_(torch.tensor([[0.3, -0.8], [0.05, 0.6]]))
    return model


def check_magnitude_prune(magnitude_prune) -> None:
    """A large random net, ties across the cut, layers of different scale, sparsity 0, and bad sparsities."""
    _check_prune_case(magnitude_prune, _prune_case((20, 30, 5), (0.3, 1.0), None, seed=22), 0.9)
    _check_prune_case(magnitude_prune, _tie_case(), 0.5)
    for sparsity in (0.5, 0.0):
        _check_prune_case(magnitude_prune, _prune_case((8, 6, 4), (1.0, 0.1), 1, seed=11), sparsity)
    for bad in (-0.1, 1.5):
        expect_raises(lambda s: magnitude_prune(_prune_case((8, 6, 4), (1.0, 0.1), 1, 0), s), "magnitude_prune",
                      (bad,), "sparsity is a fraction between 0 and 1")
    passed("magnitude_prune zeroes exactly round(sparsity * n) of the smallest weights, ranked over all matrices")


# Exercise 4 -----------------------------------------------------------------------------

def reference_distillation_loss(student_logits, teacher_logits, y, T, alpha, *, t_squared=True, reverse=False,
                                soften_student=True, soften_teacher=True, reduction="batchmean",
                                swap_alpha=False, probs_as_input=False):
    """alpha T^2 KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) CE(student, y); keywords build mistakes."""
    s = student_logits / (T if soften_student else 1.0)
    t = teacher_logits / (T if soften_teacher else 1.0)
    if reverse:
        s, t = t, s
    inputs = F.softmax(s, dim=1) if probs_as_input else F.log_softmax(s, dim=1)
    with warnings.catch_warnings():  # reduction="mean" (a mistake to recognise) warns that it is not "batchmean"
        warnings.simplefilter("ignore", UserWarning)
        soft = F.kl_div(inputs, F.softmax(t, dim=1), reduction=reduction) * (T * T if t_squared else 1.0)
    hard = F.cross_entropy(student_logits, y)
    a = 1 - alpha if swap_alpha else alpha
    return a * soft + (1 - a) * hard


DISTILLATION_MISTAKES = [
    Mistake(dict(t_squared=False), "the soft term lacks the factor T^2: Hinton et al. multiply it by T^2 so that "
                                   "its gradients keep their size when T changes"),
    Mistake(dict(reverse=True), "you computed KL(student || teacher); the loss is KL(teacher || student). In "
                                "F.kl_div(input, target) the input is the student's log-probabilities and the "
                                "target the teacher's probabilities"),
    Mistake(dict(soften_teacher=False), "you divided only the student's logits by T: soften the teacher's too"),
    Mistake(dict(soften_student=False), "you divided only the teacher's logits by T: soften the student's too"),
    Mistake(dict(reduction="mean"), "your soft term is C = 10 times too small: reduction='mean' also averages over "
                                    "the classes; use reduction='batchmean' (sum over classes, mean over the batch)"),
    Mistake(dict(reduction="sum"), "your soft term is batch-size times too large: use reduction='batchmean'"),
    Mistake(dict(probs_as_input=True), "F.kl_div takes log-probabilities as its first argument: pass "
                                       "F.log_softmax(student_logits / T, dim=1), not softmax"),
    Mistake(dict(swap_alpha=True), "alpha and 1 - alpha are swapped: alpha weights the soft (teacher) term"),
]


def check_distillation_loss(distillation_loss) -> None:
    """Three batches of random logits and temperatures, value and gradient against the reference."""
    g = torch.Generator().manual_seed(fresh(0))
    for T, alpha in [(4.0, 0.7), (2.0, 0.25), (1.0, 0.5)]:
        student = (2 * torch.randn(8, 10, generator=g, dtype=torch.float64)).requires_grad_()
        teacher, y = 3 * torch.randn(8, 10, generator=g, dtype=torch.float64), torch.randint(10, (8,), generator=g)
        got = call(distillation_loss, "distillation_loss", student, teacher.clone(), y.clone(), T, alpha)
        if not (isinstance(got, torch.Tensor) and got.numel() == 1 and got.requires_grad):
            raise CheckFailed("distillation_loss should return a one-element tensor that carries gradients to the "
                              "student's logits (no .item(), no .detach())")
        want = reference_distillation_loss(student, teacher, y, T, alpha)
        if math.isnan(got.item()):
            raise CheckFailed("your loss is NaN: F.kl_div's target must be probabilities (softmax), unless you pass "
                              "log_target=True with log-probabilities")
        if not close(got.detach().reshape(()), want.detach(), 1e-6):
            diagnose(DISTILLATION_MISTAKES, lambda **kw: close(
                got.detach().reshape(()), reference_distillation_loss(student, teacher, y, T, alpha, **kw).detach(),
                1e-6), otherwise=f"at T = {T}, alpha = {alpha} your loss is {got.item():.6g}, the reference "
                                 f"{want.item():.6g}: compute the two terms separately and compare")
        (grad,), (want_grad,) = torch.autograd.grad(got.sum(), student), torch.autograd.grad(want, student)
        if not close(grad, want_grad, 1e-6):
            raise CheckFailed("the loss has the right value but the wrong gradient with respect to the student's "
                              "logits: build it from differentiable tensor operations only")
    passed("distillation_loss matches alpha T^2 KL(teacher || student) + (1 - alpha) CE, value and gradient")


# Exercise 5 -----------------------------------------------------------------------------

def reference_cascade(threshold, confidence, cheap_correct, big_correct, cheap_cost, big_cost, *,
                      cheap_on_all=True, cost_rule="<", acc_rule="<"):
    """(accuracy, average cost) when inputs with confidence < threshold go to the big model; keywords build mistakes."""
    def send(rule):
        return (confidence < threshold) if rule == "<" else (confidence <= threshold)
    sent = send(cost_rule).double().mean().item()
    accuracy = torch.where(send(acc_rule), big_correct, cheap_correct).double().mean().item()
    return accuracy, cheap_cost * (1.0 if cheap_on_all else 1 - sent) + big_cost * sent


def reference_choose_threshold(confidence, cheap_correct, big_correct, cheap_cost, big_cost, budget, *,
                               ties="cheapest", pick="accuracy", strict_budget=False, with_inf=True):
    """The most accurate threshold (cheapest among equals) whose cost meets the budget: (threshold, accuracy, cost)."""
    if budget < cheap_cost:
        raise ValueError(f"budget {budget} is below the cheap model's cost {cheap_cost}: no threshold meets it")
    best = None
    for threshold in sorted(set(confidence.tolist())) + [math.inf] * with_inf:
        accuracy, cost = reference_cascade(threshold, confidence, cheap_correct, big_correct, cheap_cost, big_cost)
        if cost < budget or (cost == budget and not strict_budget):
            key = {"accuracy": accuracy, "largest": threshold}[pick]
            if best is None or key > best[0] or (key == best[0] and ties == "costliest"):
                best = (key, (threshold, accuracy, cost))
    return best[1]


@functools.lru_cache(maxsize=None)
def _trained(hidden: tuple, seed: int = 0, num_epochs: int = 20) -> nn.Module:
    """The lab's MLPs trained on the digits with SGD and momentum (cached: the checks of exercises 4 and 5 share it)."""
    from ...models.mlp import mlp
    from ...train import TensorBatches, fit

    data = digits_data()
    model = _seeded(lambda: mlp(64, hidden, 10), seed)
    fit(model, TensorBatches(data.X_train, data.y_train, batch_size=64, generator=torch.Generator().manual_seed(seed)),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), num_epochs=num_epochs, progress=False)
    return model.eval()


def _cascade_cases():
    """Three small cases with a known answer, and the digits validation set with real models and costs."""
    b = lambda *v: torch.tensor(v, dtype=torch.bool)  # noqa: E731
    hand = [(torch.tensor([0.5, 0.7, 0.7, 0.9]), b(0, 1, 0, 1), b(1, 1, 1, 0), 1.0, 10.0, (6.0, 8.5, 11.0)),
            (torch.tensor([0.6, 0.8]), b(0, 0), b(1, 1), 1.0, 10.0, (11.0,)),
            (torch.tensor([0.2, 0.4, 0.6]), b(0, 1, 1), b(1, 1, 1), 1.0, 10.0, (100.0,))]
    data = digits_data()
    cheap, big = _trained((4,)), _trained((256, 256))
    with torch.no_grad():
        probs, big_pred = F.softmax(cheap(data.X_val), dim=1), big(data.X_val).argmax(1)
    macs = [linear_macs(net) for net in (cheap, big)]
    real = (probs.max(1).values, probs.argmax(1) == data.y_val, big_pred == data.y_val, *map(float, macs),
            (5000.0, 20000.0))
    return hand + [real]


def check_cascade(cascade_cost_accuracy, choose_threshold) -> None:
    """The evaluator at thresholds on and between confidences, then the choice under several budgets."""
    for conf, cheap_ok, big_ok, c_cost, b_cost, budgets in _cascade_cases():
        sorted_conf = conf.sort().values
        for threshold in [0.0, *sorted_conf[torch.linspace(0, len(conf) - 1, 5).long()].tolist(), 1.0, math.inf]:
            args = (threshold, conf.clone(), cheap_ok.clone(), big_ok.clone(), c_cost, b_cost)
            out = call(cascade_cost_accuracy, "cascade_cost_accuracy", *args)
            if not (isinstance(out, tuple) and len(out) == 2):
                raise CheckFailed("cascade_cost_accuracy should return the pair (accuracy, average cost per input)")
            got = (as_float(out[0], "accuracy"), as_float(out[1], "cost"))
            if not isclose_all(got, reference_cascade(*args), 1e-9):
                diagnose([
                    Mistake(dict(cheap_on_all=False), "every input runs the cheap model first (its confidence "
                            "decides where the input goes), so the cost is cheap_cost + big_cost * (fraction sent), "
                            "not cheap_cost * (fraction kept) + big_cost * (fraction sent)"),
                    Mistake(dict(cost_rule="<=", acc_rule="<="), f"at threshold {threshold:.6g} you send inputs whose "
                            "confidence equals the threshold; the cheap model keeps an input when confidence >= "
                            "threshold, so send only those with confidence < threshold"),
                    Mistake(dict(acc_rule="<="), "your accuracy treats the inputs at the threshold as sent (<=) but your "
                            "cost as kept (<): compute one mask, send = confidence < threshold, and use it for both"),
                    Mistake(dict(cost_rule="<="), "your cost treats the inputs at the threshold as sent (<=) but your "
                            "accuracy as kept (<): compute one mask, send = confidence < threshold, and use it for both"),
                ], lambda **kw: isclose_all(got, reference_cascade(*args, **kw), 1e-9),
                    otherwise=f"at threshold {threshold:.6g} you return (accuracy, cost) = {got}; expected "
                              f"{reference_cascade(*args)}")
    for conf, cheap_ok, big_ok, c_cost, b_cost, budgets in _cascade_cases():
        expect_raises(lambda b: choose_threshold(conf, cheap_ok, big_ok, c_cost, b_cost, b), "choose_threshold",
                      (c_cost / 2,), "a budget below the cheap model's cost cannot be met")
        for budget in budgets:
            args = (conf.clone(), cheap_ok.clone(), big_ok.clone(), c_cost, b_cost, budget)
            out = call(choose_threshold, "choose_threshold", *args)
            if not (isinstance(out, tuple) and len(out) == 3):
                raise CheckFailed("choose_threshold should return (threshold, accuracy, cost)")
            got = tuple(as_float(v, "each of threshold, accuracy, cost") for v in out)
            if not isclose_all(got, reference_choose_threshold(*args), 1e-9):
                diagnose([
                    Mistake(dict(with_inf=False), "with this budget the best choice sends every input to the big "
                            "model: include math.inf among the candidate thresholds"),
                    Mistake(dict(strict_budget=True), "a cost equal to the budget meets it: keep thresholds with "
                                                      "cost <= budget"),
                    Mistake(dict(ties="costliest"), "several thresholds reach the best accuracy: return the cheapest "
                            "(the smallest threshold), e.g. replace the best only when accuracy is strictly higher"),
                    Mistake(dict(pick="largest"), "you took the largest threshold within budget; take the most "
                                                  "accurate one (a larger threshold is not always more accurate)"),
                ], lambda **kw: isclose_all(got, reference_choose_threshold(*args, **kw), 1e-9),
                    otherwise=f"for budget {budget:g} you chose {got}; the reference chooses "
                              f"{reference_choose_threshold(*args)} (candidates: every distinct confidence, and inf)")
    passed("cascade_cost_accuracy and choose_threshold match the reference, on the digits and on edge cases")


# Exercise 3 -----------------------------------------------------------------------------

def check_fine_tune_pruned(fine_tune_pruned, sparsity: float = 0.95) -> None:
    """Prune the lab's big MLP to 95 %, fine-tune it with the student's loop; pruned weights stay zero, accuracy recovers."""
    data = digits_data()
    model = copy.deepcopy(_trained((256, 256)))
    masks = reference_magnitude_prune(model, sparsity)
    saved = {n: m.clone() for n, m in masks.items()}
    params = dict(model.named_parameters())
    leaks = []  # (forward pass, name) whenever a pruned weight is non-zero when a batch runs
    model.register_forward_pre_hook(lambda module, args: leaks.extend(
        (len(leaks), n) for n, m in saved.items() if (params[n].detach()[m == 0] != 0).any()))
    with torch.no_grad():
        before = (model(data.X_val).argmax(1) == data.y_val).double().mean().item()
    leaks.clear()
    call(fine_tune_pruned, "fine_tune_pruned", model, masks, data.X_train, data.y_train, num_epochs=3, lr=0.02,
         batch_size=64, generator=torch.Generator().manual_seed(0))
    if any(not torch.equal(masks[n], saved[n]) for n in saved):
        raise CheckFailed("fine_tune_pruned changed the masks; they are fixed by pruning, only the weights train")
    nonzero = sum(int((params[n].detach()[m == 0] != 0).sum()) for n, m in saved.items())
    if nonzero:
        raise CheckFailed(f"{nonzero} pruned weights are non-zero after fine-tuning: the gradient moves them, so "
                          "multiply every weight by its mask again after each optimizer step")
    if leaks:
        raise CheckFailed("pruned weights were non-zero while training ran (first seen at forward pass "
                          f"{leaks[0][0] + 1}, in {leaks[0][1]}): re-apply the masks after every optimizer step, "
                          "not once at the end")
    with torch.no_grad():
        after = (model(data.X_val).argmax(1) == data.y_val).double().mean().item()
    if after < 0.9 or after <= before:
        raise CheckFailed(f"validation accuracy went from {before:.1%} (pruned) to {after:.1%} (fine-tuned); three "
                          "epochs of SGD with momentum 0.9 at lr 0.02 should reach 90 %: train on every batch of every "
                          "epoch, with optimizer.zero_grad() before each backward pass")
    passed(f"after fine-tuning, the {sparsity:.0%}-sparse MLP keeps its zeros and recovers from {before:.1%} to "
           f"{after:.1%} on validation data")


CHECKS = {
    "Exercise 1": Exercise("data_parallel_step", check_data_parallel_step),
    "Exercise 2": Exercise("magnitude_prune", check_magnitude_prune),
    "Exercise 3": Exercise("fine_tune_pruned", check_fine_tune_pruned),
    "Exercise 4": Exercise("distillation_loss", check_distillation_loss),
    "Exercise 5": Exercise(("cascade_cost_accuracy", "choose_threshold"), check_cascade),
}

facing_students(globals())  # a stub's NotImplementedError becomes a one-line ExerciseNotDone
