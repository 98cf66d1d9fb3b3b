"""Lab 9 exercises 5 and 7: ComplEx scores of every tail with complex tensors, and a two-hop composition."""

from __future__ import annotations

import torch

from ....models.kg_embeddings import ComplEx
from .. import CheckFailed, Mistake, call, close, diagnose, expect_tensor, expect_unchanged, fresh, passed


def _package_complex(entity: torch.Tensor, relation: torch.Tensor) -> ComplEx:
    """The package's ComplEx holding these [real | imaginary] embeddings (no added inverse relations)."""
    dim = entity.shape[1] // 2
    model = ComplEx(entity.shape[0], relation.shape[0], dim, reciprocal=False).double()
    with torch.no_grad():
        model.entity.copy_(entity)
        model.relation.copy_(relation)
    return model


def _as_complex(x: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "interleaved":  # reads (re, im) pairs side by side: not how the package stores them
        return torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2).contiguous())
    dim = x.shape[-1] // 2
    return torch.complex(x[..., :dim], x[..., dim:])


def _complex_scores(query: torch.Tensor, entity: torch.Tensor, *, conj: str, part: str, layout: str):
    """Re(sum_k q_k conj(e_k)) for every entity (B, E), or the variant named by the keywords."""
    e = _as_complex(entity, layout)
    total = query @ (e.conj() if conj == "tail" else e).T
    return {"real": total.real, "imag": total.imag, "abs": total.abs()}[part]


def reference_complex_tails(entity, relation, h, r, *, conj: str = "tail", part: str = "real",
                            layout: str = "halves", real_only: bool = False, package: bool = True) -> torch.Tensor:
    """Re(sum_k e_h w_r conj(e_t)) for every tail t: (B, E); keywords build the typical mistakes.

    ``conj`` ``"none"``, ``"head"`` or ``"relation"`` conjugates nothing, the head or the
    relation instead of the tail; ``part`` ``"imag"`` or ``"abs"`` takes the imaginary part or
    the modulus; ``layout="interleaved"`` reads the storage as (re, im) pairs;
    ``real_only`` treats the 2d stored numbers as a DistMult vector. The right scores are the
    package's ``ComplEx.score_tails``.
    """
    if package and (conj, part, layout, real_only) == ("tail", "real", "halves", False):
        return _package_complex(entity, relation).score_tails(h, r)
    if real_only:
        return (entity[h] * relation[r]) @ entity.T
    head, rel = _as_complex(entity[h], layout), _as_complex(relation[r], layout)
    head = head.conj() if conj == "head" else head
    rel = rel.conj() if conj == "relation" else rel
    return _complex_scores(head * rel, entity, conj=conj, part=part, layout=layout)


def _complex_case(num_entities, num_relations, dim, batch, seed):
    g = torch.Generator().manual_seed(fresh(seed))
    entity = torch.randn(num_entities, 2 * dim, generator=g, dtype=torch.float64)
    relation = torch.randn(num_relations, 2 * dim, generator=g, dtype=torch.float64)
    h = torch.randint(num_entities, (batch,), generator=g)
    r = torch.randint(num_relations, (batch,), generator=g)
    return entity, relation, h, r


_LAYOUT = ("the package stores a complex vector of dimension d as 2d real numbers, the d real parts first and "
           "then the d imaginary parts ([real | imaginary] halves): build it with torch.complex(x[..., :d], "
           "x[..., d:]). torch.view_as_complex expects (re, im) pairs side by side, which is a different layout")

COMPLEX_MISTAKES = [
    Mistake(dict(conj="none"), "you did not conjugate the tail: the score is Re(sum e_h w_r conj(e_t)). Without the "
                               "conjugate the score of (h, r, t) equals that of (t, r, h), so the model can only "
                               "represent symmetric relations; use .conj() on the tails"),
    Mistake(dict(conj="head"), "you conjugated the head; the conjugate belongs on the TAIL: Re(sum e_h w_r conj(e_t))"),
    Mistake(dict(conj="relation"), "you conjugated the relation; the conjugate belongs on the TAIL: "
                                   "Re(sum e_h w_r conj(e_t)) (conjugating w_r scores the inverse relation)"),
    Mistake(dict(part="imag"), "you took the imaginary part: the ComplEx score is the REAL part, .real, of "
                               "sum e_h w_r conj(e_t)"),
    Mistake(dict(part="abs"), "you took the modulus (abs) of the complex sum: the ComplEx score is its real part, "
                              ".real, which can be negative"),
    Mistake(dict(layout="interleaved"), "your complex numbers are built from the wrong entries: " + _LAYOUT),
    Mistake(dict(real_only=True), "you scored the 2d stored numbers as real vectors (DistMult of width 2d): turn the "
                                  "[real | imaginary] halves into complex tensors first, multiply as complex numbers "
                                  "and conjugate the tail"),
]


def _check_real_scores(fn, name: str, args: tuple, shape: tuple, reference, mistakes, *, what: str,
                       complex_hint: str, formula: str) -> bool:
    """One case: ``fn(*args)`` must be real (Q, E) scores equal to ``reference(*args)``, its inputs unchanged.

    Returns True when right; raises ``CheckFailed`` naming the first mistake it recognises.
    """
    copies = [a.clone() for a in args]
    got = call(fn, name, *copies)
    if isinstance(got, torch.Tensor) and got.is_complex():
        raise CheckFailed(f"{name} returned complex numbers: {complex_hint}")
    got = expect_tensor(got, (shape[3], shape[0]), f"the scores of {shape[3]} {what} against all "
                                                   f"{shape[0]} entities").double()
    expect_unchanged(args, copies, f"{name} changed the tensors it was given")
    want = reference(*args)
    if close(got, want, 1e-7):
        return True
    diagnose(mistakes, lambda **kw: close(got, reference(*args, **kw), 1e-7))
    raise CheckFailed(f"{name} differs {formula.format(gap=f'{(got - want).abs().max():.3g}')}")


def check_complex_score_tails(complex_score_tails) -> None:
    """Against the package's ``ComplEx.score_tails``: (B, E) real scores; the embeddings unchanged."""
    for shape in [(6, 3, 2, 4, 0), (9, 5, 4, 7, 1), (12, 6, 3, 10, 2)]:  # entities, relations, dim, batch, seed
        _check_real_scores(complex_score_tails, "complex_score_tails", _complex_case(*shape), shape,
                           reference_complex_tails, COMPLEX_MISTAKES, what="questions",
                           complex_hint="the score is the REAL part of the Hermitian product (.real), one real "
                                        "number per (question, entity)",
                           formula="from the package's ComplEx by up to {gap}: score[b, t] = Re(sum_k e_h[b, k] "
                                   "w_r[b, k] conj(e_t[k])) with complex vectors built from [real | imaginary] halves")
    passed("complex_score_tails matches the package's ComplEx.score_tails")


# Exercise 7 -----------------------------------------------------------------------------


def reference_two_hop_scores(entity, relation, h, r1, r2, *, combine: str = "product", conj: str = "tail",
                             part: str = "real", layout: str = "halves", package: bool = True) -> torch.Tensor:
    """Re(sum_k e_h w_r1 w_r2 conj(e_y)) for every entity y: (Q, E); keywords build the typical mistakes.

    ``combine`` ``"sum"`` multiplies the head by w_r1 + w_r2 (a translation's composition),
    ``"first"`` uses r1 alone, ``"second"`` r2 alone; ``conj``, ``part`` and ``layout`` as in
    ``reference_complex_tails``. The right scores are the package's ``ComplEx`` with two
    ``relate`` calls, then ``match``.
    """
    if package and (combine, conj, part, layout) == ("product", "tail", "real", "halves"):
        model = _package_complex(entity, relation)
        return model.match(model.relate(model.relate(entity[h], r1), r2))
    head = _as_complex(entity[h], layout)
    w1, w2 = _as_complex(relation[r1], layout), _as_complex(relation[r2], layout)
    query = {"product": head * w1 * w2, "sum": head * (w1 + w2), "first": head * w1, "second": head * w2}[combine]
    return _complex_scores(query, entity, conj=conj, part=part, layout=layout)


TWO_HOP_SCORE_MISTAKES = [
    Mistake(dict(combine="sum"), "you added the two relation vectors: TransE composes translations by adding them, "
                                 "but a ComplEx relation MULTIPLIES the head (an elementwise complex product), so two "
                                 "hops multiply twice: q = e_h * w_r1 * w_r2"),
    Mistake(dict(combine="first"), "your scores use only the first relation: the query of a two-hop question is "
                                   "q = e_h * w_r1 * w_r2 (the head through r1, then through r2)"),
    Mistake(dict(combine="second"), "your scores use only the second relation: the query of a two-hop question is "
                                    "q = e_h * w_r1 * w_r2 (the head through r1, then through r2)"),
    Mistake(dict(conj="none"), "you did not conjugate the candidate answers: score[y] = Re(sum_k q_k conj(e_y[k]))"),
    Mistake(dict(part="imag"), "you took the imaginary part: the score is the REAL part of sum_k q_k conj(e_y[k])"),
    Mistake(dict(layout="interleaved"), "your complex numbers are built from the wrong entries: " + _LAYOUT),
]


def check_two_hop_scores(two_hop_scores) -> None:
    """Against the package's ComplEx composed twice (relate, relate, match): (Q, E); inputs unchanged."""
    for shape in [(7, 3, 2, 4, 3), (10, 5, 4, 6, 4)]:
        entity, relation, h, r1 = _complex_case(*shape)
        r2 = torch.roll(r1, 1) if shape[3] > 1 else r1
        _check_real_scores(two_hop_scores, "two_hop_scores", (entity, relation, h, r1, r2), shape,
                           reference_two_hop_scores, TWO_HOP_SCORE_MISTAKES, what="two-hop questions",
                           complex_hint="take the real part (.real)",
                           formula="from the composed ComplEx query by up to {gap}: score[q, y] = "
                                   "Re(sum_k e_h w_r1 w_r2 conj(e_y))")
    passed("two_hop_scores matches the package's ComplEx composed through both relations")
