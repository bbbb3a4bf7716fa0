"""NetTrain's live panel in a notebook: a tqdm notebook bar and a loss plot (with a picture) updated in place.

A notebook is simulated: a fake ``IPython`` module whose ``get_ipython()`` gives a ``ZMQInteractiveShell``
(the class a kernel runs), a fake ``IPython.display`` whose ``display(..., display_id=True)`` returns a
handle recording its updates, and a fake bar class recording what the bar is told. Outside that notebook
the terminal's behaviour is checked to be the same as before.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import layers as L
from netgraph import Automatic, Layer, NetChain, NetError, NetInitialize, NetTrain
from netgraph.train import panel, progress
from netgraph.train.progress import Reporter

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def line_data(n=24):
    x = np.linspace(-1, 1, n).reshape(-1, 1)
    return x, 2 * x + 1


def two_layers():
    return NetInitialize(NetChain({"a": L.LinearLayer(3), "b": L.LinearLayer(1)}, input=1), random_seeding=0)


def train(reporting, rounds=4, **options):
    """4 rounds of 3 batches (24 examples, batch size 8), with a validation set."""
    x, y = line_data()
    return NetTrain(
        two_layers(),
        (x, y),
        max_training_rounds=rounds,
        batch_size=8,
        validation_set=line_data(6),
        random_seeding=1,
        training_progress_reporting=reporting,
        **options,
    )


class FakeBar:
    """Records what tqdm's notebook bar is told."""

    made: list[FakeBar] = []

    def __init__(self, total=None, **kwargs):
        self.total, self.n, self.kwargs, self.closed, self.descriptions = total, 0, kwargs, False, []
        self.postfix = {}
        FakeBar.made.append(self)

    def update(self, n=1):
        self.n += n

    def reset(self, total=None):
        self.total, self.n = total, 0

    def set_description(self, text, refresh=True):
        self.descriptions.append(text)

    def set_postfix(self, postfix, refresh=True):
        self.postfix = postfix

    def close(self):
        self.closed = True


class Notebook:
    """What the fake kernel was asked to show: ``shown[0]`` is the first display, the rest its updates."""

    def __init__(self):
        self.shown: list = []
        self.displays = 0

    def display(self, obj, display_id=False):
        assert display_id is True, "the panel is shown with a display id, to be updated in place"
        self.displays += 1
        self.shown.append(obj)
        notebook = self

        class Handle:
            def update(self, new):
                notebook.shown.append(new)

        return Handle()


def fake_ipython(monkeypatch, shell_name="ZMQInteractiveShell"):
    shell = type(shell_name, (), {})()
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell
    display = types.ModuleType("IPython.display")
    notebook = Notebook()
    display.display = notebook.display
    ipython.display = display
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    return notebook


@pytest.fixture
def notebook(monkeypatch):
    """A simulated Jupyter kernel; its ``shown`` list holds every panel shown or updated."""
    FakeBar.made = []
    monkeypatch.setattr(panel, "notebook_bar", lambda: FakeBar)
    return fake_ipython(monkeypatch)


def png_of(view) -> Image.Image:
    data = view._repr_mimebundle_()["image/png"]
    assert data.startswith(PNG)
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_a_notebook_is_told_from_a_terminal_without_importing_ipython(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert not panel.in_notebook()
    fake_ipython(monkeypatch, "TerminalInteractiveShell")
    assert not panel.in_notebook()
    fake_ipython(monkeypatch, "ZMQInteractiveShell")
    assert panel.in_notebook()
    colab = type("Shell", (type(sys.modules["IPython"].get_ipython()),), {})()  # a subclass, as Colab's
    sys.modules["IPython"].get_ipython = lambda: colab
    assert panel.in_notebook()
    sys.modules["IPython"].get_ipython = lambda: None  # IPython imported, but no shell running
    assert not panel.in_notebook()
    code = "import sys; from netgraph.train import panel; print(panel.in_notebook(), 'IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"]


def test_automatic_in_a_notebook_shows_the_panel_and_prints_nothing(notebook, capsys):
    train(Automatic)
    assert notebook.displays == 1, "one display, updated in place"
    final = notebook.shown[-1]
    assert re.match(r"training stopped \(MaxTrainingRounds\) after 4 rounds, [\d.]+ s · round loss ", repr(final))
    assert "validation loss" in repr(final)
    assert png_of(final).size == panel.PLOT_SIZE
    html = final._repr_html_()
    assert "data:image/png;base64," in html and "training stopped" in html
    (bar,) = FakeBar.made
    assert bar.total == 12 and bar.n == 12 and bar.closed  # one bar for the whole run: 4 rounds of 3 batches
    assert bar.descriptions[-1] == "round 4/4" and "loss" in bar.postfix
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_the_plot_is_redrawn_after_every_round(notebook):
    train(("Panel", {"MinimumInterval": 0}), rounds=5)
    assert notebook.displays == 1
    assert len(notebook.shown) == 5 + 1  # after each round, and the end
    statuses = [repr(view) for view in notebook.shown]
    assert [s.split(" · ")[0] for s in statuses[:5]] == [f"round {r}" for r in range(1, 6)]
    images = [png_of(view) for view in notebook.shown]
    assert all(image.size == panel.PLOT_SIZE for image in images)
    assert len({image.tobytes() for image in images[:5]}) == 5, "each round draws a new plot"


def test_the_picture_is_made_each_round_and_shown_beside_the_plot(notebook):
    seen = []

    def picture(progress):
        seen.append((progress["Round"], isinstance(progress["Net"], Layer), progress["RoundLoss"]))
        return np.full((1, 10, 20), progress["Round"] / 10.0)  # a grey picture, channels first

    train(("Panel", {"Picture": picture, "MinimumInterval": 0}))
    assert [round_number for round_number, _, _ in seen] == [1, 2, 3, 4]
    assert all(is_net and loss is not None for _, is_net, loss in seen)
    image = png_of(notebook.shown[-1])
    width, height = panel.PLOT_SIZE
    assert image.size == (width + 12 + 20 * 36, height)  # 10x20 pixels scaled by 36 to fit the plot's size
    assert image.getpixel((width + 12 + 5, height // 2)) == (102, 102, 102)  # round 4's grey: 0.4 of 255


def test_the_picture_interval_in_batches(notebook):
    steps = []
    options = {"Picture": lambda p: steps.append(p["AbsoluteBatch"]), "Interval": ("Batches", 2), "MinimumInterval": 0}
    train(("Panel", options), rounds=2)
    assert steps == [2, 4, 6]  # None keeps the last picture (here: none)
    assert len(notebook.shown) == 2 + 3 + 1  # after each round, each picture, and the end


def test_minimum_interval_skips_redraws_but_draws_the_last_state(notebook):
    calls = []
    train(("Panel", {"Picture": lambda p: calls.append(p["Round"]) or Image.new("L", (4, 4)), "MinimumInterval": 600}))
    assert len(notebook.shown) == 2  # round 1, then the end
    assert calls == [1, 4], "the picture skipped meanwhile is made once more, of the final net"
    assert png_of(notebook.shown[-1]).width > panel.PLOT_SIZE[0]


def test_a_picture_that_is_no_image_is_an_error_naming_the_option(notebook):
    with pytest.raises(NetError, match=r'training_progress_reporting\'s "Picture" must return an image .* got str'):
        train(("Panel", {"Picture": lambda p: "samples", "MinimumInterval": 0}))
    with pytest.raises(NetError, match=r'"Picture" returned 3 bytes that are not an image'):
        train(("Panel", {"Picture": lambda p: b"abc", "MinimumInterval": 0}))
    with pytest.raises(NetError, match=r'"Picture" returned an array that is no picture'):
        train(("Panel", {"Picture": lambda p: np.zeros((2, 3, 4, 5)), "MinimumInterval": 0}))


@pytest.mark.parametrize(
    "spec, message",
    [
        ("panel", 'training_progress_reporting must be Automatic, None, "Print", "ProgressIndicator", "Panel"'),
        (("Panel", ["Picture"]), "training_progress_reporting's panel options are a dict with keys among"),
        (("Panel", {"Pictures": print}), "keys among \\['Picture', 'Interval', 'MinimumInterval'\\]"),
        (("Panel", {"Picture": 3}), '"Picture" must be a function f\\(progress\\) returning an image, got 3'),
        (("Panel", {"Interval": ("Rounds", 0)}), 'training_progress_reporting\'s "Interval" must be'),
        (("Panel", {"Interval": "Rounds"}), 'training_progress_reporting\'s "Interval" must be'),
        (("Panel", {"MinimumInterval": -1}), '"MinimumInterval" must be a number of seconds >= 0, got -1'),
        (("Panel", {"MinimumInterval": float("inf")}), '"MinimumInterval" must be a number of seconds >= 0'),
        (("Panel", {"MinimumInterval": True}), '"MinimumInterval" must be a number of seconds >= 0'),
    ],
)
def test_bad_panel_forms_are_refused_before_any_work(notebook, spec, message):
    calls = []

    def data(request):
        calls.append(request)
        return line_data(8)

    with pytest.raises(NetError, match=message):
        NetTrain(two_layers(), data, training_progress_reporting=spec, max_training_rounds=1)
    assert calls == [] and notebook.shown == [] and FakeBar.made == []


def test_panel_without_ipython_says_what_to_install(monkeypatch):
    monkeypatch.setattr(progress, "has_ipython", lambda: False)
    with pytest.raises(NetError, match=r'"Panel" shows its panel with IPython, which is not installed: pip install'):
        train("Panel")


def test_in_a_terminal_the_lines_are_as_before():
    """A script's stderr (not a terminal here): the same lines as before, and IPython never imported."""
    code = (
        "import sys, numpy as np, layers as L\n"
        "from netgraph import NetTrain\n"
        "x = np.linspace(-1, 1, 24).reshape(-1, 1)\n"
        "NetTrain(L.LinearLayer(1, input=1), (x, 2 * x), max_training_rounds=2, batch_size=8, random_seeding=1)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('IPython', 'ipywidgets', 'ipykernel')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    lines = out.stderr.splitlines()
    assert [re.sub(r"-?\d[\d.]*(e[+-]?\d+)?", "#", line) for line in lines] == [
        "round #: loss #",
        "round #: loss #",
        "training stopped (MaxTrainingRounds) after # rounds, # s",
    ]


def test_other_forms_in_a_notebook_keep_their_behaviour(notebook, tmp_path, capsys):
    train("Print", rounds=1)
    assert notebook.shown == [] and "round 1: loss" in capsys.readouterr().err
    train(("File", tmp_path / "log.csv"), rounds=1)
    train(None, rounds=1)
    assert notebook.shown == [] and capsys.readouterr().err == ""
    assert Reporter(None).panel is None  # what ranks other than 0 get under several processes


def test_a_resumed_run_continues_the_bar_part_way(notebook, tmp_path):
    train(None, rounds=2, training_progress_checkpointing=("Directory", tmp_path))
    train(("Panel", {"MinimumInterval": 0}), rounds=4, resume_from=tmp_path)
    (bar,) = FakeBar.made
    assert bar.total == 12 and bar.n == 12 and bar.descriptions[0] == "round 3/4"
    assert [repr(view).split(" · ")[0] for view in notebook.shown[:2]] == ["round 3", "round 4"]


def test_the_panel_is_a_display_object_ipython_renders():
    formatters = pytest.importorskip("IPython.core.formatters", reason="IPython is not installed")
    view = panel.PanelView("round 1 · round loss 0.5", panel.beside(Image.new("RGB", (720, 440), "white"), None))
    data, _ = formatters.DisplayFormatter().format(view)
    assert data["text/plain"] == "round 1 · round loss 0.5"
    assert data["image/png"].startswith(PNG) and "data:image/png;base64," in data["text/html"]


def test_the_notebook_bar_is_tqdms_notebook_form():
    pytest.importorskip("ipywidgets", reason="ipywidgets is not installed")
    notebook_tqdm = pytest.importorskip("tqdm.notebook")
    assert panel.notebook_bar() is notebook_tqdm.tqdm
