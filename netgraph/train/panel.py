"""NetTrain's live panel in a notebook (Wolfram's ``TrainingProgressReporting -> "Panel"``).

In Jupyter (an IPython kernel: JupyterLab, the classic notebook, VS Code, Colab) ``NetTrain`` with
``training_progress_reporting=Automatic`` shows, instead of the terminal's lines:

* one progress bar for the whole run, tqdm's notebook form (an ipywidgets bar; tqdm's text bar where
  ipywidgets is missing), with the batch loss and the examples per second;
* below it, a panel updated in place (one IPython display, ``display(..., display_id=True)`` then
  ``.update(...)``): a status line and the loss plot of :func:`netgraph.images.loss_plot` (the smoothed
  batch losses, the round losses and the validation losses, on a log scale), redrawn after every round,
  with the picture of a user function beside it when one is given.

The panel is an object with ``_repr_mimebundle_``: HTML (the status line over the picture) for notebook
front ends, a PNG for those that show images only, and the status line as text, so that a saved or
headlessly executed notebook keeps the last panel in its outputs. No widget state is needed to see it.

Nothing here imports IPython unless a panel is shown: :func:`in_notebook` only looks at the modules
already loaded. The options are read and checked by :class:`netgraph.train.progress.Reporter`.
"""

from __future__ import annotations

import base64
import html
import io
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any

import numpy as np
from PIL import Image

from ..images import _as_image, loss_plot
from ..layer import Layer, NetError

#: The height of the loss plot, in pixels; a picture beside it is scaled to this height at most.
PLOT_SIZE = (720, 440)


def in_notebook() -> bool:
    """Whether this process is an IPython kernel (a notebook's), without importing IPython.

    IPython's ``get_ipython()`` gives the running shell; a kernel's is a ``ZMQInteractiveShell`` (or a
    subclass of it, as Colab's). A terminal IPython, a plain interpreter or a script are not notebooks.
    """
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    if not callable(get_ipython):
        return False
    try:
        shell = get_ipython()
    except Exception:  # noqa: BLE001 - a half-loaded IPython is no notebook
        return False
    return shell is not None and any(kind.__name__ == "ZMQInteractiveShell" for kind in type(shell).__mro__)


def has_ipython() -> bool:
    """Whether IPython can be imported (it is not imported here)."""
    return "IPython" in sys.modules or find_spec("IPython") is not None


def notebook_bar() -> Any:
    """tqdm's notebook bar where ipywidgets is installed, else tqdm's text bar (both take tqdm's arguments)."""
    if find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm  # imported here: only a notebook panel needs it (and IPython with it)

        return tqdm
    from tqdm.std import tqdm

    return tqdm


def show(view: Any, handle: Any) -> Any:
    """Show ``view`` in the notebook: a new display the first time (``handle`` None), then an update in
    place of that display. Returns the handle (None outside a kernel: IPython then prints the view as text)."""
    if handle is not None:
        handle.update(view)
        return handle
    from IPython.display import display  # imported here: only a notebook panel needs IPython

    return display(view, display_id=True)


@dataclass
class PanelOptions:
    """The checked options of ``("Panel", {...})``."""

    picture: Callable[[dict], Any] | None = None  # f(progress) -> an image, or None to keep the last one
    unit: str = "Rounds"  # the picture's "Interval": every ``every`` rounds or batches
    every: int = 1
    minimum: float = 0.5  # "MinimumInterval": seconds at least between two redraws


class PanelView:
    """What the notebook shows: a status line and one image (the loss plot, and the picture beside it)."""

    def __init__(self, status: str, image: Image.Image | None):
        self.status = status
        self.png = _png(image) if image is not None else None

    def __repr__(self) -> str:
        return self.status

    def _repr_png_(self) -> bytes | None:
        return self.png

    def _repr_html_(self) -> str:
        text = f'<div style="font-family: monospace; margin: 2px 0">{html.escape(self.status)}</div>'
        if self.png is None:
            return f'<div class="netgraph-training-panel">{text}</div>'
        data = base64.b64encode(self.png).decode("ascii")
        image = f'<img src="data:image/png;base64,{data}" alt="training progress" style="image-rendering: pixelated">'
        return f'<div class="netgraph-training-panel">{text}{image}</div>'

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": self.status, "text/html": self._repr_html_()}
        if self.png is not None:
            bundle["image/png"] = self.png
        return bundle


class TrainingPanel:
    """The live panel of one NetTrain run (only rank 0 makes one).

    Args:
        options: the checked ``("Panel", {...})`` options.
        progress: gives the current progress dict (Wolfram's keys), for redraws within a round.
        net: gives the net being trained, for the picture function (called only when a picture is due).
    """

    def __init__(
        self,
        options: PanelOptions,
        progress: Callable[[], dict] | None = None,
        net: Callable[[], Layer] | None = None,
    ):
        self.options = options
        self.progress = progress
        self.net = net
        self.bar: Any = None
        self.notebook = in_notebook()
        self.handle: Any = None
        self.picture: Image.Image | None = None
        self.batches = 0  # batches per round, as the batches tell
        self.drawn = -math.inf  # perf_counter of the last redraw
        self.pending_picture = False  # a picture due but skipped for MinimumInterval (drawn at the end)
        self.last: dict | None = None  # the last progress drawn or skipped
        self.rate = 0.0
        self.started = time.perf_counter()
        self.draws = 0

    # --- what the training loop reports -----------------------------------------------------------

    def batch(self, round_number: int, batch: int, batches: int, loss: float, rate: float, step: int, total: Any):
        """After batch ``batch`` of ``batches`` in round ``round_number``, step ``step`` of ``total``."""
        self.batches, self.rate = batches, rate
        self._advance_bar(round_number, batch, batches, step, total)
        self.bar.set_postfix({"loss": f"{loss:.4g}", "examples/s": f"{rate:.0f}"}, refresh=False)
        if self.options.unit == "Batches" and step % self.options.every == 0 and self.progress is not None:
            self._redraw(self.progress(), picture=True)

    def round(self, progress: dict, rate: float) -> None:
        """After a round: the plot is redrawn (with the picture when it is due)."""
        self.rate = rate
        due = self.options.unit == "Rounds" and progress["Round"] % self.options.every == 0
        self._redraw(progress, picture=due)

    def close(self) -> None:
        """Close the bar: full (green in a notebook) when training stopped, red when an exception ends it."""
        if self.bar is None:
            return
        if sys.exc_info()[0] is None and self.bar.total and self.bar.n < self.bar.total:
            self.bar.total = self.bar.n  # stopped early by a rule: not a failure
        self.bar.close()
        self.bar = None

    def done(self, properties: dict) -> None:
        """After training: the last plot, the picture if one was skipped, and why training stopped."""
        self.close()
        progress = self.progress() if self.progress is not None else self.last
        status = (
            f"training stopped ({properties['ReasonTrainingStopped']}) after {properties['TotalRounds']} rounds, "
            f"{properties['TotalTrainingTime']:.1f} s"
        )
        if progress is not None and progress.get("RoundLoss") is not None:
            status += f" · {_losses(progress)}"
        if self.pending_picture and progress is not None:
            self._make_picture(progress)
        self._show(status, progress)

    # --- drawing ----------------------------------------------------------------------------------

    def _advance_bar(self, round_number: int, batch: int, batches: int, step: int, total: Any) -> None:
        """One bar for the whole run (for the first round only while the number of rounds is not known)."""
        size = total or batches
        if self.bar is None:
            kwargs = {} if self.notebook else {"file": sys.stderr, "dynamic_ncols": True}
            self.bar = (notebook_bar() if self.notebook else _text_bar())(total=size, unit="batch", **kwargs)
            self.bar.update((step if total else batch) - 1)  # a resumed run starts part-way
        elif self.bar.total != size:  # the number of rounds became known after the first round
            self.bar.reset(total=size)
            self.bar.update(step - 1)
        rounds = f"/{total // batches}" if total else ""
        self.bar.set_description(f"round {round_number}{rounds}", refresh=False)
        self.bar.update(1)

    def _redraw(self, progress: dict, picture: bool) -> None:
        self.last = progress
        now = time.perf_counter()
        if now - self.drawn < self.options.minimum:
            self.pending_picture = self.pending_picture or (picture and self.options.picture is not None)
            return
        if picture and self.options.picture is not None:
            self._make_picture(progress)
        self._show(_status(progress, self.rate), progress)

    def _make_picture(self, progress: dict) -> None:
        """Call the picture function with the progress dict and the net (as the progress function is)."""
        value = self.options.picture({**progress, "Net": self.net() if self.net is not None else None})
        image = picture_image(value)
        if image is not None:
            self.picture = image
        self.pending_picture = False

    def _show(self, status: str, progress: dict | None) -> None:
        plot = None
        if progress is not None and (progress.get("BatchLossList") or progress.get("RoundLossList")):
            per_round = self.batches or max(1, progress["AbsoluteBatch"] // max(progress["Round"], 1))
            plot = loss_plot(
                progress["RoundLossList"],
                progress["ValidationLossList"],
                progress["BatchLossList"],
                per_round,
                title="loss",
                size=PLOT_SIZE,
            )
        self.handle = show(PanelView(status, beside(plot, self.picture)), self.handle)
        self.drawn = time.perf_counter()
        self.draws += 1


def _text_bar() -> Any:
    from tqdm.std import tqdm  # imported here: only a bar needs it

    return tqdm


def _losses(progress: dict) -> str:
    parts = [f"round loss {progress['RoundLoss']:.5g}"] if progress.get("RoundLoss") is not None else []
    if progress.get("ValidationLoss") is not None:
        parts.append(f"validation loss {progress['ValidationLoss']:.5g}")
    return " · ".join(parts)


def _status(progress: dict, rate: float) -> str:
    where = f"round {progress['Round']}" + (f", batch {progress['Batch']}" if progress.get("Batch") else "")
    parts = [where]
    if progress.get("BatchLoss") is not None:
        parts.append(f"batch loss {progress['BatchLoss']:.5g}")
    losses = _losses(progress)
    if losses:
        parts.append(losses)
    parts.append(f"{rate:.0f} examples/s")
    return " · ".join(parts)


def picture_image(value: Any) -> Image.Image | None:
    """What a picture function returned, as a Pillow image: a Pillow image, an array of pixels (as
    :func:`netgraph.images.image_grid` takes one cell: (C, H, W), (H, W, C) or (H, W), floats in [0, 1] or
    uint8), PNG or JPEG bytes, or an object with ``_repr_png_``; None keeps the last picture."""
    if value is None:
        return None
    if isinstance(value, Image.Image):
        return value if value.mode in ("L", "RGB") else value.convert("RGB")
    repr_png = getattr(value, "_repr_png_", None)
    if callable(repr_png):
        value = repr_png()
        value = value[0] if isinstance(value, tuple) else value
    if isinstance(value, (bytes, bytearray)):
        try:
            image = Image.open(io.BytesIO(value))
            image.load()
        except (OSError, ValueError):
            raise NetError(
                f'NetTrain: training_progress_reporting\'s "Picture" returned {len(value)} bytes that are not '
                "an image (PNG or JPEG bytes are)"
            ) from None
        return image if image.mode in ("L", "RGB") else image.convert("RGB")
    if isinstance(value, (np.ndarray, list)):
        try:
            return _as_image(np.asarray(value), (0.0, 1.0))
        except (NetError, TypeError, ValueError) as err:
            raise NetError(
                f'NetTrain: training_progress_reporting\'s "Picture" returned an array that is no picture: {err}'
            ) from None
    raise NetError(
        'NetTrain: training_progress_reporting\'s "Picture" must return an image (a Pillow image, an array of '
        f"pixels, PNG bytes or an object with _repr_png_) or None, got {type(value).__name__}"
    )


def beside(plot: Image.Image | None, picture: Image.Image | None) -> Image.Image | None:
    """The plot with the picture to its right, the picture scaled to fit in the plot's size (by a whole factor,
    nearest neighbour, when it is smaller: the pixels stay sharp)."""
    if picture is None:
        return plot
    height = PLOT_SIZE[1]
    scale = min(height / picture.height, PLOT_SIZE[0] / picture.width)
    if scale >= 1:
        factor = int(scale)
        picture = picture.resize((picture.width * factor, picture.height * factor), Image.Resampling.NEAREST)
    else:
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    if plot is None:
        return picture
    gap = 12
    canvas = Image.new("RGB", (plot.width + gap + picture.width, max(plot.height, picture.height)), "white")
    canvas.paste(plot.convert("RGB"), (0, 0))
    canvas.paste(picture.convert("RGB"), (plot.width + gap, (canvas.height - picture.height) // 2))
    return canvas


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
