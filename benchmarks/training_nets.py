"""The nets that the training benchmarks train, in netgraph and as PyTorch twins, with their data.

Shared by ``train_speed.py`` and ``vae_convergence.py`` (run from this folder as scripts, which puts
it on the import path). netgraph is imported here, PyTorch only inside the functions that build or
run the twins, so a process that never calls them never loads it.

The nets (each has the output ports "Loss", the reconstruction term per image, and "KL"):

- ``seed001``: the seed-001 VAE of ``examples/mnist_vae.py`` (its ``build_vae``), 1×28×28 in, latent
  8, "Loss" = 784 × mean squared error; ADAM 5e-4.
- ``mlp``: the VAE of pytorch/examples (``vae/main.py``): 784 → 400 → ReLU → μ, log σ² (20 each);
  20 → 400 → ReLU → 784 → sigmoid; "Loss" = binary cross-entropy summed over the pixels; ADAM 1e-3.
- ``augment``: the seed-004 VAE of ``examples/augment_vae.py`` (its ``build_vae``), 3×64×64 in,
  latent 512, about 27 million parameters, "Loss" = 12,288 × mean squared error; ADAM 1e-4, the rate
  of the Keras schedule the example cites (at its demo rate, 5e-4, the loss of this net jumps by
  orders of magnitude within ten batches from some starting points, in both frameworks alike).

Each net has its batch sizes on the CPU and, larger, on a GPU (``NetSpec.batches_on``). The training images
are Fashion-MNIST's, or made-up pictures of the same shapes (:func:`synthetic_images`) where the environment
variable TRAIN_SPEED_DATA is "synthetic".

Both frameworks minimise Σ over the loss ports of the batch mean of the per-image term, which is
what NetTrain does with ``loss_function=["Loss", "KL"]`` (pytorch/examples sums over the batch
instead; ADAM hardly sees the difference of scale). The twins copy netgraph's arrays, so both start
from the same weights; batch normalisation uses netgraph's ε = 0.001 and momentum 0.9 (PyTorch's
momentum 0.1), and ADAM netgraph's ε = 1e-5 (the Wolfram default; PyTorch's is 1e-8). Each framework
keeps its own form of ADAM: netgraph folds the bias correction into the step size, as MXNet does,
which makes its ε weigh 1/√(1 - β2^t) times more than PyTorch's (3 times at step 100, 1.3 at step 1000).
"""

from __future__ import annotations

import functools
import math
import os
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DATA_VARIABLE = "TRAIN_SPEED_DATA"  # "synthetic": made-up pictures in place of Fashion-MNIST (see training_images)
ADAM_EPSILON = 1e-5  # netgraph's (Wolfram's) default, given to torch.optim.Adam too


@dataclass(frozen=True)
class NetSpec:
    """What a benchmark needs to know about one of the nets."""

    name: str
    title: str
    batch_sizes: tuple[int, ...]
    learning_rate: float
    max_images: int  # training images held in memory at most (rounds repeat them, reshuffled)
    gpu_batch_sizes: tuple[int, ...] = ()  # on a GPU: the CPU's and larger ones, which a GPU needs to be busy

    def batches_on(self, device: str) -> tuple[int, ...]:
        """The batch sizes timed on ``device`` ("CPU" or "GPU")."""
        return (self.gpu_batch_sizes or self.batch_sizes) if device == "GPU" else self.batch_sizes


SPECS = {
    "seed001": NetSpec(
        "seed001",
        "seed-001 conv VAE (examples/mnist_vae.py), 1×28×28, latent 8",
        (32, 128),
        5e-4,
        60000,
        gpu_batch_sizes=(32, 128, 512),
    ),
    "mlp": NetSpec(
        "mlp", "MLP VAE of pytorch/examples, 784-400-20, BCE + KL", (128,), 1e-3, 60000, gpu_batch_sizes=(128, 512)
    ),
    "augment": NetSpec(
        "augment",
        "seed-004 conv VAE (examples/augment_vae.py), 3×64×64, latent 512",
        (32,),
        1e-4,
        2048,
        gpu_batch_sizes=(32, 128),
    ),
}


# --- the nets in netgraph --------------------------------------------------------------------------------


def build_mlp_vae() -> Any:
    """The pytorch/examples VAE as a NetGraph: fc1 → ReLU → (μ, log σ²), z = μ + e^(log σ²/2)·ε,
    fc3 → ReLU → fc4 → sigmoid; "Loss" = 784 × mean binary cross-entropy, "KL" = -½ Σ (1 + log σ² - μ² - σ²)."""
    from layers import (
        CrossEntropyLossLayer,
        ElementwiseLayer,
        LinearLayer,
        RandomArrayLayer,
        SummationLayer,
        ThreadingLayer,
    )
    from netgraph import NetChain, NetGraph, NetPort, NormalDistribution, exp

    return NetGraph(
        {
            "enc": NetChain([LinearLayer(400), "Ramp"]),
            "mu": LinearLayer(20),
            "logvar": LinearLayer(20),
            "eps": RandomArrayLayer(NormalDistribution(0, 1), output=20),
            "z": ThreadingLayer(lambda m, lv, e: m + exp(0.5 * lv) * e),
            "dec": NetChain([LinearLayer(400), "Ramp", LinearLayer(784), "LogisticSigmoid"]),
            "bce": CrossEntropyLossLayer("Binary"),
            "sum": ElementwiseLayer(lambda x: 784 * x),
            "kl": ThreadingLayer(lambda m, lv: -0.5 * (1 + lv - m**2 - exp(lv))),
            "klsum": SummationLayer(),
        },
        [
            (NetPort("Input"), "enc", "mu"),
            ("enc", "logvar"),
            (["mu", "logvar", "eps"], "z", "dec", NetPort("bce", "Input")),
            (NetPort("Input"), NetPort("bce", "Target")),
            ("bce", "sum", NetPort("Loss")),
            (["mu", "logvar"], "kl", "klsum", NetPort("KL")),
        ],
        input=784,
    )


def build_netgraph(name: str, seed: int = 1) -> Any:
    """The net ``name`` in netgraph, initialized with ``seed``."""
    from netgraph import NetInitialize
    from netgraph.cli import load_script  # the examples' nets, loaded as the tests load them

    if name == "seed001":
        net = load_script(EXAMPLES / "mnist_vae.py", "example_mnist_vae").build_vae()
    elif name == "mlp":
        net = build_mlp_vae()
    elif name == "augment":
        net = load_script(EXAMPLES / "augment_vae.py", "example_augment_vae").build_vae()
    else:
        raise ValueError(f"unknown net {name!r}; the nets are {sorted(SPECS)}")
    return NetInitialize(net, random_seeding=seed)


def parameter_count(net: Any) -> int:
    """Learnable numbers (batch-norm moving statistics excluded)."""
    from netgraph.paths import iter_arrays

    return sum(
        int(np.prod(layer.arrays[a].shape))
        for _, layer, a in iter_arrays(net)
        if a not in getattr(layer, "state_arrays", ())
    )


# --- data and batch order ------------------------------------------------------------------------------


def training_images(name: str, count: int, kind: str = "train") -> np.ndarray:
    """The first ``count`` Fashion-MNIST images in the net's input form, float32 in [0, 1]; with the
    environment variable TRAIN_SPEED_DATA=synthetic, :func:`synthetic_images` instead (for a machine
    without Fashion-MNIST and without network access; the worker processes inherit the variable)."""
    from netgraph.datasets import fashion_mnist, load_images, to_float

    if os.environ.get(DATA_VARIABLE) == "synthetic":
        return synthetic_images(name, count, seed=0 if kind == "train" else 1)
    if name == "augment":
        return to_float(load_images(None, 64, color_space="RGB", kind=kind, limit=count).images)
    images, _ = fashion_mnist(kind=kind)
    images = to_float(images[:count])
    return images.reshape(len(images), 784) if name == "mlp" else images[:, None]


def synthetic_images(name: str, count: int, seed: int = 0) -> np.ndarray:
    """``count`` made-up pictures in the net's input form, float32 in [0, 1], a pure function of the seed:
    a bright rectangle of random place, size and brightness (per channel) on a dim noisy background.

    Example:
        >>> images = synthetic_images("seed001", 3)
        >>> images.shape, images.dtype.name, bool(images.min() >= 0 and images.max() <= 1)
        ((3, 1, 28, 28), 'float32', True)
        >>> bool((images == synthetic_images("seed001", 3)).all()), synthetic_images("mlp", 2).shape
        (True, (2, 784))
    """
    channels, side = (3, 64) if name == "augment" else (1, 28)
    rng = np.random.default_rng(seed)
    corners = rng.integers(0, side // 2, size=(count, 2, 1, 1))
    sizes = rng.integers(side // 4, side // 2, size=(count, 2, 1, 1))
    rows, columns = np.arange(side)[:, None], np.arange(side)[None, :]
    inside = (
        (rows >= corners[:, 0]) & (rows < corners[:, 0] + sizes[:, 0])
        & (columns >= corners[:, 1]) & (columns < corners[:, 1] + sizes[:, 1])
    )  # fmt: skip
    brightness = rng.uniform(0.5, 1.0, size=(count, channels, 1, 1)).astype(np.float32)
    images = rng.uniform(0.0, 0.1, size=(count, channels, side, side)).astype(np.float32)
    images = np.where(inside[:, None], brightness, images)
    return images.reshape(count, side * side) if name == "mlp" else images


def batch_order(n: int, batch: int, steps: int, seed: int) -> list[np.ndarray]:
    """The example indices of each of ``steps`` batches, in NetTrain's order: with no validation set,
    each round is ``np.random.default_rng(seed).permutation(n)`` (the generator carried over from
    round to round) cut into batches, the last one shorter when ``batch`` does not divide ``n``."""
    rng, batches, per_round = np.random.default_rng(seed), [], math.ceil(n / batch)
    while len(batches) < steps:
        order = rng.permutation(n)
        batches += [order[i * batch : (i + 1) * batch] for i in range(per_round)]
    return batches[:steps]


def plan_data(spec: NetSpec, batch: int, steps: int) -> tuple[int, int]:
    """(images to hold, rounds of NetTrain) for ``steps`` batches of ``batch``."""
    n = min(steps * batch, max(batch, spec.max_images // batch * batch))
    return n, math.ceil(steps * batch / n)


# --- the training run in netgraph ---------------------------------------------------------------------------


def netgraph_fit(
    net: Any, images: np.ndarray, spec: NetSpec, batch: int, steps: int, rounds: int, seed: int, **extra: Any
) -> Any:
    """NetTrain on ``images`` for exactly ``steps`` batches; returns NetTrain's "All" results."""
    from netgraph import NetTrain

    stop = None
    if rounds * math.ceil(len(images) / batch) > steps:
        stop = ((lambda progress: "StopTraining"), {"Interval": ("Batches", steps)})
    return NetTrain(
        net,
        {"Input": images},
        "All",
        loss_function=["Loss", "KL"],
        method=("ADAM", {"learning_rate": spec.learning_rate}),
        batch_size=batch,
        max_training_rounds=rounds,
        training_progress_reporting=None,
        training_progress_function=extra.pop("training_progress_function", stop),
        random_seeding=seed,
        **extra,
    )


def check_netgraph_order(
    net: Any, images: np.ndarray, spec: NetSpec, batch: int, seed: int, count: int = 3, **extra: Any
) -> bool:
    """Trains ``count`` batches and checks that NetTrain fed the net the batches :func:`batch_order` lists;
    ``extra`` goes to NetTrain (``target_device="GPU"``: the batches are read back from the device)."""
    from netgraph import NetGraph
    from netgraph.backend import to_numpy

    seen: list[np.ndarray] = []
    forward = NetGraph.forward

    def recording(self, inputs, ctx):
        if ctx.training and not ctx.path and "Input" in inputs:
            seen.append(np.array(to_numpy(inputs["Input"].data)))
        return forward(self, inputs, ctx)

    n = min(len(images), count * batch)
    NetGraph.forward = recording
    try:
        netgraph_fit(net, images[:n], spec, batch, count, math.ceil(count * batch / n), seed, **extra)
    finally:
        NetGraph.forward = forward
    expected = [images[:n][index] for index in batch_order(n, batch, count, seed)]
    return len(seen) == count and all(np.array_equal(a, b) for a, b in zip(seen, expected))


# --- FLOPs ------------------------------------------------------------------------------------------------


def step_flops(net: Any, batch: int) -> int:
    """Floating-point operations of the matrix products of one training step: 2 per multiply-add of
    every convolution, deconvolution and linear layer, forward, weight gradient and input gradient
    (none for a layer fed by the data itself). Elementwise work, normalisation and the optimiser are
    not counted."""
    from layers import ConvolutionLayer, DeconvolutionLayer, LinearLayer
    from netgraph import NetGraph

    total = 0

    def walk(graph: Any, data_ports: set[str]) -> None:
        nonlocal total
        for key, sources, _ in graph.plan:
            layer = graph.vertices[key]
            fed = {port for port, src in sources.items() if src[0] is None and src[1] in data_ports}
            if isinstance(layer, NetGraph):
                walk(layer, fed)
                continue
            weights = layer.arrays.get("Weights")
            if weights is None or not isinstance(layer, (ConvolutionLayer, DeconvolutionLayer, LinearLayer)):
                continue
            macs = int(np.prod(weights.shape))
            if isinstance(layer, ConvolutionLayer):
                macs *= int(np.prod(layer.port_shapes["Output"][1:]))
            elif isinstance(layer, DeconvolutionLayer):
                macs *= int(np.prod(layer.port_shapes["Input"][1:]))
            total += 2 * macs * (2 if fed else 3)

    walk(net, {"Input"})
    return total * batch


# --- worker processes ----------------------------------------------------------------------------------------


def serving(connection: Any) -> Any:
    """``serve(f, *args)`` sends ``f(*args)`` down ``connection``, or the exception it raised."""

    def serve(function: Any, *args: Any) -> None:
        try:
            result = function(*args)
        except Exception as error:  # the parent re-raises it (see answer)
            result = error
        connection.send(result)

    return serve


def answer(connection: Any) -> Any:
    """What a worker sent; an exception it sent is raised here."""
    result = connection.recv()
    if isinstance(result, Exception):
        raise result
    return result


def _run_and_send(connection: Any, function: Any, args: tuple) -> None:
    serving(connection)(function, *args)
    connection.close()


def run_in_process(function: Any, *args: Any) -> Any:
    """``function(*args)`` in a fresh interpreter (spawned: nothing of this process's imports), its result
    or its exception brought back; ``function`` must be importable (a module-level function)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_run_and_send, args=(child, function, args), daemon=True)
    process.start()
    try:
        return answer(parent)
    finally:
        process.join()


# --- memory ----------------------------------------------------------------------------------------------


def _status(field: str) -> float | None:
    """A "kB" line of /proc/self/status in MB, or None where there is no such file."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Start the peak resident size (VmHWM) afresh from now (Linux); False where that cannot be done."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB: VmHWM, else ru_maxrss."""
    peak = _status("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float | None:
    return _status("VmRSS")


# --- the PyTorch twins ---------------------------------------------------------------------------------


def torch_chain(chain: Any) -> Any:
    """A ``torch.nn.Sequential`` computing the netgraph NetChain ``chain``, its arrays copied."""
    import torch
    from torch import nn

    from layers import (
        BatchNormalizationLayer,
        ConvolutionLayer,
        DeconvolutionLayer,
        ElementwiseLayer,
        FlattenLayer,
        LinearLayer,
        ReshapeLayer,
    )

    activations = {"Ramp": nn.ReLU, "LogisticSigmoid": nn.Sigmoid, "SELU": nn.SELU, "Tanh": nn.Tanh}
    for slope in (0.01, 0.02, 0.1, 0.2):  # ("LeakyRamp", slope) prints as an If expression
        activations[str(ElementwiseLayer(("LeakyRamp", slope)))] = lambda s=slope: nn.LeakyReLU(s)

    def copy(module: Any, layer: Any, names: dict[str, str]) -> Any:
        with torch.no_grad():
            for attribute, array in names.items():
                if array in layer.arrays:
                    getattr(module, attribute).copy_(torch.from_numpy(np.asarray(layer.arrays[array], np.float32)))
        return module

    modules = []
    for layer in chain.vertices.values():
        if isinstance(layer, (ConvolutionLayer, DeconvolutionLayer)):
            w = layer.arrays["Weights"]
            window = layer._window(layer.port_shapes["Input"][1:])
            assert window.dilation == (1, 1) and len(window.kernel) == 2, "2-D, undilated filters only"
            padded_conv, cropped_deconv, _ = _torch_module_classes()
            if isinstance(layer, ConvolutionLayer):
                module = padded_conv(w.shape[1] * layer.channel_groups, layer.n, window, layer.channel_groups)
            else:
                module = cropped_deconv(w.shape[0], layer.n, window, layer.channel_groups)
            copy(module.conv, layer, {"weight": "Weights", "bias": "Biases"})
        elif isinstance(layer, LinearLayer):
            w = layer.arrays["Weights"]
            module = copy(nn.Linear(w.shape[1], w.shape[0]), layer, {"weight": "Weights", "bias": "Biases"})
        elif isinstance(layer, BatchNormalizationLayer):
            channels = layer.port_shapes["Input"][0]
            cls = nn.BatchNorm1d if len(layer.port_shapes["Input"]) == 1 else nn.BatchNorm2d
            module = cls(channels, eps=layer.epsilon, momentum=1 - layer.momentum)
            names = {
                "weight": "Scaling",
                "bias": "Biases",
                "running_mean": "MovingMean",
                "running_var": "MovingVariance",
            }
            module = copy(module, layer, names)
        elif isinstance(layer, FlattenLayer):
            module = nn.Flatten()
        elif isinstance(layer, ReshapeLayer):
            module = nn.Unflatten(1, layer.port_shapes["Output"])
        elif isinstance(layer, ElementwiseLayer) and str(layer) in activations:
            module = activations[str(layer)]()
        else:
            raise ValueError(f"no PyTorch module for {layer.describe()} ({layer})")
        modules.append(module)
    return nn.Sequential(*modules)


@functools.cache
def _torch_module_classes() -> tuple[type, type, type]:
    """The twin module classes, defined when PyTorch is first needed (this file must load without it)."""
    import torch
    from torch import nn
    from torch.nn import functional as F  # noqa: N812 - the usual name

    class PaddedConv(nn.Module):
        """Conv2d with netgraph's padding, which may differ before and after ("Same" at stride 2)."""

        def __init__(self, c_in: int, c_out: int, window: Any, groups: int) -> None:
            super().__init__()
            (t, b), (left, r) = window.pads
            symmetric = t == b and left == r
            self.pad = None if symmetric else (left, r, t, b)
            padding = (t, left) if symmetric else 0
            self.conv = nn.Conv2d(c_in, c_out, window.kernel, stride=window.stride, padding=padding, groups=groups)

        def forward(self, x: Any) -> Any:
            return self.conv(x if self.pad is None else F.pad(x, self.pad))

    class CroppedDeconv(nn.Module):
        """ConvTranspose2d cropping netgraph's amounts, which may differ before and after."""

        def __init__(self, c_in: int, c_out: int, window: Any, groups: int) -> None:
            super().__init__()
            (t, b), (left, r) = window.pads
            common = (min(t, b), min(left, r))
            self.extra = (t - common[0], b - common[0], left - common[1], r - common[1])
            self.conv = nn.ConvTranspose2d(
                c_in, c_out, window.kernel, stride=window.stride, padding=common, groups=groups
            )

        def forward(self, x: Any) -> Any:
            y = self.conv(x)
            t, b, left, r = self.extra
            if any(self.extra):
                y = y[:, :, t : y.shape[2] - b, left : y.shape[3] - r]
            return y

    class TorchVAE(nn.Module):
        """encoder → (mean, log variance) → z = mean + e^(log variance / 2)·ε → decoder; returns the
        per-image "Loss" (squared error or binary cross-entropy, summed over the pixels) and "KL"."""

        def __init__(self, name: str, net: Any) -> None:
            super().__init__()
            self.name = name
            if name == "seed001":  # enc → mn, and sd = 0.5·Linear: the log variance 2·sd is that Linear
                sd = net.vertices["sd"]
                assert str(sd.vertices[2]) == "0.5*#&", f"the seed-001 sd vertex changed: {sd}"
                self.enc = torch_chain(net.vertices["enc"])
                self.mean = torch_chain(_chain_of(net.vertices["mn"]))
                self.log_var = torch_chain(_chain_of(sd.vertices[1]))
            elif name == "mlp":
                self.enc = torch_chain(net.vertices["enc"])
                self.mean = torch_chain(_chain_of(net.vertices["mu"]))
                self.log_var = torch_chain(_chain_of(net.vertices["logvar"]))
            elif name == "augment":  # enc is a graph: features → (mu, logVar)
                enc = net.vertices["enc"]
                self.enc = torch_chain(enc.vertices["features"])
                self.mean = torch_chain(_chain_of(enc.vertices["mu"]))
                self.log_var = torch_chain(_chain_of(enc.vertices["logVar"]))
            else:
                raise ValueError(f"no PyTorch twin for {name!r}")
            self.dec = torch_chain(net.vertices["dec"])

        def encode(self, x: Any) -> tuple[Any, Any]:
            h = self.enc(x)
            return self.mean(h), self.log_var(h)

        def forward(self, x: Any, eps: Any = None) -> dict[str, Any]:
            mean, log_var = self.encode(x)
            eps = torch.randn_like(mean) if eps is None else eps
            out = self.dec(mean + torch.exp(0.5 * log_var) * eps)
            pixels = tuple(range(1, x.ndim))
            if self.name == "mlp":
                recon = F.binary_cross_entropy(out, x, reduction="none").sum(dim=pixels)
            else:
                recon = ((out - x) ** 2).sum(dim=pixels)
            kl = -0.5 * (1 + log_var - mean**2 - torch.exp(log_var)).sum(dim=1)
            return {"Loss": recon, "KL": kl}

    return PaddedConv, CroppedDeconv, TorchVAE


def _chain_of(layer: Any) -> Any:
    """A one-layer NetChain around ``layer`` (for :func:`torch_chain`)."""
    from netgraph import NetChain

    return NetChain([layer])


def torch_twin(name: str, net: Any) -> Any:
    """The PyTorch module for the netgraph net ``name``, with ``net``'s arrays copied."""
    return _torch_module_classes()[2](name, net)


def torch_fit(
    model: Any,
    images: np.ndarray,
    spec: NetSpec,
    batch: int,
    steps: int,
    seed: int,
    on_step=None,
    device: str = "cpu",
    synchronize=None,
):
    """Train ``model`` on the batches of :func:`batch_order`; returns (per-step losses, end-of-step times).

    The loss of a step is Σ over "Loss" and "KL" of the batch mean, read before the update, as NetTrain
    reports it; ``on_step(step)`` is called after each update (step counts from 1). On ``device`` "cuda"
    (``model`` already there) each batch is copied from the host as NetTrain copies it, and
    ``synchronize()`` is called before each time stamp."""
    import time

    import torch

    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.learning_rate, eps=ADAM_EPSILON)
    model.train()
    losses, stamps = [], []
    for step, index in enumerate(batch_order(len(images), batch, steps, seed), start=1):
        x = torch.from_numpy(images[index])
        if device != "cpu":
            x = x.to(device)
        optimizer.zero_grad(set_to_none=True)
        terms = model(x)
        loss = terms["Loss"].mean() + terms["KL"].mean()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.item()))
        if synchronize is not None:
            synchronize()
        stamps.append(time.perf_counter())
        if on_step is not None:
            on_step(step)
    return losses, stamps
