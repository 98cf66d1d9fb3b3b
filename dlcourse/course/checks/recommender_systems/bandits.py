"""Lab 8 exercises 5 and 6: cumulative regret, and Thompson sampling for Bernoulli arms."""

from __future__ import annotations

import functools

import torch

from ....topics import bandits
from .. import CheckFailed, Mistake, call, close, diagnose, expect_tensor, expect_unchanged, fresh, passed

# Exercises 5 and 6 ------------------------------------------------------------------------


def reference_cumulative_regret(probs, arms, *, cumulative: bool = True, against: str = "best",
                                count: bool = False, sign: float = 1.0) -> torch.Tensor:
    """Cumulative expected regret (T,) of the arms played; keywords build the typical mistakes.

    The right value is the running sum of the package's ``bandits.regret``. ``cumulative=False``
    keeps the per-step regret; ``against="mean"`` measures against the average arm instead of the
    best; ``count=True`` counts the steps a suboptimal arm was played; ``sign=-1`` flips it.
    """
    probs, arms = probs.double(), arms.long()
    if count:
        per_step = (probs[arms] < probs.max()).double()
    elif against == "mean":
        per_step = probs.mean() - probs[arms]
    else:
        per_step = bandits.regret(probs, arms).double()
    per_step = sign * per_step
    return per_step.cumsum(0) if cumulative else per_step


REGRET_MISTAKES = [
    Mistake(dict(cumulative=False), "you returned the regret of each step; the cumulative regret is its running "
                                    "sum (torch.cumsum), which grows as long as a policy keeps playing worse arms"),
    Mistake(dict(sign=-1.0), "the sign is wrong: regret is what was lost, max_k p_k - p_{a_t} >= 0 at every step"),
    Mistake(dict(count=True), "you counted the steps on which a suboptimal arm was played; regret weighs each by how "
                              "much worse that arm is, max_k p_k - p_{a_t}, so an almost-best arm costs little"),
    Mistake(dict(against="mean"), "you measured against the average arm; regret compares with the best arm, "
                                  "max_k p_k - p_{a_t}"),
]


def check_cumulative_regret(cumulative_regret) -> None:
    """Against the running sum of ``bandits.regret`` on fixed plays; the typical mistakes named."""
    g = torch.Generator().manual_seed(5)
    for K, T in [(3, 8), (5, 40), (2, 15)]:
        probs = torch.rand(K, generator=g, dtype=torch.float64)
        arms = torch.randint(K, (T,), generator=g)
        copies = probs.clone(), arms.clone()
        got = expect_tensor(call(cumulative_regret, "cumulative_regret", *copies), (T,),
                            f"cumulative_regret for {T} steps (one running total per step)").double()
        expect_unchanged([probs, arms], copies, "cumulative_regret changed its inputs in place")
        want = reference_cumulative_regret(probs, arms)
        if close(got, want, 1e-6):
            continue
        diagnose(REGRET_MISTAKES, lambda **kw: close(got, reference_cumulative_regret(probs, arms, **kw), 1e-6),
                 otherwise=f"the cumulative regret should end at {want[-1]:.4f} after {T} steps, yours at "
                           f"{got[-1]:.4f}: sum over t of (max_k p_k - p_(a_t))")
    passed("cumulative_regret is the running sum of max_k p_k - p_(a_t)")


def reference_thompson(rewards, generator, *, swap: bool = False, update: str = "chosen", choose: str = "sample",
                       dtype: torch.dtype = torch.float32, package: bool = True) -> torch.Tensor:
    """Arms (T,) Thompson sampling plays against a reward table (T, K); keywords build the typical mistakes.

    Step t draws theta ~ Beta(1 + successes, 1 + failures) for every arm with one call of
    ``bandits.sample_beta(alpha, beta, generator)``, plays argmax theta and observes
    ``rewards[t, arm]``. The right run drives the package's ``ThompsonBernoulli``. ``swap``
    draws Beta(beta, alpha); ``update`` ``"all same"`` gives every arm the played arm's reward,
    ``"all own"`` every arm its own reward of the table (rewards that were never observed);
    ``choose="mean"`` plays the largest posterior mean (greedy).
    """
    T, K = rewards.shape
    arms = torch.zeros(T, dtype=torch.long)
    if package and (swap, update, choose, dtype) == (False, "chosen", "sample", torch.float32):
        policy = bandits.ThompsonBernoulli(K)
        for t in range(T):
            arm = policy.scores(generator).argmax()
            policy.update(arm, rewards[t, arm].float())
            arms[t] = arm
        return arms
    successes, failures = torch.zeros(K, dtype=dtype), torch.zeros(K, dtype=dtype)
    for t in range(T):
        alpha, beta = 1 + successes, 1 + failures
        if choose == "mean":
            theta = alpha / (alpha + beta)
        else:
            theta = bandits.sample_beta(beta, alpha, generator) if swap else bandits.sample_beta(alpha, beta, generator)
        arm = int(theta.argmax())
        arms[t] = arm
        observed = {"chosen": rewards[t, arm], "all same": rewards[t, arm], "all own": rewards[t]}[update].to(dtype)
        if update == "chosen":
            successes[arm] += observed
            failures[arm] += 1 - observed
        else:
            successes += observed
            failures += 1 - observed
    return arms


def _reward_table(probs, steps, seed) -> torch.Tensor:
    """(steps, K) 0/1 float: what each arm would pay at each step (only the played arm's is seen)."""
    return torch.bernoulli(probs.expand(steps, -1), generator=torch.Generator().manual_seed(fresh(seed)))


THOMPSON_MISTAKES = [
    Mistake(dict(swap=True), "your Beta parameters are swapped: an arm's posterior is Beta(1 + successes, "
                             "1 + failures); Beta(1 + failures, 1 + successes) favours the arms that fail most"),
    Mistake(dict(update="all same"), "you updated every arm with the reward of the arm you played; only the "
                                     "played arm's posterior learns from it"),
    Mistake(dict(update="all own"), "you updated every arm from its own entry of the reward table: a recommender "
                                    "sees only the response to what it showed, so only the played arm's posterior "
                                    "may change"),
    Mistake(dict(choose="mean"), "you played the arm with the largest posterior mean: that is the greedy policy, "
                                 "which stops exploring. Thompson sampling plays the arm whose posterior DRAW is "
                                 "largest"),
]


def _plays(thompson_sampling, rewards, seed):
    generator = torch.Generator().manual_seed(seed)
    arms = call(thompson_sampling, "thompson_sampling", rewards.clone(), generator)
    arms = expect_tensor(arms, (len(rewards),), f"thompson_sampling's arms for {len(rewards)} steps")
    if arms.dtype.is_floating_point or bool(((arms < 0) | (arms >= rewards.shape[1])).any()):
        raise CheckFailed(f"thompson_sampling should return arm ids, integers in 0..{rewards.shape[1] - 1}")
    return arms.long(), generator


REGRET_PROBS, REGRET_STEPS, REGRET_SEEDS = (0.1, 0.2, 0.3, 0.8), 300, 5


@functools.lru_cache(maxsize=1)
def _epsilon_greedy_regret(runs: int = 200) -> tuple[float, float]:
    """Mean and standard deviation of the package's epsilon-greedy (0.1) final regret over ``runs`` seeded runs."""
    policy = bandits.EpsilonGreedy(len(REGRET_PROBS), 0.1, shape=(runs,))
    final = bandits.run_bandit(policy, torch.tensor(REGRET_PROBS), REGRET_STEPS, torch.Generator().manual_seed(0))
    final = final.sum(0)
    return float(final.mean()), float(final.std())


def _regret_over_seeds(thompson_sampling) -> tuple[torch.Tensor, float, str]:
    """The answer's final regrets over seeds; whether they are well below epsilon-greedy's and uniform's; a summary."""
    probs = torch.tensor(REGRET_PROBS)
    final = torch.tensor([float(bandits.regret(probs, _plays(thompson_sampling, _reward_table(probs, REGRET_STEPS, s),
                                                            s)[0]).sum()) for s in range(REGRET_SEEDS)])
    eps_mean, eps_std = _epsilon_greedy_regret()
    uniform = REGRET_STEPS * float(probs.max() - probs.mean())
    well_below = bool(final.mean() < 0.75 * eps_mean and final.mean() < 0.2 * uniform)
    summary = (f"final regret after {REGRET_STEPS} steps on arms {REGRET_PROBS}: yours {final.mean():.1f} ± "
               f"{final.std():.1f} over {REGRET_SEEDS} seeds, epsilon-greedy (0.1) {eps_mean:.1f} ± {eps_std:.1f} "
               f"over 200 runs, uniform play {uniform:.1f}")
    return final, well_below, summary


def check_thompson_sampling(thompson_sampling) -> None:
    """Seeded runs against the package's ``ThompsonBernoulli``; regret over seeds against epsilon-greedy and uniform.

    An answer that does not replay the seeded runs and shows none of the typical mistakes is
    told whether its regret at least behaves like Thompson sampling's.
    """
    probs, replayed = torch.tensor([0.25, 0.55, 0.4, 0.6]), True
    for seed in (0, 1, 2):
        rewards = _reward_table(probs, 60, seed)
        arms, generator = _plays(thompson_sampling, rewards, seed + 10)
        if torch.equal(generator.get_state(), torch.Generator().manual_seed(seed + 10).get_state()):
            diagnose(THOMPSON_MISTAKES[-1:], lambda **kw: torch.equal(arms, reference_thompson(rewards, None, **kw)),
                     otherwise="thompson_sampling never drew from the generator it was given: draw every arm's "
                               "theta with sample_beta(alpha, beta, generator)")
        again, _ = _plays(thompson_sampling, rewards, seed + 10)
        if not torch.equal(arms, again):
            raise CheckFailed("two runs with the same generator seed played different arms: draw only from the "
                              "generator you are given, with sample_beta(alpha, beta, generator)")

        def matches(**kw):
            return any(torch.equal(arms, reference_thompson(rewards, torch.Generator().manual_seed(seed + 10),
                                                            dtype=dtype, **kw))
                       for dtype in (torch.float32, torch.float64))
        if not matches():
            diagnose(THOMPSON_MISTAKES, matches)
            replayed = False
            break
    final, well_below, summary = _regret_over_seeds(thompson_sampling)
    how = ("at every step draw theta = sample_beta(1 + successes, 1 + failures, generator) for all arms in one call, "
           "play the arm of the largest theta, then update that arm's counts with its entry of the reward table")
    if not replayed:
        verdict = ("its regret is as low as Thompson sampling's should be, but" if well_below
                   else "its regret is not well below epsilon-greedy's and uniform play's, and")
        raise CheckFailed(f"your policy does not replay a seeded run of Thompson sampling: {verdict} the check needs "
                          f"the exact draws: {how} ({summary})")
    if not well_below:
        raise CheckFailed(f"Thompson sampling should be well below epsilon-greedy and uniform play; {summary}")
    passed(f"thompson_sampling replays the package's seeded runs; {summary}")
