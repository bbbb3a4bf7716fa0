"""Image codecs and picture helpers: ``NetEncoder("Image")``, ``NetDecoder("Image")``,
grids, interpolation strips and atomic PNG writes.

The encoder turns pictures (files, Pillow images, uint8 arrays, or lists of them)
into float32 channels-first arrays, the shape netgraph nets take: ``(C, H, W)``
for one picture, ``(N, C, H, W)`` for a list. The decoder turns such arrays back
into Pillow images. Sizes are given as the Wolfram Language gives them, **width
then height**; shapes come back as ``(channels, height, width)``.

Every picture made here (decoded images, grids, strips, loss plots) is a Pillow image, which Jupyter shows
inline (Pillow gives it ``_repr_png_``). The generation helpers of :mod:`netgraph.generate` return arrays,
batches to compute on; ``image_grid(sample_prior(decode, 64))`` makes them one picture to look at.

Example:
    >>> import numpy as np
    >>> from netgraph.images import NetEncoder, NetDecoder
    >>> red = np.zeros((2, 2, 3), dtype=np.uint8); red[..., 0] = 255
    >>> encoder = NetEncoder("Image", (2, 2))
    >>> encoder.output_shape
    (3, 2, 2)
    >>> encoder(red)[:, 0, 0].tolist()          # the reference's worked example: pure red
    [1.0, 0.0, 0.0]
    >>> NetDecoder("Image")(encoder(red)).getpixel((0, 0))
    (255, 0, 0)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from .files import NotARegularFileError, atomic_file, open_regular
from .layer import NetError

__all__ = [
    "ImageDecoder",
    "ImageEncoder",
    "ImageError",
    "NetDecoder",
    "NetEncoder",
    "image_grid",
    "interpolation_strip",
    "save_png",
]

Color = Union[str, int, tuple[int, ...]]
COLOR_SPACES = {"Grayscale": 1, "RGB": 3}
METHODS = ("Stretch", "Fit", "Fill")
# ITU-R 601-2 luma, the weights Pillow's convert("L") uses.
LUMA = np.array([0.299, 0.587, 0.114])


class ImageError(NetError):
    """A picture could not be read, or an array is not a picture; the message names the file or shape."""


# --- reading pictures into float (H, W, C) arrays ------------------------------------------------


def _describe(item: Any) -> str:
    if isinstance(item, (str, os.PathLike)):
        return f"image file {os.fspath(item)!r}"
    if isinstance(item, np.ndarray):
        return f"array of shape {item.shape} ({item.dtype})"
    return type(item).__name__


def _open(path: str | os.PathLike) -> Image.Image:
    name = os.fspath(path)
    try:
        with open_regular(name) as stream, Image.open(stream) as image:
            image.load()
            return ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise ImageError(f"cannot read image file {name!r}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"cannot read image file {name!r}: it is a directory") from None
    except NotARegularFileError as err:
        raise ImageError(f"cannot read image file {name!r}: it is {err.strerror}") from None
    except UnidentifiedImageError:
        raise ImageError(f"cannot read image file {name!r}: not an image format Pillow recognises") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageError(f"cannot read image file {name!r}: {err}") from None


def _pil_pixels(image: Image.Image) -> np.ndarray:
    """A Pillow image as float64 (H, W, C) in [0, 1]; C is 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA)."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":  # 16-bit greys (PNG); "I" read as 16-bit too
        return np.clip(np.asarray(image, dtype=np.float64) / 65535.0, 0.0, 1.0)[..., None]
    if mode == "F":
        return np.asarray(image, dtype=np.float64)[..., None]
    if mode == "P":
        mode = "RGBA" if "transparency" in image.info else "RGB"
    elif mode in ("RGBa", "PA"):
        mode = "RGBA"
    elif mode == "La":
        mode = "LA"
    elif mode == "1":
        mode = "L"
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        mode = "RGB"  # CMYK, YCbCr, LAB, HSV
    array = np.asarray(image.convert(mode) if mode != image.mode else image, dtype=np.float64) / 255.0
    return array[..., None] if array.ndim == 2 else array


# How much a size looks like a channel count: RGB, grey, RGBA, then grey+alpha.
CHANNEL_PREFERENCE = {3: 0, 1: 1, 4: 2, 2: 3}


def _channels_last(array: np.ndarray, where: str) -> np.ndarray:
    """(H, W), (H, W, C) or (C, H, W) → (H, W, C).

    NOTE: a 3-D array is read channels-last or channels-first by which end looks
    more like a channel count (3, then 1, 4, 2), so ``(2, 2, 3)`` is a 2×2 RGB
    picture and ``(3, 2, 2)`` too; on a tie (``(3, 5, 3)``) the first axis is
    the channels, netgraph's convention.
    """
    if array.ndim == 2:
        return array[..., None]
    if array.ndim != 3:
        raise ImageError(f"{where}: a picture is (H, W), (H, W, C) or (C, H, W); got {array.ndim} axes")
    first = CHANNEL_PREFERENCE.get(array.shape[0], 9)
    last = CHANNEL_PREFERENCE.get(array.shape[-1], 9)
    if first == last == 9:
        raise ImageError(
            f"{where}: no axis of size 1, 3 or 4 to hold the channels; for a stack of grey pictures "
            f"give a list, or add a channel axis (N, 1, H, W)"
        )
    return np.moveaxis(array, 0, -1) if first <= last else array


def _array_pixels(array: np.ndarray, where: str) -> np.ndarray:
    if array.dtype == np.uint8:
        scaled = array / 255.0
    elif array.dtype == np.uint16:
        scaled = array / 65535.0
    elif array.dtype == np.bool_:
        scaled = array.astype(np.float64)
    elif np.issubdtype(array.dtype, np.floating):
        scaled = np.clip(np.nan_to_num(array.astype(np.float64)), 0.0, 1.0)  # floats are taken as [0, 1]
    else:
        raise ImageError(
            f"{where}: pixel arrays are uint8 (0..255), uint16, bool or float in [0, 1]; "
            f"convert {array.dtype} with .astype(np.uint8)"
        )
    return _channels_last(scaled, where)


def _pixels(item: Any) -> np.ndarray:
    """Any one picture as float64 (H, W, C) in [0, 1]."""
    if isinstance(item, (str, os.PathLike)):
        return _pil_pixels(_open(item))
    if isinstance(item, Image.Image):
        return _pil_pixels(item)
    if isinstance(item, np.ndarray) or hasattr(item, "__array__"):
        return _array_pixels(np.asarray(item), _describe(np.asarray(item)))
    raise ImageError(f"cannot read a picture from a {type(item).__name__}: give a path, a Pillow image or an array")


def _to_color_space(pixels: np.ndarray, channels: int) -> np.ndarray:
    """Composite any alpha over white, then make ``channels`` (1 grey or 3 RGB) channels."""
    if pixels.shape[-1] in (2, 4):
        color, alpha = pixels[..., :-1], pixels[..., -1:]
        pixels = color * alpha + (1.0 - alpha)
    if pixels.shape[-1] == channels:
        return pixels
    if channels == 1:
        return (pixels @ LUMA)[..., None]
    return np.repeat(pixels, 3, axis=-1)


def _resize(pixels: np.ndarray, size: tuple[int, int], method: str, padding: float) -> np.ndarray:
    """Bilinear resize (Pillow, on float32 channels, so no rounding) to ``size`` = (width, height)."""
    height, width = pixels.shape[:2]
    w, h = size
    if (width, height) == (w, h):
        return pixels
    bilinear = Image.Resampling.BILINEAR
    planes = np.ascontiguousarray(np.moveaxis(pixels, -1, 0), dtype=np.float32)
    channels = [Image.fromarray(plane) for plane in planes]
    if method == "Stretch":
        out = [ch.resize((w, h), bilinear) for ch in channels]
    elif method == "Fill":  # cover the target, crop the centre
        aspect = w / h
        if width / height > aspect:
            keep = height * aspect
            box = ((width - keep) / 2, 0.0, (width + keep) / 2, float(height))
        else:
            keep = width / aspect
            box = (0.0, (height - keep) / 2, float(width), (height + keep) / 2)
        out = [ch.resize((w, h), bilinear, box=box) for ch in channels]
    else:  # "Fit": the whole picture inside the target, centred, the rest padded
        s = min(w / width, h / height)
        nw, nh = max(1, min(w, round(width * s))), max(1, min(h, round(height * s)))
        out = []
        for ch in channels:
            canvas = Image.new("F", (w, h), float(padding))
            canvas.paste(ch.resize((nw, nh), bilinear), ((w - nw) // 2, (h - nh) // 2))
            out.append(canvas)
    return np.stack([np.asarray(o, dtype=np.float64) for o in out], axis=-1)


def _check_range(value_range: Any, who: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        message = f"{who}: value_range is a pair (low, high) such as (0, 1) or (-1, 1); got {value_range!r}"
        raise ImageError(message) from None
    if not lo < hi:
        raise ImageError(f"{who}: value_range needs low < high; got {value_range!r}")
    return lo, hi


def _check_color_space(color_space: Any, who: str, allow_none: bool = False) -> str | None:
    if color_space is None and allow_none:
        return None
    if color_space not in COLOR_SPACES:
        raise ImageError(f'{who}: color_space is "Grayscale" or "RGB"; got {color_space!r}')
    return color_space


# --- the codecs --------------------------------------------------------------------------------------


class ImageEncoder:
    """Wolfram's ``NetEncoder[{"Image", {w, h}, "ColorSpace" -> ...}]``; build it with :func:`NetEncoder`.

    Calling it on one picture gives a float32 ``(C, H, W)`` array; on a list (or a
    4-D array) of pictures, a batch ``(N, C, H, W)``.
    """

    def __init__(
        self,
        size: int | tuple[int, int] = (128, 128),
        *,
        color_space: str = "RGB",
        value_range: tuple[float, float] = (0.0, 1.0),
        method: str = "Stretch",
        padding: float = 0.0,
    ) -> None:
        if isinstance(size, (int, np.integer)):
            size = (int(size), int(size))
        if len(tuple(size)) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in size):
            raise ImageError(f"NetEncoder: size is an int or (width, height) of positive ints; got {size!r}")
        if method not in METHODS:
            raise ImageError(f"NetEncoder: method is one of {METHODS}; got {method!r}")
        self.size: tuple[int, int] = (int(size[0]), int(size[1]))
        self.color_space: str = _check_color_space(color_space, "NetEncoder")  # type: ignore[assignment]
        self.value_range = _check_range(value_range, "NetEncoder")
        self.method = method
        self.padding = float(padding)

    @property
    def output_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of one encoded picture."""
        return (COLOR_SPACES[self.color_space], self.size[1], self.size[0])

    def encode_one(self, item: Any) -> np.ndarray:
        """One picture (path, Pillow image or array) as a float32 ``(C, H, W)`` array."""
        try:
            pixels = _to_color_space(_pixels(item), COLOR_SPACES[self.color_space])
            pixels = np.clip(_resize(pixels, self.size, self.method, self.padding), 0.0, 1.0)
        except ImageError:
            raise
        except (ValueError, TypeError, OSError) as err:  # anything Pillow or NumPy raises on odd input
            raise ImageError(f"cannot encode the {_describe(item)}: {err}") from None
        lo, hi = self.value_range
        return np.ascontiguousarray(np.moveaxis(lo + (hi - lo) * pixels, -1, 0), dtype=np.float32)

    def __call__(self, data: Any) -> np.ndarray:
        if isinstance(data, (list, tuple)):
            if not data:
                return np.zeros((0, *self.output_shape), dtype=np.float32)
            return np.stack([self.encode_one(item) for item in data])
        if isinstance(data, np.ndarray) and data.ndim == 4:
            return np.stack([self.encode_one(item) for item in data])
        return self.encode_one(data)

    def __repr__(self) -> str:
        return (
            f"NetEncoder('Image', {self.size}, color_space={self.color_space!r}, "
            f"value_range={self.value_range}, method={self.method!r})"
        )


class ImageDecoder:
    """Wolfram's ``NetDecoder["Image"]``; build it with :func:`NetDecoder`.

    Calling it on a ``(C, H, W)`` array gives a Pillow image, on ``(N, C, H, W)`` a
    list of them. Values are clipped to ``value_range`` and rounded to 8 bits.
    """

    def __init__(self, *, color_space: str | None = None, value_range: tuple[float, float] = (0.0, 1.0)) -> None:
        self.color_space = _check_color_space(color_space, "NetDecoder", allow_none=True)
        self.value_range = _check_range(value_range, "NetDecoder")

    def decode_one(self, array: Any) -> Image.Image:
        """One ``(C, H, W)`` float array as a Pillow image ("L" or "RGB")."""
        a = np.asarray(array, dtype=np.float64)
        if a.ndim != 3:
            raise ImageError(f"NetDecoder: expects (C, H, W) or (N, C, H, W); got shape {a.shape}")
        channels = a.shape[0]
        wanted = COLOR_SPACES[self.color_space] if self.color_space else channels
        if channels != wanted or channels not in (1, 3):
            space = f"color_space {self.color_space!r} takes {wanted}" if self.color_space else "it takes 1 or 3"
            raise ImageError(f"NetDecoder: {space} channels; got an array of shape {a.shape}")
        lo, hi = self.value_range
        unit = np.clip(np.nan_to_num((a - lo) / (hi - lo)), 0.0, 1.0)
        return _from_unit(unit)

    def __call__(self, data: Any) -> Image.Image | list[Image.Image]:
        a = np.asarray(data)
        if a.ndim == 4:
            return [self.decode_one(x) for x in a]
        return self.decode_one(a)

    def __repr__(self) -> str:
        return f"NetDecoder('Image', color_space={self.color_space!r}, value_range={self.value_range})"


def _from_unit(unit: np.ndarray) -> Image.Image:
    """(C, H, W) floats in [0, 1], C in (1, 3) → an "L" or "RGB" Pillow image."""
    u8 = np.rint(unit * 255.0).astype(np.uint8)
    return Image.fromarray(u8[0]) if u8.shape[0] == 1 else Image.fromarray(np.moveaxis(u8, 0, -1))


def NetEncoder(  # noqa: N802 - the Wolfram name
    kind: str = "Image",
    size: int | tuple[int, int] = (128, 128),
    *,
    color_space: str = "RGB",
    value_range: tuple[float, float] = (0.0, 1.0),
    method: str = "Stretch",
    padding: float = 0.0,
) -> ImageEncoder:
    """An encoder from pictures to arrays, as Wolfram's ``NetEncoder[{"Image", {w, h}}]``.

    Args:
        kind: "Image" (the only kind built).
        size: ``(width, height)``, Wolfram's order, or an int for a square.
        color_space: "RGB" (3 channels, the default) or "Grayscale" (1 channel,
            ITU-R 601 luma). Alpha is composited over white.
        value_range: ``(0, 1)``, or ``(-1, 1)`` for nets whose decoder ends in tanh.
        method: how to reach ``size``: "Stretch" (ignore the aspect ratio), "Fit"
            (all of the picture, centred, the rest ``padding``) or "Fill" (cover the
            target and crop the centre). Resampling is bilinear (Pillow).
        padding: the [0, 1] grey level "Fit" pads with (0, black).

    Returns:
        An :class:`ImageEncoder`: call it on a path, a Pillow image, an array
        ((H, W), (H, W, C) or (C, H, W); uint8, uint16, bool, or float in [0, 1]),
        or a list of these (a batch). Files that cannot be read raise
        :class:`ImageError` naming the file.

    Example:
        >>> import numpy as np
        >>> enc = NetEncoder("Image", (4, 2), color_space="Grayscale", value_range=(-1, 1))
        >>> enc.output_shape                       # (channels, height, width)
        (1, 2, 4)
        >>> enc([np.full((2, 4), 255, np.uint8), np.zeros((2, 4), np.uint8)])[:, 0, 0, 0].tolist()
        [1.0, -1.0]
    """
    if kind != "Image":
        raise ImageError(f'NetEncoder: only the "Image" encoder is built; got {kind!r}')
    return ImageEncoder(size, color_space=color_space, value_range=value_range, method=method, padding=padding)


def NetDecoder(  # noqa: N802 - the Wolfram name
    kind: str = "Image", *, color_space: str | None = None, value_range: tuple[float, float] = (0.0, 1.0)
) -> ImageDecoder:
    """A decoder from arrays to pictures, as Wolfram's ``NetDecoder["Image"]``.

    Args:
        kind: "Image" (the only kind built).
        color_space: "Grayscale" or "RGB" to insist on 1 or 3 channels; None
            takes the colour space from the channel count.
        value_range: the range the net's output is in, ``(0, 1)`` or ``(-1, 1)``;
            values outside it are clipped.

    Returns:
        An :class:`ImageDecoder`: a ``(C, H, W)`` array gives a Pillow image,
        ``(N, C, H, W)`` a list of them.

    Example:
        >>> import numpy as np
        >>> dec = NetDecoder("Image", value_range=(-1, 1))
        >>> image = dec(np.array([[[-1.0, 0.0, 2.0]]]))   # one channel, 1×3; 2.0 is clipped
        >>> image.mode, image.size, np.asarray(image).tolist()
        ('L', (3, 1), [[0, 128, 255]])
    """
    if kind != "Image":
        raise ImageError(f'NetDecoder: only the "Image" decoder is built; got {kind!r}')
    return ImageDecoder(color_space=color_space, value_range=value_range)


# --- grids, strips and files ---------------------------------------------------------------------------


def _as_image(item: Any, value_range: tuple[float, float]) -> Image.Image:
    """One picture (Pillow image, or an array as the encoder reads one) as an "L" or "RGB" Pillow image.

    Float arrays are read in ``value_range``; uint8 arrays as 0..255.
    """
    if isinstance(item, Image.Image):
        if item.mode in ("L", "RGB"):
            return item
        pixels = _pil_pixels(item)
    else:
        a = np.asarray(item)
        where = f"a picture of shape {a.shape}"
        if np.issubdtype(a.dtype, np.floating):
            lo, hi = value_range
            pixels = np.clip(np.nan_to_num((_channels_last(a.astype(np.float64), where) - lo) / (hi - lo)), 0.0, 1.0)
        else:
            pixels = _array_pixels(a, where)
    pixels = _to_color_space(pixels, 1 if pixels.shape[-1] in (1, 2) else 3)
    return _from_unit(np.moveaxis(pixels, -1, 0))


def _cells(images: Any, value_range: tuple[float, float]) -> list[Image.Image]:
    """A stack of pictures: a list, an (N, H, W) array of grey pictures, or (N, C, H, W) / (N, H, W, C)."""
    if isinstance(images, np.ndarray) and images.ndim not in (3, 4):
        raise ImageError(f"expected a list of pictures or an (N, C, H, W) array; got an array of shape {images.shape}")
    return [_as_image(item, value_range) for item in images]


def _rgb(color: Color) -> tuple[int, int, int]:
    if isinstance(color, str):
        return ImageColor.getrgb(color)[:3]  # type: ignore[return-value]
    if isinstance(color, (int, np.integer)):
        return (int(color),) * 3  # type: ignore[return-value]
    if isinstance(color, float):
        return (round(255 * color),) * 3  # type: ignore[return-value]
    return tuple(int(c) for c in color)[:3]  # type: ignore[return-value]


def _text_size(font: Any, text: str) -> tuple[int, int]:
    left, top, right, bottom = font.getbbox(text)
    return right - left, bottom


def _compose(
    rows: list[list[Image.Image | None]],
    labels: list[list[str | None]] | None,
    row_labels: Sequence[str] | None,
    border: int,
    scale: int,
    background: Color,
    label_color: Color | None,
) -> Image.Image:
    """Lay out rows of cells (None for a blank) with optional labels under cells and before rows."""
    if not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ImageError(f"scale is a positive integer (pixel replication); got {scale!r}")
    if border < 0:
        raise ImageError(f"border is a number of pixels >= 0; got {border!r}")
    present = [c for row in rows for c in row if c is not None]
    if not present:
        raise ImageError("no images to lay out")
    if scale > 1:
        rows = [[None if c is None else c.resize((c.width * scale, c.height * scale), Image.Resampling.NEAREST)
                 for c in row] for row in rows]  # fmt: skip
        present = [c for row in rows for c in row if c is not None]
    bg = _rgb(background)
    ink = _rgb(label_color) if label_color is not None else ((0, 0, 0) if np.dot(bg, LUMA) > 127 else (255, 255, 255))
    mode = "RGB" if any(c.mode == "RGB" for c in present) or len(set(bg)) > 1 or len(set(ink)) > 1 else "L"
    fill = bg if mode == "RGB" else bg[0]
    ink_fill = ink if mode == "RGB" else ink[0]
    font = ImageFont.load_default()
    cell_w, cell_h = max(c.width for c in present), max(c.height for c in present)
    line_h = _text_size(font, "Ag")[1] + 4
    bands = [line_h if labels and any(labels[r]) else 0 for r in range(len(rows))]
    row_w = max((_text_size(font, t)[0] for t in row_labels or [] if t), default=0)
    lead = row_w + 2 * max(border, 2) if row_w else 0
    columns = max(len(row) for row in rows)
    width = lead + columns * cell_w + (columns + 1) * border
    height = len(rows) * cell_h + sum(bands) + (len(rows) + 1) * border
    canvas = Image.new(mode, (width, height), fill)
    pen = ImageDraw.Draw(canvas)
    top = border
    for r, row in enumerate(rows):
        if row_labels is not None and r < len(row_labels) and row_labels[r]:
            th = _text_size(font, row_labels[r])[1]
            pen.text((max(border, 2), top + (cell_h - th) // 2), row_labels[r], fill=ink_fill, font=font)
        for c, cell in enumerate(row):
            left = lead + border + c * (cell_w + border)
            if cell is not None:
                cell = cell.convert(mode) if cell.mode != mode else cell
                canvas.paste(cell, (left + (cell_w - cell.width) // 2, top + (cell_h - cell.height) // 2))
            text = labels[r][c] if labels and c < len(labels[r]) else None
            if text:
                tw = _text_size(font, text)[0]
                pen.text((left + (cell_w - tw) // 2, top + cell_h + 2), text, fill=ink_fill, font=font)
        top += cell_h + bands[r] + border
    return canvas


def image_grid(
    images: Any,
    columns: int | None = None,
    labels: Sequence[str | None] | None = None,
    *,
    border: int = 2,
    scale: int = 1,
    background: Color = "white",
    value_range: tuple[float, float] = (0.0, 1.0),
    label_color: Color | None = None,
) -> Image.Image:
    """Pictures in a grid, row by row, with optional text labels under each cell.

    Args:
        images: an ``(N, C, H, W)`` array (floats in ``value_range``, or uint8),
            ``(N, H, W)`` grey pictures, or a list of Pillow images or arrays.
        columns: cells per row; default ``ceil(sqrt(N))``.
        labels: one text per picture (None or "" for none), drawn under it.
        border: pixels between cells and around the grid.
        scale: integer upscaling of each picture (nearest neighbour), for small pictures.
        background: colour of borders and empty cells (a Pillow colour name, a
            grey level 0..255 or an RGB tuple).
        value_range: the range float arrays are in; ``(-1, 1)`` for tanh outputs.
        label_color: text colour; default black or white, whichever shows on ``background``.

    Returns:
        A Pillow image, "L" when every picture is grey and the colours are grey, else "RGB".

    Example:
        >>> import numpy as np
        >>> grid = image_grid(np.random.default_rng(0).random((5, 1, 8, 8)), columns=3, border=1)
        >>> grid.size                               # 3 columns of 8 px, 2 rows of 8 px, 1 px borders
        (28, 19)
    """
    cells = _cells(images, _check_range(value_range, "image_grid"))
    n = len(cells)
    if n == 0:
        raise ImageError("image_grid: no images")
    columns = columns or math.ceil(math.sqrt(n))
    if labels is not None and len(labels) != n:
        raise ImageError(f"image_grid: {n} images but {len(labels)} labels")
    rows = [list(cells[i : i + columns]) for i in range(0, n, columns)]
    texts = [list(labels[i : i + columns]) for i in range(0, n, columns)] if labels is not None else None
    return _compose(rows, texts, None, border, scale, background, label_color)  # type: ignore[arg-type]


def interpolation_strip(
    rows: Any,
    *,
    row_labels: Sequence[str] | None = None,
    labels: Sequence[str | None] | None = None,
    border: int = 2,
    scale: int = 1,
    background: Color = "white",
    value_range: tuple[float, float] = (0.0, 1.0),
    label_color: Color | None = None,
) -> Image.Image:
    """Rows of pictures stacked, one row per sequence (e.g. an interpolation between two endpoints).

    Args:
        rows: a sequence of rows, each an ``(T, C, H, W)`` array or a list of
            pictures; or an ``(R, T, C, H, W)`` array (as :func:`netgraph.generate.slerp_grid`
            gives), or one ``(T, C, H, W)`` array for a single row. Rows may differ
            in length; short rows end in blank cells.
        row_labels: a text drawn before each row.
        labels: texts under the columns (e.g. the interpolation parameters), drawn
            under the last row.
        border, scale, background, value_range, label_color: as in :func:`image_grid`.

    Returns:
        A Pillow image.

    Example:
        >>> import numpy as np
        >>> steps = np.linspace(0, 1, 5)[:, None, None, None] * np.ones((5, 1, 6, 6))
        >>> interpolation_strip([steps, steps[::-1]], border=1).size   # 5 cells of 6 px, 2 rows
        (36, 15)
    """
    vr = _check_range(value_range, "interpolation_strip")
    if isinstance(rows, np.ndarray) and rows.ndim == 4:
        rows = [rows]
    grid: list[list[Image.Image | None]] = [_cells(row, vr) for row in rows]
    if not grid:
        raise ImageError("interpolation_strip: no rows")
    if row_labels is not None and len(row_labels) != len(grid):
        raise ImageError(f"interpolation_strip: {len(grid)} rows but {len(row_labels)} row labels")
    texts = None
    if labels is not None:
        texts = [[None] * len(row) for row in grid]
        texts[-1] = list(labels)
    return _compose(grid, texts, row_labels, border, scale, background, label_color)


def save_png(image: Any, path: str | os.PathLike) -> Path:
    """Write ``image`` as a PNG atomically: a temporary file beside ``path``, then a rename.

    Args:
        image: a Pillow image, or an array as :func:`image_grid` takes one cell.
        path: the file to write; missing folders are created.

    Returns:
        The path written.

    Example:
        >>> import os, tempfile, numpy as np
        >>> from PIL import Image
        >>> path = save_png(np.zeros((1, 4, 4)), os.path.join(tempfile.mkdtemp(), "a", "black.png"))
        >>> Image.open(path).size
        (4, 4)
    """
    if not isinstance(image, Image.Image):
        image = _as_image(image, (0.0, 1.0))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out) as stream:
        image.save(stream, format="PNG")
    return out


# --- loss plots ---------------------------------------------------------------------------------


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow before 10.1: the fixed bitmap font
        return ImageFont.load_default()


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    head = np.cumsum(values[: window - 1]) / np.arange(1, window)
    return np.concatenate([head, np.convolve(values, kernel, mode="valid")])


def _log_ticks(low: float, high: float) -> list[float]:
    """Round numbers between ``low`` and ``high`` (> 0) for a log axis: powers of 10, then 1-2-5, then
    1-9 steps; on a range too short for those, evenly spaced round numbers."""
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    for mantissas in ((1,), (1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [m * 10.0**k for k in decades for m in mantissas if low <= m * 10.0**k <= high]
        if len(ticks) >= 4:
            return ticks
    raw = (high - low) / 4
    step = 10.0 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if m * step >= raw)
    return [t * step for t in range(math.ceil(low / step), math.floor(high / step) + 1)]


def loss_plot(
    round_losses: list[float],
    validation_losses: list[float],
    batch_losses: list[float],
    batches_per_round: int,
    title: str = "loss per image",
    size: tuple[int, int] = (720, 440),
) -> Image.Image:
    """Round loss and validation loss against the training round, over the smoothed batch losses,
    on a log scale (NetTrain's "LossPlot"); Pillow only.

    The x axis is in rounds: batch b of round r sits at r - 1 + b / batches_per_round, and each
    round's mean loss and validation loss at the round's end.
    """
    width, height = size
    left, right, top, bottom = 64, 20, 36, 50
    image = Image.new("RGB", size, "white")
    pen = ImageDraw.Draw(image)
    font, small = _font(14), _font(12)
    batch = np.asarray(batch_losses, dtype=np.float64)
    smooth = _smooth(batch, max(1, min(50, len(batch) // 20)))
    x_batch = np.arange(1, len(batch) + 1) / max(1, batches_per_round)
    x_round = np.arange(1, len(round_losses) + 1, dtype=np.float64)
    values = [v for v in (*smooth, *round_losses, *validation_losses) if math.isfinite(v) and v > 0]
    y_low, y_high = (min(values), max(values)) if values else (1.0, 10.0)
    if y_high <= y_low * 1.05:
        y_low, y_high = y_low / 1.1, y_high * 1.1
    log_low, log_high = math.log(y_low), math.log(y_high)
    pad = 0.04 * (log_high - log_low)
    log_low, log_high = log_low - pad, log_high + pad
    x_high = max([1.0, *x_round, *x_batch[-1:]])

    def at(x: float, y: float) -> tuple[float, float]:
        ly = math.log(y) if y > 0 else log_low
        px = left + (width - left - right) * x / x_high
        py = top + (height - top - bottom) * (1 - (min(max(ly, log_low), log_high) - log_low) / (log_high - log_low))
        return px, py

    pen.rectangle([left, top, width - right, height - bottom], outline="black")
    for tick in _log_ticks(y_low, y_high):
        _, py = at(0, tick)
        pen.line([left - 4, py, left, py], fill="black")
        pen.line([left + 1, py, width - right - 1, py], fill=(230, 230, 230))
        pen.text((left - 8, py), f"{tick:g}", fill="black", font=small, anchor="rm")
    step = max(1, math.ceil(x_high / 10))
    for tick in range(0, int(x_high) + 1, step):
        px, _ = at(tick, y_low)
        pen.line([px, height - bottom, px, height - bottom + 4], fill="black")
        pen.text((px, height - bottom + 6), str(tick), fill="black", font=small, anchor="mt")
    pen.text(((left + width - right) / 2, height - 16), "training round", fill="black", font=font, anchor="mm")
    pen.text((left, top - 10), title, fill="black", font=font, anchor="ls")
    legend = []
    if len(batch) > 1:
        pen.line([at(x, y) for x, y in zip(x_batch, smooth)], fill=(160, 160, 160), width=1)
        legend.append(("batch loss (smoothed)", (160, 160, 160)))
    for losses, color, name in (
        (round_losses, (31, 119, 180), "round loss"),
        (validation_losses, (255, 127, 14), "validation loss"),
    ):
        points = [at(x, y) for x, y in zip(x_round, losses)]
        if len(points) > 1:
            pen.line(points, fill=color, width=2)
        for px, py in points:
            pen.ellipse([px - 4, py - 4, px + 4, py + 4], fill=color)
        if points:
            legend.append((name, color))
    for i, (name, color) in enumerate(legend):
        y = top + 14 + 18 * i
        pen.line([width - right - 190, y, width - right - 165, y], fill=color, width=3)
        pen.text((width - right - 158, y), name, fill="black", font=small, anchor="lm")
    return image
