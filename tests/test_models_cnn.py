"""Unit tests for dlcourse.models.cnn (chapter 1, section 6): the output-size formula and the CNN builders."""

import itertools

import pytest
import torch
from torch import nn

from dlcourse.models.cnn import cnn_classifier, conv_features, conv_output_size, feature_size


@pytest.mark.parametrize("size,kernel,stride,padding,dilation",
                         [(s, k, st, p, d) for s, k, st, p, d in itertools.product(
                             (5, 8, 13), (1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2))
                          if s + 2 * p >= d * (k - 1) + 1])
def test_conv_output_size_matches_conv2d(size, kernel, stride, padding, dilation):
    conv = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation)
    out = conv(torch.zeros(1, 1, size, size + 1))
    assert out.shape[2] == conv_output_size(size, kernel, stride, padding, dilation)
    assert out.shape[3] == conv_output_size(size + 1, kernel, stride, padding, dilation)


def test_conv_output_size_is_the_formula_without_dilation():
    assert conv_output_size(8, 3) == 6  # valid convolution: H - K + 1
    assert conv_output_size(8, 3, padding=1) == 8  # "same" padding for an odd kernel
    assert conv_output_size(224, 11, stride=4, padding=2) == 55  # AlexNet's first layer
    assert conv_output_size(7, 2, stride=2) == 3  # a 2x2 pool rounds down


@pytest.mark.parametrize("kwargs", [dict(size=2, kernel_size=3), dict(size=0, kernel_size=1),
                                    dict(size=8, kernel_size=3, stride=0), dict(size=8, kernel_size=3, padding=-1),
                                    dict(size=8.0, kernel_size=3), dict(size=8, kernel_size=True)])
def test_conv_output_size_rejects_bad_input(kwargs):
    with pytest.raises(ValueError):
        conv_output_size(**kwargs)


def test_conv_features_draws_the_same_weights_as_the_layers_written_by_hand():
    """The CNN of section 2.6, written out there by hand, is conv_features([32, "M", 64, "M", 64], global_pool=True)."""
    torch.manual_seed(0)
    model = conv_features([32, "M", 64, "M", 64], global_pool=True)
    torch.manual_seed(0)
    by_hand = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten())
    assert [type(m) for m in model] == [type(m) for m in by_hand]
    for a, b in zip(model.parameters(), by_hand.parameters()):
        assert torch.equal(a, b)
    X = torch.randn(5, 1, 8, 8)
    assert torch.equal(model(X), by_hand(X)) and model(X).shape == (5, 64)


def test_cnn_classifier_matches_the_transfer_learning_cnn():
    """Section 3.3's CNN: [32, 32, "M", 64, "M"] on 10x10 images gives 256 features and a linear head."""
    torch.manual_seed(1)
    model = cnn_classifier([32, 32, "M", 64, "M"], image_size=10, num_classes=5)
    torch.manual_seed(1)
    features = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
    by_hand = nn.Sequential(features, nn.Linear(256, 5))
    for a, b in zip(model.parameters(), by_hand.parameters()):
        assert a.shape == b.shape and torch.equal(a, b)
    X = torch.randn(4, 1, 10, 10)
    assert model[0](X).shape == (4, 256) and torch.equal(model(X), by_hand(X))


@pytest.mark.parametrize("cfg,image_size,global_pool", [
    ([16, "M", 32, "M"], 8, False), ([16, "M", 32, "M"], 10, False), ([8, "M", "M", "M"], 9, False),
    ([16, 16], 7, False), ([16, "M", 32], 12, True), ([4, "M", 4, "M"], 5, True)])
def test_feature_size_is_the_length_the_extractor_returns(cfg, image_size, global_pool):
    for kernel_size in (1, 3, 5):
        model = cnn_classifier(cfg, image_size, 10, in_channels=3, kernel_size=kernel_size, global_pool=global_pool)
        X = torch.randn(2, 3, image_size, image_size)
        assert model[0](X).shape == (2, feature_size(cfg, image_size, global_pool=global_pool))
        assert model(X).shape == (2, 10)


def test_parameter_count_follows_from_the_weight_shapes():
    model = cnn_classifier([16, "M", 32, "M"], image_size=8, num_classes=10)
    expected = (16 * 1 * 9 + 16) + (32 * 16 * 9 + 32) + (32 * 2 * 2 * 10 + 10)
    assert sum(p.numel() for p in model.parameters()) == expected == 6090


@pytest.mark.parametrize("cfg", [[], ["M"], [16, 0], [16, "max"], [16, 2.5], [True]])
def test_builders_reject_a_bad_layer_list(cfg):
    with pytest.raises(ValueError, match="cfg"):
        conv_features(cfg)


def test_builders_reject_bad_sizes():
    with pytest.raises(ValueError, match="odd"):
        conv_features([8], kernel_size=4)
    with pytest.raises(ValueError, match="below one pixel"):
        feature_size([8, "M", "M", "M"], image_size=4)
    with pytest.raises(ValueError, match="num_classes"):
        cnn_classifier([8], image_size=8, num_classes=0)
    with pytest.raises(ValueError, match="in_channels"):
        conv_features([8], in_channels=0)


def test_sizes_accept_numpy_integers_and_return_python_ints():
    import numpy as np

    out = conv_output_size(np.int64(8), np.int32(3), stride=np.int64(1), padding=np.int64(1))
    assert out == 8 and type(out) is int
    model = cnn_classifier([np.int64(4), "M"], image_size=np.int64(8), num_classes=np.int64(3))
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 3)


def test_conv_output_size_explains_an_input_smaller_than_the_kernel():
    with pytest.raises(ValueError, match="smaller than the kernel's span 5"):
        conv_output_size(3, 3, dilation=2)


def test_global_pool_gives_one_feature_per_channel_whatever_the_image_size():
    torch.manual_seed(0)
    extractor = conv_features([8, "M", 12], global_pool=True)
    for size in (4, 8, 13):
        assert extractor(torch.randn(3, 1, size, size)).shape == (3, 12)
        assert feature_size([8, "M", 12], size, global_pool=True) == 12


def test_a_pooling_entry_must_be_spelled_as_pool():
    with pytest.raises(ValueError, match="'M'"):
        conv_features([16, "m"])
