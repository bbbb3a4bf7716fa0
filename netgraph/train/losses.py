"""Loss specifications (Wolfram's LossFunction): the training net, with loss layers attached where the
specification asks for them, and the weight of each loss port in the objective.

Example:
    >>> from layers import LinearLayer, SoftmaxLayer
    >>> from netgraph import NetChain
    >>> train_net, losses = attach_losses(NetChain([LinearLayer(3), SoftmaxLayer()], input=2), Automatic)
    >>> list(train_net.input_ports), losses, type(train_net.vertices["Loss"]).__name__
    (['Input', 'Target'], [('Loss', 1.0)], 'CrossEntropyLossLayer')
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import layers

from ..graph import NetGraph
from ..layer import Layer, NetError
from ..ports import Automatic, NetPort, Scaled

LossPorts = list[tuple[str, float]]  # (output port of the training net, weight in the objective)


FORMS = (
    'Automatic, an output port ("Loss"), a loss layer, (port, weight), (port, loss layer), a list of these, or a '
    "dict {port: weight or loss layer}, with weights finite numbers or Scaled(r)"
)


def attach_losses(net: Layer, loss_function: Any) -> tuple[Layer, LossPorts]:
    """The training net and its (loss port, weight) pairs, following Wolfram's LossFunction.

    The training net is ``net`` itself when its outputs are the losses; otherwise a NetGraph with ``net``
    as vertex "net" and one loss layer per port it scores, whose "Target" ports are inputs of the graph.
    Every form and port name is checked here, before any data is read.
    """
    if loss_function is Automatic or loss_function is None:
        if "Loss" in net.output_ports:
            return net, [("Loss", 1.0)]
        loss_function = _automatic_loss(_last_layer(net))
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
        if isinstance(weight, Layer):
            attach.append((port, weight))
            ports.append((_loss_port(port), 1.0))
        else:
            ports.append((port, weight))
    if not attach:
        return net, ports
    return _with_loss_layers(net, attach), ports


def _loss_item(item: Any, spec: Any) -> tuple[str, float | Layer]:
    """One entry of a loss specification as (output port, weight or loss layer)."""
    if isinstance(item, str):
        return item, 1.0
    if isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str):
        port, weight = item
        if isinstance(weight, Layer):
            return port, weight
        ratio = weight.ratio if isinstance(weight, Scaled) else weight
        if isinstance(ratio, numbers.Real) and not isinstance(ratio, bool) and math.isfinite(ratio):
            return port, float(ratio)
        raise NetError(
            f"NetTrain: the weight of loss port {port!r} must be a finite number, Scaled(r) or a loss layer, "
            f"got {weight!r}"
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


def _last_layer(net: Layer) -> Layer:
    while isinstance(net, NetGraph) and len(net.outputs) == 1:
        key = next(iter(net.outputs.values()))[0]
        net = net.vertices[key]
    return net


def _loss_port(port: str) -> str:
    """The training net's port for the loss layer attached to output ``port``."""
    return f"{port}Loss" if port != "Output" else "Loss"


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
        wires += [
            (NetPort("net", port), NetPort(name, "Input")),
            (NetPort("Target" if port == "Output" else port), NetPort(name, "Target")),
            (NetPort(name, "Loss"), NetPort(name)),
        ]
    return NetGraph(vertices, wires)
