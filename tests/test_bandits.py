"""dlcourse.topics.bandits and bandit_simulator: Bernoulli policies, LinUCB, regret, the simulator, the feedback loop (8.4)."""

import math

import pytest
import torch

from dlcourse.topics.bandit_simulator import (Simulator, calibrate, feedback_loop, fit_click_model,
                                              movietweetings_simulator, predict_clicks, score_matrix)
from dlcourse.topics.bandits import UCB1, EpsilonGreedy, GreedyPolicy, LinUCB, ThompsonBernoulli, regret, run_bandit, sample_beta

EASY = torch.tensor([0.1, 0.2, 0.8, 0.3])  # arm 2 is clearly best
POLICIES = {
    "greedy": lambda shape: GreedyPolicy(4, shape),
    "epsilon": lambda shape: EpsilonGreedy(4, 0.1, shape),
    "ucb": lambda shape: UCB1(4, shape),
    "thompson": lambda shape: ThompsonBernoulli(4, shape),
    "linucb": lambda shape: LinUCB(torch.eye(4), shape, alpha=0.5),
}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", ["epsilon", "ucb", "thompson", "linucb"])
def test_regret_sublinear_on_easy_arms(name):
    steps = 400
    r = run_bandit(POLICIES[name]((50,)), EASY, steps, gen())
    assert r.shape == (steps, 50)
    late = r[-100:].mean()
    assert late < 0.15, (name, float(late))  # a uniform policy has regret 0.45 per step
    assert r.sum(0).mean() < 0.35 * steps * 0.45


def test_greedy_can_get_stuck_but_explorers_do_not():
    steps = 300
    greedy = run_bandit(GreedyPolicy(4, (200,)), EASY, steps, gen())[-1]
    thompson = run_bandit(ThompsonBernoulli(4, (200,)), EASY, steps, gen())[-1]
    assert (greedy > 0).float().mean() > 0.2  # many greedy runs end on a bad arm
    assert (thompson > 0).float().mean() < 0.1


def test_thompson_beats_epsilon_and_ucb_on_average():
    final = {name: run_bandit(POLICIES[name]((100,)), EASY, 500, gen()).sum(0).mean()
             for name in ("epsilon", "ucb", "thompson")}
    assert final["thompson"] < min(final["epsilon"], final["ucb"]), final


def test_thompson_posterior_counts():
    ts = ThompsonBernoulli(3, prior=(1.0, 2.0))
    for arm, reward in [(0, 1), (0, 0), (2, 1), (0, 1)]:
        ts.update(torch.tensor(arm), torch.tensor(float(reward)))
    assert ts.alpha.tolist() == [3.0, 1.0, 2.0]
    assert ts.beta.tolist() == [3.0, 2.0, 2.0]
    assert ts.pulls.tolist() == [3.0, 0.0, 1.0]


def test_beta_sampler_moments():
    a = torch.tensor([0.5, 1.0, 2.0, 30.0]).repeat(20000, 1)
    b = torch.tensor([0.5, 3.0, 2.0, 10.0]).repeat(20000, 1)
    x = sample_beta(a, b, gen())
    mean, var = a[0] / (a[0] + b[0]), a[0] * b[0] / ((a[0] + b[0]) ** 2 * (a[0] + b[0] + 1))
    assert torch.allclose(x.mean(0), mean, atol=0.01)
    assert torch.allclose(x.var(0), var, rtol=0.08)
    assert ((x >= 0) & (x <= 1)).all()


def test_ucb_formula():
    ucb = UCB1(3)
    assert set(int(ucb.select(gen(s))) for s in range(20)) <= {0, 1, 2}
    for arm, reward in [(0, 1), (1, 0), (2, 1), (0, 0), (1, 1)]:
        ucb.update(torch.tensor(arm), torch.tensor(float(reward)))
    n = 5
    expected = [0.5 + math.sqrt(2 * math.log(n) / 2), 0.5 + math.sqrt(2 * math.log(n) / 2),
                1.0 + math.sqrt(2 * math.log(n) / 1)]
    assert torch.allclose(ucb.scores(), torch.tensor(expected))
    assert int(ucb.select(gen())) == 2


def test_ucb_plays_every_arm_first():
    ucb = UCB1(5)
    arms = []
    for _ in range(5):
        a = ucb.select(gen())
        arms.append(int(a))
        ucb.update(a, torch.tensor(0.0))
    assert sorted(arms) == list(range(5))


def test_linucb_matches_direct_ridge_solution():
    X = torch.randn(6, 3, generator=gen())
    lin = LinUCB(X, alpha=0.7, reg=2.0)
    arms, rewards = [0, 3, 3, 5, 1], [1.0, 0.0, 1.0, 1.0, 0.0]
    for a, r in zip(arms, rewards):
        lin.update(torch.tensor(a), torch.tensor(r))
    A = 2.0 * torch.eye(3) + X[arms].T @ X[arms]
    theta = torch.linalg.solve(A, X[arms].T @ torch.tensor(rewards))
    width = ((X @ torch.linalg.inv(A)) * X).sum(1).sqrt()
    assert torch.allclose(lin.theta, theta, atol=1e-5)
    assert torch.allclose(lin.scores(), X @ theta + 0.7 * width, atol=1e-5)


@pytest.mark.parametrize("name", list(POLICIES))
def test_seeded_determinism(name):
    a = run_bandit(POLICIES[name]((3,)), EASY, 50, gen(7))
    b = run_bandit(POLICIES[name]((3,)), EASY, 50, gen(7))
    assert torch.equal(a, b)


def test_regret_helper_and_per_user_probs():
    probs = torch.tensor([[0.1, 0.5], [0.9, 0.2]])
    assert torch.allclose(regret(probs, torch.tensor([0, 0])), torch.tensor([0.4, 0.0]))
    assert torch.allclose(regret(EASY, torch.tensor(1)), torch.tensor(0.6))
    r = run_bandit(ThompsonBernoulli(2, (4, 2)), Simulator(probs), 20, gen())  # 4 runs x 2 users
    assert r.shape == (20, 4, 2) and (r >= 0).all()


def test_errors():
    with pytest.raises(ValueError, match="num_arms"):
        GreedyPolicy(0)
    with pytest.raises(ValueError, match="epsilon"):
        EpsilonGreedy(3, 1.5)
    with pytest.raises(ValueError, match="prior"):
        ThompsonBernoulli(3, prior=(0.0, 1.0))
    with pytest.raises(ValueError, match="shape"):
        UCB1(3, shape=(0,))
    ts = ThompsonBernoulli(3, (2,))
    with pytest.raises(ValueError, match="shape"):
        ts.update(torch.tensor(0), torch.tensor(1.0))
    with pytest.raises(ValueError, match="integers in 0..2"):
        ts.update(torch.tensor([0, 3]), torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ts.update(torch.tensor([0, 1]), torch.tensor([2.0, 0.0]))
    with pytest.raises(ValueError, match="arms"):
        run_bandit(ts, torch.tensor([0.5, 0.5]), 10, gen())
    with pytest.raises(ValueError, match="broadcast"):
        run_bandit(ts, torch.rand(5, 3), 10, gen())
    with pytest.raises(ValueError, match="steps"):
        run_bandit(ts, torch.rand(3), 0, gen())
    with pytest.raises(ValueError, match="features"):
        LinUCB(torch.ones(3))
    with pytest.raises(ValueError, match="click_prob"):
        Simulator(torch.tensor([[1.5]]))
    with pytest.raises(ValueError, match="strategy"):
        feedback_loop(Simulator(torch.rand(3, 4)), torch.randn(4, 2), "optimal")


def test_calibrate_recovers_logistic_map():
    g = gen()
    s = torch.randn(20000, generator=g)
    y = torch.bernoulli(torch.sigmoid(1.5 * s - 0.5), generator=g)
    a, b = calibrate(s, y)
    assert a == pytest.approx(1.5, abs=0.1) and b == pytest.approx(-0.5, abs=0.1)


def test_score_matrix_and_simulator_from_biased_mf():
    from dlcourse.data.movietweetings import Ratings
    from dlcourse.models.matrix_factorisation import BiasedMF

    model = BiasedMF(2, 3, 2)
    with torch.no_grad():
        model.mu.fill_(7.0)
        model.user_bias.copy_(torch.tensor([0.5, -0.5]))
        model.item_bias.copy_(torch.tensor([1.0, 0.0, -1.0]))
        model.user_factors.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        model.item_factors.weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 1.0], [2.0, 0.0]]))
    full = score_matrix(model, torch.tensor([0, 1]), torch.tensor([0, 1, 2]))
    assert full.shape == (2, 3) and float(full[1, 1]) == pytest.approx(7.0 - 0.5 + 0.0 + 2.0)
    assert torch.allclose(model(torch.tensor([1, 0]), torch.tensor([1, 2])), full[[1, 0], [1, 2]])
    g = gen()
    user, item = torch.randint(2, (400,), generator=g), torch.randint(3, (400,), generator=g)
    rating = (model(user, item).detach() + torch.randn(400, generator=g)).clamp(0, 10).round()
    ratings = Ratings(user, item, rating, torch.arange(400), 2, 3, ["a", "b", "c"], [[], [], []])
    model.set_training_data(ratings)
    sim = movietweetings_simulator(model, ratings, torch.tensor([0, 1]), torch.tensor([0, 1, 2]), like=9)
    assert sim.click_prob.shape == (2, 3) and int(sim.best_items()[1]) == 0
    assert torch.equal(sim.click_prob.argsort(1), full.argsort(1))  # monotone in the predicted rating


def test_click_model_and_feedback_loop():
    g = gen()
    features = torch.randn(8, 2, generator=g)
    w_true = torch.randn(30, 2, generator=g)
    sim = Simulator(torch.sigmoid(w_true @ features.T - 1.0))
    u, i = torch.arange(30).repeat_interleave(8), torch.arange(8).repeat(30)
    state = fit_click_model(u.repeat(20), i.repeat(20), sim.click(u.repeat(20), i.repeat(20), g), 30, features,
                            steps=200)
    assert (predict_clicks(state, features) - sim.click_prob).abs().mean() < 0.1
    greedy = feedback_loop(sim, features, "greedy", rounds=4, per_round=2, initial=1, steps=20, generator=gen(1))
    explore = feedback_loop(sim, features, "random", rounds=4, per_round=2, initial=1, steps=20, generator=gen(1))
    for res in (greedy, explore):
        assert res.shows.sum() == 30 * (1 + 4 * 2) and len(res.round_click_rate) == 4
        assert res.estimate.shape == (30, 8)
    assert (greedy.shows > 0).sum() < (explore.shows > 0).sum()  # greedy repeats itself


def test_settings_per_problem_in_one_batch():
    eps = EpsilonGreedy(4, torch.tensor([0.0, 1.0])[:, None], (2, 500))
    eps.update(torch.zeros(2, 500, dtype=torch.long), torch.ones(2, 500))  # arm 0 looks best everywhere
    arms = eps.select(gen())
    assert (arms[0] == 0).all() and (arms[1] != 0).float().mean() > 0.6  # eps = 0: greedy; eps = 1: uniform
    X = torch.randn(4, 3, generator=gen())
    both = LinUCB(X, (2,), alpha=torch.tensor([0.1, 2.0]))
    both.update(torch.tensor([1, 1]), torch.tensor([1.0, 1.0]))
    for row, a in enumerate((0.1, 2.0)):
        single = LinUCB(X, alpha=a)
        single.update(torch.tensor(1), torch.tensor(1.0))
        assert torch.allclose(both.scores()[row], single.scores(), atol=1e-6)
    with pytest.raises(ValueError, match="broadcast"):
        EpsilonGreedy(4, torch.tensor([0.1, 0.2, 0.3]), (2,))


def test_plots():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dlcourse.topics.bandit_plots import plot_feedback_loop, plot_regret_curves

    fig = plot_regret_curves({"a": torch.rand(10, 3).cumsum(0), "b": torch.rand(10, 3).cumsum(0)}, title="t")
    assert len(fig.axes[0].lines) == 2
    with pytest.raises(ValueError, match="steps, seeds"):
        plot_regret_curves({"a": torch.rand(10)})
    with pytest.raises(ValueError, match="colours"):
        plot_regret_curves({"a": torch.rand(10, 2)}, colors=[])
    sim = Simulator(torch.rand(6, 5, generator=gen()))
    features = torch.randn(5, 2, generator=gen())
    results = {s: feedback_loop(sim, features, s, rounds=2, per_round=1, initial=1, steps=5, generator=gen())
               for s in ("greedy", "random")}
    assert len(plot_feedback_loop(sim, results).axes) == 3
    plt.close("all")
