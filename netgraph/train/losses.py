"""Loss specifications (Wolfram's LossFunction): the training net, with loss layers attached where the
specification asks for them, and the weight of each loss port in the objective.

A loss layer attached to an output takes that output at its "Input"; its "Target" (when it has one)
becomes an input port of the training net, named "Target" for the output "Output" and after the output
otherwise ("Output1", "Mean", ...). The training data may key the targets by that port or, as the
Wolfram Language does, by the name of the output they are compared with (``{"Input": x, "Output": y}``):
:func:`target_ports` says which output each target port belongs to. A loss layer without a "Target"
(one input port) scores the output alone, and one with several outputs adds them all, each reported
as a loss port of its own.

Example:
    >>> from layers import LinearLayer, SoftmaxLayer
    >>> from netgraph import NetChain
    >>> train_net, losses = attach_losses(NetChain([LinearLayer(3), SoftmaxLayer()], input=2), Automatic)
    >>> list(train_net.input_ports), losses, type(train_net.vertices["Loss"]).__name__
    (['Input', 'Target'], [('Loss', 1.0)], 'CrossEntropyLossLayer')
"""

from __future__ import annotations

import math
from typing import Any

import layers

from ..graph import NetGraph
from ..layer import Layer, NetError, is_real
from ..ports import Automatic, NetPort, Scaled

LossPorts = list[tuple[str, float]]  # (output port of the training net, weight in the objective)

#: the loss layers, whose output Automatic takes as a loss unchanged
LOSS_LAYERS = (layers.MeanSquaredLossLayer, layers.MeanAbsoluteLossLayer, layers.CrossEntropyLossLayer)


FORMS = (
    'Automatic, an output port ("Loss"), a loss layer, (port, weight), (port, loss layer), (port, Automatic), a '
    "list of these, or a dict {port: weight, loss layer or Automatic}, with weights finite numbers or Scaled(r)"
)


def attach_losses(net: Layer, loss_function: Any) -> tuple[Layer, LossPorts]:
    """The training net and its (loss port, weight) pairs, following Wolfram's LossFunction.

    The training net is ``net`` itself when its outputs are the losses; otherwise a NetGraph with ``net``
    as vertex "net" and one loss layer per port it scores, whose "Target" ports are inputs of the graph.
    Automatic uses the output "Loss" when there is one, else attaches the automatic loss of each output
    (chosen by the layer feeding it); ``(port, Automatic)`` does so for one output.
    Every form and port name is checked here, before any data is read.
    """
    if loss_function is Automatic or loss_function is None:
        if "Loss" in net.output_ports:
            return net, [("Loss", 1.0)]
        loss_function = [(port, Automatic) for port in net.output_ports]
    if isinstance(loss_function, Layer):
        if len(net.output_ports) != 1:
            raise NetError(
                f"NetTrain: give loss_function=(output port, loss layer); the net has outputs {list(net.output_ports)}"
            )
        loss_function = [(net.output_ports[0], loss_function)]
    if isinstance(loss_function, str):
        loss_function = [loss_function]
    if isinstance(loss_function, dict):
        loss_function = list(loss_function.items())
    if isinstance(loss_function, tuple) and len(loss_function) == 2 and isinstance(loss_function[0], str):
        loss_function = [loss_function]
    if not isinstance(loss_function, (list, tuple)) or not loss_function:
        raise NetError(f"NetTrain: loss_function must be {FORMS}; got {loss_function!r}")
    ports: LossPorts = []
    attach: list[tuple[str, Layer]] = []
    for item in loss_function:
        port, weight = _loss_item(item, loss_function)
        if port not in net.output_ports:
            raise NetError(
                f"NetTrain: loss port {port!r} is not an output of the net; its outputs are {list(net.output_ports)}"
            )
        if weight is Automatic:
            feeding = _layer_feeding(net, port)
            weight = 1.0 if isinstance(feeding, LOSS_LAYERS) else _automatic_loss(feeding)
        if isinstance(weight, Layer):
            _check_loss_layer(port, weight)
            attach.append((port, weight))
            ports += [(name, 1.0) for name in _loss_ports(port, weight)]
        else:
            ports.append((port, weight))
    if not attach:
        return net, ports
    return _with_loss_layers(net, attach), ports


def target_ports(net: Layer, train_net: Layer) -> dict[str, str]:
    """The input ports of the training net ``train_net`` that feed an attached loss layer's "Target", each
    with the output of ``net`` it is compared with: the training data may key them by either name.

    Example:
        >>> from layers import LinearLayer
        >>> net = LinearLayer(1, input=1)
        >>> target_ports(net, attach_losses(net, Automatic)[0])
        {'Target': 'Output'}
    """
    if train_net is net or not isinstance(train_net, NetGraph):
        return {}
    scored = {key: port for (source, port), (key, inner) in train_net.edges if source == "net" and inner == "Input"}
    return {
        port: scored[key]
        for (source, port), (key, inner) in train_net.edges
        if source is None and key in scored and inner == "Target"
    }


def _loss_item(item: Any, spec: Any) -> tuple[str, float | Layer]:
    """One entry of a loss specification as (output port, weight or loss layer)."""
    if isinstance(item, str):
        return item, 1.0
    if isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str):
        port, weight = item
        if isinstance(weight, Layer) or weight is Automatic:
            return port, weight
        ratio = weight.ratio if isinstance(weight, Scaled) else weight
        if is_real(ratio) and math.isfinite(ratio):
            return port, float(ratio)
        raise NetError(
            f"NetTrain: the weight of loss port {port!r} must be a finite number, Scaled(r), a loss layer or "
            f"Automatic, got {weight!r}"
        )
    raise NetError(f"NetTrain: loss_function must be {FORMS}; got {item!r} in {spec!r}")


def index_targets(net: Layer) -> dict[str, int | None]:
    """The input ports of ``net`` that feed the "Target" of an "Index" CrossEntropyLossLayer, each with its
    number of classes (None while not known): their data must be class numbers 1..n.

    Example:
        >>> from layers import LinearLayer, SoftmaxLayer
        >>> from netgraph import NetChain
        >>> index_targets(attach_losses(NetChain([LinearLayer(3), SoftmaxLayer()], input=2), Automatic)[0])
        {'Target': 3}
    """
    if isinstance(net, layers.CrossEntropyLossLayer):
        shape = net.port_shapes.get("Input")
        return {"Target": shape[-1] if shape else None} if net.kind == "Index" else {}
    found: dict[str, int | None] = {}
    if isinstance(net, NetGraph):
        for (source, port), (key, inner_port) in net.edges:
            if source is None:
                inner = index_targets(net.vertices[key])
                if inner_port in inner:
                    known = [n for n in (found.get(port), inner[inner_port]) if n is not None]
                    found[port] = min(known) if known else None
    return found


def strip_losses(trained: Layer, original: Layer, train_net: Layer) -> Layer:
    """The user's net (without attached loss layers) from ``trained``, a trained copy of ``train_net``."""
    if train_net is original:
        return trained
    return trained.vertices["net"]


def _automatic_loss(last: Layer) -> Layer:
    """Wolfram's automatic loss for a net that ends in ``last``."""
    if isinstance(last, layers.SoftmaxLayer):
        return layers.CrossEntropyLossLayer("Index")
    if getattr(last, "label", None) in ("LogisticSigmoid", "Sigmoid"):
        return layers.CrossEntropyLossLayer("Binary")
    return layers.MeanSquaredLossLayer()


def _layer_feeding(net: Layer, port: str) -> Layer:
    """The innermost layer whose output is the output ``port`` of ``net``."""
    while isinstance(net, NetGraph) and port in net.outputs:
        key, port = net.outputs[port]
        net = net.vertices[key]
    return net


def _loss_port(port: str) -> str:
    """The training net's vertex (and loss port) for the loss layer attached to output ``port``."""
    return f"{port}Loss" if port != "Output" else "Loss"


def _loss_ports(port: str, loss: Layer) -> list[str]:
    """The training net's loss ports for ``loss`` attached to output ``port``: one for each of its outputs."""
    name = _loss_port(port)
    outputs = loss.output_ports
    return [name] if len(outputs) == 1 else [f"{name}{out}" for out in outputs]


def _target_port(port: str) -> str:
    """The training net's input port for the targets of output ``port``."""
    return "Target" if port == "Output" else port


def _check_loss_layer(port: str, loss: Layer) -> None:
    """A loss layer takes the output at "Input" and, optionally, the targets at "Target"."""
    extra = [p for p in loss.input_ports if p not in ("Input", "Target")]
    if "Input" not in loss.input_ports or extra or not loss.output_ports:
        raise NetError(
            f'NetTrain: the loss layer for output {port!r} must take the output at "Input" and, optionally, the '
            f'targets at "Target", and give a loss; {loss.describe()} has inputs {list(loss.input_ports)} and '
            f"outputs {list(loss.output_ports)}"
        )


def _with_loss_layers(net: Layer, attach: list[tuple[str, Layer]]) -> NetGraph:
    """``net`` as vertex "net" of a graph that feeds the outputs in ``attach`` to their loss layers."""
    vertices: dict[str, Layer] = {"net": net}
    wires: list[tuple] = [(NetPort(p), NetPort("net", p)) for p in net.input_ports]
    for port in net.output_ports:
        if port not in [a for a, _ in attach]:
            wires.append((NetPort("net", port), NetPort(port)))
    for port, loss in attach:
        name = _loss_port(port)
        vertices[name] = loss
        wires.append((NetPort("net", port), NetPort(name, "Input")))
        if "Target" in loss.input_ports:
            wires.append((NetPort(_target_port(port)), NetPort(name, "Target")))
        for out, loss_port in zip(loss.output_ports, _loss_ports(port, loss)):
            wires.append((NetPort(name, out), NetPort(loss_port)))
    return NetGraph(vertices, wires)
