"""Checks for lab 9: the TransE score and the margin ranking loss, the filtered realistic rank and MRR
and Hits@k, ComplEx scores with complex tensors, and two-hop questions answered by the graph and by
a composed ComplEx query.

The references and checks are split by topic: ``transe`` (exercises 1 and 2), ``ranking`` (3 and 4),
``complex_scores`` (5 and 7) and ``two_hop`` (6); the checks table and the public names are gathered here.
"""

from __future__ import annotations

from .. import Exercise, facing_students
from .complex_scores import (COMPLEX_MISTAKES, TWO_HOP_SCORE_MISTAKES, check_complex_score_tails,
                             check_two_hop_scores, reference_complex_tails, reference_two_hop_scores)
from .ranking import (METRIC_MISTAKES, RANK_MISTAKES, check_filtered_rank, check_mrr_and_hits, reference_metrics,
                      reference_rank)
from .transe import (MARGIN_MISTAKES, TRANSE_MISTAKES, check_margin_ranking_loss, check_transe_score,
                     reference_margin_loss, reference_transe_score)
from .two_hop import TWO_HOP_MISTAKES, check_two_hop_answers, reference_two_hop_answers

__all__ = ["CHECKS", "COMPLEX_MISTAKES", "MARGIN_MISTAKES", "METRIC_MISTAKES", "RANK_MISTAKES", "TRANSE_MISTAKES",
           "TWO_HOP_MISTAKES", "TWO_HOP_SCORE_MISTAKES", "check_complex_score_tails", "check_filtered_rank",
           "check_margin_ranking_loss", "check_mrr_and_hits", "check_transe_score", "check_two_hop_answers",
           "check_two_hop_scores", "reference_complex_tails", "reference_margin_loss", "reference_metrics",
           "reference_rank", "reference_transe_score", "reference_two_hop_answers", "reference_two_hop_scores"]

CHECKS = {
    "Exercise 1": Exercise("transe_score", check_transe_score),
    "Exercise 2": Exercise("margin_ranking_loss", check_margin_ranking_loss),
    "Exercise 3": Exercise("filtered_rank", check_filtered_rank),
    "Exercise 4": Exercise("mrr_and_hits", check_mrr_and_hits),
    "Exercise 5": Exercise("complex_score_tails", check_complex_score_tails),
    "Exercise 6": Exercise("two_hop_answers", check_two_hop_answers),
    "Exercise 7": Exercise("two_hop_scores", check_two_hop_scores),
}

facing_students(globals())  # a stub's NotImplementedError becomes a one-line ExerciseNotDone
