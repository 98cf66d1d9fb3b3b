"""Lab 8's checks pass the references and name the typical mistakes (tests/test_labs.py runs the solution)."""

import pytest
import torch

from dlcourse.course.checks import close
from dlcourse.course.checks import recommender_systems as checks
from dlcourse.course.checks.recommender_systems import bandits as bandit_checks, ratings as rating_checks
from dlcourse.topics import bandits
from labtest import feedback


def biases(**kw):
    return lambda train, reg_user, reg_item, num_iters: checks.reference_biases(train, reg_user, reg_item, num_iters,
                                                                                **kw)


def test_bias_reference_passes(capsys):
    checks.check_fit_biases(biases())
    checks.check_fit_biases(biases(package=False))  # the formula and the package's fit_biases agree
    assert capsys.readouterr().out.count("✔") == 2


@pytest.mark.parametrize("mistake", checks.BIAS_MISTAKES, ids=lambda m: str(dict(m.variant)))
def test_bias_feedback(mistake):
    assert mistake.message in feedback(checks.check_fit_biases, biases(**mistake.variant))


def test_bias_orders_converge_to_the_same_biases():
    train = rating_checks._bias_case()
    _, user, item = checks.reference_biases(train, 0.5, 3.0, 200, package=False)
    for order in ("stale", "items first"):
        _, u, i = checks.reference_biases(train, 0.5, 3.0, 200, order=order)
        assert close(u, user, 1e-5) and close(i, item, 1e-5)


def test_unseen_ids_must_get_zero_bias():
    def shifted(train, reg_user, reg_item, num_iters):
        mu, user, item = checks.reference_biases(train, reg_user, reg_item, num_iters)
        user, item = user.clone(), item.clone()
        user[6], item[7] = 0.3, float("nan")
        return mu, user, item
    assert "should get bias 0" in feedback(checks.check_fit_biases, shifted)


def test_bias_shapes_and_mean_are_checked():
    def compact(train, reg_user, reg_item, num_iters):
        mu, user, item = checks.reference_biases(train, reg_user, reg_item, num_iters)
        return mu, user[:6], item
    assert "users without a training rating included" in feedback(checks.check_fit_biases, compact)

    def no_mean(train, reg_user, reg_item, num_iters):
        return (0.0, *checks.reference_biases(train, reg_user, reg_item, num_iters)[1:])
    assert "mean of the training ratings" in feedback(checks.check_fit_biases, no_mean)


def mf_step(**kw):
    return lambda *args: checks.reference_mf_step(*args, **kw)


def test_mf_reference_passes_and_matches_the_formula(capsys):
    checks.check_mf_sgd_step(mf_step())
    checks.check_mf_sgd_step(mf_step(package=False))  # autograd on BiasedMF and the hand formula agree
    assert capsys.readouterr().out.count("✔") == 2


@pytest.mark.parametrize("mistake", checks.MF_MISTAKES, ids=lambda m: str(dict(m.variant)))
def test_mf_feedback(mistake):
    assert mistake.message in feedback(checks.check_mf_sgd_step, mf_step(**mistake.variant))


def test_mf_step_must_not_change_its_inputs():
    def in_place(*args):
        new = checks.reference_mf_step(*args)
        args[3].copy_(new[2])
        return new
    assert "changed its inputs in place" in feedback(checks.check_mf_sgd_step, in_place)


def metric(reference, **kw):
    return lambda *args: reference(*args, **kw)


def test_ranking_references_pass_and_match_the_formula(capsys):
    for package in (True, False):
        checks.check_recall_at_k(metric(checks.reference_recall, package=package))
        checks.check_ndcg_at_k(metric(checks.reference_ndcg, package=package))
    assert capsys.readouterr().out.count("✔") == 4


@pytest.mark.parametrize("mistake", checks.RECALL_MISTAKES, ids=lambda m: str(dict(m.variant)))
def test_recall_feedback(mistake):
    assert mistake.message in feedback(checks.check_recall_at_k, metric(checks.reference_recall, **mistake.variant))


@pytest.mark.parametrize("mistake", checks.NDCG_MISTAKES, ids=lambda m: str(dict(m.variant)))
def test_ndcg_feedback(mistake):
    assert mistake.message in feedback(checks.check_ndcg_at_k, metric(checks.reference_ndcg, **mistake.variant))


def test_ndcg_discount_that_divides_by_zero_is_named():
    assert "log2(1) = 0" in feedback(checks.check_ndcg_at_k, metric(checks.reference_ndcg, discount="log2 r"))


def test_ranking_must_not_mask_in_place():
    def in_place(scores, seen, relevant, k):
        value = checks.reference_recall(scores, seen, relevant, k)
        scores.masked_fill_(seen, float("-inf"))
        return value
    assert "masked_fill_" in feedback(checks.check_recall_at_k, in_place)


def test_ndcg_by_hand():
    # one user, items 0..4; item 0 seen (excluded), items 2 and 4 relevant; ranking 0, 1, 2, 3, 4 by score
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]])
    seen = torch.tensor([[True, False, False, False, False]])
    relevant = torch.tensor([[False, False, True, False, True]])
    # top 3 after exclusion: 1, 2, 3 -> hit at rank 2: DCG = 1/log2(3); ideal: ranks 1, 2
    want = (1 / torch.log2(torch.tensor(3.0))) / (1 + 1 / torch.log2(torch.tensor(3.0)))
    assert abs(checks.reference_ndcg(scores, seen, relevant, 3) - want.item()) < 1e-6
    assert abs(checks.reference_recall(scores, seen, relevant, 3) - 0.5) < 1e-9


def regret(**kw):
    return lambda probs, arms: checks.reference_cumulative_regret(probs, arms, **kw)


def test_regret_reference_passes(capsys):
    checks.check_cumulative_regret(regret())
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize("mistake", checks.REGRET_MISTAKES, ids=lambda m: str(dict(m.variant)))
def test_regret_feedback(mistake):
    assert mistake.message in feedback(checks.check_cumulative_regret, regret(**mistake.variant))


def thompson(**kw):
    return lambda rewards, generator: checks.reference_thompson(rewards, generator, **kw)


def test_thompson_reference_passes_in_both_precisions(capsys):
    checks.check_thompson_sampling(thompson())
    checks.check_thompson_sampling(thompson(dtype=torch.float64))
    assert capsys.readouterr().out.count("✔") == 2


def test_thompson_formula_replays_the_package():
    rewards = bandit_checks._reward_table(torch.tensor([0.2, 0.6, 0.4]), 80, 3)
    arms = [checks.reference_thompson(rewards, torch.Generator().manual_seed(4), package=p) for p in (True, False)]
    assert torch.equal(*arms)


@pytest.mark.parametrize("mistake", checks.THOMPSON_MISTAKES, ids=lambda m: str(dict(m.variant)))
def test_thompson_feedback(mistake):
    assert mistake.message in feedback(checks.check_thompson_sampling, thompson(**mistake.variant))


def test_thompson_must_draw_from_its_generator():
    def global_rng(rewards, generator):
        return checks.reference_thompson(rewards, None)
    assert "never drew from the generator" in feedback(checks.check_thompson_sampling, global_rng)

    def mixed(rewards, generator):
        torch.rand(1, generator=generator)
        return checks.reference_thompson(rewards, None)
    assert "draw only from the generator" in feedback(checks.check_thompson_sampling, mixed)

    def greedy_random_ties(rewards, generator):
        T, K = rewards.shape
        policy = bandits.GreedyPolicy(K)
        arms = torch.zeros(T, dtype=torch.long)
        for t in range(T):
            arms[t] = policy.select(generator)
            policy.update(arms[t], rewards[t, arms[t]])
        return arms
    assert "Thompson sampling plays the arm whose posterior DRAW" in feedback(
        checks.check_thompson_sampling, lambda rewards, generator: checks.reference_thompson(rewards, generator,
                                                                                             choose="mean"))
    message = feedback(checks.check_thompson_sampling, greedy_random_ties)
    assert "seeded run" in message or "well below" in message


def test_a_policy_that_does_not_learn_is_caught_by_its_regret():
    def uniform(rewards, generator):
        return torch.randint(rewards.shape[1], (len(rewards),), generator=generator)
    assert "seeded run" in feedback(checks.check_thompson_sampling, uniform)


def test_every_exercise_is_registered():
    assert list(checks.CHECKS) == [f"Exercise {i}" for i in range(1, 7)]
