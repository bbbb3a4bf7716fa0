"""Does the seed-001 VAE learn in netgraph as it does in PyTorch? Test loss round by round, side by side.

The seed-001 VAE of examples/mnist_vae.py (its build_vae) is trained with NetTrain, loss_function=
["Loss", "KL"], ADAM at 5e-4 and batches of 32 on Fashion-MNIST (Debian's dataset-fashion-mnist), and
the same architecture in PyTorch (benchmarks/training_nets.py) from the same initial weights
(netgraph's, copied) on the same batches in the same order (NetTrain's shuffle, replayed; checked on
the first batches). Only the noise ε of the reparametrisation z = mn + e^sd·ε differs. After every
round each framework computes the test loss, the training objective on the Fashion-MNIST test set:

    784 · mean squared error + KL, per image, averaged over the test images,

with z drawn once per test image from the same fixed ε in both frameworks, so that two nets with
equal weights give equal test losses (round 0, before training, shows it). The table lists both test
losses per round, their relative difference, each framework's mean training loss over the round and
its training seconds (the test evaluation left out). A final difference above --tolerance is
flagged.

    python benchmarks/vae_convergence.py                              # 5 rounds over 60,000 images
    python benchmarks/vae_convergence.py --rounds 2 --train-images 6400 --test-images 2000   # minutes

The frameworks train one after the other, each in its own fresh process with the same thread count
(netgraph's never imports torch). PyTorch is needed only here, never by netgraph or its tests; its
CPU build in a separate environment is enough:

    python3 -m venv torchenv && torchenv/bin/pip install torch numpy networkx pillow
    torchenv/bin/pip install -e . --no-deps
    torchenv/bin/python benchmarks/vae_convergence.py [--rounds 5] [--threads 2]

Without PyTorch the script says so and prints netgraph's column alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import time
from typing import Any

import training_nets as nets

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
INSTALL = (
    "PyTorch is not installed here; to compare, install its CPU build in a separate environment:\n"
    "    python3 -m venv torchenv && torchenv/bin/pip install torch numpy networkx pillow\n"
    "    torchenv/bin/pip install -e . --no-deps\n"
    "    torchenv/bin/python benchmarks/vae_convergence.py\n"
)
NET = "seed001"
EVAL_BATCH = 500


def test_loss(encode: Any, decode: Any, images: Any, eps: Any) -> float:
    """Mean over ``images`` of Σ (x - x̂)² + KL(q(z|x) ‖ N(0, I)), z = mean + e^(log var / 2)·eps;
    ``encode(x)`` gives (mean, log variance) and ``decode(z)`` the pictures, NumPy float32 both."""
    import numpy as np

    total = 0.0
    for start in range(0, len(images), EVAL_BATCH):
        x, e = images[start : start + EVAL_BATCH], eps[start : start + EVAL_BATCH]
        mean, log_var = (np.asarray(a, dtype=np.float64) for a in encode(x))
        z = (mean + np.exp(0.5 * log_var) * e).astype(np.float32)
        out = np.asarray(decode(z), dtype=np.float64)
        squared = ((out - x) ** 2).reshape(len(x), -1).sum(axis=1)
        kl = 0.5 * (mean**2 + np.exp(log_var) - 1 - log_var).sum(axis=1)
        total += float((squared + kl).sum())
    return total / len(images)


def data(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(training images, test images, fixed ε per test image)."""
    import numpy as np

    train = nets.training_images(NET, args.train_images or 60000)
    test = nets.training_images(NET, args.test_images or 10000, kind="test")
    eps = np.random.default_rng(args.seed + 1000).standard_normal((len(test), 8)).astype(np.float32)
    return train, test, eps


def netgraph_rounds(args: argparse.Namespace) -> dict[str, Any]:
    """NetTrain for --rounds rounds, the test loss after each (meant for a fresh process)."""
    from netgraph import NetExtract, NetPort

    train, test, eps = data(args)
    spec = nets.SPECS[NET]
    net = nets.build_netgraph(NET, args.seed)
    ordered = nets.check_netgraph_order(net, train, spec, args.batch_size, args.seed)

    def evaluate(trained: Any) -> float:
        ports = [NetPort("mn", "Output"), NetPort("sd", "Output")]
        dec = NetExtract(trained, "dec")

        def encode(x):
            out = trained(x, ports, batch_size=EVAL_BATCH)
            return out[ports[0]], 2.0 * out[ports[1]]  # sd is half the log variance

        return test_loss(encode, lambda z: dec(z, batch_size=EVAL_BATCH), test, eps)

    rows = [{"round": 0, "test": evaluate(net), "train": None, "seconds": 0.0}]
    clock = {"last": time.perf_counter(), "evaluating": 0.0}

    def after_round(progress: dict) -> None:
        now = time.perf_counter()
        loss = evaluate(progress["Net"])
        rows.append(
            {"round": progress["Round"], "test": loss, "train": progress["RoundLoss"], "seconds": now - clock["last"]}
        )
        clock["last"] = time.perf_counter()

    clock["last"] = time.perf_counter()
    nets.netgraph_fit(
        net,
        train,
        spec,
        args.batch_size,
        args.rounds * math.ceil(len(train) / args.batch_size),
        args.rounds,
        args.seed,
        training_progress_function=(after_round, {"Interval": ("Rounds", 1)}),
    )
    return {"rows": rows, "ordered": ordered}


def torch_rounds(args: argparse.Namespace) -> dict[str, Any]:
    """The same rounds in PyTorch (meant for a fresh process)."""
    import torch

    torch.set_num_threads(args.threads)
    train, test, eps = data(args)
    spec = nets.SPECS[NET]
    model = nets.torch_twin(NET, nets.build_netgraph(NET, args.seed))
    per_round = math.ceil(len(train) / args.batch_size)

    def evaluate() -> float:
        model.eval()
        with torch.no_grad():

            def encode(x):
                mean, log_var = model.encode(torch.from_numpy(x))
                return mean.numpy(), log_var.numpy()

            loss = test_loss(encode, lambda z: model.dec(torch.from_numpy(z)).numpy(), test, eps)
        model.train()
        return loss

    rows = [{"round": 0, "test": evaluate(), "train": None, "seconds": 0.0}]
    clock = {"last": time.perf_counter()}

    def on_step(step: int) -> None:
        if step % per_round == 0:
            seconds = time.perf_counter() - clock["last"]
            rows.append({"round": step // per_round, "test": evaluate(), "train": None, "seconds": seconds})
            clock["last"] = time.perf_counter()

    losses, _ = nets.torch_fit(model, train, spec, args.batch_size, args.rounds * per_round, args.seed, on_step)
    # the round's training loss as NetTrain counts it: the mean over its images (a short last batch weighs less)
    sizes = [len(index) for index in nets.batch_order(len(train), args.batch_size, per_round, args.seed)]
    for row in rows[1:]:
        chunk = losses[(row["round"] - 1) * per_round : row["round"] * per_round]
        row["train"] = sum(v * n for v, n in zip(chunk, sizes)) / sum(sizes)
    return {"rows": rows}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="vae_convergence.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="training rounds (default 5)")
    parser.add_argument("--train-images", type=int, help="train on the first N training images (default all 60,000)")
    parser.add_argument("--test-images", type=int, help="test on the first N test images (default all 10,000)")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per batch (default 32)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads of each framework")
    parser.add_argument("--tolerance", type=float, default=0.05, help="final difference flagged (default 0.05 = 5%%)")
    parser.add_argument("--seed", type=int, default=1, help="initial weights, batch order, test ε (default 1)")
    args = parser.parse_args(argv)
    for name in ("rounds", "train_images", "test_images", "batch_size", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train both, print the table; returns the rows per framework."""
    args = parse_args(argv)
    for variable in THREAD_VARIABLES:  # inherited by the workers, which load NumPy after this
        os.environ[variable] = str(args.threads)
    has_torch = importlib.util.find_spec("torch") is not None
    if not has_torch:
        print(INSTALL)
    started = time.perf_counter()
    n = args.train_images or 60000
    print(
        f"{nets.SPECS[NET].title}; Fashion-MNIST, {n} training images in batches of {args.batch_size}, "
        f"ADAM 5e-4, {args.rounds} rounds; {args.test_images or 10000} test images; {args.threads} threads"
    )
    results = {"netgraph": nets.run_in_process(netgraph_rounds, args)}
    print(f"netgraph done; batch order checked against the replayed one: {results['netgraph']['ordered']}")
    if has_torch:
        results["torch"] = nets.run_in_process(torch_rounds, args)
    print_table(args, results)
    print(f"\ntime taken: {time.perf_counter() - started:.0f} s")
    return results


def print_table(args: argparse.Namespace, results: dict[str, Any]) -> None:
    frameworks = list(results)
    print("\ntest loss = 784·MSE + KL per image (mean over the test set); train = mean loss over the round")
    header = f"{'round':>5}" + "".join(f" {f + ' test':>14}" for f in frameworks)
    if "torch" in results:
        header += f" {'difference':>10}"
    header += "".join(f" {f + ' train':>15} {'s':>6}" for f in frameworks)
    print(header)
    rows = list(zip(*(results[f]["rows"] for f in frameworks)))
    for row in rows:
        line = f"{row[0]['round']:>5}" + "".join(f" {r['test']:>14.3f}" for r in row)
        if "torch" in results:
            line += f" {(row[0]['test'] - row[1]['test']) / row[1]['test']:>+10.2%}"
        for r in row:
            train = f"{r['train']:.3f}" if r["train"] is not None else "-"
            line += f" {train:>15} {r['seconds']:>6.0f}"
        print(line)
    if "torch" in results:
        final = rows[-1]
        difference = abs(final[0]["test"] - final[1]["test"]) / final[1]["test"]
        verdict = "within" if difference <= args.tolerance else "NOT within"
        print(
            f"after {final[0]['round']} rounds: test losses {difference:.2%} apart, {verdict} "
            f"{args.tolerance:.0%} (netgraph {final[0]['test']:.3f}, torch {final[1]['test']:.3f})"
        )


if __name__ == "__main__":
    from netgraph import BackendError
    from netgraph.datasets import DatasetError

    try:
        main()
    except (DatasetError, BackendError) as err:
        sys.exit(f"vae_convergence.py: {err}")
    except KeyboardInterrupt:
        sys.exit("vae_convergence.py: interrupted")
