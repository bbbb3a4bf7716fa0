"""Optional timings by layer: where a forward and a backward pass spend their time.

Off by default. Inside ``with timings() as t:`` the graph machinery and the autograd engine
record, for every layer that is not itself a net (keyed by its path in the outermost net, as
:func:`netgraph.paths.iter_layers` gives it), and for every fused step of a plan (a producer and
the activation after it, run as one: :class:`netgraph.graph.FusedStep`, under the producer's path):

- ``t.forward[path]``: seconds in the layer's ``forward``;
- ``t.backward[path]``: seconds in the vector-Jacobian products of the primitives that the
  layer put on the tape (the engine's own work of adding cotangents is not in any layer);
- ``t.calls[path]`` and ``t.layers[path]``: how many forward calls, and the layer itself;
- ``t.phases``: ``"forward"`` (whole outermost ``NetGraph.forward`` calls, the graph's own
  bookkeeping included), ``"backward"`` (whole :func:`netgraph.autograd.backward` calls), and
  any phase a caller times with ``t.phase(name)``.

When timings are off, ``NetGraph.forward`` and ``backward`` each look at one module-level list
per call and do nothing else. The times are wall-clock seconds; on the GPU they are the times
to queue the kernels, not to run them, unless the caller synchronises.

The autograd engine knows nothing of this module: importing it installs :func:`active` as
autograd's backward timer (:func:`netgraph.autograd.set_backward_timer`).

Example:
    >>> import numpy as np
    >>> from netgraph import NetChain, NetInitialize, NetPortGradient, profile
    >>> from layers import LinearLayer
    >>> net = NetInitialize(NetChain([LinearLayer(4), "Ramp", LinearLayer(1)], input=3))
    >>> with profile.timings() as t:
    ...     _ = net(np.ones((5, 3)), NetPortGradient("Input"))
    >>> sorted(t.forward), sorted(t.backward), t.calls[(1,)]   # (1,): the linear layer and Ramp, fused
    ([(1,), (3,)], [(1,), (3,)], 1)
    >>> t.layers[(1,)]
    FusedStep(LinearLayer '1' + ElementwiseLayer '2')
    >>> sorted(t.phases)
    ['backward', 'forward']
    >>> profile.active() is None                      # off again
    True
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .autograd import recording_tape, set_backward_timer

_ACTIVE: list[Timings] = []


class Timings:
    """Seconds by layer path and by phase, filled while :func:`timings` is active."""

    def __init__(self) -> None:
        self.forward: dict[tuple, float] = {}
        self.backward: dict[tuple, float] = {}
        self.calls: dict[tuple, int] = {}
        self.layers: dict[tuple, Any] = {}
        self.phases: dict[str, float] = {}
        self._graph_depth = 0  # nested NetGraph.forward calls now running
        self._in_layer = False  # a layer's forward is being timed: do not time what it calls
        self._owners: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tape -> path per entry

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the seconds spent inside the ``with`` block to ``phases[name]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - start

    def graph_forward(self, run: Callable[[], Any]) -> Any:
        """Run one ``NetGraph.forward``; the outermost call counts as the "forward" phase."""
        if self._graph_depth:
            return run()
        self._graph_depth += 1
        try:
            with self.phase("forward"):
                return run()
        finally:
            self._graph_depth -= 1

    def run_layer(self, layer: Any, inputs: dict, ctx: Any) -> dict:
        """``layer.forward(inputs, ctx)``, timed under ``ctx.path``, its tape entries marked as its own."""
        tape = recording_tape()
        first = len(tape.entries) if tape is not None else 0
        path = ctx.path
        self._in_layer = True
        start = time.perf_counter()
        try:
            outputs = layer.forward(inputs, ctx)
        finally:
            elapsed = time.perf_counter() - start
            self._in_layer = False
        self.forward[path] = self.forward.get(path, 0.0) + elapsed
        self.calls[path] = self.calls.get(path, 0) + 1
        self.layers[path] = layer
        if tape is not None and len(tape.entries) > first:
            owners = self._owners.setdefault(tape, [])
            owners.extend([None] * (first - len(owners)))
            owners.extend([path] * (len(tape.entries) - first))
        return outputs

    def time_backward(self, tape: Any, propagate: Callable[[Any, list], dict]) -> dict:
        """One :func:`netgraph.autograd.backward` pass: the "backward" phase, each vjp timed for its layer."""
        with self.phase("backward"):
            return propagate(tape, self.timed_entries(tape))

    def timed_entries(self, tape: Any) -> list:
        """The tape's entries with each vjp wrapped so that its seconds go to the layer that recorded it."""
        owners = self._owners.pop(tape, [])

        def timed(vjp: Callable, path: tuple | None) -> Callable:
            def run(g: Any, needs: tuple) -> Any:
                start = time.perf_counter()
                result = vjp(g, needs)
                if path is not None:
                    self.backward[path] = self.backward.get(path, 0.0) + time.perf_counter() - start
                return result

            return run

        return [
            (timed(vjp, owners[i] if i < len(owners) else None), args, needs, out)
            for i, (vjp, args, needs, out) in enumerate(tape.entries)
        ]


def active() -> Timings | None:
    """The timings being taken, or None when they are off (or a layer's own forward is being timed)."""
    if not _ACTIVE or _ACTIVE[-1]._in_layer:
        return None
    return _ACTIVE[-1]


@contextmanager
def timings() -> Iterator[Timings]:
    """Record per-layer and per-phase times for the code inside the ``with`` block."""
    recorder = Timings()
    _ACTIVE.append(recorder)
    try:
        yield recorder
    finally:
        _ACTIVE.remove(recorder)


set_backward_timer(active)
