"""Exploration versus exploitation: Bernoulli bandits and a linear contextual bandit (8.4).

Every policy plays many independent bandit problems at once: ``shape`` is the batch shape
(for example ``(runs, users)``) and ``select(generator)`` returns one arm per problem, a long
tensor of that shape; ``update(arm, reward)`` takes tensors of the same shape. With the
default ``shape=()`` a policy plays a single bandit and works with 0-d tensors.

``run_bandit`` plays a policy against click probabilities (a tensor, or a ``Simulator`` from
``bandit_simulator``, which fits them to real ratings) and returns its expected regret.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .bandit_simulator import Simulator


def _check_shape(shape) -> tuple[int, ...]:
    shape = tuple(shape)
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape):
        raise ValueError(f"shape must be a tuple of positive ints (the batch of bandit problems), got {shape!r}")
    return shape


def _argmax_random_ties(scores: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Index of the largest score along the last axis; ties are broken uniformly at random."""
    ties = scores >= scores.max(-1, keepdim=True).values
    draw = torch.rand(scores.shape, generator=generator, device=scores.device)
    return (draw * ties).argmax(-1)


def sample_beta(alpha: torch.Tensor, beta: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Beta(alpha, beta) draws, reproducible from ``generator``'s state.

    NumPy's Beta sampler is several times faster than PyTorch's on a CPU, so the draws come
    from a NumPy generator seeded from ``generator`` and are moved to ``alpha``'s device.
    """
    if (alpha <= 0).any() or (beta <= 0).any():
        raise ValueError("Beta parameters must be positive")
    seed = int(torch.randint(2 ** 62, (), generator=generator, device="cpu" if generator is None
                             else generator.device))
    draws = np.random.default_rng(seed).beta(alpha.double().cpu().numpy(), beta.double().cpu().numpy())
    return torch.from_numpy(draws).to(alpha.device, alpha.dtype)


class BernoulliPolicy:
    """Counts of pulls and rewards per arm, shared by the Bernoulli policies; subclasses define ``scores``."""

    def __init__(self, num_arms: int, shape: tuple[int, ...] = (), device: torch.device | str = "cpu"):
        if isinstance(num_arms, bool) or not isinstance(num_arms, int) or num_arms < 1:
            raise ValueError(f"num_arms must be a positive int, got {num_arms!r}")
        self.num_arms, self.shape = num_arms, _check_shape(shape)
        self.pulls = torch.zeros(*self.shape, num_arms, device=device)
        self.successes = torch.zeros(*self.shape, num_arms, device=device)

    @property
    def means(self) -> torch.Tensor:
        """Empirical mean reward of each arm (0 for arms never pulled), shape ``(*shape, num_arms)``."""
        return self.successes / self.pulls.clamp(min=1)

    def scores(self, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    def select(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """One arm per problem: a long tensor of shape ``shape`` (ties broken at random)."""
        return _argmax_random_ties(self.scores(generator), generator)

    def update(self, arm, reward, check: bool = True) -> None:
        """Record ``reward`` (in [0, 1]) for ``arm``, both of shape ``shape`` (``check=False`` skips the checks)."""
        arm = torch.as_tensor(arm, device=self.pulls.device)
        reward = torch.as_tensor(reward, device=self.pulls.device, dtype=self.pulls.dtype)
        if check:
            if arm.shape != self.shape or reward.shape != self.shape:
                raise ValueError(f"arm and reward must have the policy's shape {self.shape}, got "
                                 f"{tuple(arm.shape)} and {tuple(reward.shape)}")
            if arm.dtype.is_floating_point or bool(((arm < 0) | (arm >= self.num_arms)).any()):
                raise ValueError(f"arms must be integers in 0..{self.num_arms - 1}")
            if bool(((reward < 0) | (reward > 1)).any()):
                raise ValueError("Bernoulli rewards must lie in [0, 1]")
        index = arm.long().unsqueeze(-1)
        self.pulls.scatter_add_(-1, index, torch.ones_like(reward).unsqueeze(-1))
        self.successes.scatter_add_(-1, index, reward.unsqueeze(-1))


class GreedyPolicy(BernoulliPolicy):
    """Always the arm with the best empirical mean (arms never pulled count as ``initial``)."""

    def __init__(self, num_arms: int, shape: tuple[int, ...] = (), initial: float = 0.0,
                 device: torch.device | str = "cpu"):
        super().__init__(num_arms, shape, device)
        self.initial = float(initial)

    def scores(self, generator=None) -> torch.Tensor:
        return torch.where(self.pulls > 0, self.means, torch.full_like(self.means, self.initial))


class EpsilonGreedy(GreedyPolicy):
    """With probability ``epsilon`` a uniformly random arm, otherwise the greedy one.

    ``epsilon`` is a number or a tensor that broadcasts to ``shape`` (one value per problem,
    e.g. ``torch.tensor([0.01, 0.1])[:, None]`` with shape ``(2, runs)`` to try two at once).
    """

    def __init__(self, num_arms: int, epsilon: float | torch.Tensor = 0.1, shape: tuple[int, ...] = (),
                 device: torch.device | str = "cpu"):
        eps = torch.as_tensor(epsilon, dtype=torch.float32)
        if bool(((eps < 0) | (eps > 1)).any()):
            raise ValueError(f"epsilon must be a probability in [0, 1], got {epsilon!r}")
        super().__init__(num_arms, shape, 0.0, device)
        try:
            self.epsilon = torch.broadcast_to(eps, self.shape).to(device)
        except RuntimeError:
            raise ValueError(f"epsilon of shape {tuple(eps.shape)} does not broadcast to shape {self.shape}") from None

    def select(self, generator=None) -> torch.Tensor:
        greedy = super().select(generator)
        explore = torch.rand(self.shape, generator=generator, device=greedy.device) < self.epsilon
        random_arm = torch.randint(self.num_arms, self.shape, generator=generator, device=greedy.device)
        return torch.where(explore, random_arm, greedy)


class UCB1(BernoulliPolicy):
    """Auer et al. (2002): each arm once, then the arm maximising mean + sqrt(c ln n / n_k) (c = 2)."""

    def __init__(self, num_arms: int, shape: tuple[int, ...] = (), c: float = 2.0,
                 device: torch.device | str = "cpu"):
        if c < 0:
            raise ValueError(f"the exploration constant c must be >= 0, got {c!r}")
        super().__init__(num_arms, shape, device)
        self.c = float(c)

    def scores(self, generator=None) -> torch.Tensor:
        total = self.pulls.sum(-1, keepdim=True).clamp(min=1)
        bonus = torch.sqrt(self.c * torch.log(total) / self.pulls.clamp(min=1))
        return torch.where(self.pulls > 0, self.means + bonus, torch.full_like(bonus, math.inf))


class ThompsonBernoulli(BernoulliPolicy):
    """Thompson (1933) sampling with Beta(prior) priors: play the arm whose posterior draw is largest."""

    def __init__(self, num_arms: int, shape: tuple[int, ...] = (), prior: tuple[float, float] = (1.0, 1.0),
                 device: torch.device | str = "cpu"):
        if len(prior) != 2 or min(prior) <= 0:
            raise ValueError(f"prior must be two positive numbers (alpha, beta) of a Beta, got {prior!r}")
        super().__init__(num_arms, shape, device)
        self.prior = (float(prior[0]), float(prior[1]))

    @property
    def alpha(self) -> torch.Tensor:
        """Posterior alpha = prior alpha + rewards, shape ``(*shape, num_arms)``."""
        return self.prior[0] + self.successes

    @property
    def beta(self) -> torch.Tensor:
        """Posterior beta = prior beta + failures."""
        return self.prior[1] + self.pulls - self.successes

    def scores(self, generator=None) -> torch.Tensor:
        return sample_beta(self.alpha, self.beta, generator)

    def select(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.scores(generator).argmax(-1)  # continuous draws: no ties to break


class LinUCB:
    """Li et al. (2010), disjoint model: per problem a ridge regression of the reward on arm features.

    ``features`` is (num_arms, d), e.g. learned item embeddings. The score of arm k is
    x_k·θ + alpha·sqrt(x_k^T A^{-1} x_k), with A = reg·I + Σ x x^T and θ = A^{-1} Σ r x;
    A^{-1} is kept up to date with the Sherman-Morrison formula.
    """

    def __init__(self, features: torch.Tensor, shape: tuple[int, ...] = (), alpha: float | torch.Tensor = 1.0,
                 reg: float = 1.0):
        if not isinstance(features, torch.Tensor) or features.ndim != 2:
            raise ValueError(f"features must be a tensor (num_arms, d), got {getattr(features, 'shape', features)!r}")
        alpha_t = torch.as_tensor(alpha, dtype=torch.float32)
        if bool((alpha_t < 0).any()) or reg <= 0:
            raise ValueError(f"need alpha >= 0 and reg > 0, got alpha={alpha!r}, reg={reg!r}")
        self.features = features.float()
        self.num_arms, d = features.shape
        self.shape = _check_shape(shape)
        try:  # one alpha per problem, like EpsilonGreedy's epsilon
            self.alpha = torch.broadcast_to(alpha_t, self.shape).unsqueeze(-1).to(features.device)
        except RuntimeError:
            raise ValueError(f"alpha of shape {tuple(alpha_t.shape)} does not broadcast to shape {self.shape}") from None
        eye = torch.eye(d, device=features.device) / reg
        self.A_inv = eye.expand(*self.shape, d, d).clone()
        self.b = torch.zeros(*self.shape, d, device=features.device)

    @property
    def theta(self) -> torch.Tensor:
        return (self.A_inv @ self.b.unsqueeze(-1)).squeeze(-1)

    def scores(self, generator=None) -> torch.Tensor:
        X = self.features
        mean = self.theta @ X.T
        width = ((X @ self.A_inv) * X).sum(-1).clamp(min=0).sqrt()  # (*shape, K)
        return mean + self.alpha * width

    def select(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return _argmax_random_ties(self.scores(generator), generator)

    def update(self, arm, reward, check: bool = True) -> None:
        """Add the observation (``arm``'s features, ``reward``) of each problem to its regression."""
        arm = torch.as_tensor(arm, device=self.b.device)
        reward = torch.as_tensor(reward, device=self.b.device, dtype=self.b.dtype)
        if check and (arm.shape != self.shape or reward.shape != self.shape):
            raise ValueError(f"arm and reward must have the policy's shape {self.shape}")
        if check and (arm.dtype.is_floating_point or bool(((arm < 0) | (arm >= self.num_arms)).any())):
            raise ValueError(f"arms must be integers in 0..{self.num_arms - 1}")
        x = self.features[arm.long()]  # (*shape, d)
        u = (self.A_inv @ x.unsqueeze(-1)).squeeze(-1)
        self.A_inv -= u.unsqueeze(-1) * u.unsqueeze(-2) / (1 + (x * u).sum(-1))[..., None, None]
        self.b += reward.unsqueeze(-1) * x


def regret(probs: torch.Tensor, arm: torch.Tensor) -> torch.Tensor:
    """Expected regret of playing ``arm``: best probability minus that of ``arm`` (probs ``(..., K)``)."""
    probs = torch.as_tensor(probs)
    arm = torch.as_tensor(arm, device=probs.device).long()
    try:
        full = torch.broadcast_to(probs, (*arm.shape, probs.shape[-1]))
    except RuntimeError:
        raise ValueError(f"probs {tuple(probs.shape)} do not broadcast to arms {tuple(arm.shape)} x K") from None
    return full.max(-1).values - full.gather(-1, arm.unsqueeze(-1)).squeeze(-1)


def run_bandit(policy, simulator, steps: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Play ``policy`` for ``steps`` rounds; return the expected regret of each round, ``(steps, *policy.shape)``.

    ``simulator`` is a ``Simulator`` or a tensor of click probabilities ``(..., K)`` that
    broadcasts to ``(*policy.shape, K)``: (K,) plays one bandit in every problem of the batch,
    (U, K) gives each user its own probabilities (for a policy of shape ``(runs, U)``).
    """
    probs = simulator.click_prob if isinstance(simulator, Simulator) else torch.as_tensor(simulator)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if probs.shape[-1] != policy.num_arms:
        raise ValueError(f"the simulator has {probs.shape[-1]} arms, the policy {policy.num_arms}")
    try:
        probs = probs.to(policy.features.device if isinstance(policy, LinUCB) else policy.pulls.device)
        probs = probs.expand(*policy.shape, policy.num_arms)
    except RuntimeError:
        raise ValueError(f"click probabilities of shape {tuple(probs.shape)} do not broadcast to the "
                         f"policy's problems {policy.shape} x {policy.num_arms} arms") from None
    best = probs.max(-1).values
    out = torch.empty(steps, *policy.shape, device=probs.device)
    for t in range(steps):
        arm = policy.select(generator)
        p = probs.gather(-1, arm.unsqueeze(-1)).squeeze(-1)
        policy.update(arm, torch.bernoulli(p, generator=generator), check=False)
        out[t] = best - p
    return out
