"""Lab 5's checks pass the references and name the typical mistakes (tests/test_labs.py runs the solution)."""

import math

import pytest
import torch
import torch.nn.functional as F

from dlcourse.course.checks import vision_preprocessing as checks
from labtest import feedback


def _validated(fn):
    """A reference wrapped with the input validation every exercise asks for."""
    def wrapped(X, *args, **kwargs):
        if not (isinstance(X, torch.Tensor) and X.dim() == 4):
            raise ValueError("a 4-D batch")
        if not X.is_floating_point():
            raise ValueError("floating point")
        if len(args) and args[0] is not None and not isinstance(args[0], torch.Generator) and args[0] <= 0 \
                and fn is checks.reference_lcn:
            raise ValueError("sigma > 0")
        if fn is checks.reference_gcn and (X.shape[1] not in (1, 3) or (args and args[0] < 0)):
            raise ValueError("channels, s")
        if fn is checks.reference_lcn and X.shape[1] != 1:
            raise ValueError("grey")
        return fn(X, *args, **kwargs)
    return wrapped


def gcn_variant(**kw):
    return _validated(lambda X, s=1.0, lam=0.0, eps=1e-8: checks.reference_gcn(X, s, lam, eps, **kw)) \
        if kw else _validated(checks.reference_gcn)


def test_gcn_reference_passes(capsys):
    checks.check_gcn(gcn_variant())
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize("mistake", checks.GCN_MISTAKES, ids=lambda m: next(iter(m.variant)))
def test_gcn_feedback(mistake):
    def gcn(X, s=1.0, lam=0.0, eps=1e-8):
        if X.dim() != 4 or X.shape[1] not in (1, 3) or not X.is_floating_point() or s < 0:
            raise ValueError("bad input")
        return checks.reference_gcn(X, s, lam, eps, **mistake.variant)
    assert mistake.message in feedback(checks.check_gcn, gcn)


def test_gcn_must_stay_finite_and_reject_bad_input():
    def no_eps(X, s=1.0, lam=0.0, eps=1e-8):
        if X.dim() != 4 or X.shape[1] not in (1, 3) or not X.is_floating_point() or s < 0:
            raise ValueError("bad input")
        centred = X - X.mean(dim=(1, 2, 3), keepdim=True)
        return s * centred / (lam + centred.pow(2).mean(dim=(1, 2, 3), keepdim=True)).sqrt()
    assert "ignores eps" in feedback(checks.check_gcn, no_eps)
    assert "returned instead of raising ValueError" in feedback(checks.check_gcn, checks.reference_gcn)


def lcn(X, sigma, eps=1e-4, **kw):
    if X.dim() != 4 or X.shape[1] != 1 or not X.is_floating_point() or not sigma > 0:
        raise ValueError("bad input")
    return checks.reference_lcn(X, sigma, eps, **kw)


def test_lcn_reference_passes(capsys):
    checks.check_lcn(lcn)
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize("mistake", checks.LCN_MISTAKES, ids=lambda m: next(iter(m.variant)))
def test_lcn_feedback(mistake):
    assert mistake.message in feedback(checks.check_lcn, lambda X, sigma, eps=1e-4: lcn(X, sigma, eps,
                                                                                          **mistake.variant))


def test_lcn_reference_equals_the_full_two_dimensional_window():
    g = checks.gaussian_kernel(1.5)
    assert math.isclose(g.sum().item(), 1.0) and len(g) == 2 * math.ceil(4.5) + 1
    X = torch.rand(2, 1, 15, 13, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    k = len(g) // 2
    window = torch.outer(g, g)[None, None]  # G = g g^T

    def blur(Z):
        return F.conv2d(F.pad(Z, (k,) * 4, mode="reflect"), window)

    centred = X - blur(X)
    want = centred / torch.clamp(blur(centred ** 2).sqrt(), min=1e-4)
    assert torch.allclose(checks.reference_lcn(X, 1.5, 1e-4), want, atol=1e-12)


def crop_flip(X, generator, pad=1, flip=True, **kw):
    if X.dim() != 4 or pad < 0:
        raise ValueError("bad input")
    return checks.reference_crop_flip(X, generator, pad, flip, **kw)


def test_crop_flip_reference_passes(capsys):
    checks.check_random_crop_flip(crop_flip)
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize("mistake", checks.CROP_MISTAKES, ids=lambda m: next(iter(m.variant)))
def test_crop_flip_feedback(mistake):
    assert mistake.message in feedback(checks.check_random_crop_flip,
                                       lambda X, g, pad=1, flip=True: crop_flip(X, g, pad, flip, **mistake.variant))


def test_crop_flip_must_leave_its_input_alone():
    def in_place(X, generator, pad=1, flip=True):
        out = crop_flip(X, generator, pad, flip)
        X.copy_(out)
        return out
    assert "changed its input in place" in feedback(checks.check_random_crop_flip, in_place)


def _trainer(leak_val=False, epochs_factor=1):
    def train_with_augmentation(X_train, y_train, X_val, y_val, augment, *, seed, num_epochs):
        from dlcourse.models.cnn import POOL, cnn_classifier
        torch.manual_seed(seed)
        model = cnn_classifier([16, POOL, 32], image_size=8, num_classes=10)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        g = torch.Generator().manual_seed(seed)
        for _ in range(num_epochs * epochs_factor):
            for idx in torch.randperm(len(X_train), generator=g).split(20):
                optimizer.zero_grad()
                F.cross_entropy(model(augment(X_train[idx], g)), y_train[idx]).backward()
                optimizer.step()
        if leak_val:
            augment(X_val, g)
        return model.eval()
    return train_with_augmentation


def test_train_with_augmentation_reference_passes(capsys):
    checks.check_train_with_augmentation(_trainer())
    assert "✔" in capsys.readouterr().out


def test_train_with_augmentation_catches_leaks_and_missed_epochs():
    assert "applied to validation images" in feedback(checks.check_train_with_augmentation, _trainer(leak_val=True))
    assert "once per epoch" in feedback(checks.check_train_with_augmentation, _trainer(epochs_factor=2))


@pytest.mark.parametrize("gains, verdict", [([0.05, 0.06, 0.04, 0.05, 0.07], "helps"),
                                            ([-0.05, -0.06, -0.04, -0.05, -0.07], "hurts"),
                                            ([0.05, -0.02, -0.03, -0.02, 0.03], "unclear")])
def test_gain_verdict_follows_the_interval(gains, verdict, capsys):
    checks.check_gain_verdict(gains, verdict)
    assert "✔" in capsys.readouterr().out
    wrong = "helps" if verdict != "helps" else "unclear"
    assert "that interval supports" in feedback(checks.check_gain_verdict, gains, wrong)


def test_gain_verdict_rejects_too_few_or_impossible_gains():
    assert "at least 3" in feedback(checks.check_gain_verdict, [0.1, 0.2], "helps")
    assert "lies in [-1, 1]" in feedback(checks.check_gain_verdict, [5.0, 6.0, 7.0], "helps")


def test_every_exercise_is_listed_in_order():
    assert list(checks.CHECKS) == [f"Exercise {i}" for i in range(1, 6)]
