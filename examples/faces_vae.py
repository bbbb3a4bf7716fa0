"""The face VAE of the report "Image generation with Variational Autoencoders (VAE)" (CelebA,
University of Pavia / Milano), transcribed to netgraph: pictures 48 pixels wide and 64 high
(the report's "64 by 48", PyTorch's (height, width)), RGB in [-1, 1], flipped left-right at
random in every batch; an encoder of 8 convolutions, each followed by instance normalisation
(without learnable scale and shift, as PyTorch's InstanceNorm2d by default) and a ReLU
(32 → 256 channels, stride 2 every other layer), two fully connected layers for the
mean and the log-variance of q(z|x), z = mean + exp(log-variance / 2) * eps, and a decoder of 8
transposed convolutions ending in tanh, exactly as the report's tables 1 and 2. The loss is the
report's: reconstruction (mean squared error per pixel) + lambda * KL, trained with Adam at 0.001.

After training it writes to --out: the trained net, a grid of faces generated from z ~ N(0, I),
a grid from z drawn closer to the centre (--temperature), test pictures over their
reconstructions, interpolations between the codes of pairs of test pictures, the loss plot and a
drawing of the net; it prints the test loss, its two parts, and where everything is. (The report
moved z closer to the centre by making the KL term stronger; here --temperature shrinks the prior
draw instead, z ~ N(0, T^2 I), with the same trained net.)

    python examples/faces_vae.py                          # Fashion-MNIST stands in for CelebA (4-7 min)
    python examples/faces_vae.py --data img_align_celeba/ --epochs 10     # the report's data
    python examples/faces_vae.py --kl-weight 1e-3 --latent 32             # the report's other settings

Defaults are the report's best model: lambda = 1e-5 (--kl-weight; it tried 1e-3, 1e-4, 1e-5 and
1e-6) and a latent space of 64 (--latent; it tried 32, 64 and 128), Adam with learning rate 0.001.
The report gives neither its batch size nor how long it trained; this example uses batches of 64.

Data: --data is a folder of pictures (CelebA's img_align_celeba/, 178x218 JPEGs, or any other
pictures; files that cannot be read are skipped and listed), a folder of CIFAR-10 batches or of
MNIST-format IDX files. Every picture is centre-cropped to the 3:4 portrait shape and resized to
48x64. 5% of the pictures (at most 1,000) are held out for validation and 5% (at most 1,000) as a
test set. Without --data, Fashion-MNIST stands in for CelebA (the only real pictures that are
always at hand): its 28x28 grey pictures lose 3-4 columns at each side to the 3:4 crop, are
resized to 48x64 and have their grey channel copied to R, G and B.

Schedule: the default is 2 rounds over 1,500 images (--train-images 1500 --epochs 2), 4 to 7
minutes on a 2-core CPU (this net trains at 7 to 12 pictures/s there, depending on what else
runs): a smoke test that gives blurry reconstructions, not a trained face model. The
report trained on CelebA's 202,599 faces for a number of rounds it does not state; for a real run
use --data with all images (no --train-images) and --epochs 10 or more, on a GPU (--device GPU).
--iterations N stops after N batches instead.

Augmentation: NetTrain reads the training data from a generator function, called once per batch
with the batch's round and number; it returns the batch's pictures, each flipped left-right with
probability 1/2, as the report's random horizontal flip. Every round visits every training picture
once, in a new order. The pictures stay uint8 in memory and become [-1, 1] floats batch by batch.

The decoder as tabled: its second transposed convolution (kernel 4, stride 1, padding 1) adds one
row and one column, and only three of the eight double the size, so the decoder grows an h x w
grid to 8(h + 1) x 8(w + 1). To end at 64 x 48 its fully connected layer makes 256 x 7 x 5 values
(not the encoder's 256 x 4 x 3). --decoder mirror reads that stride as 2 (a likely misprint: the
decoder then mirrors the encoder exactly and its fully connected layer makes 256 x 4 x 3 values).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from layers import (
    ConvolutionLayer,
    DeconvolutionLayer,
    FlattenLayer,
    LinearLayer,
    MeanSquaredLossLayer,
    NormalizationLayer,
    RandomArrayLayer,
    ReshapeLayer,
    SummationLayer,
    ThreadingLayer,
)
from netgraph import NetChain, NetGraph, NetPort, NetSummary, NetTrain, NormalDistribution, cli, draw, exp
from netgraph.datasets import DatasetError, load_images, split, to_float
from netgraph.generate import interpolate, reconstruct, sample_prior, vae_parts
from netgraph.images import image_grid, interpolation_strip, save_png

WIDTH, HEIGHT = 48, 64  # the report's 64 by 48 (height, width), a portrait face
CHANNELS = 3
RANGE = (-1.0, 1.0)  # the decoder ends in tanh
KL_WEIGHT = 1e-5  # the report's best lambda
LATENT = 64  # the report's first and best latent size
LEARNING_RATE = 1e-3  # Adam's, as the report
BATCH_SIZE = 64  # not given by the report
DEMO_IMAGES = 1500  # the default schedule: 2 rounds over 1,500 images, 4 to 7 minutes on 2 CPU cores
DEMO_EPOCHS = 2
HELD_OUT = 0.05  # validation and test fractions, each at most MAX_HELD_OUT images
MAX_HELD_OUT = 1000

# --- the net, as in the report's tables -----------------------------------------------------------------


def instance_norm() -> NormalizationLayer:
    """PyTorch's InstanceNorm2d(num_features) with its defaults: each channel of each picture
    normalised over its pixels, epsilon 1e-5, no learnable scale or shift (affine=False)."""
    return NormalizationLayer(epsilon=1e-5, scaling=None, biases=None)


def build_encoder(width: int = WIDTH, height: int = HEIGHT) -> NetChain:
    """Table 1: 8 convolutions (kernel 4 stride 2, then kernel 3 stride 1; padding 1), each with
    instance normalisation and a ReLU, 3 → 32 → 32 → 64 → 64 → 128 → 128 → 256 → 256 channels,
    then flattened: 3×64×48 → 256×4×3 → 3072."""
    layers: list[Any] = []
    for n in (32, 64, 128, 256):
        layers += [ConvolutionLayer(n, 4, stride=2, padding_size=1), instance_norm(), "Ramp"]
        layers += [ConvolutionLayer(n, 3, stride=1, padding_size=1), instance_norm(), "Ramp"]
    return NetChain([*layers, FlattenLayer()], input=(CHANNELS, height, width))


def decoder_grid(width: int = WIDTH, height: int = HEIGHT, decoder: str = "table") -> tuple[int, int]:
    """(rows, columns) of the 256-channel grid the decoder starts from so that it ends at height × width."""
    if decoder == "table":  # 8 (h + 1) × 8 (w + 1): see the module doc
        return height // 8 - 1, width // 8 - 1
    return height // 16, width // 16


def build_decoder(latent: int = LATENT, width: int = WIDTH, height: int = HEIGHT, decoder: str = "table") -> NetChain:
    """Table 2: a fully connected layer, a reshape to 256 channels, 8 transposed convolutions
    (kernel 3 stride 1, then kernel 4; padding 1) with instance normalisation and ReLU between
    them, 256 → 256 → 128 → 128 → 64 → 64 → 32 → 32 → 3 channels, and tanh."""
    rows, columns = decoder_grid(width, height, decoder)
    layers: list[Any] = [LinearLayer(256 * rows * columns), ReshapeLayer((256, rows, columns))]
    for i, (n, m) in enumerate(((256, 128), (128, 64), (64, 32), (32, CHANNELS))):
        stride = 1 if (i == 0 and decoder == "table") else 2  # the table's second layer has stride 1
        layers += [DeconvolutionLayer(n, 3, stride=1, padding_size=1), instance_norm(), "Ramp"]
        layers += [DeconvolutionLayer(m, 4, stride=stride, padding_size=1)]
        layers += [instance_norm(), "Ramp"] if m != CHANNELS else ["Tanh"]
    return NetChain(layers, input=latent)


def build_vae(latent: int = LATENT, width: int = WIDTH, height: int = HEIGHT, decoder: str = "table") -> NetGraph:
    """The whole net: "Input" (3, height, width) in [-1, 1], which is also the reconstruction's target,
    and two loss ports: "Loss", the mean squared error per pixel, and "KL", the KL divergence of
    q(z|x) = N(mn, exp(logvar)) from N(0, I) summed over the latent dimensions."""
    for side, name in ((width, "width"), (height, "height")):
        if side % 16 or (decoder == "table" and side < 16):
            raise ValueError(f"the picture {name} must be a multiple of 16 (four halvings), got {side}")
    # fmt: off
    return NetGraph({
        "enc": build_encoder(width, height), "mn": LinearLayer(latent), "logvar": LinearLayer(latent),
        "eps": RandomArrayLayer(NormalDistribution(0, 1), output=latent),
        "z": ThreadingLayer(lambda m, v, e: m + exp(0.5 * v) * e),
        "dec": build_decoder(latent, width, height, decoder),
        "loss": MeanSquaredLossLayer(),
        "klTerms": ThreadingLayer(lambda m, v: 0.5 * (m**2 + exp(v) - 1 - v)), "kl": SummationLayer(),
    }, [
        (NetPort("Input"), "enc", "mn"),
        ("enc", "logvar"),
        (["mn", "logvar", "eps"], "z", "dec", NetPort("loss", "Input")),
        (NetPort("Input"), NetPort("loss", "Target")),
        (NetPort("loss", "Loss"), NetPort("Loss")),
        (["mn", "logvar"], "klTerms", "kl", NetPort("KL")),
    ], input=(CHANNELS, height, width))
    # fmt: on


# --- data ------------------------------------------------------------------------------------------------


def load_data(data: str | None, limit: int | None, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(training, validation, test pictures, a description), each uint8 (N, 3, 64, 48).

    ``limit`` keeps the first N training pictures (the held-out ones come on top of it)."""
    size = (WIDTH, HEIGHT)
    if data is None:
        held = MAX_HELD_OUT if limit is None else min(MAX_HELD_OUT, max(2, round(HELD_OUT * limit)))
        how = "grey channel copied to RGB, 28x28 centre-cropped to 21x28 and resized to 48x64"
        found = cli.pictures(
            None,
            size,
            color_space="RGB",
            limit=limit and limit + held,
            stands_in_for="the report's CelebA faces",
            how=how,
        )
        test = load_images(None, size, color_space="RGB", kind="test", limit=held).images
        return (
            found.images[held:],
            found.images[:held],
            test,
            "Fashion-MNIST (training pictures, test pictures for the test set)",
        )
    found = cli.pictures(data, size, color_space="RGB", stands_in_for="the report's CelebA faces")
    n = len(found.images)
    if n < 3:
        raise DatasetError(f"{data}: {n} usable picture(s); at least 3 are needed (training, validation, test)")
    held = min(MAX_HELD_OUT, max(2, round(HELD_OUT * n))) if n >= 6 else 1
    train, validation, test = split(found.images, fractions=((n - 2 * held) / n, held / n, held / n), seed=seed)
    return train[:limit], validation, test, found.description


def batches(train: np.ndarray, batch_size: int, seed: int) -> Any:
    """NetTrain's generator function: the batch ``info["Batch"]`` of round ``info["Round"]``, as
    [-1, 1] floats, each picture flipped left-right with probability 1/2.

    Each round visits every picture once, in an order drawn from (seed, round); the flips are
    drawn from (seed, absolute batch number). The batch depends only on ``info``, so a run resumed
    from a checkpoint sees the same batches."""

    def generate(info: dict[str, Any]) -> dict[str, np.ndarray]:
        order = np.random.default_rng((seed, info["Round"])).permutation(len(train))
        chosen = order[(info["Batch"] - 1) * batch_size : info["Batch"] * batch_size]
        images = train[chosen]
        flip = np.random.default_rng((seed, 1, info["AbsoluteBatch"])).random(len(images)) < 0.5
        images[flip] = images[flip][..., ::-1]
        return {"Input": to_float(images, range=RANGE)}

    return generate


# --- the run ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> Any:
    parser = cli.parser("faces_vae.py", __doc__)
    data = "a folder of pictures (CelebA), CIFAR-10 or IDX files"
    cli.standard_options(
        parser, data=data, out="out/faces_vae", seed="random seed (initialisation, order, flips, sampling)"
    )
    cli.schedule_options(parser, default_epochs=DEMO_EPOCHS, batch_size=BATCH_SIZE, batch_help="pictures per batch")
    many = f"train on N pictures (default {DEMO_IMAGES} without --data, all of them with --data)"
    parser.add_argument("--train-images", type=cli.count, metavar="N", help=many)
    rate = f"Adam's (default {LEARNING_RATE}, the report's)"
    parser.add_argument("--learning-rate", type=cli.positive, default=LEARNING_RATE, help=rate)
    kl = f"lambda, the KL term's weight (default {KL_WEIGHT:g})"
    parser.add_argument("--kl-weight", type=cli.weight, default=KL_WEIGHT, help=kl)
    parser.add_argument("--latent", type=cli.count, default=LATENT, help=f"latent size (default {LATENT}; 32, 64, 128)")
    closer = "for samples_closer.png: z ~ N(0, T^2 I), closer to the centre (default 0.5)"
    parser.add_argument("--temperature", type=cli.positive, default=0.5, help=closer)
    table = '"table": the report\'s table 2 as printed (default); "mirror": its second stride read as 2'
    parser.add_argument("--decoder", choices=["table", "mirror"], default="table", help=table)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train, generate and evaluate; returns the numbers it printed (for tests)."""
    args = parse_args(argv)
    run = cli.Run(args.out, args.device)
    options = {"target_device": args.device, "batch_size": 128}

    limit = args.train_images or (DEMO_IMAGES if args.data is None else None)
    train, validation, test, described = load_data(args.data, limit, args.seed)
    print(f"data: {described}")
    print(f"      {len(train)} training, {len(validation)} validation, {len(test)} test pictures, 3x{HEIGHT}x{WIDTH}")
    plan = cli.schedule(len(train), args.batch_size, args.epochs, args.iterations, DEMO_EPOCHS)
    print(f"schedule: {plan.description} = {plan.total} batches; Adam, learning rate {args.learning_rate}")
    print(f"loss: mean squared error per pixel + {args.kl_weight:g} * KL; latent size {args.latent}")

    vae = build_vae(args.latent, decoder=args.decoder)
    summary = NetSummary(vae)
    encoder, decoder = (
        sum(r.parameters for r in summary.rows if r.path.split("/")[0] in part)
        for part in (("enc", "mn", "logvar"), ("dec",))
    )
    rows, columns = decoder_grid(decoder=args.decoder)
    print(
        f"net: {summary.total_parameters:,} parameters: encoder {encoder:,} (8 convolutions to 256x4x3 = 3072, "
        f"then mean and log-variance), decoder {decoder:,} (from 256x{rows}x{columns}, --decoder {args.decoder})"
    )
    draw(vae, run.out / "vae.png")
    print(f"training on the {args.device}...")
    results = NetTrain(
        vae,
        (batches(train, plan.batch_size, args.seed), {"RoundLength": len(train)}),
        "All",
        loss_function={"Loss": 1.0, "KL": args.kl_weight},
        method=("ADAM", {"learning_rate": args.learning_rate}),
        batch_size=plan.batch_size,
        max_training_rounds=plan.rounds,
        validation_set={"Input": to_float(validation, range=RANGE)},
        training_progress_function=plan.stop,
        target_device=args.device,
        random_seeding=args.seed,
    )
    trained = cli.training_summary(results, keep="final" if args.iterations else "best", digits=4)
    trained.save(run.out / "vae.npz")
    cli.save_loss_plot(results, run.out / "loss.png", f"face VAE: MSE + {args.kl_weight:g} KL per picture")

    # the posterior q(z|x) = N(mn, exp(logvar)), the decoder "dec"
    encode, decode = vae_parts(trained, ("mn", "logvar"), scale="log_variance", **options)
    x_test, rng, shown = to_float(test, range=RANGE), np.random.default_rng(args.seed), dict(value_range=RANGE, scale=2)
    faces = sample_prior(decode, 64, args.latent, seed=rng)
    save_png(image_grid(faces, columns=8, **shown), run.out / "samples.png")
    closer = sample_prior(decode, 64, args.latent, temperature=args.temperature, seed=rng)
    save_png(image_grid(closer, columns=8, **shown), run.out / "samples_closer.png")
    rows = [x_test[:12], reconstruct(encode, decode, x_test[:12])]
    save_png(interpolation_strip(rows, row_labels=["input", "output"], **shown), run.out / "reconstructions.png")
    mean, log_var = encode(x_test)
    paths = [interpolate(decode, mean[i], mean[i + 1], 10) for i in range(0, min(12, len(x_test) - 1), 2)]
    if paths:
        steps = [f"{t:.2f}" for t in np.linspace(0, 1, 10)]
        save_png(interpolation_strip(paths, labels=steps, **shown), run.out / "interpolation.png")

    # the test loss, the training objective, with one z ~ q(z|x) per picture as in training
    z = mean + np.exp(0.5 * log_var) * np.random.default_rng(args.seed).standard_normal(mean.shape)
    mse = float(np.mean((decode(z) - x_test) ** 2))
    kl = float(np.mean(0.5 * np.sum(mean**2 + np.exp(log_var) - 1 - log_var, axis=1)))
    numbers = {
        "test_mse": mse,
        "test_kl": kl,
        "test_loss": mse + args.kl_weight * kl,
        "train_seconds": results["TotalTrainingTime"],
        "images_per_second": results["MeanExamplesPerSecond"],
        "parameters": summary.total_parameters,
    }
    print(f"\ntest set: {len(x_test)} pictures, one z ~ q(z|x) each")
    print(f"  mean squared error per pixel {mse:.4f} (pixels in [-1, 1]), KL {kl:.1f} nats per picture")
    print(f"  test loss {numbers['test_loss']:.4f} = {mse:.4f} + {args.kl_weight:g} * {kl:.1f}")
    print(f"  posterior standard deviations: median {float(np.median(np.exp(0.5 * log_var))):.3f} (the prior's is 1)")
    numbers["total_seconds"] = run.report(
        [
            ("samples.png", "64 generated faces: the decoder fed z ~ N(0, I)"),
            ("samples_closer.png", f"64 generated faces from z ~ N(0, {args.temperature:g}^2 I), closer to the centre"),
            ("reconstructions.png", "test pictures (top) and their reconstructions from the posterior mean"),
            ("interpolation.png", "per row, linear interpolation between the codes of two test pictures"),
            ("loss.png", "loss per round and batch, and validation loss"),
            ("vae.png", "the network"),
            ("vae.npz", 'the trained net (netgraph.load; the decoder is NetExtract(net, "dec"))'),
        ],
        training=results["TotalTrainingTime"],
    )
    return numbers


if __name__ == "__main__":
    cli.run_main(main)
