"""Knowledge-graph embeddings: TransE, DistMult and ComplEx, and their training (chapter 9).

Every entity gets a vector and every relation a vector of the same size. A model scores a
triple (h, r, t) from them; a high score says the triple is likely true:

* TransE (Bordes et al. 2013): a relation is a translation, ``score = -|e_h + w_r - e_t|_p``;
* DistMult (Yang et al. 2015): a relation is a diagonal bilinear form,
  ``score = sum_k e_h[k] w_r[k] e_t[k]``, symmetric in h and t;
* ComplEx (Trouillon et al. 2016): DistMult with complex vectors and the conjugate of the
  tail, ``score = Re(sum_k e_h[k] w_r[k] conj(e_t[k]))``, which can be antisymmetric.

Each model is written as ``relate(x, r)`` (map entity-space vectors through relation r) and
``match(q)`` (score query vectors against every entity), so ``score_tails(h, r) =
match(relate(E[h], r))`` and a two-hop query composes two ``relate`` calls (section 9.4).
Models hold ``2R`` relations when ``reciprocal`` is set: relation ``r + R`` is the inverse
of ``r`` and answers "which head?" questions (``knowledge_graphs.with_inverses``).

``train_kge`` trains any of them with the course's ``fit`` loop, either by 1-vs-all
cross-entropy (every entity is a candidate tail; Lacroix et al. 2018) or by negative
sampling (a few random tails per true triple, logistic loss), with an N3 or L2 penalty.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from ..train import History, TensorBatches, fit


class KGEmbedding(nn.Module):
    """Entity and relation embeddings with ``relate``/``match``; subclasses define the geometry."""

    entity_width = 1  # real numbers per embedding coordinate (2 for complex)

    def __init__(self, num_entities: int, num_relations: int, dim: int, *, reciprocal: bool = True,
                 init_scale: float = 1e-3, generator: torch.Generator | None = None):
        super().__init__()
        for name, value in {"num_entities": num_entities, "num_relations": num_relations, "dim": dim}.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.num_entities, self.num_relations, self.dim = num_entities, num_relations, dim
        self.reciprocal = reciprocal
        width = dim * self.entity_width
        rel_count = 2 * num_relations if reciprocal else num_relations
        self.entity = nn.Parameter(init_scale * torch.randn(num_entities, width, generator=generator))
        self.relation = nn.Parameter(self._init_relations(rel_count, width, init_scale, generator))

    def _init_relations(self, count, width, scale, generator):
        return scale * torch.randn(count, width, generator=generator)

    def _check(self, h: torch.Tensor | None, r: torch.Tensor) -> None:
        if r.numel() and (int(r.min()) < 0 or int(r.max()) >= self.relation.shape[0]):
            raise ValueError(f"relation ids must lie in 0..{self.relation.shape[0] - 1} "
                             f"({'2R with reciprocal relations' if self.reciprocal else 'R'})")
        if h is not None and h.numel() and (int(h.min()) < 0 or int(h.max()) >= self.num_entities):
            raise ValueError(f"entity ids must lie in 0..{self.num_entities - 1}")

    def relate(self, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """Entity-space vectors ``x`` (B, width) mapped through relations ``r`` (B,): the query for tails."""
        raise NotImplementedError

    def match(self, q: torch.Tensor, candidates: torch.Tensor | None = None) -> torch.Tensor:
        """Scores of queries ``q`` (B, width) against every entity (B, E), or against ``candidates`` (B, C)."""
        raise NotImplementedError

    def score_tails(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """Scores of (h[b], r[b], t) for every entity t: (B, E)."""
        h, r = torch.as_tensor(h).long(), torch.as_tensor(r).long()
        self._check(h, r)
        return self.match(self.relate(self.entity[h], r))

    def score(self, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Scores of the triples (h[b], r[b], t[b]): (B,)."""
        h, r, t = (torch.as_tensor(x).long() for x in (h, r, t))
        self._check(h, r)
        self._check(t, r)
        return self.match(self.relate(self.entity[h], r), t.unsqueeze(1)).squeeze(1)

    def penalty(self, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor, kind: str = "n3") -> torch.Tensor:
        """Weight penalty of the embeddings a batch uses: N3 (sum of |x|^3 of the moduli) or L2 (sum of x^2)."""
        factors = [self._modulus(self.entity[h]), self._modulus(self.relation[r]), self._modulus(self.entity[t])]
        if kind == "n3":
            return sum(f.abs().pow(3).sum() for f in factors) / len(h)
        if kind == "l2":
            return sum(f.pow(2).sum() for f in factors) / len(h)
        raise ValueError(f"unknown penalty {kind!r}: choose 'n3' or 'l2'")

    def _modulus(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def extra_repr(self) -> str:
        return (f"entities={self.num_entities}, relations={self.num_relations}"
                f"{' (+ inverses)' if self.reciprocal else ''}, dim={self.dim}")


class TransE(KGEmbedding):
    """score(h, r, t) = -|e_h + w_r - e_t|_p: a relation translates the head onto the tail."""

    def __init__(self, num_entities: int, num_relations: int, dim: int, *, p: int = 1, **kwargs):
        if p not in (1, 2):
            raise ValueError(f"p must be 1 or 2 (the norm of the translation error), got {p!r}")
        self.p = p
        super().__init__(num_entities, num_relations, dim, **kwargs)

    def relate(self, x, r):
        return x + self.relation[r]

    def match(self, q, candidates=None):
        if candidates is None:
            return -torch.cdist(q, self.entity, p=self.p)
        return -(q.unsqueeze(1) - self.entity[candidates]).norm(p=self.p, dim=-1)


class DistMult(KGEmbedding):
    """score(h, r, t) = <e_h, w_r, e_t>: a diagonal bilinear form, the same for (h, t) and (t, h)."""

    def relate(self, x, r):
        return x * self.relation[r]

    def match(self, q, candidates=None):
        if candidates is None:
            return q @ self.entity.T
        return (q.unsqueeze(1) * self.entity[candidates]).sum(-1)


class ComplEx(KGEmbedding):
    """score(h, r, t) = Re(<e_h, w_r, conj(e_t)>) with complex vectors stored as [real | imaginary] halves."""

    entity_width = 2

    def _split(self, x):
        return x[..., :self.dim], x[..., self.dim:]

    def relate(self, x, r):
        (a, b), (c, d) = self._split(x), self._split(self.relation[r])
        return torch.cat([a * c - b * d, a * d + b * c], -1)  # complex product e_h * w_r

    def match(self, q, candidates=None):
        # Re(q * conj(e)) = q_re e_re + q_im e_im: a dot product of the stacked halves.
        if candidates is None:
            return q @ self.entity.T
        return (q.unsqueeze(1) * self.entity[candidates]).sum(-1)

    def _modulus(self, x):
        re, im = self._split(x)
        return torch.sqrt(re ** 2 + im ** 2 + 1e-12)


MODELS = {"transe": TransE, "distmult": DistMult, "complex": ComplEx}
MODEL_LABELS = {"transe": "TransE", "distmult": "DistMult", "complex": "ComplEx"}
MODEL_KWARGS = {"transe": {"p": 1}, "distmult": {}, "complex": {}}  # TransE with the L1 distance
# Training settings of chapter 9, chosen on the validation MRR of UMLS (dimension 100, 1-vs-all loss):
# Adagrad with the N3 penalty for the multiplicative models, Adam without a penalty for TransE's distances.
UMLS_FIT_KWARGS = {"transe": {"optimizer": "adam", "lr": 0.01, "reg": 0.0},
                   "distmult": {"optimizer": "adagrad", "lr": 0.1, "reg": 0.01},
                   "complex": {"optimizer": "adagrad", "lr": 0.1, "reg": 0.01}}


def make_model(name: str, num_entities: int, num_relations: int, dim: int, **kwargs) -> KGEmbedding:
    """A model by name: ``"transe"``, ``"distmult"`` or ``"complex"``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    return MODELS[name](num_entities, num_relations, dim, **kwargs)


LOSSES = ("1vsall", "negative", "margin")


def kge_loss(model: KGEmbedding, batch, *, loss: str = "1vsall", reg: float = 0.0, penalty: str = "n3",
             num_negatives: int = 32, label_smoothing: float = 0.0, margin: float = 1.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """The training loss of a batch of triples (B, 3).

    ``"1vsall"``: cross-entropy of the true tail among all entities. ``"negative"``: logistic
    loss of the true triple against ``num_negatives`` tails drawn uniformly at random
    (-log σ(s⁺) - mean log σ(-s⁻)). ``"margin"``: the margin ranking loss of TransE's paper,
    mean of max(0, margin - s⁺ + s⁻) over the sampled tails. Plus ``reg`` times the
    ``penalty`` of the embeddings used.
    """
    (triples,) = batch if isinstance(batch, (tuple, list)) else (batch,)
    h, r, t = triples[:, 0], triples[:, 1], triples[:, 2]
    if loss == "1vsall":
        data = nn.functional.cross_entropy(model.score_tails(h, r), t, label_smoothing=label_smoothing)
    elif loss in ("negative", "margin"):
        q = model.relate(model.entity[h], r)
        neg = torch.randint(model.num_entities, (len(h), num_negatives), generator=generator).to(h.device)
        pos_score = model.match(q, t.unsqueeze(1)).squeeze(1)
        neg_score = model.match(q, neg)
        if loss == "negative":
            data = -(nn.functional.logsigmoid(pos_score).mean() + nn.functional.logsigmoid(-neg_score).mean())
        else:
            data = (margin - pos_score.unsqueeze(1) + neg_score).clamp(min=0).mean()
    else:
        raise ValueError(f"unknown loss {loss!r}: choose one of {', '.join(LOSSES)}")
    return data + reg * model.penalty(h, r, t, penalty) if reg else data


def train_kge(model: KGEmbedding, triples: torch.Tensor, *, epochs: int, batch_size: int = 256, lr: float = 0.1,
              optimizer: str = "adagrad", reg: float = 0.0, penalty: str = "n3", loss: str = "1vsall",
              num_negatives: int = 32, label_smoothing: float = 0.0, margin: float = 1.0,
              device: torch.device | str = "cpu",
              generator: torch.Generator | None = None,
              validate: Callable[[KGEmbedding], float] | None = None, keep_best: bool = False,
              progress: bool = True) -> History:
    """Train ``model`` on ``triples`` (n, 3) for ``epochs`` epochs through the course's ``fit`` loop.

    With reciprocal relations pass the triples with their inverses
    (``knowledge_graphs.with_inverses``). ``validate(model)`` (a number, higher is better,
    such as the validation MRR) is logged as ``val_score`` after every epoch; with
    ``keep_best`` the model ends with the weights of its best epoch (``history.best_epoch``).
    """
    if optimizer not in ("adagrad", "adam"):
        raise ValueError(f"unknown optimizer {optimizer!r}: choose 'adagrad' or 'adam'")
    if keep_best and validate is None:
        raise ValueError("keep_best needs a validate function to choose the best epoch")
    triples = torch.as_tensor(triples).long()
    if triples.ndim != 2 or triples.shape[1] != 3:
        raise ValueError(f"triples must have shape (n, 3), got {tuple(triples.shape)}")
    model.to(device)
    opt = (torch.optim.Adagrad if optimizer == "adagrad" else torch.optim.Adam)(model.parameters(), lr=lr)
    batches = TensorBatches(triples, batch_size=batch_size, shuffle=True, generator=generator)
    best = {"score": -float("inf"), "state": None, "epoch": -1}

    def on_epoch_end(epoch: int, history: History) -> None:
        if validate is None:
            return
        model.eval()
        with torch.no_grad():
            score = float(validate(model))
        history.log(val_score=score)
        if score > best["score"]:
            best.update(score=score, epoch=epoch, state=copy.deepcopy(model.state_dict()) if keep_best else None)

    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}: choose one of {', '.join(LOSSES)}")
    compute = lambda m, batch: kge_loss(m, batch, loss=loss, reg=reg, penalty=penalty, num_negatives=num_negatives,
                                        label_smoothing=label_smoothing, margin=margin, generator=generator)
    history = fit(model, batches, optimizer=opt, num_epochs=epochs, compute_loss=compute, device=device,
                  on_epoch_end=on_epoch_end, progress=progress)
    history.best_epoch = best["epoch"]
    if keep_best and best["state"] is not None:
        model.load_state_dict(best["state"])
    return history
