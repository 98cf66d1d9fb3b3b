"""The bundled photographs: shapes, ranges, batches and clear errors."""

import pytest
import torch

from dlcourse.data.photos import COLOUR, GREY, photo, photo_batch


@pytest.mark.parametrize("name", COLOUR)
def test_colour_photos_are_three_channels_in_unit_range(name):
    image = photo(name)
    assert image.dtype == torch.float32 and image.shape[0] == 3 and image.ndim == 3
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.05


@pytest.mark.parametrize("name", GREY)
def test_grey_images_have_one_channel(name):
    image = photo(name)
    assert image.shape[0] == 1 and image.ndim == 3 and 0.0 <= image.min() and image.max() <= 1.0


def test_a_batch_has_one_size():
    batch = photo_batch(["astronaut", "china"], size=(64, 96))
    assert batch.shape == (2, 3, 64, 96) and 0.0 <= batch.min() and batch.max() <= 1.0


@pytest.mark.parametrize("call, message", [
    (lambda: photo("lena"), "unknown photo 'lena'"),
    (lambda: photo_batch(["camera"]), "are grey"),
    (lambda: photo_batch([]), "at least one"),
    (lambda: photo_batch(["china"], size=0), "size must be"),
])
def test_bad_requests_say_what_is_expected(call, message):
    with pytest.raises(ValueError, match=message):
        call()
