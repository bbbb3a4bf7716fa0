"""The explorer in a notebook, as ipywidgets: the Python form of Wolfram's ``Manipulate`` over a decoder.

:func:`explore` lays out, top to bottom:

* the decoded picture beside a slider per latent dimension (from -3 to 3 prior standard deviations);
  moving a slider redraws the picture;
* a "sample" button with a temperature slider: a draw z ~ N(0, T² I) moves the sliders to it, and
  "origin" moves them back to z = 0;
* an interpolation strip between two latent codes A and B, linear (lerp) or spherical (slerp), with a
  number of steps. With a VAE and ``images``, A and B are the codes of two pictures chosen by number;
  with a VAE an uploaded picture can stand in for either; "A ← sliders" and "B ← sliders" take the
  sliders' code (the only way for a bare decoder, whose A and B start as two samples).

ipywidgets is the widget library the Jupyter project maintains (JupyterLab, Notebook 7, VS Code and
Colab render it); it comes with the ``notebook`` extra, ``pip install netgraph[notebook]``.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from ..layer import NetError
from .core import MAX_STEPS, SLIDER_RANGE, Explorer, png

try:
    import ipywidgets as widgets
except ImportError:  # the notebook extra is not installed: explore() says how to get it
    widgets = None

__all__ = ["explore"]

SLIDER_STEP = 0.05


def _upload_content(value: Any) -> bytes | None:
    """The bytes of the file a FileUpload widget holds (ipywidgets 8: a tuple of dicts; 7: a dict)."""
    files = list(value.values()) if isinstance(value, dict) else list(value or ())
    return bytes(files[-1]["content"]) if files else None


def explore(
    net: Any,
    images: Any = None,
    *,
    scale: int = 6,
    steps: int = 8,
    temperature: float = 1.0,
    seed: int | None = None,
    **options: Any,
) -> Any:
    """The latent-space explorer of a trained VAE or a decoder, as an ipywidgets box to display.

    Args:
        net: a net file, a VAE NetGraph ("enc"/"mn"/"sd"/"dec" as in ``examples/mnist_vae.py``), a
            bare decoder (a net from a latent vector to a picture), or an :class:`Explorer`.
        images: pictures to interpolate between (``"test"``, an IDX file, a folder, or an array;
            see :func:`netgraph.explore.core.load_pictures`); needs a VAE.
        scale: pictures are drawn this many times their size.
        steps: the interpolation strip's first number of pictures.
        temperature: the sample button's first temperature.
        seed: seeds the sample button's draws (and a decoder's first A and B).
        **options: passed to :class:`Explorer` (``decoder``, ``encoder_outputs``, ``value_range``,
            ``target_device``, ``batch_size``).

    Returns:
        An ``ipywidgets.VBox``; its attributes ``explorer``, ``sliders``, ``picture``, ``temperature``,
        ``sample_button``, ``origin_button``, ``strip``, ``kind``, ``steps``, ``ends`` (the widgets of A and B)
        and ``message`` reach the parts, for scripts and tests.
    """
    if widgets is None:
        raise NetError(
            "explore: the notebook explorer needs ipywidgets (pip install 'netgraph[notebook]'); "
            "without Jupyter, serve it as a web page: python -m netgraph.explore NET.npz"
        )
    explorer = net if isinstance(net, Explorer) else Explorer(net, images, **options)
    scale = explorer.check_scale(scale)
    steps = explorer.check_steps(steps)
    temperature = explorer.check_temperature(temperature)
    rng = np.random.default_rng(None if seed is None else explorer.check_seed(seed))
    n = explorer.latent_size
    z = np.zeros(n)
    quiet = [False]  # True while the sliders are moved together: one redraw at the end

    message = widgets.HTML("")
    picture = widgets.Image(format="png", value=explorer.decode_png(z, scale))
    sliders = [
        widgets.FloatSlider(
            value=0.0,
            min=-SLIDER_RANGE,
            max=SLIDER_RANGE,
            step=SLIDER_STEP,
            description=f"z{i + 1}",
            continuous_update=True,
            readout_format=".2f",
            layout=widgets.Layout(width="320px"),
        )  # fmt: skip
        for i in range(n)
    ]

    def redraw() -> None:
        picture.value = explorer.decode_png(z, scale)

    def moved(i: int) -> Any:
        def on_change(change: dict) -> None:
            z[i] = float(change["new"])
            if not quiet[0]:
                redraw()

        return on_change

    for i, slider in enumerate(sliders):
        slider.observe(moved(i), names="value")

    def move_to(code: np.ndarray) -> None:
        quiet[0] = True
        try:
            for i, slider in enumerate(sliders):
                slider.value = float(np.clip(code[i], -SLIDER_RANGE, SLIDER_RANGE))
        finally:
            quiet[0] = False
        z[:] = code  # the code itself, even where a slider stops at its end
        redraw()

    temperature_slider = widgets.FloatSlider(
        value=temperature, min=0.05, max=2.0, step=0.05, description="temperature", readout_format=".2f"
    )
    sample_button = widgets.Button(description="sample", tooltip="z ~ N(0, T² I)", button_style="primary")
    origin_button = widgets.Button(description="origin", tooltip="z = 0")
    sample_button.on_click(lambda _b: move_to(explorer.sample(temperature_slider.value, rng).z))
    origin_button.on_click(lambda _b: move_to(np.zeros(n)))

    # --- the interpolation strip between A and B -------------------------------------------------------------
    kind = widgets.ToggleButtons(options=[("lerp", "linear"), ("slerp", "spherical")], value="linear")
    steps_slider = widgets.IntSlider(value=steps, min=2, max=min(MAX_STEPS, 16), description="steps")
    strip = widgets.Image(format="png")
    codes: dict[str, np.ndarray] = {}
    ends: dict[str, dict[str, Any]] = {}

    def redraw_strip(*_: Any) -> None:
        strip.value = explorer.strip_png(codes["A"], codes["B"], steps_slider.value, kind.value, scale)

    def end_box(name: str, first: int) -> Any:
        parts: dict[str, Any] = {"thumb": widgets.Image(format="png", width=str(explorer.image_shape[2] * scale))}
        row = [widgets.Label(name), parts["thumb"]]
        if explorer.images is not None:
            last, width = len(explorer.images) - 1, widgets.Layout(width="160px")
            parts["index"] = widgets.BoundedIntText(value=first, min=0, max=last, description="picture", layout=width)

            def chosen(_change: Any = None) -> None:
                i = parts["index"].value
                codes[name] = explorer.code_of(i)
                parts["thumb"].value = _png_of(explorer, explorer.images[i], scale)  # type: ignore[index]
                redraw_strip()

            parts["index"].observe(chosen, names="value")
            parts["choose"] = chosen
            row.append(parts["index"])
        if explorer.can_encode:
            parts["upload"] = widgets.FileUpload(accept="image/*", multiple=False, description="upload")

            def uploaded(change: dict) -> None:
                data = _upload_content(change["new"])
                if data is None:
                    return
                try:
                    x = explorer.read_upload(data)
                except NetError as err:
                    message.value = f"<span style='color:#b00'>{html.escape(f'{name}: {err}')}</span>"
                    return
                message.value = ""
                codes[name] = explorer.encode(x)
                parts["thumb"].value = _png_of(explorer, x, scale)
                redraw_strip()

            parts["upload"].observe(uploaded, names="value")
            row.append(parts["upload"])
        parts["from_sliders"] = widgets.Button(description=f"{name} ← sliders", tooltip="the sliders' code")

        def from_sliders(_b: Any) -> None:
            codes[name] = z.copy()
            parts["thumb"].value = explorer.decode_png(z, scale)
            redraw_strip()

        parts["from_sliders"].on_click(from_sliders)
        row.append(parts["from_sliders"])
        ends[name] = parts
        return widgets.HBox(row)

    rows = [end_box("A", 0), end_box("B", 1 if explorer.images is not None and len(explorer.images) > 1 else 0)]
    for name in ("A", "B"):
        if "choose" in ends[name]:
            codes[name] = explorer.code_of(ends[name]["index"].value)
            ends[name]["thumb"].value = _png_of(explorer, explorer.images[ends[name]["index"].value], scale)  # type: ignore[index]
        else:
            drawn = explorer.sample(1.0, rng)
            codes[name] = drawn.z
            ends[name]["thumb"].value = _png_of(explorer, drawn.picture, scale)
    kind.observe(redraw_strip, names="value")
    steps_slider.observe(redraw_strip, names="value")
    redraw_strip()

    box = widgets.VBox([
        widgets.HBox([picture, widgets.VBox(sliders)]),
        widgets.HBox([sample_button, temperature_slider, origin_button]),
        widgets.HTML("<b>interpolation</b>"),
        *rows,
        widgets.HBox([kind, steps_slider]),
        strip,
        message,
    ])  # fmt: skip
    box.explorer, box.sliders, box.picture, box.message = explorer, sliders, picture, message
    box.temperature, box.sample_button, box.origin_button = temperature_slider, sample_button, origin_button
    box.strip, box.kind, box.steps, box.ends, box.codes, box.z = strip, kind, steps_slider, ends, codes, z
    return box


def _png_of(explorer: Explorer, array: Any, scale: int) -> bytes:
    return png(explorer.picture(array, scale))
