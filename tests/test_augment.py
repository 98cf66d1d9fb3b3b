"""Tests for dlcourse.topics.augment: shapes, determinism, identities and input checks."""

import pytest
import torch
from torch import nn

from dlcourse.topics.augment import (AugmentedLoss, Compose, hflip, random_crop, random_flip, random_rotate,
                                     random_translate, rotate, shift, vflip)


def images(b=4, c=3, h=8, w=10, dtype=torch.float32):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(1), dtype=dtype)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


RANDOM = {
    "translate": lambda x, g: random_translate(x, 2, g),
    "translate_edge": lambda x, g: random_translate(x, 2, g, padding="edge"),
    "rotate": lambda x, g: random_rotate(x, 20.0, g),
    "rotate_edge": lambda x, g: random_rotate(x, 20.0, g, padding="edge"),
    "flip": lambda x, g: random_flip(x, g),
    "vflip": lambda x, g: random_flip(x, g, direction="vertical"),
    "crop_padded": lambda x, g: random_crop(x, (8, 10), g, padding=1),
}


@pytest.mark.parametrize("name", sorted(RANDOM))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_device_preserved(name, dtype):
    x = images(dtype=dtype)
    out = RANDOM[name](x, gen())
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", sorted(RANDOM))
def test_same_result_on_cuda(name):
    x = images()
    cpu, cuda = RANDOM[name](x, gen()), RANDOM[name](x.cuda(), gen())
    assert cuda.device.type == "cuda"
    torch.testing.assert_close(cuda.cpu(), cpu, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_same_generator_same_result(name):
    x = images()
    assert torch.equal(RANDOM[name](x, gen(3)), RANDOM[name](x, gen(3)))


def test_different_draws_differ():
    x = images(b=16)
    assert not torch.equal(random_translate(x, 2, gen(0)), random_translate(x, 2, gen(1)))


def test_crop_size():
    out = random_crop(images(), 5, gen())
    assert out.shape == (4, 3, 5, 5)
    out = random_crop(images(), (6, 4), gen(), padding=2, padding_mode="edge")
    assert out.shape == (4, 3, 6, 4)


def test_crop_is_a_window_of_the_image():
    x = torch.arange(36.0).reshape(1, 1, 6, 6)
    out = random_crop(x, 3, gen())
    r, c = divmod(int(out[0, 0, 0, 0]), 6)
    assert torch.equal(out, x[:, :, r:r + 3, c:c + 3])


def test_zero_shift_is_identity():
    x = images()
    assert torch.equal(random_translate(x, 0, gen()), x)
    assert torch.equal(shift(x, 0, 0), x)


def test_shift_moves_pixels_and_pads():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    out = shift(x, 1, 0)
    assert torch.equal(out[0, 0, 1:], x[0, 0, :-1]) and torch.equal(out[0, 0, 0], torch.zeros(4))
    out = shift(x, 0, -1, padding="edge")
    assert torch.equal(out[0, 0, :, :-1], x[0, 0, :, 1:]) and torch.equal(out[0, 0, :, -1], x[0, 0, :, -1])


def test_translation_stays_within_max_shift():
    x = torch.zeros(50, 1, 9, 9)
    x[:, :, 4, 4] = 1.0
    out = random_translate(x, 2, gen())
    pos = out.flatten(1).argmax(1)
    rows, cols = pos // 9, pos % 9
    assert ((rows - 4).abs() <= 2).all() and ((cols - 4).abs() <= 2).all()
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 5


def test_rotation_by_zero_is_identity():
    x = images()
    torch.testing.assert_close(rotate(x, 0.0), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(random_rotate(x, 0.0, gen()), x, atol=1e-5, rtol=0)


def test_rotation_by_180_is_both_flips():
    x = images(h=8, w=8)
    torch.testing.assert_close(rotate(x, 180.0), hflip(vflip(x)), atol=1e-5, rtol=0)


def test_rotation_by_90_is_anticlockwise():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 0, 2] = 1.0  # top centre
    out = rotate(x, 90.0)
    assert out[0, 0, 2, 0] > 0.99  # moves to the left centre


def test_per_image_angles():
    x = images(b=2, h=8, w=8)
    out = rotate(x, torch.tensor([0.0, 180.0]))
    torch.testing.assert_close(out[0], x[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], x[1].flip(-1).flip(-2), atol=1e-5, rtol=0)


def test_flips_are_involutions():
    x = images()
    assert torch.equal(hflip(hflip(x)), x) and torch.equal(vflip(vflip(x)), x)
    assert torch.equal(hflip(x), x.flip(-1))


def test_random_flip_extremes():
    x = images()
    assert torch.equal(random_flip(x, gen(), p=0.0), x)
    assert torch.equal(random_flip(x, gen(), p=1.0), hflip(x))
    assert torch.equal(random_flip(x, gen(), p=1.0, direction="vertical"), vflip(x))


@pytest.mark.parametrize("call, match", [
    (lambda: random_translate(torch.rand(8, 8), 1, gen()), "shape"),
    (lambda: random_translate(torch.rand(2, 1, 2, 8, 8), 1, gen()), "shape"),
    (lambda: random_translate(torch.ones(2, 1, 8, 8, dtype=torch.uint8), 1, gen()), "floating"),
    (lambda: rotate(torch.ones(2, 1, 8, 8, dtype=torch.long), 10.0), "floating"),
    (lambda: random_translate(images(), -1, gen()), "max_shift"),
    (lambda: random_translate(images(), 1.5, gen()), "max_shift"),
    (lambda: random_translate(images(), 1, gen(), padding="reflect"), "padding mode"),
    (lambda: rotate(images(), 10.0, padding="wrap"), "padding mode"),
    (lambda: random_rotate(images(), -5.0, gen()), "max_degrees"),
    (lambda: rotate(images(b=4), torch.zeros(3)), "one per image"),
    (lambda: random_flip(images(), gen(), p=2.0), "probability"),
    (lambda: random_flip(images(), gen(), direction="diagonal"), "direction"),
    (lambda: random_crop(images(), 20, gen()), "crop height"),
    (lambda: random_crop(images(), 4, gen(), padding=-1), "padding"),
    (lambda: random_translate(images(), 1, 0), "torch.Generator"),
    (lambda: hflip([[1.0]]), "tensor"),
    (lambda: Compose([1]), "callable"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_compose_reproducible():
    steps = [lambda x, g: random_translate(x, 1, g), lambda x, g: random_rotate(x, 10.0, g)]
    x = images()
    a, b = Compose(steps, seed=5), Compose(steps, seed=5)
    first = a(x)
    assert torch.equal(first, b(x)) and not torch.equal(a(x), first)  # same sequence, fresh draws


def test_augmented_loss_counts_and_reshapes_flat_inputs():
    seen = []

    def augment(x):
        seen.append(x.shape)
        return x

    model = nn.Linear(64, 10)
    loss = AugmentedLoss(augment, image_shape=(1, 8, 8))
    value = loss(model, (torch.rand(5, 64), torch.arange(5)))
    assert value.ndim == 0 and seen == [(5, 1, 8, 8)]
    assert loss.calls == 1 and loss.images_seen == 5
    model.eval()
    with pytest.raises(ValueError, match="eval mode"):
        loss(model, (torch.rand(5, 64), torch.arange(5)))
