"""The layer protocol: what every layer (and every net) offers the graph machinery.

A layer's lifecycle, as in Keras:

1. ``__init__`` stores its configuration only (Wolfram's options in snake_case).
2. :meth:`Layer.shape_rule` states, without data, what port shapes follow from
   the known ones; the graph calls :meth:`Layer.refine` until nothing changes.
3. Once port shapes are known, :meth:`Layer.array_shapes` gives the shapes of
   its learnable arrays; they are created by :func:`netgraph.NetInitialize`
   (or given by the user, e.g. ``weights=w``).
4. :meth:`Layer.forward` computes on :class:`~netgraph.autograd.Tensor` values
   (each holding an ``xp`` array with a leading batch axis), fetching its
   arrays from the evaluation :class:`Context`.

Shapes are per example, without the batch axis: ``()`` is a scalar
("Real"), ``(8,)`` a vector, ``(1, 28, 28)`` an image. ``None`` means unknown.

This module is the ground floor of the house: it imports only the autograd
core below it. Walking a net (:func:`iter_layers`, :func:`iter_arrays`), the
one-line ``repr`` of a layer and the hooks of Jupyter's rich display, the
register of layer classes by name (which :mod:`netgraph.io` reads to rebuild
saved nets) and the documented size limits (:data:`LIMITS`, checked as layers
are built and initialized and as files are read) live here too. Three calls
reach upward on purpose, each a single import inside one method: ``net(data)``
runs :func:`netgraph.evaluate.evaluate`, ``net.save(path)`` runs
:func:`netgraph.io.save`, and Jupyter's display of a net (its drawing and
summary) runs :func:`netgraph.summary.display`; those modules build on this one.
"""

from __future__ import annotations

import contextlib
import copy
import math
import numbers
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .autograd import Tensor

Shape = tuple[int, ...]

#: Layer classes by name, filled by :meth:`Layer.__init_subclass__` as each class is defined.
LAYER_CLASSES: dict[str, type[Layer]] = {}


class NetError(ValueError):
    """A net was built, wired or called wrongly; the message says where and why."""


#: the files whose frames a warning skips to reach the user's code: netgraph's own, and contextlib's (the
#: decorators made with it, such as ``cpu_work``)
_INNER_FILES = (os.path.dirname(os.path.abspath(__file__)) + os.sep, os.path.abspath(contextlib.__file__))


def is_whole(value: Any) -> bool:
    """Whether an option's value is a whole number (Python's or NumPy's; True and False are not numbers here)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """Whether an option's value is a real number (Python's or NumPy's; True and False are not numbers here)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def brief(value: Any, width: int = 60, *, text_as_is: bool = False) -> str:
    """A value as an error message shows it: its ``repr`` (a string as it is, with ``text_as_is``), cut to
    ``width`` characters, since a mistaken option may be a large array.

    Example:
        >>> brief(list(range(100)), 20)
        '[0, 1, 2, 3, 4, 5...'
    """
    text = value if text_as_is and isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` pointed at the line of the user's code that called into netgraph (the first caller
    outside the package), wherever inside netgraph the warning is raised."""
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is the caller of this function
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_INNER_FILES):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, category, stacklevel=level)


class ShapeError(NetError):
    """Port shapes do not fit together."""


class LimitError(NetError):
    """A layer or net goes beyond one of the documented :data:`LIMITS`; ``limit`` names which."""

    def __init__(self, message: str, limit: str = "") -> None:
        super().__init__(message)
        self.limit = limit


#: Documented limits on what a net may declare, far above real nets, so that a mistyped size or a
#: crafted file fails at once with a clear message instead of asking for terabytes or hours.
#: Layers that go beyond them are refused when they are built or initialized, and net files
#: are refused by :func:`netgraph.load` before any array is read. Raise one for the whole
#: process (``netgraph.LIMITS["Parameters"] = 10**10``), or for one file with
#: ``netgraph.load(path, limits={"Parameters": 10**10})``.
LIMITS: dict[str, int] = {
    "Inputs": 4096,  # inputs of one layer (TotalLayer, CatenateLayer, ThreadingLayer...)
    "Elements": 2**31,  # elements of one port (per example) or of one learnable array
    "Parameters": 2 * 10**9,  # elements of all the learnable arrays of one net
    "Layers": 10_000,  # layers and nets described in a net file, nested ones included
    "HeaderBytes": 4 * 2**20,  # the JSON architecture stored in a net file
    "HeaderValues": 600_000,  # JSON values (lists, dicts, entries) in it: a real net has about 45 a layer
    "FileArrays": 100_000,  # arrays stored in a net file (the net's and a checkpoint's)
}

_LIMITS_IN_FORCE: ContextVar[dict[str, int] | None] = ContextVar("netgraph_limits", default=None)


def limit(name: str) -> int:
    """The limit ``name`` in force: :data:`LIMITS`, or the value given to the :func:`limits_in_force` block around."""
    return (_LIMITS_IN_FORCE.get() or LIMITS)[name]


@contextmanager
def limits_in_force(values: dict[str, int] | None) -> Iterator[dict[str, int]]:
    """A block in which ``values`` replace some of :data:`LIMITS` (checked: known names, positive ints).

    Example:
        >>> from layers import TotalLayer
        >>> with limits_in_force({"Inputs": 8000}):
        ...     len(TotalLayer(inputs=5000).input_ports)
        5000
    """
    if values is not None and not isinstance(values, dict):
        raise NetError(f"limits: expected a dict such as {{'Parameters': 10**10}}, got {values!r:.60}")
    values = dict(values or {})
    for name, value in values.items():
        if name not in LIMITS:
            raise NetError(f"limits: unknown limit {name!r}; the limits are {sorted(LIMITS)}")
        if not is_whole(value) or value < 1:
            raise NetError(f"limits: {name!r} must be a positive integer, got {value!r}")
    in_force = {**LIMITS, **{name: int(value) for name, value in values.items()}}
    token = _LIMITS_IN_FORCE.set(in_force)
    try:
        yield in_force
    finally:
        _LIMITS_IN_FORCE.reset(token)


def check_limit(name: str, value: int, what: str) -> None:
    """A :class:`LimitError` if ``value`` (of ``what``) is beyond the limit ``name``."""
    bound = limit(name)
    if value > bound:
        raise LimitError(f"{what}: {value:,} is beyond the limit {name} = {bound:,} (netgraph.LIMITS)", name)


def as_shape(spec: Any, what: str = "shape") -> Shape | None:
    """Turn a Wolfram shape spec (``n``, ``(n1, n2)``, ``"Real"``, None) into a tuple."""
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec in ("Real", "Scalar"):
            return ()
        raise NetError(f"{what}: unknown shape spec {spec!r} (use an int, a tuple of ints or 'Real')")
    if is_whole(spec):
        dims: Sequence[Any] = (int(spec),)
    elif isinstance(spec, (tuple, list, np.ndarray)):
        dims = tuple(spec)
    else:
        raise NetError(f"{what}: unknown shape spec {spec!r} (use an int, a tuple of ints or 'Real')")
    if not all(is_whole(d) and d >= 1 for d in dims):
        raise NetError(f"{what}: dimensions must be positive integers, got {spec!r}")
    return tuple(int(d) for d in dims)


def unify(a: Shape | None, b: Shape | None, where: str) -> Shape | None:
    """The shape both ``a`` and ``b`` describe, or a ShapeError naming ``where``."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    raise ShapeError(f"{where}: shapes {format_shape(a)} and {format_shape(b)} do not match")


def format_shape(shape: Shape | None) -> str:
    if shape is None:
        return "(unknown)"
    if shape == ():
        return "scalar"
    return "×".join(str(d) for d in shape)


@dataclass
class Context:
    """Everything one evaluation or training step needs besides the inputs.

    ``arrays`` maps ``(id(layer), name)`` to the tensor used for that array,
    so training can keep device copies and ask for their gradients.
    """

    xp: Any
    dtype: Any
    batch_size: int
    training: bool = False
    rng: Any = None
    arrays: dict[tuple[int, str], Tensor] = field(default_factory=dict)
    grad_arrays: set[tuple[int, str]] = field(default_factory=set)
    #: True in a training loop, which keeps ``arrays`` from step to step and writes them back at
    #: the end: layers then leave state updates (moving statistics) on the device
    arrays_persist: bool = False
    path: tuple = ()
    wanted: set[tuple] = field(default_factory=set)
    captured: dict[tuple, Tensor] = field(default_factory=dict)

    def array(self, layer: Layer, name: str) -> Tensor:
        """The tensor for ``layer``'s array ``name`` (created on first use)."""
        key = (id(layer), name)
        tensor = self.arrays.get(key)
        if tensor is None:
            value = layer.arrays.get(name)
            if value is None:
                raise NetError(f"{layer.describe()}: array {name!r} is not initialized; call NetInitialize(net)")
            tensor = Tensor(self.xp.asarray(value, dtype=self.dtype), key in self.grad_arrays)
            self.arrays[key] = tensor
        return tensor

    def has_array(self, layer: Layer, name: str) -> bool:
        return name in layer.arrays


class Layer:
    """Base class of every layer and net. Subclasses override the marked methods."""

    input_ports: tuple[str, ...] = ("Input",)
    output_ports: tuple[str, ...] = ("Output",)
    #: how NetInitialize fills each array: "weights", "zeros", "ones" or a number
    array_roles: dict[str, Any] = {}

    def __init_subclass__(cls, *, registered: bool = True, **kwargs: Any) -> None:
        """Enter a public layer class in :data:`LAYER_CLASSES`, so that saved nets can name it.

        Private helpers (``_Variadic``) and bases declared ``registered=False`` stay out. A
        class that takes a name already taken by another module's class does not replace it;
        a class redefined in its own module (a notebook cell run twice) does.
        """
        super().__init_subclass__(**kwargs)
        if not registered or cls.__name__.startswith("_"):
            return
        known = LAYER_CLASSES.get(cls.__name__)
        if known is None or known.__module__ == cls.__module__:
            LAYER_CLASSES[cls.__name__] = cls

    def __init__(self, *, input: Any = None, output: Any = None, **kwargs: Any) -> None:  # noqa: A002
        self.arrays: dict[str, np.ndarray | None] = {}
        self.port_shapes: dict[str, Shape | None] = {}
        self.learning_rate_multipliers: dict[str, float] = {}
        self.name: str | None = None  # set by the graph that holds it, for messages
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unknown options {sorted(kwargs)}")
        self._fixed_ports = {"Input": input, "Output": output}

    def _finish_init(self) -> None:
        """Apply the ``input=``/``output=`` options once the ports exist."""
        fixed = self._fixed_ports
        self.port_shapes = {p: None for p in (*self.input_ports, *self.output_ports)}
        known = {}
        if fixed.get("Input") is not None:
            known[self.input_ports[0] if self.input_ports else "Input"] = as_shape(fixed["Input"], "input")
        if fixed.get("Output") is not None:
            known["Output"] = as_shape(fixed["Output"], "output")
        self.refine(known)
        if all(s is not None for s in self.port_shapes.values()):
            self.check_arrays()

    # -- shapes ----------------------------------------------------------------
    def shape_rule(self, shapes: dict[str, Shape | None]) -> dict[str, Shape | None]:
        """Override: port shapes that follow from ``shapes`` (None where unknown)."""
        return {}

    def refine(self, known: dict[str, Shape | None]) -> bool:
        """Merge ``known`` port shapes, apply the shape rule; True if anything changed."""
        shapes = dict(self.port_shapes)
        for port, shape in known.items():
            if port not in shapes:
                raise NetError(f"{self.describe()} has no port {port!r}; its ports are {list(shapes)}")
            shapes[port] = unify(shapes[port], shape, f"{self.describe()} port {port!r}")
        self._check_elements(shapes)
        for _ in range(3):
            derived = self.shape_rule(shapes)
            new = {p: unify(shapes[p], s, f"{self.describe()} port {p!r}") for p, s in derived.items()}
            if all(shapes[p] == s for p, s in new.items()):
                break
            shapes.update(new)
            self._check_elements(new)
        changed = shapes != self.port_shapes
        self.port_shapes = shapes
        return changed

    def _check_elements(self, shapes: dict[str, Shape | None]) -> None:
        for port, shape in shapes.items():
            if shape is not None and shape != self.port_shapes.get(port):
                check_limit("Elements", math.prod(shape), f"{self.describe()} port {port!r} ({format_shape(shape)})")

    def array_shapes(self) -> dict[str, Shape]:
        """Override: shapes of the learnable arrays, once the port shapes are known."""
        return {}

    def fan(self, name: str) -> tuple[int, int]:
        """Override for weights: (fan_in, fan_out) used by Kaiming/Xavier initialization."""
        shape = self.array_shapes()[name]
        return (int(np.prod(shape[1:])) or 1, shape[0])

    # -- computing ---------------------------------------------------------------
    def forward(self, inputs: dict[str, Tensor], ctx: Context) -> dict[str, Tensor]:
        """Override: output tensors from input tensors (leading batch axis)."""
        raise NotImplementedError

    def epilogue(self) -> Any:
        """Override in an elementwise layer that a convolution, deconvolution or linear layer before it
        may apply in its own output pass (a :class:`netgraph.epilogue.Activation`): the graph then runs
        the two as one step, the producer's ``apply_with_epilogue(x, ctx, activation)``. None here."""
        return None

    # -- bookkeeping ------------------------------------------------------------------
    def describe(self) -> str:
        kind = type(self).__name__
        return f"{kind} {self.name!r}" if self.name is not None else kind

    def copy(self) -> Layer:
        """An independent copy: nets are values, as in the Wolfram Language."""
        clone = copy.copy(self)
        clone.arrays = {k: (None if v is None else v.copy()) for k, v in self.arrays.items()}
        clone.port_shapes = dict(self.port_shapes)
        clone.learning_rate_multipliers = dict(self.learning_rate_multipliers)
        return clone

    def array_association(self) -> dict[tuple, np.ndarray | None]:
        """Every array under this net as NumPy copies, keyed by path (Wolfram's "ArrayAssociation").

        Example:
            >>> from layers import LinearLayer
            >>> sorted(LinearLayer(2, input=3, weights=[[1, 2, 3], [4, 5, 6]]).array_association())
            [('Biases',), ('Weights',)]
        """
        return {
            path: (None if layer.arrays[name] is None else layer.arrays[name].copy())
            for path, layer, name in iter_arrays(self)
        }

    def children(self) -> Iterator[tuple[Any, Layer]]:
        """Sub-layers (for nets); a plain layer has none."""
        return iter(())

    def config(self) -> dict[str, Any]:
        """Override: the constructor arguments that rebuild this layer (arrays and
        port shapes are restored separately), for saving."""
        return {}

    def set_arrays(self, given: dict[str, Any]) -> None:
        """Store user-given arrays (``weights=``...): None removes, Automatic leaves unset."""
        for name, value in given.items():
            if value is None:
                self.arrays.pop(name, None)
            elif isinstance(value, str) and value == "Automatic":
                self.arrays[name] = None
            else:
                self.arrays[name] = np.array(value, dtype=np.float32)

    def check_arrays(self) -> None:
        """Check given arrays against the inferred shapes (called once shapes are known)."""
        expected = self.array_shapes()
        for name, value in self.arrays.items():
            if value is not None and name in expected and value.shape != expected[name]:
                raise ShapeError(
                    f"{self.describe()}: array {name!r} has shape {format_shape(value.shape)}, "
                    f"expected {format_shape(expected[name])}"
                )

    def save(self, path: Any) -> None:
        """Write this net to one file (JSON architecture + arrays, no pickle); see :func:`netgraph.load`."""
        from .io import save  # deliberate: the file format builds on this protocol

        save(self, path)

    def __call__(self, data: Any = None, spec: Any = None, **options: Any) -> Any:
        """Evaluate on one example or a batch; see :func:`netgraph.evaluate`."""
        from .evaluate import evaluate  # the evaluation API sits above the protocol

        return evaluate(self, data, spec, **options)

    # -- Jupyter's rich display: the drawing and a summary; a terminal keeps repr -------------------------
    def _display(self, formats: Any) -> dict[str, Any]:
        from .summary import display  # deliberate: drawing and summarising build on this protocol

        return display(self, formats)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Jupyter's display of a net: "text/html" (the drawing above the summary), "image/svg+xml" (or the
        "image/png" fallback without Graphviz) and "text/plain" (``repr``); see :func:`netgraph.summary.display`."""
        formats = {"text/plain", "text/html", "image/svg+xml", "image/png"}
        return self._display((formats & set(include or formats)) - set(exclude or ()))

    def _repr_html_(self) -> str | None:
        return self._display(("text/html",)).get("text/html")

    def _repr_svg_(self) -> str | None:
        return self._display(("image/svg+xml",)).get("image/svg+xml")

    def _repr_png_(self) -> bytes | None:
        return self._display(("image/png",)).get("image/png")

    def __repr__(self) -> str:
        """One line: the kind, its defining option (its ``__str__``, if it has one), and its port shapes."""
        kind = type(self).__name__
        if hasattr(self, "vertices"):
            return (
                f"{kind}({len(self.vertices)} layers, inputs {describe_ports(self, self.input_ports)}; "
                f"outputs {describe_ports(self, self.output_ports)})"
            )
        own = str(self) if type(self).__str__ not in (object.__str__, Layer.__str__) else ""
        if own:
            return f"{kind}({own})"
        return f"{kind}({describe_ports(self, self.input_ports) or '–'} → {describe_ports(self, self.output_ports)})"


class UnaryLayer(Layer, registered=False):
    """A layer with one "Input" and one "Output": implement ``output_shape`` and ``apply``."""

    def output_shape(self, input_shape: Shape) -> Shape | None:
        """Override: the output shape for a known input shape."""
        return input_shape

    def input_shape(self, output_shape: Shape) -> Shape | None:
        """Override when the input shape follows from the output shape."""
        return None

    def shape_rule(self, shapes: dict[str, Shape | None]) -> dict[str, Shape | None]:
        derived: dict[str, Shape | None] = {}
        if shapes["Input"] is not None:
            derived["Output"] = self.output_shape(shapes["Input"])
        elif shapes["Output"] is not None:
            derived["Input"] = self.input_shape(shapes["Output"])
        return {p: s for p, s in derived.items() if s is not None}

    def apply(self, x: Tensor, ctx: Context) -> Tensor:
        raise NotImplementedError

    def forward(self, inputs: dict[str, Tensor], ctx: Context) -> dict[str, Tensor]:
        return {"Output": self.apply(inputs["Input"], ctx)}


# --- walking a net -----------------------------------------------------------------------------


def iter_layers(net: Layer, prefix: tuple = ()) -> Iterator[tuple[tuple, Layer]]:
    """Every layer under ``net`` (nets included), with its path, parents first."""
    stack = [(prefix, net)]
    while stack:
        path, layer = stack.pop()
        yield path, layer
        stack.extend(reversed([(path + (k,), child) for k, child in layer.children()]))


def iter_arrays(net: Layer) -> Iterator[tuple[tuple, Layer, str]]:
    """(path + (name,), owning layer, name) for every array of every layer."""
    for path, layer in iter_layers(net):
        for name in layer.arrays:
            yield path + (name,), layer, name


def check_array_sizes(net: Layer, arrays: list[tuple[Layer, str, Shape]] | None = None) -> int:
    """The number of elements of ``arrays`` ((layer, name, shape); by default every array of ``net``
    whose layer knows its port shapes), after checking the limits "Elements" and "Parameters"."""
    if arrays is None:
        arrays = []
        for _, layer, name in iter_arrays(net):
            if all(s is not None for s in layer.port_shapes.values()):
                shape = layer.array_shapes().get(name)
                if shape is not None:
                    arrays.append((layer, name, shape))
    total = 0
    for layer, name, shape in arrays:
        size = math.prod(shape)
        check_limit("Elements", size, f"{layer.describe()} array {name!r} ({format_shape(shape)})")
        total += size
    check_limit("Parameters", total, f"{net.describe()}: the elements of its {len(arrays)} learnable arrays")
    return total


def describe_ports(layer: Layer, ports: tuple[str, ...]) -> str:
    """The shapes of ``ports``: bare for a lone "Input"/"Output", else ``name: shape`` pairs."""
    shapes = [format_shape(layer.port_shapes.get(p)) for p in ports]
    if len(ports) == 1 and ports[0] in ("Input", "Output"):
        return shapes[0]
    return ", ".join(f"{p}: {s}" for p, s in zip(ports, shapes))


def tree(net: Layer, indent: str = "") -> str:
    """``print(net)`` for nets: every vertex, nested nets indented."""
    lines = [indent + repr(net)]
    for key, child in net.children():
        inner = tree(child, indent + "    ").lstrip()
        lines.append(f"{indent}  {key}: {inner}")
    return "\n".join(lines)
