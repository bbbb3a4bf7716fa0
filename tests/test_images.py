"""Image codecs (NetEncoder/NetDecoder "Image"), grids, strips and atomic PNG writes."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from netgraph.images import (
    ImageError,
    NetDecoder,
    NetEncoder,
    image_grid,
    interpolation_strip,
    save_png,
)


def rgb(h: int = 5, w: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


# --- encoder and decoder ------------------------------------------------------------------------


def test_worked_example_of_the_reference():
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    out = NetEncoder("Image", (2, 2))(red)
    assert out.dtype == np.float32 and out.shape == (3, 2, 2)
    np.testing.assert_array_equal(out, [np.ones((2, 2)), np.zeros((2, 2)), np.zeros((2, 2))])


def test_size_is_width_then_height_and_output_shape_is_channels_first():
    enc = NetEncoder("Image", (7, 5))
    assert enc.output_shape == (3, 5, 7)
    assert enc(rgb(20, 9)).shape == (3, 5, 7)
    assert NetEncoder("Image", 4, color_space="Grayscale").output_shape == (1, 4, 4)


@pytest.mark.parametrize("value_range", [(0, 1), (-1, 1)])
def test_rgb_round_trip_is_exact_up_to_quantisation(value_range):
    pixels = rgb()
    enc = NetEncoder("Image", (7, 5), value_range=value_range)
    x = enc(pixels)
    lo, hi = value_range
    assert x.min() >= lo and x.max() <= hi
    image = NetDecoder("Image", color_space="RGB", value_range=value_range)(x)
    assert image.mode == "RGB" and image.size == (7, 5)
    np.testing.assert_array_equal(np.asarray(image), pixels)
    np.testing.assert_array_equal(enc(image), x)


@pytest.mark.parametrize("value_range", [(0, 1), (-1, 1)])
def test_grayscale_round_trip(value_range):
    grey = rgb()[..., 0]
    enc = NetEncoder("Image", (7, 5), color_space="Grayscale", value_range=value_range)
    x = enc(grey)
    assert x.shape == (1, 5, 7)
    image = NetDecoder("Image", value_range=value_range)(x)
    assert image.mode == "L"
    np.testing.assert_array_equal(np.asarray(image), grey)
    np.testing.assert_array_equal(enc(image), x)


def test_colour_conversions():
    pixels = np.zeros((2, 2, 3), np.uint8)
    pixels[..., 0] = 255
    grey = NetEncoder("Image", 2, color_space="Grayscale")(pixels)
    np.testing.assert_allclose(grey, 0.299, rtol=1e-6)  # ITU-R 601 luma of pure red
    three = NetEncoder("Image", 2)(np.full((2, 2), 128, np.uint8))
    assert three.shape == (3, 2, 2) and np.all(three == np.float32(128 / 255))


def test_alpha_is_composited_over_white():
    rgba = np.zeros((2, 2, 4), np.uint8)  # black, fully transparent
    rgba[0, 0] = (0, 0, 0, 255)  # one opaque black pixel
    x = NetEncoder("Image", 2)(Image.fromarray(rgba, "RGBA"))
    assert np.all(x[:, 0, 0] == 0) and np.all(x[:, 1, 1] == 1)


def test_array_layouts_agree():
    pixels = rgb()
    enc = NetEncoder("Image", (7, 5))
    channels_first = np.moveaxis(pixels, -1, 0)
    np.testing.assert_array_equal(enc(channels_first), enc(pixels))
    np.testing.assert_array_equal(enc(Image.fromarray(pixels)), enc(pixels))
    np.testing.assert_array_equal(enc(pixels.astype(np.float64) / 255), enc(pixels))


def test_files_and_path_objects(tmp_path):
    pixels = rgb()
    path = tmp_path / "picture.png"
    Image.fromarray(pixels).save(path)
    enc = NetEncoder("Image", (7, 5))
    np.testing.assert_array_equal(enc(str(path)), enc(pixels))
    np.testing.assert_array_equal(enc(path), enc(pixels))


def test_sixteen_bit_png(tmp_path):
    deep = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(deep).save(path)
    x = NetEncoder("Image", (4, 3), color_space="Grayscale")(path)
    np.testing.assert_allclose(x[0], deep / 65535, atol=1e-6)


def test_lists_and_4d_arrays_are_batches(tmp_path):
    a, b = rgb(seed=1), rgb(seed=2)
    path = tmp_path / "b.png"
    Image.fromarray(b).save(path)
    enc = NetEncoder("Image", (7, 5))
    batch = enc([a, str(path), Image.fromarray(a)])
    assert batch.shape == (3, 3, 5, 7)
    np.testing.assert_array_equal(batch[1], enc(b))
    np.testing.assert_array_equal(enc(np.stack([a, b])), enc([a, b]))
    images = NetDecoder("Image")(batch)
    assert isinstance(images, list) and len(images) == 3
    np.testing.assert_array_equal(np.asarray(images[1]), b)
    assert enc([]).shape == (0, 3, 5, 7)


def test_resize_methods():
    wide = np.zeros((4, 8), np.uint8)
    wide[:, 2:6] = 255  # white centre, black sides
    fill = NetEncoder("Image", 4, color_space="Grayscale", method="Fill")(wide)
    np.testing.assert_allclose(fill, 1.0)  # the centre crop is all white
    fit = NetEncoder("Image", 4, color_space="Grayscale", method="Fit", padding=0.5)(np.full((4, 8), 255, np.uint8))
    np.testing.assert_allclose(fit[0, [0, 3]], 0.5)  # padded rows
    np.testing.assert_allclose(fit[0, [1, 2]], 1.0)  # the whole picture, 4×2
    stretch = NetEncoder("Image", (3, 2), color_space="Grayscale")(np.full((9, 9), 255, np.uint8))
    assert stretch.shape == (1, 2, 3) and np.allclose(stretch, 1.0)
    ramp = NetEncoder("Image", (2, 1), color_space="Grayscale")(np.array([[0, 0, 255, 255]], np.uint8))
    assert 0 < ramp[0, 0, 0] < 0.5 < ramp[0, 0, 1] < 1  # bilinear blends neighbours


def test_bad_file_gives_a_clear_error(tmp_path):
    enc = NetEncoder("Image", 4)
    missing = tmp_path / "missing.png"
    with pytest.raises(ImageError, match="missing.png.*no such file"):
        enc(missing)
    junk = tmp_path / "junk.png"
    junk.write_text("not a picture")
    with pytest.raises(ImageError, match="junk.png"):
        enc([rgb(), str(junk)])
    truncated = tmp_path / "cut.png"
    Image.fromarray(rgb(30, 30)).save(tmp_path / "whole.png")
    truncated.write_bytes((tmp_path / "whole.png").read_bytes()[:60])
    with pytest.raises(ImageError, match="cut.png"):
        enc(truncated)


def test_bad_arguments():
    with pytest.raises(ImageError, match="color_space"):
        NetEncoder("Image", 4, color_space="CMYK")
    with pytest.raises(ImageError, match="method"):
        NetEncoder("Image", 4, method="Crop")
    with pytest.raises(ImageError, match="size"):
        NetEncoder("Image", (4, 0))
    with pytest.raises(ImageError, match="value_range"):
        NetEncoder("Image", 4, value_range=(1, 0))
    with pytest.raises(ImageError, match='only the "Image"'):
        NetEncoder("Audio")
    with pytest.raises(ImageError, match="int64"):
        NetEncoder("Image", 4)(np.zeros((4, 4), np.int64))
    with pytest.raises(ImageError, match="channels"):
        NetEncoder("Image", 4)(np.zeros((10, 20, 30), np.uint8))
    with pytest.raises(ImageError, match="3 channels"):
        NetDecoder("Image", color_space="RGB")(np.zeros((1, 2, 2)))
    with pytest.raises(ImageError, match="shape"):
        NetDecoder("Image")(np.zeros((2, 2)))


def test_decoder_clips_and_survives_nan():
    image = NetDecoder("Image")(np.array([[[-0.5, 0.25, 1.5, np.nan]]]))
    np.testing.assert_array_equal(np.asarray(image), [[0, 64, 255, 0]])


# --- grids and strips ------------------------------------------------------------------------------


def test_grid_size_columns_and_scale():
    batch = np.random.default_rng(0).random((5, 1, 8, 6))
    grid = image_grid(batch, columns=3, border=2)
    assert grid.size == (3 * 6 + 4 * 2, 2 * 8 + 3 * 2) and grid.mode == "L"
    assert image_grid(batch, border=0).size == (3 * 6, 2 * 8)  # default columns ceil(sqrt(5)) = 3
    assert image_grid(batch, columns=5, border=1, scale=3).size == (5 * 18 + 6, 24 + 2)
    colour = image_grid(np.random.default_rng(1).integers(0, 256, (4, 3, 4, 4), dtype=np.uint8), border=0)
    assert colour.mode == "RGB" and colour.size == (8, 8)


def test_grid_places_pictures_in_order():
    cells = np.stack([np.full((1, 2, 2), v) for v in (0.0, 0.5, 1.0)])
    grid = np.asarray(image_grid(cells, columns=2, border=1, background=(255, 0, 0)))
    assert grid.shape == (7, 7, 3)
    assert tuple(grid[1, 1]) == (0, 0, 0) and tuple(grid[1, 4]) == (128, 128, 128)
    assert tuple(grid[4, 1]) == (255, 255, 255) and tuple(grid[4, 4]) == (255, 0, 0)  # empty cell


def test_grid_of_pillow_images_and_tanh_range():
    images = [Image.new("L", (4, 4), 0), Image.new("RGB", (4, 4), (0, 255, 0)), Image.new("RGBA", (4, 4))]
    assert image_grid(images, columns=3, border=0).mode == "RGB"
    tanh = image_grid(np.full((1, 1, 2, 2), -1.0), value_range=(-1, 1), border=0)
    assert np.asarray(tanh).max() == 0


def test_labels_draw_text_under_cells():
    batch = np.zeros((2, 1, 10, 10))
    plain = image_grid(batch, border=2, background="white")
    labelled = image_grid(batch, labels=["a", "bc"], border=2, background="white")
    assert labelled.width == plain.width and labelled.height > plain.height
    band = np.asarray(labelled)[2 + 10 :]
    assert (band < 128).any()  # dark text on the white band
    blank = image_grid(batch, labels=["", None], border=2)
    assert blank.size == plain.size
    with pytest.raises(ImageError, match="2 images but 1 labels"):
        image_grid(batch, labels=["a"])


def test_interpolation_strip():
    row = np.linspace(0, 1, 5)[:, None, None, None] * np.ones((5, 1, 6, 6))
    strip = interpolation_strip([row, row[:3]], border=1)
    assert strip.size == (5 * 6 + 6, 2 * 6 + 3)
    assert np.asarray(strip)[8, 30] == 255  # the short row ends in blank (background) cells
    five = np.stack([row, row, row])  # (R, T, C, H, W), as slerp_grid gives
    assert interpolation_strip(five, border=0).size == (30, 18)
    assert interpolation_strip(row, border=0).size == (30, 6)
    named = interpolation_strip([row, row], row_labels=["horse", "bird"], border=1)
    assert named.width > strip.width and (np.asarray(named)[:, : named.width - strip.width] < 128).any()
    mus = interpolation_strip([row], labels=[f"{m:.2f}" for m in np.linspace(0.4, 0.7, 5)], border=1)
    assert mus.height > 6 + 2
    with pytest.raises(ImageError, match="row labels"):
        interpolation_strip([row], row_labels=["a", "b"])


# --- files ---------------------------------------------------------------------------------------------


def test_save_png_round_trip_and_folders(tmp_path):
    grid = image_grid(np.random.default_rng(0).random((4, 3, 5, 5)))
    path = save_png(grid, tmp_path / "out" / "grid.png")
    assert path.exists()
    np.testing.assert_array_equal(np.asarray(Image.open(path)), np.asarray(grid))


def test_save_png_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "grid.png"
    save_png(Image.new("L", (3, 3), 7), path)
    before = path.read_bytes()

    def crash(self, *args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(Image.Image, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_png(Image.new("L", (3, 3), 200), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["grid.png"]  # no temporary file left behind
