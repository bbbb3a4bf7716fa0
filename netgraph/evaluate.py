"""Applying a net to data: Wolfram's ``net[data, spec]`` in Python.

One example or a batch? An array of the port's shape is one example, and gives one example back; an
array with one more, leading, axis is a batch of examples, and gives a batch back (Wolfram's
``net[x]`` and ``net[{x1, x2, ...}]``). When a port's shape is not fixed, the array is read as one
example, as the Wolfram Language reads it, and its shape becomes the port's for that call: a
SummationLayer of a 1×1×3 array gives one number, and a 1×8×8 image through a convolution chain is
one image. When some ports are fixed, they decide for the open ones. ``batch=True`` reads the first
axis of every input as counting examples (a batch for a net whose shapes are not fixed), ``batch=False``
every input as one example; :func:`read_inputs` (and ``NetSummary(net, data)``) says how each input
was read, and a shape error on an open port says which reading it came from.

Example:
    >>> import numpy as np
    >>> from netgraph import NetPortGradient
    >>> from layers import LinearLayer
    >>> layer = LinearLayer(2, weights=[[1, 2], [3, 4]], biases=[0.5, -1])
    >>> layer(np.array([1.0, 1.0])).tolist()
    [3.5, 6.0]
    >>> layer(np.array([1.0, 1.0]), NetPortGradient("Input")).tolist()
    [4.0, 6.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .autograd import Tape, Tensor, backward
from .backend import DEVICES, PRECISIONS, cpu_work, get_dtype, get_xp, to_numpy
from .initialize import initialize_in_place
from .layer import Context, Layer, NetError, format_shape, is_whole
from .paths import inner_port, iter_arrays, split_array_path
from .ports import All, Automatic, NetPort, NetPortGradient


@cpu_work()  # the CPU settings of netgraph's passes, for this call only
def evaluate(
    net: Layer,
    data: Any = None,
    spec: Any = None,
    *,
    target_device: str = "CPU",
    working_precision: str = "Real32",
    evaluation_mode: str = "Test",
    random_seeding: int | None = None,
    batch_size: int | None = None,
    batch: bool | None = None,
) -> Any:
    """Evaluate ``net`` on one example or a batch.

    Args:
        data: an array for a single-input net, a dict keyed by input port (and
            by ``NetPortGradient(output)`` to force an output's gradient), or a
            list of arrays for a multi-input layer such as TotalLayer.
        spec: None (all outputs), an output name, ``All``, a ``NetPort`` for an
            internal value, a ``NetPortGradient`` for a gradient, or a list.
        target_device: "CPU", "GPU", ("GPU", n) or ("GPU", All) (one GPU when evaluating). working_precision:
            "Real32"/"Real64" (or NumPy float32/float64).
        evaluation_mode: "Test" (default) or "Train" (dropout and batch
            statistics on). random_seeding: a seed (an integer >= 0) for
            random layers, or None.
        batch_size: evaluate a large batch in chunks of this size (a
            positive integer), or None for one pass.
        batch: None (or Automatic): each array is one example or a batch by
            its port's shape, and one example when the port's shape is not
            fixed (the module docstring has the rule); True: the first axis
            of every input counts examples; False: every input is one example.

    Returns NumPy arrays: one array, or a dict keyed by port/spec. A single
    example in gives a single example out; a batch gives a batch.

    Every option, the data and each spec are checked before anything runs
    (or the net's missing arrays are filled): a bad one is a NetError naming
    it, the value given and what is accepted.
    """
    random_seeding = _check_options(target_device, working_precision, evaluation_mode, random_seeding, batch_size)
    reading = read_inputs(net, data, batch)
    net, inputs, forced, single = reading.net, reading.inputs, reading.forced, reading.single
    specs = spec if isinstance(spec, list) else [spec]
    for s in specs:
        _check_spec(net, s)
    _ensure_initialized(net)
    wants_grad = any(isinstance(s, NetPortGradient) for s in specs) or bool(forced)
    n = next(iter(inputs.values())).shape[0] if inputs else 1
    if batch_size and n > batch_size and not wants_grad and random_seeding is None:
        chunks = [
            _run(
                net,
                {p: v[i : i + batch_size] for p, v in inputs.items()},
                {},
                specs,
                False,
                target_device,
                working_precision,
                evaluation_mode,
                random_seeding,
            )
            for i in range(0, n, batch_size)
        ]
        results = [_concat([c[i] for c in chunks]) for i in range(len(specs))]
    else:
        results = _run(
            net, inputs, forced, specs, single, target_device, working_precision, evaluation_mode, random_seeding
        )
    if isinstance(spec, list):
        return dict(zip([_key(s) for s in specs], results))
    return results[0]


def _check_options(target_device, working_precision, evaluation_mode, random_seeding, batch_size) -> int | None:
    """Refuse a bad option before any work, naming it, the value given and what is accepted; the seed to use."""
    if isinstance(target_device, (tuple, list)):  # Wolfram's {"GPU", n}, or {"GPU", All}: one GPU in one process
        index = target_device[1] if len(target_device) == 2 else None
        device_ok = (
            len(target_device) == 2 and target_device[0] in DEVICES and (index is All or is_whole(index) and index >= 0)
        )
    else:
        device_ok = isinstance(target_device, str) and target_device in DEVICES
    if not device_ok:
        raise NetError(
            f'target_device must be "CPU", "GPU", ("GPU", n) with n a device number >= 0, or ("GPU", All); got '
            f"{target_device!r}"
        )
    if isinstance(working_precision, str):
        precision_ok = working_precision in PRECISIONS
    else:
        try:
            precision_ok = working_precision is not None and np.dtype(working_precision) in (np.float32, np.float64)
        except TypeError:
            precision_ok = False
    if not precision_ok:
        raise NetError(
            f'working_precision must be "Real32" or "Real64" (or NumPy float32/float64); got {working_precision!r}'
        )
    if not isinstance(evaluation_mode, str) or evaluation_mode not in ("Test", "Train"):
        raise NetError(f'evaluation_mode must be "Test" or "Train", got {evaluation_mode!r}')
    if random_seeding is Automatic:
        random_seeding = None
    if random_seeding is not None and (
        isinstance(random_seeding, bool) or not isinstance(random_seeding, (int, np.integer)) or random_seeding < 0
    ):
        raise NetError(f"random_seeding must be an integer >= 0, or None for fresh randomness; got {random_seeding!r}")
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1
    ):
        raise NetError(
            f"batch_size must be a positive integer (examples per chunk), or None for the whole batch at once; "
            f"got {batch_size!r}"
        )
    return None if random_seeding is None else int(random_seeding)


def _check_spec(net: Layer, spec: Any) -> None:
    """Refuse what the net cannot answer before it runs: an unknown port, inner port or gradient target."""
    if spec is None or spec is All:
        return
    if isinstance(spec, NetPort) and inner_port(net, spec) is not None:
        return  # a port inside the net, which inner_port found (or refused, naming the spec)
    if isinstance(spec, (str, NetPort)):
        port = spec if isinstance(spec, str) else spec.port
        if port not in net.output_ports:
            inputs = " (an input port: NetPortGradient gives the gradient there)" if port in net.input_ports else ""
            raise NetError(
                f"{net.describe()} has no output port {port!r}{inputs}; its outputs are {list(net.output_ports)}"
            )
    elif isinstance(spec, NetPortGradient):
        _gradient_targets(net, [spec])
    else:
        raise NetError(
            f"cannot evaluate {net.describe()} for {spec!r}: give a port name, All, a NetPort or a NetPortGradient"
        )


def _run(net, inputs, forced, specs, single, target_device, working_precision, evaluation_mode, random_seeding) -> list:
    xp = get_xp(target_device)
    dtype = get_dtype(working_precision)
    n = next(iter(inputs.values())).shape[0] if inputs else 1
    ctx = Context(
        xp=xp, dtype=dtype, batch_size=n, training=evaluation_mode == "Train", rng=xp.random.default_rng(random_seeding)
    )
    grad_specs = [s for s in specs if isinstance(s, NetPortGradient)]
    grad_inputs, grad_arrays = _gradient_targets(net, grad_specs)
    tensors = {p: Tensor(xp.asarray(v, dtype=dtype), p in grad_inputs) for p, v in inputs.items()}
    for layer, name in grad_arrays.values():
        ctx.grad_arrays.add((id(layer), name))
    for s in specs:
        if isinstance(s, NetPort) and inner_port(net, s) is not None:
            ctx.wanted.add(inner_port(net, s))
    if grad_specs or forced:
        with Tape() as tape:
            outputs = net.forward(tensors, ctx)
        seeds = {}
        for port, out in outputs.items():
            g = forced.get(port)
            seeds[out] = xp.ones(out.shape, dtype) if g is None else xp.asarray(g, dtype=dtype)
        cotangents = backward(tape, {t: g for t, g in seeds.items() if t.requires_grad})
    else:
        outputs = net.forward(tensors, ctx)
        cotangents = {}
    return [_answer(net, s, outputs, ctx, tensors, cotangents, grad_arrays, single) for s in specs]


def _answer(net, spec, outputs, ctx, tensors, cotangents, grad_arrays, single) -> Any:
    def example(tensor_or_array: Any) -> np.ndarray:  # per-example values lose the batch axis
        value = to_numpy(getattr(tensor_or_array, "data", tensor_or_array))
        return value[0] if single else value

    def grad_of(tensor: Tensor) -> np.ndarray:
        g = cotangents.get(id(tensor))
        return to_numpy(g) if g is not None else np.zeros(tensor.shape, tensor.dtype)

    if spec is None:
        values = {k: example(v) for k, v in outputs.items()}
        return next(iter(values.values())) if len(values) == 1 else values
    if spec is All:
        return {k: example(v) for k, v in outputs.items()}
    if isinstance(spec, str):
        if spec not in outputs:
            raise NetError(f"{net.describe()} has no output port {spec!r}; its outputs are {list(outputs)}")
        return example(outputs[spec])
    if isinstance(spec, NetPort):
        where = inner_port(net, spec)  # numbers and bare layers resolved to the vertices' own keys and ports
        if where is None:
            return _answer(net, spec.port, outputs, ctx, tensors, cotangents, grad_arrays, single)
        if where not in ctx.captured:
            raise NetError(f"{spec} is not an output port of a layer inside {net.describe()}")
        return example(ctx.captured[where])
    if isinstance(spec, NetPortGradient):
        if spec.target is All:
            answer = {NetPortGradient(p): example(grad_of(t)) for p, t in tensors.items()}
            for path, (layer, name) in grad_arrays.items():
                answer[NetPortGradient(path if len(path) > 1 else path[0])] = grad_of(ctx.array(layer, name))
            return answer
        if isinstance(spec.target, str) and spec.target in tensors:
            return example(grad_of(tensors[spec.target]))
        layer, name = grad_arrays[_array_path(net, spec.target)]
        return grad_of(ctx.array(layer, name))
    raise NetError(
        f"cannot evaluate {net.describe()} for {spec!r}: give a port name, All, a NetPort or a NetPortGradient"
    )


def _array_path(net: Layer, target: Any) -> tuple:
    return split_array_path(net, target)[2]


def _gradient_targets(net: Layer, grad_specs: list[NetPortGradient]) -> tuple[set, dict]:
    inputs: set[str] = set()
    arrays: dict[tuple, tuple[Layer, str]] = {}
    for s in grad_specs:
        if s.target is All:
            inputs.update(net.input_ports)
            arrays.update({path: (layer, name) for path, layer, name in iter_arrays(net)})
        elif isinstance(s.target, str) and s.target in net.input_ports:
            inputs.add(s.target)
        elif isinstance(s.target, str) and s.target in net.output_ports:
            raise NetError(f"NetPortGradient({s.target!r}) names an output; gradients are taken at inputs and arrays")
        else:
            try:
                layer, name, path = split_array_path(net, s.target)
            except NetError as err:
                raise NetError(_no_gradient_target(net, s, err)) from None
            arrays[path] = (layer, name)
    return inputs, arrays


def _no_gradient_target(net: Layer, spec: NetPortGradient, why: NetError, shown: int = 12) -> str:
    """What a NetPortGradient naming nothing can name instead: the input ports, then the arrays by path."""
    paths = [path if len(path) > 1 else path[0] for path, _, _ in iter_arrays(net)]
    listed = ", ".join(map(repr, paths[:shown])) + (f", ... ({len(paths) - shown} more)" if len(paths) > shown else "")
    reason = f" ({why})" if isinstance(spec.target, tuple) and len(spec.target) > 1 else ""
    return (
        f"{spec} names no input port and no array of {net.describe()}{reason}; gradients are taken at the "
        f"input ports {list(net.input_ports)} or at the arrays [{listed}]"
    )


def _with_input_count(net: Layer, data: Any) -> Layer:
    """A variadic layer called alone on a list (``TotalLayer()([a, b])``) takes that many inputs."""
    if getattr(net, "variadic", False) and isinstance(data, (list, tuple)) and len(data) != len(net.input_ports):
        net = net.copy()
        net.set_input_count(len(data))
    return net


@dataclass
class Reading:
    """How evaluation reads the data given to a net (:func:`read_inputs`)."""

    net: Layer  # the net, with the shapes of its open ports taken from the data (a copy when any was open)
    inputs: dict[str, Any]  # port -> its array, with a leading batch axis
    forced: dict[str, Any] = field(default_factory=dict)  # output -> the gradient forced there, batch axis first
    single: bool = True  # one example (the answers lose the batch axis again)
    notes: dict[str, str] = field(default_factory=dict)  # port -> how its array was read, in words


def read_inputs(net: Layer, data: Any, batch: Any = None) -> Reading:
    """Read ``data`` for ``net`` as evaluation does: each input as one example or a batch, the open ports'
    shapes taken from it. ``batch`` is None (by the ports' shapes; one example for an open port), True or False.

    Example:
        >>> from layers import SummationLayer
        >>> reading = read_inputs(SummationLayer(), np.ones((1, 1, 3)))
        >>> reading.single, reading.net.port_shapes["Input"], reading.notes["Input"]
        (True, (1, 1, 3), "1×1×3 array: one example (the port's shape is not fixed, so it takes the array's shape)")
        >>> read_inputs(SummationLayer(), np.ones((1, 1, 3)), batch=True).notes["Input"]
        "1×1×3 array: a batch of 1 example of shape 1×3 (the port's shape is not fixed, so it takes the examples')"
    """
    if batch is Automatic:
        batch = None
    if batch is not None and not isinstance(batch, (bool, np.bool_)):
        raise NetError(
            "batch must be None (one example or a batch by each port's shape), True (the first axis of every input "
            f"counts examples) or False (every input is one example); got {batch!r:.60}"
        )
    net = _with_input_count(net, data)
    ports = net.input_ports
    given, forced = _given(net, data)
    arrays = {
        p: v if hasattr(v, "__cuda_array_interface__") else _as_numbers(net, f"port {p!r}", v) for p, v in given.items()
    }
    fixed = {p: net.port_shapes[p] for p in ports if net.port_shapes.get(p) is not None}
    single = _single(net, arrays, fixed, batch)
    open_ports = {p: a for p, a in arrays.items() if p not in fixed}
    if open_ports:
        if not single:
            scalar = [p for p, a in open_ports.items() if a.ndim == 0]
            if scalar:
                raise NetError(
                    f"{net.describe()} port {scalar[0]!r}: a single number cannot be a batch ({_why_batch(batch)}); "
                    "give an array whose first axis counts the examples"
                )
        net = net.copy()
        shapes = {p: tuple(a.shape) if single else tuple(a.shape[1:]) for p, a in open_ports.items()}
        try:
            net.refine(shapes)
        except NetError as err:
            raise type(err)(_open_reading(open_ports, shapes, single, batch, err)) from None
    inputs: dict[str, Any] = {}
    notes: dict[str, str] = {}
    for port in ports:
        array = arrays[port]
        expected = net.port_shapes.get(port)
        fits = array.shape == expected if single else array.shape[1:] == expected and array.ndim == len(expected) + 1
        if not fits:
            raise NetError(_mismatch(net, port, array, expected, single, batch))
        inputs[port] = array[None] if single else array
        notes[port] = _note(array, expected, single, port not in fixed)
    sizes = {p: v.shape[0] for p, v in inputs.items()}
    if len(set(sizes.values())) > 1:
        raise NetError(f"{net.describe()}: input ports have different batch sizes {sizes}")
    n = next(iter(sizes.values()), 1)
    for port, g in forced.items():
        what = f"NetPortGradient({port!r})"
        g = _as_numbers(net, what, g)
        g = g[None] if single else g
        shape = net.port_shapes.get(port)
        if shape is not None and g.shape != (n, *shape):
            expected = format_shape(shape) if single else f"{n}×{format_shape(shape)}"
            raise NetError(
                f"{net.describe()} {what}: the gradient forced at output {port!r} must have the shape of that "
                f"output, {expected}; got {format_shape(g.shape[1:] if single else g.shape)}"
            )
        forced[port] = g
    return Reading(net, inputs, forced, single, notes)


def _given(net: Layer, data: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The values given for the input ports, and the gradients forced at outputs, keyed by port."""
    ports = net.input_ports
    forced: dict[str, Any] = {}
    if data is None:
        given: dict[str, Any] = {}
    elif isinstance(data, dict):
        given = {}
        for key, value in data.items():
            if isinstance(key, NetPortGradient):
                if key.target not in net.output_ports:
                    raise NetError(f"{key}: {net.describe()} has no output port {key.target!r} to force a gradient at")
                forced[key.target] = value
            else:
                given[key] = value
    elif isinstance(data, (list, tuple)) and len(ports) > 1:
        if len(data) != len(ports):
            raise NetError(f"{net.describe()} takes {len(ports)} inputs {list(ports)}; got a list of {len(data)}")
        given = dict(zip(ports, data))
    else:
        if len(ports) != 1:
            raise NetError(f"{net.describe()} has input ports {list(ports)}: give a dict keyed by port name")
        given = {ports[0]: data}
    missing = [p for p in ports if p not in given]
    unknown = [p for p in given if p not in ports]
    if missing or unknown:
        raise NetError(f"{net.describe()} takes inputs {list(ports)}; missing {missing}, unknown {unknown}")
    return given, forced


def _single(net: Layer, arrays: dict[str, Any], fixed: dict[str, tuple], batch: bool | None) -> bool:
    """One example (True) or a batch: as ``batch`` says, else as the ports of fixed shape say, else one example."""
    if batch is not None:
        return not batch
    readings: dict[str, bool] = {}
    for port, expected in fixed.items():
        array = arrays[port]
        if array.shape == expected:
            readings[port] = True
        elif array.shape[1:] == expected and array.ndim == len(expected) + 1:
            readings[port] = False
        else:
            raise NetError(_mismatch(net, port, array, expected, None, None))
    if len(set(readings.values())) > 1:
        kinds = {p: "one example" if one else "a batch" for p, one in readings.items()}
        raise NetError(
            f"{net.describe()}: mix of single examples and batches across ports {kinds}; give every port one "
            "example, or every port a batch with the same number of examples"
        )
    return next(iter(readings.values()), True)


def _why_batch(batch: bool | None) -> str:
    return "batch=True" if batch else "the ports of fixed shape are given batches"


def _open_reading(arrays: dict[str, Any], shapes: dict[str, tuple], single: bool, batch: bool | None, err) -> str:
    """A shape error on ports whose shapes were taken from the data, with the reading that gave those shapes."""
    parts = []
    for port, array in arrays.items():
        shape = format_shape(shapes[port])
        if single:
            how = f"its {format_shape(array.shape)} array was read as one example of shape {shape}"
            if batch is None and array.ndim >= 1:
                tail = format_shape(array.shape[1:])
                how += f" (for a batch of {array.shape[0]} examples of shape {tail}, pass batch=True or fix the shape)"
        else:
            how = (
                f"its {format_shape(array.shape)} array was read as a batch of {array.shape[0]} examples of shape "
                f"{shape} ({_why_batch(batch)})"
            )
        parts.append(f"port {port!r} has no fixed shape, so {how}")
    return f"{err}; {'; '.join(parts)}"


def _mismatch(net: Layer, port: str, array: Any, expected: tuple, single: bool | None, batch: bool | None) -> str:
    """The error for an array that does not fit its port, with the reading asked for."""
    got = format_shape(array.shape)
    if batch is None and single is None:
        return (
            f"{net.describe()} port {port!r} expects an array of shape {format_shape(expected)} "
            f"(one example) or N×{format_shape(expected)} (a batch); got {got}"
        )
    if single:
        reading = "batch=False: one example" if batch is False else "one example, as the other ports are given"
        return (
            f"{net.describe()} port {port!r} expects one example of shape {format_shape(expected)} ({reading}); "
            f"got {got}"
        )
    reading = "batch=True" if batch else "a batch, as the other ports are given"
    return f"{net.describe()} port {port!r} expects a batch N×{format_shape(expected)} ({reading}); got {got}"


def _note(array: Any, shape: tuple, single: bool, open_port: bool) -> str:
    """How one input was read, in words."""
    if single:
        note = f"{format_shape(array.shape)} array: one example"
        return note + (" (the port's shape is not fixed, so it takes the array's shape)" if open_port else "")
    n = array.shape[0]
    examples = f"{n} example{'s' if n != 1 else ''}"
    note = f"{format_shape(array.shape)} array: a batch of {examples} of shape {format_shape(shape)}"
    return note + (" (the port's shape is not fixed, so it takes the examples')" if open_port else "")


def _as_numbers(net: Layer, what: str, value: Any) -> np.ndarray:
    """The data for ``what`` (a port, or a forced gradient) as a float64 array.

    Text, other objects, ragged lists and complex numbers are refused.
    """
    try:
        array = np.asarray(value)
        if array.dtype.kind == "c":
            raise TypeError("complex numbers have no real-valued meaning here")
        if array.dtype.kind in "USV":
            raise TypeError("text is not numbers")
        return np.asarray(array, dtype=np.float64)  # an object array of numbers converts; anything else fails here
    except (TypeError, ValueError) as err:
        given = f"an array of {value.dtype}" if hasattr(value, "dtype") else f"{type(value).__name__} {value!r:.60}"
        raise NetError(f"{net.describe()} {what} takes an array of real numbers; got {given} ({err})") from None


def _ensure_initialized(net: Layer) -> None:
    """Arrays left as Automatic are filled as NetInitialize(net) would (seed 1234).

    NOTE: this fills ``net`` itself, once, so later evaluations reuse the
    arrays; the values are exactly those NetInitialize(net) would give.
    """
    if any(layer.arrays[name] is None for _, layer, name in iter_arrays(net)):
        initialize_in_place(net)


def _concat(parts: list) -> Any:
    if isinstance(parts[0], dict):
        return {k: _concat([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts, axis=0)


def _key(spec: Any) -> Any:
    return spec
