"""The variational autoencoder of the Wolfram Community post "[WSS18] Image generation with
Variational Autoencoders", transcribed to netgraph form by form: a convolutional encoder to 5184
features, the reparametrisation z = mn + Exp[sd] * eps with eps ~ N(0, I) of size 8, a
deconvolutional decoder "dec", the reconstruction loss 28*28 * MeanSquaredLoss and the post's
latentLoss graph (the KL divergence), trained with NetTrain on both loss ports.

After training it extracts the decoder and feeds it N(0, I) codes to generate pictures, and
writes to --out: the trained net, 64 samples, originals against reconstructions, spherical
latent interpolations, the loss plot and a drawing of the net; it prints the test ELBO.

    python examples/mnist_vae.py                    # MNIST if it can be had, else Fashion-MNIST
    python examples/mnist_vae.py --iterations 2000  # the post's schedule: 2000 batches of 32
    python examples/mnist_vae.py --data paintings/ --epochs 200   # a folder of pictures (the post's Monet run)

Data: --data is a folder of MNIST-format IDX files (train-images-idx3-ubyte[.gz] and
train-labels-idx1-ubyte[.gz], with the t10k files as the test set when present) or a folder of
pictures, read in grey at 28x28 (centre-cropped). Without --data, MNIST is read from the cache
(downloaded when the network allows), else Fashion-MNIST (Debian's dataset-fashion-mnist).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from layers import (
    ConvolutionLayer,
    DeconvolutionLayer,
    ElementwiseLayer,
    FlattenLayer,
    LinearLayer,
    MeanSquaredLossLayer,
    RandomArrayLayer,
    ReshapeLayer,
    SummationLayer,
    ThreadingLayer,
    TotalLayer,
)
from netgraph import (
    BackendError,
    NetChain,
    NetExtract,
    NetGraph,
    NetPort,
    NetTake,
    NetTrain,
    NormalDistribution,
    draw,
    exp,
    get_xp,
)
from netgraph.datasets import (
    DatasetError,
    DatasetNotFoundError,
    fashion_mnist,
    image_folder,
    load_mnist_format,
    mnist,
    split,
    to_float,
)
from netgraph.generate import bits_per_dim, elbo, interpolate, vae_parts
from netgraph.images import image_grid, interpolation_strip, loss_plot, save_png
from netgraph.train import schedule

NLATENT = 8  # the post's latent size
PIXELS = 28 * 28
# The `make demo` schedule, sized to finish in well under 10 minutes on a 2-core CPU, where
# forward and backward of this net run at about 500 images/s: two passes over 54,000 images.
# The post trained 2,000 batches of 32 (64,000 images) in 10 hours.
DEMO_EPOCHS = 2
VALIDATION_FRACTION = 0.1
TEST_FRACTION = 0.1  # held out for the ELBO when the data has no test set of its own


# --- the net, as in the post ---------------------------------------------------------------------------


def build_latent_loss() -> NetGraph:
    """The post's latentLoss, wired port by port: 0.5 * Σ (mn² + e^(2 sd) - 1 - 2 sd), the KL
    divergence of N(mn, e^(2 sd)) from N(0, 1)."""
    return NetGraph(
        [
            ElementwiseLayer(lambda x: -0.5 * x),
            TotalLayer(),
            ElementwiseLayer(lambda x: -(x**2)),
            ElementwiseLayer(lambda x: -exp(2 * x)),
            ElementwiseLayer(lambda x: 1 + 2 * x),
            SummationLayer(),
        ],
        [(NetPort("mn"), 3), (NetPort("sd"), 4), (NetPort("sd"), 5), ([3, 4, 5], 2, 6, 1)],
    )


def build_encoder() -> NetChain:
    """Three convolutions with Ramp, flattened: 1×28×28 → 32×26×26 → 64×12×12 → 64×9×9 → 5184."""
    return NetChain(
        [
            ConvolutionLayer(32, 3),
            "Ramp",
            ConvolutionLayer(64, 3, stride=2),
            "Ramp",
            ConvolutionLayer(64, 4),
            "Ramp",
            FlattenLayer(),
        ],
        input=(1, 28, 28),
    )


def build_decoder(nlatent: int = NLATENT) -> NetChain:
    """8 → 5184 → 64×9×9, then deconvolutions back up to 1×28×28 and a LogisticSigmoid."""
    return NetChain(
        [
            LinearLayer(5184),
            "Ramp",
            ReshapeLayer((64, 9, 9)),
            DeconvolutionLayer(64, 4),
            "Ramp",
            DeconvolutionLayer(32, 3, stride=2),
            "Ramp",
            DeconvolutionLayer(1, 4),
            "LogisticSigmoid",
        ],
        input=nlatent,
    )


def build_vae(nlatent: int = NLATENT) -> NetGraph:
    """The full network: input "Input" (1, 28, 28), whose loss target is the input itself, and the
    output ports "Loss" (784 × mean squared error) and "KL" (latentLoss)."""
    mn = LinearLayer(nlatent)
    sd = NetChain([LinearLayer(nlatent), ElementwiseLayer(lambda x: 0.5 * x)])
    exp_sd = ElementwiseLayer(exp)
    return NetGraph(
        {
            "enc": build_encoder(),
            "mn": mn,
            "sd": sd,
            "expSd": exp_sd,
            "eps": RandomArrayLayer(NormalDistribution(0, 1), output=nlatent),
            "times": ThreadingLayer("Times"),
            "z": TotalLayer(),
            "dec": build_decoder(nlatent),
            "loss": MeanSquaredLossLayer(),
            "scale": ElementwiseLayer(lambda x: PIXELS * x),
            "latentLoss": build_latent_loss(),
        },
        [
            (NetPort("Input"), "enc", "mn"),
            ("enc", "sd", "expSd"),
            (["expSd", "eps"], "times"),
            (["mn", "times"], "z", "dec", NetPort("loss", "Input")),
            (NetPort("Input"), NetPort("loss", "Target")),
            ("loss", "scale", NetPort("Loss")),
            ("mn", NetPort("latentLoss", "mn")),
            ("sd", NetPort("latentLoss", "sd")),
            ("latentLoss", NetPort("KL")),
        ],
        input=(1, 28, 28),
    )


# --- data ------------------------------------------------------------------------------------------------


def _as_images(array: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) or (N, 1, 28, 28) → float32 (N, 1, 28, 28) in [0, 1]."""
    images = to_float(array)
    return images[:, None] if images.ndim == 3 else images


def load_data(data: str | None, seed: int) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(training images, test images, a name, a description); images float32 (N, 1, 28, 28) in [0, 1]."""
    if data is None:
        try:
            train, _ = mnist(download=True)
            test, _ = mnist(download=True, kind="test")
            return _as_images(train), _as_images(test), "MNIST", "MNIST (60,000 + 10,000 test images)"
        except (DatasetError, OSError) as err:
            reason = str(err).splitlines()[0].rstrip(":")
            print(f"MNIST is not available ({reason}); using Fashion-MNIST instead")
        train, _ = fashion_mnist()
        test, _ = fashion_mnist(kind="test")
        return _as_images(train), _as_images(test), "Fashion-MNIST", "Fashion-MNIST (60,000 + 10,000 test images)"
    folder = Path(data).expanduser()
    if not folder.is_dir():
        raise DatasetNotFoundError(
            f"{folder}: no such folder (--data takes a folder of MNIST-format IDX files or of pictures)"
        )
    try:
        train, _ = load_mnist_format(folder)
    except DatasetNotFoundError:
        found = image_folder(folder, 28, color_space="Grayscale")
        for skipped in found.skipped[:5]:
            print(f"  skipped {skipped.path}: {skipped.reason}")
        if len(found.skipped) > 5:
            print(f"  ... and {len(found.skipped) - 5} more files skipped")
        images = _as_images(found.images)
        train, test = split(images, fractions=(1 - TEST_FRACTION, TEST_FRACTION), seed=seed)
        described = f"{len(images)} pictures from {folder} (grey, 28×28; {len(test)} held out as a test set)"
        return train, test, folder.name, described
    try:
        test, _ = load_mnist_format(folder, kind="test")
        return _as_images(train), _as_images(test), folder.name, f"MNIST-format files in {folder}"
    except DatasetNotFoundError:
        train, test = split(_as_images(train), fractions=(1 - TEST_FRACTION, TEST_FRACTION), seed=seed)
        described = f"MNIST-format files in {folder} (no t10k files: {len(test)} training images held out)"
        return train, test, folder.name, described


# --- the loss plot ---------------------------------------------------------------------------------------


# --- the run ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mnist_vae.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="a folder of MNIST-format IDX files, or of pictures (default: MNIST/Fashion-MNIST)",
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, help=f"training rounds over the training images (default {DEMO_EPOCHS})")
    length.add_argument("--iterations", type=int, help="training batches in all, as the post counts (it used 2000)")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per batch (default 32, as the post)")
    parser.add_argument("--learning-rate", type=float, default=5e-4, help="ADAM's learning rate (default 5e-4)")
    parser.add_argument("--train-images", type=int, help="train on the first N training images only (default all)")
    parser.add_argument(
        "--test-images", type=int, help="compute the test ELBO on the first N test images (default all)"
    )
    parser.add_argument("--out", default="out/mnist_vae", help="output folder (default out/mnist_vae)")
    parser.add_argument("--device", default="CPU", choices=["CPU", "GPU"], help="CPU (NumPy) or GPU (CuPy)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (initialisation, shuffling, sampling)")
    args = parser.parse_args(argv)
    for name in ("epochs", "iterations", "batch_size", "train_images", "test_images"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if not args.learning_rate > 0:
        parser.error(f"--learning-rate must be positive, got {args.learning_rate}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train, generate and evaluate; returns the numbers it printed (for tests)."""
    args = parse_args(argv)
    started = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    options = {"target_device": args.device, "batch_size": 256}
    get_xp(args.device)  # fails at once, saying what to install, when the GPU cannot be used

    # data: a validation split is held out of the training images
    images, test, name, described = load_data(args.data, args.seed)
    if args.train_images:
        images = images[: args.train_images]
    if args.test_images:
        test = test[: args.test_images]
    held = max(1, round(VALIDATION_FRACTION * len(images))) if len(images) > 1 else 0
    train, validation = split(images, fractions=(1 - held / len(images), held / len(images)), seed=args.seed)
    print(f"data: {described}")
    print(f"      {len(train)} training, {len(validation)} validation, {len(test)} test images")

    # the schedule: NetTrain counts rounds; a number of iterations stops it mid-round
    rounds, total, batch_size, _, stop, chosen = schedule(
        len(train), args.batch_size, args.epochs, args.iterations, DEMO_EPOCHS
    )
    print(
        f"schedule: {chosen} = {total} batches, {total * batch_size} images; ADAM, learning rate {args.learning_rate}"
    )
    print("          (the post: 2000 batches of 32 with ADAM at 0.0005, 10 hours)")

    vae = build_vae()
    print(vae)
    draw(vae, out / "vae.png")

    # NetTrain[vae, <|"Input" -> images|>, LossFunction -> {"Loss", "KL"}, Method -> {"ADAM", ...}, ...]
    print(f"training on the {args.device}...")
    results = NetTrain(
        vae,
        {"Input": train},
        "All",
        loss_function=["Loss", "KL"],
        method=("ADAM", {"learning_rate": args.learning_rate}),
        batch_size=batch_size,
        max_training_rounds=rounds,
        validation_set={"Input": validation} if len(validation) else None,
        training_progress_function=stop,
        target_device=args.device,
        random_seeding=args.seed,
    )
    train_time = results["TotalTrainingTime"]
    speed = results["MeanExamplesPerSecond"]
    print(f"training took {train_time:.1f} s: {results['TotalBatches']} batches, {speed:.0f} images/s")
    if results["RoundLossList"]:
        print(f"  round losses {', '.join(f'{v:.2f}' for v in results['RoundLossList'])}")
    if results["ValidationLossList"]:
        print(f"  validation losses {', '.join(f'{v:.2f}' for v in results['ValidationLossList'])}")
    if args.iterations:  # as the post: the net after the last batch
        trained = results["FinalNet"]
        print(f"  kept the net after batch {results['TotalBatches']}")
    else:  # NetTrain's choice: the round with the lowest validation loss
        trained = results["TrainedNet"]
        if results["ValidationLossList"]:
            print(f"  kept the net of round {results['BestValidationRound']}, the lowest validation loss")
    trained.save(out / "vae.npz")

    # the decoder, taken out of the trained net two ways: NetExtract and NetTake
    dec = NetExtract(trained, "dec")
    taken = NetTake(trained, (NetPort("z", "Output"), "dec"))
    rng = np.random.default_rng(args.seed)
    z = rng.standard_normal((64, NLATENT))
    samples = dec(z, **options)
    same = np.allclose(taken(z, **options), samples, atol=1e-6)
    print(f'decoder: NetExtract(trained, "dec") = {dec}')
    print(f'         NetTake(trained, (NetPort("z", "Output"), "dec")) gives the same pictures: {same}')
    save_png(image_grid(samples, columns=8, scale=2), out / "samples.png")

    # reconstructions, interpolations and the ELBO use the posterior q(z|x) = N(mn, e^(2 sd))
    encode, decode = vae_parts(trained, **options)
    mean, log_var = encode(test)
    shown = min(16, len(test))
    recon = decode(mean[:shown])
    rows = [test[:shown], recon]
    save_png(interpolation_strip(rows, row_labels=["input", "output"], scale=2), out / "reconstructions.png")
    pairs = min(6, len(test) // 2)
    paths = [interpolate(decode, mean[2 * i], mean[2 * i + 1], 11, kind="spherical") for i in range(pairs)]
    steps = [f"{t:.1f}" for t in np.linspace(0, 1, 11)]
    if paths:
        save_png(interpolation_strip(paths, labels=steps, scale=2), out / "interpolation.png")

    plot = results.properties.get("LossPlot") if hasattr(results, "properties") else None
    if not isinstance(plot, Image.Image):
        plot = loss_plot(
            results["RoundLossList"],
            results["ValidationLossList"],
            results["BatchLossList"],
            results["BatchesPerRound"],
            title=f"VAE on {name}: Loss + KL per image",
        )
    save_png(plot, out / "loss.png")

    # the test ELBO, one z per image; the posterior is computed once and shared by both likelihoods
    posterior = lambda _x: (mean, log_var)
    bern = elbo(posterior, decode, test, likelihood="bernoulli", seed=args.seed, parts=True)
    gauss = elbo(posterior, decode, test, likelihood="gaussian", seed=args.seed, parts=True)
    sse = -2.0 * (gauss["reconstruction"] + 0.5 * PIXELS * math.log(2 * math.pi))  # Σ (x - x̂)²
    objective = float(np.mean(sse + gauss["kl"]))
    numbers = {
        "elbo_bernoulli": float(np.mean(bern["elbo"])),
        "elbo_gaussian": float(np.mean(gauss["elbo"])),
        "kl": float(np.mean(bern["kl"])),
        "test_loss": objective,
        "train_seconds": train_time,
    }
    print(f"\ntest set: {len(test)} images, one z ~ q(z|x) each")
    print(
        f"  test ELBO, Bernoulli likelihood: {numbers['elbo_bernoulli']:.2f} nats per image "
        f"({float(np.mean(bits_per_dim(bern['elbo'], PIXELS))):.4f} bits per pixel); KL term {numbers['kl']:.2f} nats"
    )
    print(
        "    NOTE: this reads the decoder's outputs as pixel probabilities. The pixels are grey, not binarised, so it"
        "\n    is the cross-entropy bound much VAE code reports, not a normalised likelihood; and the net was trained"
        "\n    for squared error, not for this likelihood."
    )
    print(f"  test ELBO, Gaussian likelihood (variance 1): {numbers['elbo_gaussian']:.2f} nats per image")
    constant = 0.5 * PIXELS * math.log(math.pi)
    numbers["elbo_gaussian_half"] = -(objective + constant)
    print(
        f"  test loss, the training objective 784·MSE + KL: {objective:.2f} per image. It is the negative ELBO of"
        f"\n    a Gaussian decoder with fixed variance 1/2 less the constant 392·ln π = {constant:.1f} nats: that ELBO"
        f"\n    is {numbers['elbo_gaussian_half']:.2f} nats per image (a density over continuous pixels, like the"
        "\n    variance-1 figure, so neither compares with the Bernoulli one)."
    )

    total_time = time.perf_counter() - started
    numbers["total_seconds"] = total_time
    print(f"\ntime taken: {total_time:.1f} s in all, {train_time:.1f} s of it training")
    print(f"pictures and the trained net are in {out}/:")
    for file, what in (
        ("samples.png", "64 samples: the decoder fed z ~ N(0, I)"),
        ("reconstructions.png", "test images (top) and their reconstructions from the posterior mean"),
        ("interpolation.png", "spherical interpolation between the codes of two test images, per row"),
        ("loss.png", "round and validation loss per training round"),
        ("vae.png", "the network"),
        ("vae.npz", 'the trained net (netgraph.load; the decoder is NetExtract(net, "dec"))'),
    ):
        if (out / file).exists():
            print(f"  {out / file}: {what}")
    return numbers


if __name__ == "__main__":
    try:
        main()
    except (DatasetError, BackendError) as err:
        sys.exit(f"mnist_vae.py: {err}")
