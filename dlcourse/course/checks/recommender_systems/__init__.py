"""Checks for lab 8: regularised user and item biases, one SGD step of biased matrix factorisation,
Recall@k and NDCG@k with seen items excluded, and Thompson sampling for Bernoulli arms with its regret.

The references and checks are split by topic: ``ratings`` (exercises 1 and 2), ``ranking``
(3 and 4) and ``bandits`` (5 and 6); the checks table and the public names are gathered here.
"""

from __future__ import annotations

from .. import Exercise, facing_students
from .bandits import (REGRET_MISTAKES, THOMPSON_MISTAKES, check_cumulative_regret, check_thompson_sampling,
                      reference_cumulative_regret, reference_thompson)
from .ranking import NDCG_MISTAKES, RECALL_MISTAKES, check_ndcg_at_k, check_recall_at_k, reference_ndcg, reference_recall
from .ratings import BIAS_MISTAKES, MF_MISTAKES, check_fit_biases, check_mf_sgd_step, reference_biases, reference_mf_step

__all__ = ["BIAS_MISTAKES", "CHECKS", "MF_MISTAKES", "NDCG_MISTAKES", "RECALL_MISTAKES", "REGRET_MISTAKES",
           "THOMPSON_MISTAKES", "check_cumulative_regret", "check_fit_biases", "check_mf_sgd_step", "check_ndcg_at_k",
           "check_recall_at_k", "check_thompson_sampling", "reference_biases", "reference_cumulative_regret",
           "reference_mf_step", "reference_ndcg", "reference_recall", "reference_thompson"]

CHECKS = {
    "Exercise 1": Exercise("fit_biases", check_fit_biases),
    "Exercise 2": Exercise("mf_sgd_step", check_mf_sgd_step),
    "Exercise 3": Exercise("recall_at_k", check_recall_at_k),
    "Exercise 4": Exercise("ndcg_at_k", check_ndcg_at_k),
    "Exercise 5": Exercise("cumulative_regret", check_cumulative_regret),
    "Exercise 6": Exercise("thompson_sampling", check_thompson_sampling),
}

facing_students(globals())  # a stub's NotImplementedError becomes a one-line ExerciseNotDone
