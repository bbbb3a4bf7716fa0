"""Applying a net to data: Wolfram's ``net[data, spec]`` in Python.

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

from typing import Any

import numpy as np

from .autograd import Tape, Tensor, backward
from .backend import DEVICES, PRECISIONS, cpu_work, get_dtype, get_xp, to_numpy
from .initialize import initialize_in_place
from .layer import Context, Layer, NetError, format_shape
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
) -> Any:
    """Evaluate ``net`` on one example or a batch.

    Args:
        data: an array for a single-input net, a dict keyed by input port (and
            by ``NetPortGradient(output)`` to force an output's gradient), or a
            list of arrays for a multi-input layer such as TotalLayer.
        spec: None (all outputs), an output name, ``All``, a ``NetPort`` for an
            internal value, a ``NetPortGradient`` for a gradient, or a list.
        target_device: "CPU", "GPU" or ("GPU", n). working_precision:
            "Real32"/"Real64" (or NumPy float32/float64).
        evaluation_mode: "Test" (default) or "Train" (dropout and batch
            statistics on). random_seeding: a seed (an integer >= 0) for
            random layers, or None.
        batch_size: evaluate a large batch in chunks of this size (a
            positive integer), or None for one pass.

    Returns NumPy arrays: one array, or a dict keyed by port/spec. A single
    example in gives a single example out; a batch gives a batch.

    Every option, the data and each spec are checked before anything runs
    (or the net's missing arrays are filled): a bad one is a NetError naming
    it, the value given and what is accepted.
    """
    random_seeding = _check_options(target_device, working_precision, evaluation_mode, random_seeding, batch_size)
    net = _with_input_count(net, data)
    net, inputs, forced, single = _collect_inputs(net, data)
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
    if isinstance(target_device, (tuple, list)):  # Wolfram's {"GPU", n}
        index = target_device[1] if len(target_device) == 2 else None
        device_ok = (
            len(target_device) == 2
            and target_device[0] in DEVICES
            and isinstance(index, (int, np.integer))
            and not isinstance(index, bool)
            and index >= 0
        )
    else:
        device_ok = isinstance(target_device, str) and target_device in DEVICES
    if not device_ok:
        raise NetError(
            f'target_device must be "CPU", "GPU" or ("GPU", n) with n a device number >= 0; got {target_device!r}'
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


def _collect_inputs(net: Layer, data: Any) -> tuple[Layer, dict, dict, bool]:
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
    arrays = {
        p: v if hasattr(v, "__cuda_array_interface__") else _as_numbers(net, f"port {p!r}", v) for p, v in given.items()
    }
    open_ports = {p: a for p, a in arrays.items() if net.port_shapes.get(p) is None}
    if open_ports:
        # NOTE: a port whose shape is not fixed takes it from the data: an array of
        # rank >= 2 is a batch along its first axis, a vector or number one example.
        net = net.copy()
        net.refine({p: tuple(a.shape[1:]) if a.ndim >= 2 else tuple(a.shape) for p, a in open_ports.items()})
    inputs: dict[str, np.ndarray] = {}
    single: bool | None = None
    for port in ports:
        array = arrays[port]
        expected = net.port_shapes.get(port)
        if array.shape == expected:
            is_single = True
        elif array.shape[1:] == expected and array.ndim == len(expected) + 1:
            is_single = False
        else:
            raise NetError(
                f"{net.describe()} port {port!r} expects an array of shape {format_shape(expected)} "
                f"(one example) or N×{format_shape(expected)} (a batch); got {format_shape(array.shape)}"
            )
        if single is not None and single != is_single:
            raise NetError(f"{net.describe()}: mix of single examples and batches across ports {list(ports)}")
        single = is_single
        inputs[port] = array[None] if is_single else array
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
    return net, inputs, forced, bool(single) if single is not None else True


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
