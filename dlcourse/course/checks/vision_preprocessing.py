"""Checks for lab 5: global and local contrast normalisation, a random crop-and-flip, augmentation on training data only."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import (CheckFailed, Exercise, Mistake, call, close, diagnose, expect_raises, expect_tensor, facing_students,
               fresh, passed)


def _images(shape, seed, scale=1.0, offset=0.0):
    g = torch.Generator().manual_seed(fresh(seed))
    return offset + scale * torch.rand(*shape, generator=g, dtype=torch.float64)


# Exercise 1 -----------------------------------------------------------------------------

def reference_gcn(X, s=1.0, lam=0.0, eps=1e-8, *, per_channel=False, unbiased=False, eps_rule="max",
                  lam_inside=True, scale=True):
    """s (X - mean) / max(eps, sqrt(lam + mean((X - mean)^2))) per image; keywords build mistakes."""
    dims = (2, 3) if per_channel else (1, 2, 3)
    centred = X - X.mean(dim=dims, keepdim=True)
    var = centred.pow(2).sum(dim=dims, keepdim=True) / (math.prod(X.shape[d] for d in dims) - unbiased)
    contrast = torch.sqrt(lam + var) if lam_inside else torch.sqrt(var) + lam
    denominator = {"max": lambda: torch.clamp(contrast, min=eps), "add": lambda: contrast + eps,
                   "none": lambda: contrast}[eps_rule]()
    return (s if scale else 1.0) * centred / denominator


GCN_MISTAKES = [
    Mistake(dict(per_channel=True), "you normalised each colour channel on its own: the seed's mean and contrast run "
                                    "over all 3rc values of an image at once (dims 1, 2 and 3 together)"),
    Mistake(dict(unbiased=True), "your contrast divides by 3rc - 1: the formula's mean is over 3rc values "
                                 "(torch.var(..., unbiased=False), or .pow(2).mean())"),
    Mistake(dict(eps_rule="add"), "you added eps to the contrast; the formula takes max(eps, contrast), which "
                                  "changes nothing unless the contrast is tiny (torch.clamp(contrast, min=eps))"),
    Mistake(dict(eps_rule="none"), "your output ignores eps: divide by max(eps, contrast), so that a constant image "
                                   "(contrast 0) gives zeros instead of NaN"),
    Mistake(dict(lam_inside=False), "lambda goes inside the square root: sqrt(lam + mean squared deviation)"),
    Mistake(dict(scale=False), "the output should be multiplied by the scale s"),
]


def check_gcn(gcn) -> None:
    """Random colour and grey batches against the reference; zero mean and std s; a constant image; bad input."""
    for shape, s, lam, eps, seed in [((4, 3, 9, 7), 1.0, 0.0, 1e-8, 0), ((3, 1, 6, 6), 2.5, 0.0, 1e-8, 1),
                                     ((2, 3, 5, 8), 1.5, 10.0, 1e-8, 2), ((2, 3, 4, 4), 1.0, 0.0, 1.0, 3)]:
        X = _images(shape, seed, scale=0.3, offset=0.2)
        got = expect_tensor(call(gcn, "gcn", X.clone(), s, lam, eps), shape, f"gcn(X, {s}, {lam}, {eps})")
        want = reference_gcn(X, s, lam, eps)
        if not close(got, want, 1e-6):
            diagnose(GCN_MISTAKES, lambda **kw: close(got, reference_gcn(X, s, lam, eps, **kw), 1e-6),
                     otherwise=f"gcn(X, s={s}, lam={lam}, eps={eps}) differs from the formula by up to "
                               f"{(got - want).abs().max().item():.3g}: subtract the mean over all values of each "
                               "image, then divide by max(eps, sqrt(lam + mean squared deviation)) and multiply by s")
        if lam == 0.0 and eps < 1e-6:
            flat = got.reshape(len(got), -1)
            if (flat.mean(1).abs().max() > 1e-5 or (flat.std(1, unbiased=False) - s).abs().max() > 1e-5):
                raise CheckFailed(f"with lam = 0 each output image should have mean 0 and standard deviation s = {s}")
    constant = torch.full((2, 3, 4, 4), 0.7, dtype=torch.float64)
    out = call(gcn, "gcn", constant, 1.0, 0.0, 1e-8)
    if not torch.isfinite(out).all() or out.abs().max() > 1e-6:
        raise CheckFailed("a constant image should give (nearly) all zeros, not NaN: its contrast is 0, and "
                          "max(eps, 0) = eps keeps the division finite")
    good = _images((2, 3, 4, 4), 4)
    for args, why in [((good[:, :2], 1.0, 0.0, 1e-8), "images of shape (N, C, H, W) with C = 1 or 3"),
                      ((good[0], 1.0, 0.0, 1e-8), "a 4-D batch (N, C, H, W)"),
                      (((good * 255).to(torch.uint8), 1.0, 0.0, 1e-8), "floating-point images"),
                      ((good, -1.0, 0.0, 1e-8), "a scale s >= 0")]:
        expect_raises(gcn, "gcn", args, why)
    passed("gcn follows the seed's formula: mean 0 and standard deviation s per image, finite on a constant image")


# Exercise 2 -----------------------------------------------------------------------------

def gaussian_kernel(sigma: float) -> torch.Tensor:
    """The 1-D Gaussian window of the lab: exp(-d^2 / 2 sigma^2) for |d| <= ceil(3 sigma), summing to 1."""
    radius = math.ceil(3 * sigma)
    d = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-d ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def reference_lcn(X, sigma, eps=1e-4, *, padding="reflect", divide="local", eps_rule="max"):
    """(X - G*X) / max(eps, sqrt(G*(X - G*X)^2)), G the Gaussian window, reflect padding; keywords build mistakes."""
    g = gaussian_kernel(sigma).to(X.dtype)
    k = len(g) // 2

    def blur(Z):
        Z = F.pad(Z, (k, k, k, k), mode=padding)
        return F.conv2d(F.conv2d(Z, g.view(1, 1, 1, -1)), g.view(1, 1, -1, 1))

    centred = X - blur(X)
    if divide == "local":
        std = torch.sqrt(blur(centred ** 2))
    else:  # one standard deviation per image
        std = centred.std(dim=(1, 2, 3), unbiased=False, keepdim=True).expand_as(X)
    return centred / (torch.clamp(std, min=eps) if eps_rule == "max" else std + eps)


LCN_MISTAKES = [
    Mistake(dict(padding="constant"), "your output is wrong near the border only: pad with F.pad(..., "
                                      "mode='reflect'), not zeros, so the window never averages in black pixels"),
    Mistake(dict(divide="global"), "you divided by one standard deviation per image; LCN divides by the local one, "
                                   "sqrt of the Gaussian-weighted mean of the squared centred values"),
    Mistake(dict(eps_rule="add"), "you added eps to the local standard deviation; take max(eps, std) "
                                  "(torch.clamp(std, min=eps))"),
]


def check_lcn(lcn) -> None:
    """Random grey images and a textured photo-like image against the reference; a constant image; bad input."""
    for shape, sigma, eps, seed in [((2, 1, 12, 10), 1.0, 1e-4, 0), ((1, 1, 20, 20), 2.0, 1e-2, 1)]:
        X = _images(shape, seed)
        X[:, :, : shape[2] // 2] *= 0.2  # a dark half: LCN equalises the contrast of the two halves
        got = expect_tensor(call(lcn, "lcn", X.clone(), sigma, eps), shape, f"lcn(X, {sigma}, {eps})")
        want = reference_lcn(X, sigma, eps)
        if not close(got, want, 1e-6):
            diagnose(LCN_MISTAKES, lambda **kw: close(got, reference_lcn(X, sigma, eps, **kw), 1e-6),
                     otherwise=f"lcn(X, sigma={sigma}) differs from the reference by up to "
                               f"{(got - want).abs().max().item():.3g}: blur with the separable Gaussian (rows, "
                               "then columns) after reflect padding of ceil(3 sigma) pixels, subtract, then divide by "
                               "max(eps, sqrt(blur(centred ** 2)))")
    out = call(lcn, "lcn", torch.full((1, 1, 8, 8), 0.5, dtype=torch.float64), 1.0, 1e-4)
    if not torch.isfinite(out).all():
        raise CheckFailed("a constant image gave NaN or inf: its local standard deviation is 0, so divide by "
                          "max(eps, std)")
    good = _images((1, 1, 8, 8), 2)
    for args, why in [((good.expand(1, 3, 8, 8), 1.0, 1e-4), "grey images (N, 1, H, W)"),
                      ((good.to(torch.int64), 1.0, 1e-4), "floating-point images"),
                      ((good, 0.0, 1e-4), "sigma > 0")]:
        expect_raises(lcn, "lcn", args, why)
    passed("lcn matches the Gaussian-window reference, border included, and stays finite on a constant image")


# Exercise 3 -----------------------------------------------------------------------------

def reference_crop_flip(X, generator, pad=1, flip=True, *, shared=False, vertical=False, flip_first=False):
    """Pad with zeros, crop each image at its own random offset, flip half horizontally; keywords build mistakes."""
    N, _, H, W = X.shape
    offsets = torch.randint(0, 2 * pad + 1, (1 if shared else N, 2), generator=generator).expand(N, 2)
    flips = (torch.rand(N, generator=generator) < 0.5) & flip  # drawn even without flips: same offsets
    dim = -2 if vertical else -1
    source = torch.where(flips.view(N, 1, 1, 1), X.flip(dim), X) if flip_first else X
    padded = F.pad(source, (pad, pad, pad, pad))
    out = torch.stack([padded[i, :, r:r + H, c:c + W] for i, (r, c) in enumerate(offsets.tolist())])
    return out if flip_first else torch.where(flips.view(N, 1, 1, 1), out.flip(dim), out)


CROP_MISTAKES = [
    Mistake(dict(shared=True), "every image got the same offset: draw one (row, column) offset per image, "
                               "torch.randint(0, 2 * pad + 1, (N, 2), generator=generator)"),
    Mistake(dict(vertical=True), "you flipped upside down: a horizontal flip mirrors left and right (flip the last "
                                 "dimension, W)"),
    Mistake(dict(flip_first=True), "you flipped before cropping: crop first, then flip, so the offsets keep their "
                                   "meaning"),
]


def check_random_crop_flip(random_crop_flip) -> None:
    """Against the reference with the same generator; the input is never changed; shapes, devices and bad input."""
    for shape, pad, seed in [((6, 1, 8, 8), 1, 0), ((5, 3, 7, 9), 2, 1)]:
        X = _images(shape, seed)
        original = X.clone()
        got = expect_tensor(call(random_crop_flip, "random_crop_flip", X, torch.Generator().manual_seed(fresh(seed)), pad),
                            shape, f"random_crop_flip(X, generator, {pad})")
        if not torch.equal(X, original):
            raise CheckFailed("random_crop_flip changed its input in place: return new images and leave X as it was "
                              "(the caller's data must stay unaugmented)")
        want = reference_crop_flip(X, torch.Generator().manual_seed(fresh(seed)), pad)
        if not torch.equal(got, want):
            diagnose(CROP_MISTAKES, lambda **kw: torch.equal(got, reference_crop_flip(
                X, torch.Generator().manual_seed(fresh(seed)), **{"pad": pad, **kw})),
                otherwise="your crops differ from the reference: draw the offsets first, torch.randint(0, 2 * pad + 1, "
                          "(N, 2), generator=generator), then the flips, torch.rand(N, generator=generator) < 0.5; pad "
                          "with zeros, crop H x W at (row, column) offset, then flip the chosen images left-right")
    X = _images((4, 1, 6, 6), 5)
    got = call(random_crop_flip, "random_crop_flip", X, torch.Generator().manual_seed(fresh(5)), 1, False)
    if not torch.equal(got, reference_crop_flip(X, torch.Generator().manual_seed(fresh(5)), 1, False)):
        raise CheckFailed("with flip=False the crops should be those of flip=True, unflipped: still draw the flips "
                          "from the generator (so the offsets of later batches do not change), but do not apply them")
    expect_raises(random_crop_flip, "random_crop_flip", (_images((8, 8), 0), torch.Generator(), 1),
                  "a 4-D batch (N, C, H, W)")
    expect_raises(random_crop_flip, "random_crop_flip", (_images((2, 1, 8, 8), 0), torch.Generator(), -1),
                  "pad >= 0")
    passed("random_crop_flip crops each image at its own offset and flips half of them, leaving the input untouched")


# Exercise 4 -----------------------------------------------------------------------------

def _limited_digits(per_class: int, seed: int = 0):
    """per_class training images of each digit, and validation images, (N, 1, 8, 8) in [0, 1]."""
    from ...data.digits import digits_images_split

    im_train, im_val, y_train, y_val = digits_images_split(test_size=0.25, seed=seed)
    g = torch.Generator().manual_seed(seed)
    keep = torch.cat([torch.nonzero(y_train == c).flatten()[torch.randperm(int((y_train == c).sum()), generator=g)]
                      [:per_class] for c in range(10)])
    return im_train[keep, None], y_train[keep], im_val[:, None], y_val


def check_train_with_augmentation(train_with_augmentation) -> None:
    """A spying augmentation: called on training batches only, never on (or changing) the validation images."""
    X_train, y_train, X_val, y_val = _limited_digits(20)
    val_before = X_val.clone()
    seen = []

    def spy(X, generator):
        seen.append(X.detach().clone())
        return X.clone()

    model = call(train_with_augmentation, "train_with_augmentation", X_train, y_train, X_val, y_val, spy, seed=0,
                 num_epochs=2)
    if not isinstance(model, torch.nn.Module):
        raise CheckFailed("train_with_augmentation should return the trained model (an nn.Module)")
    if not seen:
        raise CheckFailed("the augmentation was never called: apply augment(X, generator) to every training batch")
    train_rows = {tuple(r.tolist()) for r in X_train.reshape(len(X_train), -1)}
    val_rows = {tuple(r.tolist()) for r in X_val.reshape(len(X_val), -1)} - train_rows
    rows = [tuple(r.tolist()) for batch in seen for r in batch.reshape(len(batch), -1)]
    if any(r in val_rows for r in rows):
        raise CheckFailed("the augmentation was applied to validation images: augment training batches only; data "
                          "you evaluate on must stay as it is")
    if any(r not in train_rows for r in rows):
        raise CheckFailed("the augmentation received images that are not training images: pass it each training "
                          "minibatch (before the model), nothing else")
    if len(rows) != 2 * len(X_train):
        raise CheckFailed(f"over 2 epochs the augmentation saw {len(rows)} images; it should see each of the "
                          f"{len(X_train)} training images once per epoch")
    if not torch.equal(X_val, val_before):
        raise CheckFailed("train_with_augmentation changed the validation images")
    with torch.no_grad():
        acc = (model(X_val).argmax(1) == y_val).double().mean().item()
    if acc < 0.3:
        raise CheckFailed(f"after 2 epochs the model reaches only {acc:.0%} on validation digits: is it trained with "
                          "the optimizer and learning rate the exercise gives?")
    passed(f"the augmentation saw only training images, each once per epoch; validation data untouched ({acc:.0%} "
           "after 2 epochs)")


def check_gain_verdict(gains, verdict) -> None:
    """The paired gains are per-seed numbers; the verdict matches what their 95 % interval supports."""
    if not isinstance(gains, (list, tuple, torch.Tensor)) or len(gains) < 3:
        raise CheckFailed("gains should list at least 3 paired differences (one per seed): accuracy with "
                          "augmentation minus accuracy without")
    g = torch.as_tensor([float(v) for v in gains], dtype=torch.float64)
    if (g.abs() > 1).any():
        raise CheckFailed("each gain is a difference of two accuracies between 0 and 1, so it lies in [-1, 1]")
    from scipy import stats

    half = stats.t.ppf(0.975, len(g) - 1) * g.std(unbiased=True).item() / math.sqrt(len(g))
    low, high = g.mean().item() - half, g.mean().item() + half
    want = "helps" if low > 0 else "hurts" if high < 0 else "unclear"
    if verdict not in ("helps", "hurts", "unclear"):
        raise CheckFailed("verdict should be one of 'helps', 'hurts' or 'unclear'")
    if verdict != want:
        raise CheckFailed(f"your gains have mean {g.mean():+.3f} and a 95 % interval [{low:+.3f}, {high:+.3f}]; that "
                          f"interval supports {want!r}, not {verdict!r}")
    passed(f"the verdict {verdict!r} is what the interval [{low:+.3f}, {high:+.3f}] supports")


CHECKS = {
    "Exercise 1": Exercise("gcn", check_gcn),
    "Exercise 2": Exercise("lcn", check_lcn),
    "Exercise 3": Exercise("random_crop_flip", check_random_crop_flip),
    "Exercise 4": Exercise("train_with_augmentation", check_train_with_augmentation),
    "Exercise 5": Exercise(("gains", "verdict"), check_gain_verdict),
}

facing_students(globals())  # a stub's NotImplementedError becomes a one-line ExerciseNotDone
