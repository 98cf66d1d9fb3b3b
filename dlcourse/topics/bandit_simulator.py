"""A simulated audience fitted to real ratings, and the feedback loop of a greedy recommender (8.4).

``Simulator`` holds the hidden click probabilities ``click_prob[u, k]`` of user ``u`` for
item ``k``. ``movietweetings_simulator`` derives them from a ``BiasedMF`` (section 8.2)
fitted to real ratings: a click is "the user likes the movie" (would rate it at least
``like``), with the probability calibrated on held-out ratings by ``calibrate``.
``feedback_loop`` retrains a click model on the log its own recommendations produced.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@torch.no_grad()
def score_matrix(model, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """Predicted ratings μ + b_u + b_i + p_u·q_i of a ``BiasedMF`` for every user in ``users`` and item in ``items``: (U, I)."""
    users, items = torch.as_tensor(users).long(), torch.as_tensor(items).long()
    P, Q = model.user_factors.weight[users.to(model.mu.device)], model.item_factors.weight[items.to(model.mu.device)]
    scores = (model.mu + model.user_bias[users.to(model.mu.device), None]
              + model.item_bias[None, items.to(model.mu.device)] + P @ Q.T)
    return scores.float().cpu()


def calibrate(score: torch.Tensor, label: torch.Tensor, iters: int = 50) -> tuple[float, float]:
    """Platt scaling: (a, b) of the logistic regression P(label = 1 | score) = σ(a·score + b), by Newton's method."""
    score, label = score.double().flatten(), label.double().flatten()
    if score.shape != label.shape or len(score) < 2:
        raise ValueError("score and label must be matching 1-D tensors with at least two entries")
    X = torch.stack([score, torch.ones_like(score)], 1)
    w = torch.zeros(2, dtype=torch.float64)
    for _ in range(iters):
        p = torch.sigmoid(X @ w)
        hessian = X.T @ (X * (p * (1 - p)).unsqueeze(1)) + 1e-9 * torch.eye(2, dtype=torch.float64)
        w = w + torch.linalg.solve(hessian, X.T @ (label - p))
    return float(w[0]), float(w[1])


@dataclass
class Simulator:
    """Hidden click probabilities ``click_prob[u, k]`` of ``num_users`` users for ``num_items`` items.

    ``users`` and ``items`` are the ids of the underlying data set; ``item_features`` (K, d)
    optionally holds the features a contextual policy may use.
    """

    click_prob: torch.Tensor
    users: torch.Tensor | None = None
    items: torch.Tensor | None = None
    item_features: torch.Tensor | None = None

    def __post_init__(self):
        p = self.click_prob
        if not isinstance(p, torch.Tensor) or p.ndim != 2 or bool(((p < 0) | (p > 1)).any()):
            raise ValueError("click_prob must be a (users, items) tensor of probabilities in [0, 1]")

    @property
    def num_users(self) -> int:
        return self.click_prob.shape[0]

    @property
    def num_items(self) -> int:
        return self.click_prob.shape[1]

    def best_items(self) -> torch.Tensor:
        """Each user's item with the highest click probability, ``(num_users,)``."""
        return self.click_prob.argmax(1)

    def click(self, user: torch.Tensor, item: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Simulated clicks (0./1.) of ``user[j]`` shown ``item[j]``."""
        return torch.bernoulli(self.click_prob[user, item], generator=generator)


def movietweetings_simulator(model, calibration, users: torch.Tensor, items: torch.Tensor, like: float = 9.0,
                             item_features: torch.Tensor | None = None) -> Simulator:
    """Click = "likes the movie": P(rating >= ``like``) = σ(a·r̂_ui + b) for a fitted ``BiasedMF``.

    (a, b) are fitted by ``calibrate`` on the ratings ``calibration`` (ratings the model was
    not trained on), with r̂ from ``matrix_factorisation.predict``.
    """
    from ..models.matrix_factorisation import predict

    a, b = calibrate(predict(model, calibration.user.long(), calibration.item.long()),
                     (calibration.rating >= like).float())
    users, items = torch.as_tensor(users), torch.as_tensor(items)
    return Simulator(torch.sigmoid(a * score_matrix(model, users, items) + b), users, items, item_features)


@dataclass
class LoopResult:
    """What a recommender retrained on its own logs saw: impressions per (user, item), the click rate of
    each round's recommendations, and its final estimates of the click probabilities ``(U, K)``."""

    shows: torch.Tensor
    round_click_rate: list
    estimate: torch.Tensor


def fit_click_model(user, item, click, num_users: int, features: torch.Tensor, *, steps: int = 100,
                    reg: float = 1.0, lr: float = 0.1, state: dict | None = None) -> dict:
    """Logistic model P(click) = σ(b + b_u + b_i + w_u·x_i) on fixed item features ``x_i``, fitted by Adam.

    Minimises the summed log-loss + reg/2 (|w|² + |b_u|² + |b_i|²), divided by the number of
    logged impressions; ``state`` (a previous result) warm-starts the fit. Returns
    ``{"w", "b_user", "b_item", "b"}``.
    """
    K, d = features.shape
    if state is None:
        state = {"w": torch.zeros(num_users, d), "b_user": torch.zeros(num_users), "b_item": torch.zeros(K),
                 "b": torch.zeros(1)}
    params = {k: v.clone().requires_grad_() for k, v in state.items()}
    opt = torch.optim.Adam(params.values(), lr=lr)
    for _ in range(steps):
        logit = (params["b"] + params["b_user"][user] + params["b_item"][item]
                 + (params["w"][user] * features[item]).sum(-1))
        penalty = params["w"].pow(2).sum() + params["b_user"].pow(2).sum() + params["b_item"].pow(2).sum()
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(logit, click, reduction="sum")
                + 0.5 * reg * penalty) / len(click)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {k: v.detach() for k, v in params.items()}


def predict_clicks(state: dict, features: torch.Tensor) -> torch.Tensor:
    """Click probabilities ``(U, K)`` of a ``fit_click_model`` state."""
    return torch.sigmoid(state["b"] + state["b_user"][:, None] + state["b_item"] + state["w"] @ features.T)


def feedback_loop(sim: Simulator, features: torch.Tensor, strategy: str = "greedy", *, rounds: int = 10,
                  per_round: int = 3, initial: int = 2, steps: int = 100, reg: float = 1.0,
                  generator: torch.Generator | None = None) -> LoopResult:
    """Recommend, log the clicks, retrain, repeat: the data a recommender collects depend on its own choices.

    Every user first sees ``initial`` random items. Then, each round, every user is shown
    ``per_round`` distinct items, the top ones of the current model (``"greedy"``) or random
    ones (``"random"``), and the model is retrained on all the impressions logged so far.
    """
    if strategy not in ("greedy", "random"):
        raise ValueError(f"strategy must be 'greedy' or 'random', got {strategy!r}")
    U, K = sim.click_prob.shape
    if not 1 <= per_round <= K or not 1 <= initial <= K:
        raise ValueError(f"per_round and initial must be in 1..{K} (the model needs a first log to fit)")
    random_items = lambda n: torch.rand(U, K, generator=generator).argsort(1)[:, :n]
    users = torch.arange(U)
    shown = random_items(initial)
    log_u, log_i = users.repeat_interleave(initial), shown.flatten()
    log_c = sim.click(log_u, log_i, generator)
    state, rates = fit_click_model(log_u, log_i, log_c, U, features, steps=steps, reg=reg), []
    for _ in range(rounds):
        show = predict_clicks(state, features).topk(per_round, 1).indices if strategy == "greedy" \
            else random_items(per_round)
        u, i = users.repeat_interleave(per_round), show.flatten()
        c = sim.click(u, i, generator)
        rates.append(float(c.mean()))
        log_u, log_i, log_c = torch.cat([log_u, u]), torch.cat([log_i, i]), torch.cat([log_c, c])
        state = fit_click_model(log_u, log_i, log_c, U, features, steps=steps, reg=reg, state=state)
    shows = torch.zeros(U, K).index_put_((log_u, log_i), torch.ones(len(log_u)), accumulate=True)
    return LoopResult(shows, rates, predict_clicks(state, features))
