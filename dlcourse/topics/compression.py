"""Model compression: magnitude pruning, knowledge distillation, int8 quantization (chapter 4, section 4).

``sparsity`` and ``prune_to_sparsity`` wrap ``torch.nn.utils.prune`` (L1 unstructured,
global or per layer) so that a model reaches an exact fraction of zero weights, also when
it was pruned before (iterative pruning); ``remove_pruning`` makes the zeros permanent.
``distillation_loss`` is Hinton et al.'s (2015) loss. ``model_bytes`` measures a model as
``torch.save`` writes it (dense, or with its matrices in CSR), ``quantize_int8`` is PyTorch's
dynamic int8 quantization of the ``nn.Linear`` layers (some may stay in float32), and
``cpu_capability`` names what the CPU offers for it.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Collection, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)  # layers whose `weight` is pruned
SCOPES = ("global", "layer")


def prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """``(module, "weight")`` for every linear or convolutional layer of ``model``, in order."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"expected an nn.Module, got {type(model).__name__}")
    pairs = [(m, "weight") for m in model.modules() if isinstance(m, PRUNABLE)]
    if not pairs:
        raise ValueError(f"{type(model).__name__} has no nn.Linear or nn.Conv layer to prune")
    return pairs


def sparsity(model: nn.Module) -> float:
    """Fraction of the weights of ``model``'s linear and convolutional layers that are exactly 0.

    Biases are not counted: they are few, and pruning leaves them alone.
    """
    weights = [getattr(m, name) for m, name in prunable(model)]
    zeros = sum(int((w == 0).sum()) for w in weights)
    return zeros / sum(w.numel() for w in weights)


def _check_fraction(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a fraction in [0, 1) (0.9 removes 90 % of the weights), got {value!r}")
    return float(value)


def _pruned_mask(module: nn.Module, name: str) -> torch.Tensor:
    """The layer's current keep-mask: its pruning mask, or ``weight != 0`` if it was never pruned."""
    mask = getattr(module, name + "_mask", None)
    return mask if mask is not None else getattr(module, name) != 0


@torch.no_grad()
def prune_to_sparsity(model: nn.Module, sparsity: float, *, scope: str = "global") -> nn.Module:
    """Zero the smallest-magnitude weights of ``model`` (in place) until ``sparsity`` of them are 0.

    Exactly ``round(sparsity * n)`` of the ``n`` weights end up pruned (of each layer's ``n``
    with ``scope="layer"``): ties are broken by rank, not by a threshold. ``scope="global"``
    ranks the weights of all layers together, so a layer may lose more or less than the
    target; ``"layer"`` prunes each layer to the target on its own. Masks already present
    stay: calling again with a higher target continues the pruning (iterative pruning), and
    a weight that is 0 counts as pruned. Biases are never pruned. Returns ``model``, whose
    layers now hold ``weight_orig`` and ``weight_mask`` (see ``remove_pruning``).
    """
    target = _check_fraction("sparsity", sparsity)
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}: expected one of {', '.join(map(repr, SCOPES))}")
    pairs = prunable(model)
    groups = [pairs] if scope == "global" else [[pair] for pair in pairs]
    extras = []  # weights still to remove, per group; checked before anything changes
    for group in groups:
        masks = [_pruned_mask(m, name) for m, name in group]
        total, kept = sum(k.numel() for k in masks), sum(int(k.sum()) for k in masks)
        extra = round(target * total) - (total - kept)
        if extra < 0:
            module = group[0][0]
            where = "the model" if scope == "global" else f"layer {pairs.index(group[0])} ({type(module).__name__})"
            raise ValueError(f"{where} is already {(total - kept) / total:.1%} sparse; pruning only removes "
                             f"weights and cannot lower it to {target:.1%}")
        extras.append(extra)
    for module, name in pairs:
        if not hasattr(module, name + "_mask"):  # weights that are already 0 count as pruned
            prune.custom_from_mask(module, name, mask=getattr(module, name) != 0)
    for group, extra in zip(groups, extras):
        if extra > 0:  # an int amount counts among the still unpruned weights: old masks stay
            prune.global_unstructured(group, pruning_method=prune.L1Unstructured, amount=extra)
    return model


def remove_pruning(model: nn.Module) -> nn.Module:
    """Make pruning permanent (in place): each pruned ``weight`` becomes a plain parameter with its zeros."""
    for module, name in prunable(model):
        if prune.is_pruned(module) and hasattr(module, name + "_orig"):
            prune.remove(module, name)
    return model


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, y: torch.Tensor | None,
                      T: float = 4.0, alpha: float = 0.9) -> torch.Tensor:
    """Hinton et al.'s (2015) distillation loss, averaged over the batch.

    ``alpha * T**2 * KL(p_teacher_T || p_student_T) + (1 - alpha) * CE(student_logits, y)``
    where ``p_T = softmax(logits / T)``; ``student_logits`` and ``teacher_logits`` are
    (N, C), ``y`` is (N,) labels (or None when ``alpha == 1``). The factor T**2 keeps the
    soft term's gradients the same size as T changes. The teacher gets no gradient.
    """
    if isinstance(T, bool) or not isinstance(T, (int, float)) or not T > 0:
        raise ValueError(f"temperature T must be a positive number, got {T!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be a weight in [0, 1], got {alpha!r}")
    if student_logits.ndim != 2 or student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student and teacher logits must both be (N, C), got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")
    log_p_student = F.log_softmax(student_logits / T, dim=1)  # (N, C)
    log_p_teacher = F.log_softmax(teacher_logits.detach() / T, dim=1)  # (N, C)
    soft = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    if alpha == 1.0:
        return T**2 * soft
    if y is None or y.shape != student_logits.shape[:1]:
        raise ValueError(f"with alpha < 1 the labels y must be (N,) = ({len(student_logits)},), "
                         f"got {None if y is None else tuple(y.shape)}")
    return alpha * T**2 * soft + (1 - alpha) * F.cross_entropy(student_logits, y)


def _csr(matrix: torch.Tensor) -> torch.Tensor:
    """``matrix`` in CSR format, each part in storage of its own size (``to_sparse_csr`` may over-allocate)."""
    csr = matrix.detach().cpu().to_sparse_csr()
    return torch.sparse_csr_tensor(csr.crow_indices().clone(), csr.col_indices().clone(), csr.values().clone(),
                                   size=csr.shape, check_invariants=True)


def model_bytes(model: nn.Module | Mapping, *, sparse: bool = False) -> int:
    """Size in bytes of ``torch.save(state_dict)`` for a model (or of a state dict itself).

    A model still carrying pruning masks saves ``weight_orig`` and ``weight_mask``, more than
    the dense model; zeros only save space in a sparse format. With ``sparse=True`` every
    float matrix is saved in compressed sparse rows (CSR: the non-zero values, their column
    indices as int64, one offset per row), as a pruned model would be stored; pruning masks
    are applied first, on a copy.
    """
    if isinstance(model, nn.Module):
        if sparse and any(prune.is_pruned(m) for m in model.modules() if isinstance(m, PRUNABLE)):
            model = remove_pruning(copy.deepcopy(model))  # store weight_orig * weight_mask, not both
        state = model.state_dict()
    elif isinstance(model, Mapping):
        state = model
    else:
        raise ValueError(f"expected an nn.Module or a state dict, got {type(model).__name__}")
    if sparse:
        with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
            warnings.filterwarnings("ignore", message=r"Sparse CSR tensor support is in beta")
            state = {k: _csr(v) if isinstance(v, torch.Tensor) and v.dim() == 2 and v.is_floating_point()
                     else v for k, v in state.items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getbuffer().nbytes


def quantize_int8(model: nn.Module, *, keep_float: Collection[str] = ()) -> nn.Module:
    """A copy of ``model`` on the CPU with its ``nn.Linear`` layers dynamically quantized to int8.

    Weights are stored as int8 with one scale per matrix; each layer's input is quantized on
    the fly, batch by batch, with a scale from that batch's range (PyTorch uses 128 levels
    there, a reduced range that keeps the integer kernels from overflowing). ``keep_float``
    names layers (as in ``model.named_modules()``, e.g. ``"0"``) to leave in float32.
    ``torch.ao.quantization.quantize_dynamic`` warns that it is deprecated (its successor is
    torchao's ``quantize_``); those two warnings are silenced here, and only those. Pruning
    masks are made permanent in the copy first (``quantize_dynamic`` would carry their hooks
    over to the quantized layers, which have no ``weight_orig`` for them to read).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"expected an nn.Module, got {type(model).__name__}")
    linear = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linear:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer to quantize")
    if isinstance(keep_float, str) or not set(keep_float) <= set(linear) or set(keep_float) == set(linear):
        raise ValueError(f"keep_float must name some, not all, of the model's nn.Linear layers "
                         f"{linear}, as a list (e.g. [{linear[0]!r}]); got {keep_float!r}")
    float_model = copy.deepcopy(model).cpu().eval()
    if any(prune.is_pruned(m) for m in float_model.modules() if isinstance(m, PRUNABLE)):
        remove_pruning(float_model)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated")
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel")
        qconfig = torch.ao.quantization.default_dynamic_qconfig  # int8 weights, one scale per matrix
        spec = {name: qconfig for name in linear if name not in set(keep_float)}
        return torch.ao.quantization.quantize_dynamic(float_model, spec, dtype=torch.qint8)


def cpu_capability() -> str:
    """The CPU's SIMD level as PyTorch sees it, plus its int8/bf16 dot-product extensions (Linux only).

    For example ``"AVX512 (avx512_vnni, avx512_bf16)"``; VNNI is the instruction that speeds up int8 products.
    The flags come from ``throughput.cpu_info``, which section 4.1 prints in full.
    """
    from .throughput import cpu_info

    info = cpu_info()
    extras = [f for f in ("avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8") if f in info["flags"]]
    return f"{info['capability']} ({', '.join(extras)})" if extras else str(info["capability"])