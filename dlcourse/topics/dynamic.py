"""Dynamic structure: cascades and mixtures of experts (chapter 4, section 5).

``linear_macs`` counts the multiply-accumulates (MACs) of a network's linear layers per input.
``cascade_curve`` evaluates a two-model cascade (a cheap model on every input, a big one on the
inputs the cheap model is unsure about) at every threshold at once and returns its
accuracy-versus-cost curve; ``threshold_for_budget`` picks a point of that curve under a
compute budget. ``MixtureOfExperts`` is a softmax gate over K small expert MLPs (Jacobs et al.
1991): trained as a dense soft mixture, evaluated with soft or top-1 (hard) routing;
``load_balancing_loss`` is the auxiliary loss of the Switch Transformer (Fedus et al. 2022)
that keeps the experts equally busy, and ``routing_table`` counts which classes go where.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dlcourse.models.mlp import mlp

ROUTINGS = ("soft", "hard")


def linear_macs(model: nn.Module) -> int:
    """Multiply-accumulates per input of ``model``'s ``nn.Linear`` layers: the sum of in × out."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"expected an nn.Module, got {type(model).__name__}")
    return sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))


class CascadeCurve(NamedTuple):
    """A cascade at every threshold, in increasing order of threshold (and of cost)."""

    threshold: torch.Tensor  # (T,) float64: send input i to the big model when confidence_i < threshold
    accuracy: torch.Tensor  # (T,) float64
    cost: torch.Tensor  # (T,) float64: average cost per input
    sent: torch.Tensor  # (T,) float64: fraction of the inputs sent to the big model


def _check_vector(name: str, value, n: int | None, dtype_kind: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.ndim != 1:
        got = getattr(value, "shape", type(value).__name__)
        raise ValueError(f"{name} must be a 1-d tensor of shape (N,), got {got}")
    if n is not None and len(value) != n:
        raise ValueError(f"{name} has {len(value)} entries but confidence has {n}: pass one value per input")
    if dtype_kind == "bool" and value.dtype != torch.bool:
        raise ValueError(f"{name} must be a bool tensor (is the model right on input i?), got {value.dtype}; "
                         "compare predictions with labels, e.g. `logits.argmax(1) == y`")
    if dtype_kind == "float" and not value.is_floating_point():
        raise ValueError(f"{name} must be a float tensor of confidences, got {value.dtype}")
    return value


def cascade_curve(confidence: torch.Tensor, cheap_correct: torch.Tensor, big_correct: torch.Tensor,
                  cheap_cost: float, big_cost: float) -> CascadeCurve:
    """Accuracy and average cost of the cascade for every threshold that changes its decisions.

    Input i goes to the big model when ``confidence[i] < threshold``; every input pays
    ``cheap_cost``, the sent ones pay ``big_cost`` as well. The thresholds tried are the sorted
    distinct confidences and +inf: the first sends nothing (the cheap model alone, at cost
    ``cheap_cost``), the last sends everything (the big model's accuracy, at cost
    ``cheap_cost + big_cost``). Vectorised: sort once, then cumulative sums.
    """
    confidence = _check_vector("confidence", confidence, None, "float")
    if len(confidence) == 0:
        raise ValueError("confidence is empty: the curve needs at least one input")
    cheap_correct = _check_vector("cheap_correct", cheap_correct, len(confidence), "bool")
    big_correct = _check_vector("big_correct", big_correct, len(confidence), "bool")
    for name, cost in (("cheap_cost", cheap_cost), ("big_cost", big_cost)):
        if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not cost >= 0 or math.isinf(cost):
            raise ValueError(f"{name} must be a finite number >= 0 (e.g. MACs per input), got {cost!r}")
    order = torch.argsort(confidence.double())
    conf = confidence.double()[order]
    gain = big_correct[order].double() - cheap_correct[order].double()  # what sending input i changes
    n = len(conf)
    # Threshold t sends the k inputs with conf < t; for t = distinct value v, k = #(conf < v).
    thresholds = torch.cat([torch.unique(conf), conf.new_tensor([math.inf])])
    k = torch.searchsorted(conf, thresholds, side="left")  # (T,) inputs sent at each threshold
    cum_gain = torch.cat([conf.new_zeros(1), torch.cumsum(gain, 0)])
    accuracy = (cheap_correct.double().sum() + cum_gain[k]) / n
    sent = k.double() / n
    return CascadeCurve(thresholds, accuracy, cheap_cost + big_cost * sent, sent)


def threshold_for_budget(curve: CascadeCurve, budget: float) -> int:
    """Index of the most accurate point of ``curve`` whose cost is at most ``budget``.

    Among equally accurate points the cheapest (the first) wins. Raises a ValueError when
    even sending nothing is over the budget.
    """
    if not isinstance(curve, CascadeCurve):
        raise ValueError(f"curve must be the CascadeCurve that cascade_curve returns, got {type(curve).__name__}")
    within = curve.cost <= budget
    if not within.any():
        raise ValueError(f"budget {budget} is below the cheapest point of the curve ({curve.cost.min().item():g}): "
                         "the cheap model alone costs more; raise the budget")
    accuracy = torch.where(within, curve.accuracy, torch.full_like(curve.accuracy, -1.0))
    return int(torch.argmax(accuracy))  # argmax returns the first maximum


class MixtureOfExperts(nn.Module):
    """K expert MLPs ``in -> hidden -> classes`` and a linear softmax gate ``in -> K``.

    ``forward(x, routing="soft")`` returns the log of the mixture of the experts' class
    probabilities, log sum_k g_k(x) softmax(f_k(x)) (Jacobs et al. 1991), usable as logits
    with the cross-entropy. ``routing="hard"`` evaluates only the expert with the largest gate
    value for each input (top-1 routing, conditional computation) and returns its log-softmax.
    """

    def __init__(self, in_features: int, hidden: int, num_classes: int, num_experts: int) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("hidden", hidden), ("num_classes", num_classes),
                            ("num_experts", num_experts)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.gate = nn.Linear(in_features, num_experts)
        self.experts = nn.ModuleList(mlp(in_features, (hidden,), num_classes) for _ in range(num_experts))
        self.in_features, self.num_classes = in_features, num_classes

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"expected inputs of shape (N, {self.in_features}), "
                             f"got {getattr(x, 'shape', type(x).__name__)}")
        return x

    def gate_probs(self, x: torch.Tensor) -> torch.Tensor:
        """(N, K) gate probabilities; each row sums to 1."""
        return F.softmax(self.gate(self._check(x)), dim=1)

    def forward(self, x: torch.Tensor, routing: str = "soft") -> torch.Tensor:
        if routing not in ROUTINGS:
            raise ValueError(f"unknown routing {routing!r}: expected one of {', '.join(ROUTINGS)}")
        g = self.gate_probs(x)
        if routing == "soft":
            log_p = torch.stack([F.log_softmax(e(x), dim=1) for e in self.experts], dim=1)  # (N, K, C)
            return torch.logsumexp(torch.log(g.clamp_min(1e-12)).unsqueeze(2) + log_p, dim=1)
        choice = g.argmax(dim=1)
        out = x.new_zeros(len(x), self.num_classes)
        for k, expert in enumerate(self.experts):
            rows = (choice == k).nonzero(as_tuple=True)[0]
            if len(rows):  # each input runs through its own expert only
                out[rows] = F.log_softmax(expert(x[rows]), dim=1)
        return out

    def macs(self, routing: str = "hard") -> int:
        """MACs per input: the gate plus one expert (hard) or all experts (soft)."""
        if routing not in ROUTINGS:
            raise ValueError(f"unknown routing {routing!r}: expected one of {', '.join(ROUTINGS)}")
        per_expert = linear_macs(self.experts[0])
        return linear_macs(self.gate) + per_expert * (1 if routing == "hard" else len(self.experts))


def load_balancing_loss(gate_probs: torch.Tensor) -> torch.Tensor:
    """Switch Transformer's auxiliary loss K * sum_k f_k P_k; 1 when the load is balanced.

    f_k is the fraction of the inputs whose largest gate value is expert k (not
    differentiable), P_k the mean gate probability of expert k (differentiable).
    """
    if not isinstance(gate_probs, torch.Tensor) or gate_probs.ndim != 2:
        got = getattr(gate_probs, "shape", type(gate_probs).__name__)
        raise ValueError(f"gate_probs must be an (N, K) tensor, got {got}")
    num_experts = gate_probs.shape[1]
    f = F.one_hot(gate_probs.argmax(1), num_experts).float().mean(0)
    return num_experts * (f * gate_probs.mean(0)).sum()


@torch.no_grad()
def routing_table(model: MixtureOfExperts, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(K, C) table: entry (k, c) is the fraction of the inputs of class c that top-1 routing sends to expert k."""
    if not isinstance(model, MixtureOfExperts):
        raise ValueError(f"model must be a MixtureOfExperts, got {type(model).__name__}")
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or len(y) != len(X):
        got = getattr(y, "shape", type(y).__name__)
        raise ValueError(f"y must be a 1-d tensor of {len(X)} class labels, got {got}")
    choice = model.gate_probs(X).argmax(1)
    counts = torch.zeros(len(model.experts), model.num_classes, device=X.device)
    counts.index_put_((choice, y), torch.ones_like(choice, dtype=counts.dtype), accumulate=True)
    return counts / counts.sum(0, keepdim=True).clamp_min(1)
