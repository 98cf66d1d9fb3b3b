"""The course's knowledge-graph embeddings trained with PyKEEN, like for like (section 9.3).

PyKEEN (Ali et al. 2021) is the library a practitioner would use for knowledge-graph
embeddings. ``train_pykeen`` trains DistMult or ComplEx on a ``KnowledgeGraph`` with the
settings of ``kg_embeddings.train_kge`` as closely as PyKEEN allows, and scores the test
split with PyKEEN's own filtered, realistic ``RankBasedEvaluator``:

* the same entity and relation ids (the triples factory is built from our id tensors);
* the same model and dimension, built as PyKEEN's generic ``ERModel`` with the ``distmult``
  or ``complex`` interaction, and the same initialisation (normal, standard deviation 1e-3);
* reciprocal relations (``create_inverse_triples=True``): heads are answered as the tails of
  the inverse relation, as in ``knowledge_graphs.with_inverses``;
* 1-vs-all cross-entropy: PyKEEN's LCWA training loop with its ``crossentropy`` loss;
* Adagrad with the same learning rate and number of epochs;
* the N3 penalty as PyKEEN's ``PowerSumRegularizer`` with ``p=3`` (|x|^3 of the moduli).

Two things cannot be made identical. LCWA batches are (head, relation) pairs with all
their known tails as targets (the cross-entropy against the normalised multi-hot vector),
not single triples; ``train_pykeen`` sizes its batches so that an epoch takes as many
steps as ours. And PyKEEN's regulariser sees every entity when all tails are scored, not
only the batch's true tails. ``PyKEENScorer`` wraps a trained PyKEEN model so that the
course's own ``link_prediction.evaluate`` can rank it: the two evaluators must agree.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from dataclasses import dataclass, field

import torch

from ..data.knowledge_graphs import KnowledgeGraph
from ..device import Timer

INTERACTIONS = {"distmult": "distmult", "complex": "complex"}
METRICS = {"MRR": "inverse_harmonic_mean_rank", "Hits@1": "hits_at_1", "Hits@3": "hits_at_3",
           "Hits@10": "hits_at_10", "MR": "arithmetic_mean_rank"}


@contextlib.contextmanager
def quiet():
    """Silence PyKEEN's log messages and warnings for the duration of the block."""
    loggers = [logging.getLogger(name) for name in ("pykeen", "class_resolver", "torch_max_mem")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def _import_pykeen():
    try:
        import pykeen  # noqa: F401
    except ImportError as err:  # pragma: no cover - pykeen is pinned in requirements.txt
        raise ImportError("PyKEEN is not installed: pip install pykeen==1.11.1") from err
    import pykeen.triples

    return pykeen


def triples_factory(kg: KnowledgeGraph, split: str = "train", *, inverse: bool = True):
    """A PyKEEN ``TriplesFactory`` of ``kg``'s ``split`` with the graph's own ids (names by id)."""
    pykeen = _import_pykeen()
    return pykeen.triples.TriplesFactory(
        mapped_triples=kg.split(split).clone(),
        entity_to_id={name: i for i, name in enumerate(kg.entities)},
        relation_to_id={name: i for i, name in enumerate(kg.relations)},
        create_inverse_triples=inverse)


def make_pykeen_model(factory, model: str = "complex", dim: int = 100, *, reg: float = 0.01,
                      init_scale: float = 1e-3, seed: int = 0):
    """PyKEEN's ``ERModel`` with the ``model`` interaction, normal(0, ``init_scale``) start and N3 weight ``reg``."""
    if model not in INTERACTIONS:
        raise ValueError(f"unknown model {model!r} for PyKEEN: choose one of {', '.join(INTERACTIONS)}")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive int, got {dim!r}")
    _import_pykeen()
    from pykeen.models import ERModel

    representation = dict(shape=dim, initializer=functools.partial(torch.nn.init.normal_, std=init_scale))
    if model == "complex":
        representation["dtype"] = torch.cfloat
    if reg:
        representation.update(regularizer="powersum", regularizer_kwargs=dict(p=3.0, weight=reg, normalize=False))
    with quiet():
        return ERModel(triples_factory=factory, interaction=INTERACTIONS[model], loss="crossentropy",
                       entity_representations_kwargs=representation,
                       relation_representations_kwargs=dict(representation), random_seed=seed)


@dataclass
class PyKEENRun:
    """The trained ``model``, its filtered test ``metrics`` (both directions) and the seconds it took."""

    model: object
    metrics: dict[str, float]
    train_seconds: float
    eval_seconds: float
    settings: dict = field(default_factory=dict)


def train_pykeen(kg: KnowledgeGraph, model: str = "complex", *, dim: int = 100, epochs: int = 30,
                 batch_size: int = 128, lr: float = 0.1, reg: float = 0.01, seed: int = 0,
                 device: torch.device | str = "cpu", split: str = "test") -> PyKEENRun:
    """Train ``model`` with PyKEEN (LCWA, cross-entropy, Adagrad, N3) and evaluate ``split`` filtered.

    ``batch_size`` counts triples, as in ``train_kge``: PyKEEN's batches of (head, relation)
    pairs are scaled so that an epoch has the same number of steps.
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    _import_pykeen()
    from pykeen.evaluation import RankBasedEvaluator
    from pykeen.training import LCWATrainingLoop
    from pykeen.triples.instances import LCWAInstances

    factory = triples_factory(kg, "train", inverse=True)
    n_triples = 2 * factory.num_triples  # with inverses, as train_kge sees them
    n_pairs = len(LCWAInstances.from_triples_factory(factory))  # distinct (h, r) pairs, inverses included
    pair_batch = max(1, round(batch_size * n_pairs / n_triples))
    device = torch.device(device)
    with quiet():
        net = make_pykeen_model(factory, model, dim, reg=reg, seed=seed).to(device)
        optimizer = torch.optim.Adagrad(net.parameters(), lr=lr)
        loop = LCWATrainingLoop(model=net, triples_factory=factory, optimizer=optimizer)
        with Timer(device) as train_timer:
            loop.train(triples_factory=factory, num_epochs=epochs, batch_size=pair_batch, use_tqdm=False,
                       use_tqdm_batch=False, pin_memory=False)
        evaluator = RankBasedEvaluator(filtered=True)
        others = [kg.split(s) for s in ("train", "valid", "test") if s != split]
        with Timer(device) as eval_timer:
            result = evaluator.evaluate(net, kg.split(split).to(device), batch_size=256, use_tqdm=False,
                                        additional_filter_triples=[t.to(device) for t in others])
    metrics = {name: float(result.get_metric(f"both.realistic.{key}")) for name, key in METRICS.items()}
    settings = dict(model=model, dim=dim, epochs=epochs, lr=lr, reg=reg, pair_batch=pair_batch,
                    steps_per_epoch=-(-n_pairs // pair_batch))
    return PyKEENRun(net, metrics, train_timer.seconds, eval_timer.seconds, settings)


class PyKEENScorer:
    """A trained PyKEEN model seen through the course's ``score_tails(h, r)`` with reciprocal ids.

    Relation ``r < R`` scores the tails of (h, r, ?); ``r + R`` scores the heads of (?, r, h),
    so ``link_prediction.rank_triples`` and ``evaluate`` rank PyKEEN's scores unchanged.
    """

    def __init__(self, model, num_relations: int):
        self.model, self.num_relations = model, num_relations

    def eval(self):
        self.model.eval()
        return self

    @torch.no_grad()
    def score_tails(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        h, r = torch.as_tensor(h).long(), torch.as_tensor(r).long()
        if r.numel() and (int(r.min()) < 0 or int(r.max()) >= 2 * self.num_relations):
            raise ValueError(f"relation ids must lie in 0..{2 * self.num_relations - 1} (R relations and their inverses)")
        device = self.model.device
        h, r = h.to(device), r.to(device)
        forward = r < self.num_relations
        out = torch.empty(len(h), self.model.num_entities, device=device)
        if forward.any():
            out[forward] = self.model.predict_t(torch.stack([h[forward], r[forward]], 1)).float()
        if (~forward).any():
            rt = torch.stack([r[~forward] - self.num_relations, h[~forward]], 1)
            out[~forward] = self.model.predict_h(rt).float()
        return out
