"""The explorer's logic, shared by the notebook widgets (:mod:`netgraph.explore.widgets`) and the web page
(:mod:`netgraph.explore.server`): one :class:`Explorer` decodes latent codes to pictures, samples the prior
with a temperature, encodes pictures and decodes interpolation strips between two codes.

Every value that comes from a user (a slider, a query string, an upload) passes one of the ``check_*``
methods first, which raise :class:`~netgraph.layer.NetError` with a message that names the value, what was
given and what is accepted; the web server turns those into 400 answers.

Example:
    >>> import numpy as np
    >>> import layers as L
    >>> from netgraph import NetChain
    >>> decoder = NetChain([L.LinearLayer((1, 4, 4)), "LogisticSigmoid"], input=3)
    >>> explorer = Explorer(decoder)
    >>> explorer.latent_size, explorer.image_shape, explorer.can_encode
    (3, (1, 4, 4), False)
    >>> explorer.decode([0.0, 1.0, -1.0]).shape
    (1, 4, 4)
    >>> explorer.decode_png([0.0, 0.0, 0.0], scale=2)[:4]
    b'\\x89PNG'
    >>> explorer.check_latent("1, 2, x")
    Traceback (most recent call last):
    ...
    netgraph.layer.NetError: z: 'x' (number 3) is not a number; give 3 numbers separated by commas
"""

from __future__ import annotations

import io
import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..datasets import DatasetError, fashion_mnist, image_folder, mnist, read_idx, to_float
from ..generate import interpolate, sample_prior, vae_parts
from ..images import ImageError, NetDecoder, NetEncoder, interpolation_strip
from ..io import load
from ..layer import Layer, NetError
from ..surgery import NetExtract

__all__ = ["Explorer", "Sample", "load_pictures", "png"]

#: Each latent value given to the explorer lies within ±LATENT_LIMIT (the prior is N(0, I): slider
#: positions past ±4 are already rare; a larger bound only guards the decoder against overflow).
LATENT_LIMIT = 100.0
#: The sliders' range, in prior standard deviations.
SLIDER_RANGE = 3.0
#: Interpolation strips have 2..MAX_STEPS pictures.
MAX_STEPS = 32
#: The temperature of a sample is in (0, MAX_TEMPERATURE].
MAX_TEMPERATURE = 10.0
#: Pictures are drawn at most this many times their size.
MAX_SCALE = 16
#: At most this many pictures are kept from ``images`` (the first ones).
MAX_PICTURES = 1000
#: An uploaded picture has at most this many pixels (checked from its header, before it is decoded).
MAX_UPLOAD_PIXELS = 4096 * 4096
#: Names of the two interpolations: Wolfram-style and the usual short ones.
KINDS = {"linear": "linear", "lerp": "linear", "spherical": "spherical", "slerp": "spherical"}


class Sample(NamedTuple):
    """A draw from the prior: the latent code ``z`` (latent_size,) and its decoded picture (C, H, W)."""

    z: np.ndarray
    picture: np.ndarray


def _number(text: Any, what: str) -> float:
    """One finite number from a string or a number; the message names ``what``."""
    if isinstance(text, (bool, np.bool_)):
        raise NetError(f"{what}: expected a number; got {text!r}")
    try:
        value = float(text.strip() if isinstance(text, str) else text)
    except (TypeError, ValueError):
        raise NetError(f"{what}: {str(text)[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise NetError(f"{what}: {value} is not a finite number")
    return value


def _integer(text: Any, what: str, low: int, high: int) -> int:
    """An integer in [low, high] from a string or a number."""
    if isinstance(text, (bool, np.bool_)):
        raise NetError(f"{what}: expected a whole number from {low} to {high}; got {text!r}")
    try:
        value = int(text.strip() if isinstance(text, str) else text)
    except (TypeError, ValueError, OverflowError):
        raise NetError(f"{what}: expected a whole number from {low} to {high}; got {str(text)[:40]!r}") from None
    if not low <= value <= high:
        raise NetError(f"{what}: expected a whole number from {low} to {high}; got {value}")
    return value


def _decoder_of(net: Layer, decoder: Any) -> Layer:
    """The decoder vertex of a VAE, or ``net`` itself when it takes a latent vector."""
    vertices = getattr(net, "vertices", None)
    if isinstance(vertices, dict) and decoder in vertices:
        return NetExtract(net, decoder)
    return net


def _ports_of(layer: Layer, where: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The (latent, picture) shapes of a decoder layer; the message says what an explorer needs."""
    if len(layer.input_ports) != 1 or len(layer.output_ports) != 1:
        raise NetError(
            f"{where}: the decoder has input ports {list(layer.input_ports)} and output ports "
            f"{list(layer.output_ports)}; the explorer needs one latent input and one picture output"
        )
    latent = layer.port_shapes.get(layer.input_ports[0])
    picture = layer.port_shapes.get(layer.output_ports[0])
    if latent is None or len(latent) != 1 or not isinstance(latent[0], int):
        raise NetError(f"{where}: the decoder's input is {latent}; the explorer needs a latent vector of fixed size")
    if picture is None or len(picture) != 3 or picture[0] not in (1, 3) or not all(isinstance(n, int) for n in picture):
        raise NetError(
            f"{where}: the decoder's output is {picture}; the explorer needs a picture (C, H, W) with 1 or 3 channels"
        )
    return tuple(latent), tuple(picture)


def load_pictures(
    source: Any, shape: Sequence[int], value_range: tuple[float, float] = (0.0, 1.0), most: int = MAX_PICTURES
) -> np.ndarray:
    """The first ``most`` pictures of ``source`` as float ``(N, C, H, W)`` in ``value_range``.

    ``source`` is ``"test"`` (the MNIST test set from the cache, else Fashion-MNIST's, as the
    examples read them), an IDX file, a folder of MNIST-format files (its test set, else its
    training set), a folder of pictures (read at the decoder's size), or an array: uint8 pixels
    ``(N, H, W)`` or ``(N, C, H, W)``, or floats already in ``value_range``.

    Example:
        >>> import numpy as np
        >>> load_pictures(np.full((2, 4, 4), 255, np.uint8), (1, 4, 4)).shape
        (2, 1, 4, 4)
        >>> load_pictures(np.zeros((2, 1, 5, 5)), (1, 4, 4))
        Traceback (most recent call last):
        ...
        netgraph.layer.NetError: images: pictures of shape (1, 5, 5); the net's pictures are (1, 4, 4)
    """
    channels, height, width = (int(n) for n in shape)
    if isinstance(source, (str, os.PathLike)):
        pixels = _read_pictures(source, channels, height, width)
    else:
        pixels = np.asarray(source)
    if pixels.ndim == 3 and channels == 1:
        pixels = pixels[:, None]
    if pixels.ndim != 4 or pixels.shape[0] == 0:
        raise NetError(f"images: expected a stack of pictures (N, C, H, W); got an array of shape {pixels.shape}")
    if pixels.shape[1:] != (channels, height, width):
        raise NetError(f"images: pictures of shape {pixels.shape[1:]}; the net's pictures are {tuple(shape)}")
    pixels = pixels[:most]
    if np.issubdtype(pixels.dtype, np.integer):
        return np.asarray(to_float(pixels, range=value_range), dtype=np.float64)
    if not np.issubdtype(pixels.dtype, np.floating):
        raise NetError(f"images: pixels are uint8 or floats; got {pixels.dtype}")
    return np.asarray(pixels, dtype=np.float64)


def _read_pictures(source: str | os.PathLike, channels: int, height: int, width: int) -> np.ndarray:
    if source == "test":
        try:
            return mnist(kind="test")[0]
        except DatasetError:
            try:
                return fashion_mnist(kind="test")[0]
            except DatasetError:
                raise DatasetError(
                    'images "test": neither the MNIST nor the Fashion-MNIST test set is on this machine; give an '
                    "IDX file or a folder of pictures"
                ) from None
    path = Path(source).expanduser()
    if path.is_file():
        return read_idx(path)
    if not path.is_dir():
        raise DatasetError(f'images: {path}: no such file or folder (give "test", an IDX file or a folder)')
    idx = sorted(p for p in path.iterdir() if "idx3-ubyte" in p.name and p.is_file())
    if idx:  # MNIST-format files: the test pictures (t10k-images-...) first, no labels needed
        return read_idx(next((p for p in idx if p.name.startswith("t10k-images")), idx[0]))
    space = "Grayscale" if channels == 1 else "RGB"
    return image_folder(path, (width, height), color_space=space).images


class Explorer:
    """The latent space of a trained VAE (or of a bare decoder) as an explorer sees it.

    Args:
        net: a net file (``.npz`` written by ``net.save``), a VAE NetGraph whose vertex ``decoder``
            (default "dec") decodes and whose vertices ``encoder_outputs`` give the posterior mean
            and scale (as in ``examples/mnist_vae.py``, see :func:`netgraph.generate.vae_parts`),
            or a bare decoder: a net from a latent vector to a picture (C, H, W).
        images: pictures to encode and interpolate between (see :func:`load_pictures`); needs a VAE.
        decoder, encoder_outputs, scale: as :func:`netgraph.generate.vae_parts` takes them.
        value_range: the range of the net's pictures, (0, 1) or (-1, 1).
        **options: evaluation options (``target_device``, ``batch_size``).
    """

    def __init__(
        self,
        net: Any,
        images: Any = None,
        *,
        decoder: Any = "dec",
        encoder_outputs: tuple[Any, Any] = ("mn", "sd"),
        scale: str = "half_log_variance",
        value_range: tuple[float, float] = (0.0, 1.0),
        **options: Any,
    ) -> None:
        where = str(net) if isinstance(net, (str, os.PathLike)) else type(net).__name__
        if isinstance(net, (str, os.PathLike)):
            net = load(net)
        if not isinstance(net, Layer):
            raise NetError(f"explore: expected a net file, a VAE or a decoder net; got a {type(net).__name__}")
        self.where = where
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self.options = options
        layer = _decoder_of(net, decoder)
        self.is_vae = layer is not net
        if self.is_vae:
            self._encode, self._decode = vae_parts(net, encoder_outputs, decoder, scale=scale, **options)
        else:
            self._encode, self._decode = None, lambda z: np.asarray(net(np.asarray(z), **options))
        latent, picture = _ports_of(layer, where)
        self.latent_size: int = latent[0]
        self.image_shape: tuple[int, int, int] = picture  # type: ignore[assignment]
        self.images: np.ndarray | None = None
        if images is not None:
            if not self.is_vae:
                raise NetError(f"{where}: images are encoded to latent codes, which needs a VAE; this is a decoder")
            self.images = load_pictures(images, self.image_shape, self.value_range)
        self._lock = threading.Lock()  # one evaluation at a time: requests come from several threads

    @property
    def can_encode(self) -> bool:
        """Whether pictures can be encoded (a VAE, not a bare decoder)."""
        return self._encode is not None

    def __repr__(self) -> str:
        kind = "VAE" if self.is_vae else "decoder"
        pictures = f", {len(self.images)} pictures" if self.images is not None else ""
        return f"Explorer({self.where}: {kind}, latent size {self.latent_size}, pictures {self.image_shape}{pictures})"

    def describe(self) -> dict[str, Any]:
        """What a user interface needs to know, as JSON-ready values."""
        return {
            "latent_size": self.latent_size,
            "image_shape": list(self.image_shape),
            "can_encode": self.can_encode,
            "images": 0 if self.images is None else len(self.images),
            "slider_range": SLIDER_RANGE,
            "latent_limit": LATENT_LIMIT,
            "max_steps": MAX_STEPS,
            "max_temperature": MAX_TEMPERATURE,
            "kinds": ["linear", "spherical"],
            "net": self.where,
        }

    # --- checking what a user gives ------------------------------------------------------------------------

    def check_latent(self, values: Any, what: str = "z") -> np.ndarray:
        """A latent code from numbers or a string of numbers separated by commas: exactly
        ``latent_size`` finite numbers within ±:data:`LATENT_LIMIT`."""
        n = self.latent_size
        if isinstance(values, str):
            items: Sequence[Any] = values.split(",") if values.strip() else []
        else:
            array = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
            if array.ndim != 1:
                raise NetError(f"{what}: expected {n} numbers; got an array of shape {array.shape}")
            items = list(array)
        if len(items) != n:
            raise NetError(f"{what}: expected {n} numbers (the latent size); got {len(items)}")
        out = np.empty(n)
        for i, item in enumerate(items):
            try:
                out[i] = _number(item, what)
            except NetError:
                shown = str(item).strip()[:40]
                if _is_float(shown):
                    raise NetError(f"{what}: number {i + 1} is {shown}, not a finite number") from None
                raise NetError(f"{what}: {shown!r} (number {i + 1}) is not a number; give {n} numbers "
                               f"separated by commas") from None  # fmt: skip
            if abs(out[i]) > LATENT_LIMIT:
                raise NetError(f"{what}: number {i + 1} is {out[i]:g}; each is within ±{LATENT_LIMIT:g}")
        return out

    def check_temperature(self, value: Any) -> float:
        """A temperature in (0, :data:`MAX_TEMPERATURE`]."""
        t = _number(value, "temperature")
        if not 0.0 < t <= MAX_TEMPERATURE:
            raise NetError(f"temperature: expected a number above 0 and at most {MAX_TEMPERATURE:g}; got {t:g}")
        return t

    def check_steps(self, value: Any) -> int:
        """A number of interpolation steps, 2..:data:`MAX_STEPS`."""
        return _integer(value, "steps", 2, MAX_STEPS)

    def check_scale(self, value: Any) -> int:
        """A drawing scale, 1..:data:`MAX_SCALE`."""
        return _integer(value, "scale", 1, MAX_SCALE)

    def check_seed(self, value: Any) -> int:
        """A random seed, 0..2³²-1."""
        return _integer(value, "seed", 0, 2**32 - 1)

    def check_kind(self, value: Any) -> str:
        """ "linear" ("lerp") or "spherical" ("slerp")."""
        kind = KINDS.get(value) if isinstance(value, str) else None
        if kind is None:
            raise NetError(f'kind: expected "linear" (lerp) or "spherical" (slerp); got {str(value)[:40]!r}')
        return kind

    def check_index(self, value: Any) -> int:
        """The number of one of the explorer's pictures."""
        if self.images is None:
            raise NetError("index: this explorer was given no pictures; upload one instead")
        return _integer(value, "index", 0, len(self.images) - 1)

    # --- the model ---------------------------------------------------------------------------------------

    def decode(self, z: Any) -> np.ndarray:
        """The picture (C, H, W) of one latent code."""
        z = self.check_latent(z)
        with self._lock:
            return np.asarray(self._decode(z[None]), dtype=np.float64)[0]

    def sample(self, temperature: float = 1.0, seed: int | np.random.Generator | None = None) -> Sample:
        """A draw z ~ N(0, temperature² I) and its picture (:func:`netgraph.generate.sample_prior`)."""
        t = self.check_temperature(temperature)
        seed = seed if seed is None or isinstance(seed, np.random.Generator) else self.check_seed(seed)
        with self._lock:
            pictures, z = sample_prior(self._decode, 1, self.latent_size, t, seed, return_latents=True)
        return Sample(np.asarray(z[0], dtype=np.float64), np.asarray(pictures[0], dtype=np.float64))

    def encode(self, picture: Any) -> np.ndarray:
        """The posterior mean of one picture (C, H, W) in the net's value range: its latent code."""
        if not self.can_encode:
            raise NetError(f"{self.where}: a bare decoder cannot encode pictures; explore a VAE to encode them")
        x = np.asarray(picture, dtype=np.float64)
        if x.shape != self.image_shape:
            raise NetError(f"encode: a picture of shape {x.shape}; the net's pictures are {self.image_shape}")
        with self._lock:
            mean, _ = self._encode(x[None])  # type: ignore[misc]
        return np.asarray(mean, dtype=np.float64).reshape(-1)

    def code_of(self, index: Any) -> np.ndarray:
        """The latent code of the explorer's picture number ``index``."""
        i = self.check_index(index)
        return self.encode(self.images[i])  # type: ignore[index]

    def strip(self, za: Any, zb: Any, steps: Any = 8, kind: str = "linear") -> np.ndarray:
        """``steps`` pictures decoded along the path from ``za`` to ``zb`` (:func:`netgraph.generate.interpolate`)."""
        za, zb = self.check_latent(za, "a"), self.check_latent(zb, "b")
        steps, kind = self.check_steps(steps), self.check_kind(kind)
        with self._lock:
            return np.asarray(interpolate(self._decode, za, zb, steps, kind), dtype=np.float64)

    # --- pictures ---------------------------------------------------------------------------------------

    def picture(self, array: Any, scale: Any = 1) -> Image.Image:
        """One (C, H, W) array in the net's value range as a Pillow image, ``scale`` times its size
        (nearest neighbour: pixels stay sharp)."""
        scale = self.check_scale(scale)
        image = NetDecoder("Image", value_range=self.value_range)(np.asarray(array))
        if scale > 1:
            image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
        return image  # type: ignore[return-value]

    def decode_png(self, z: Any, scale: Any = 1) -> bytes:
        """The PNG of one latent code's picture."""
        return png(self.picture(self.decode(z), scale))

    def strip_png(self, za: Any, zb: Any, steps: Any = 8, kind: str = "linear", scale: Any = 1) -> bytes:
        """The PNG of an interpolation strip, one row of ``steps`` pictures."""
        scale = self.check_scale(scale)
        pictures = self.strip(za, zb, steps, kind)
        return png(interpolation_strip([pictures], border=1, scale=scale, value_range=self.value_range))

    def read_upload(self, data: bytes) -> np.ndarray:
        """An uploaded picture file (PNG, JPEG, ...) as a (C, H, W) array at the net's size and colours.

        Its size is read from the header and refused above :data:`MAX_UPLOAD_PIXELS` before any
        pixel is decoded, so a small file that unpacks to a huge picture costs nothing.
        """
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > MAX_UPLOAD_PIXELS:
                    raise ImageError(
                        f"upload: a picture of {width}×{height} pixels; at most {MAX_UPLOAD_PIXELS:,} pixels are read"
                    )
                image.load()
                channels, h, w = self.image_shape
                space = "Grayscale" if channels == 1 else "RGB"
                encoder = NetEncoder("Image", (w, h), color_space=space, value_range=self.value_range, method="Fill")
                return np.asarray(encoder(image.copy()), dtype=np.float64)
        except UnidentifiedImageError:
            raise ImageError("upload: not a picture Pillow can read (PNG, JPEG, GIF, BMP, WebP, ...)") from None
        except ImageError:
            raise
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            raise ImageError(f"upload: a damaged picture ({err})") from None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def png(image: Image.Image) -> bytes:
    """A Pillow image as PNG bytes."""
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
