"""The face VAE of the report "Image generation with Variational Autoencoders (VAE)" (CelebA, University of Pavia
/ Milano) in netgraph form: RGB pictures 48 wide and 64 high (the report's "64 by 48") in [-1, 1], flipped left-right
at random in every batch; the encoder and decoder of its tables 1 and 2, with instance normalisation (no learnable
scale and shift, as PyTorch's InstanceNorm2d) and ReLUs, the decoder ending in tanh; the loss reconstruction (mean
squared error per pixel) + lambda * KL, with Adam at 0.001. It writes the trained net, faces generated from z ~ N(0, I)
and from z ~ N(0, T^2 I) (--temperature; the report moved z closer to the centre by a stronger KL term instead), test
pictures over their reconstructions, interpolations between their codes, the loss plot and a drawing of the net.

    python examples/faces_vae.py                          # Fashion-MNIST stands in for CelebA (4-7 min)
    python examples/faces_vae.py --data img_align_celeba/ --epochs 10     # the report's data
    python examples/faces_vae.py --kl-weight 1e-3 --latent 32             # the report's other settings
    python examples/faces_vae.py --data img_align_celeba/ --epochs 10 --checkpoint runs/faces --resume  # resumable

The defaults are the report's best model; it gives neither its batch size (64 here) nor how long it trained. The
default schedule, 2 rounds over 1,500 pictures (4 to 7 minutes on a 2-core CPU), is a smoke test with blurry results;
a real run takes all of CelebA's 202,599 faces for --epochs 10 or more, on a GPU (--device GPU).

Data: --data is a folder of pictures (CelebA's img_align_celeba/ or any other), of CIFAR-10 batches or of IDX files,
centre-cropped to 3:4 and resized to 48x64; 5% (at most 1,000) are held out for validation and 5% as the test set.
Without --data, Fashion-MNIST stands in for CelebA, its grey copied to R, G and B.
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
from netgraph import NetChain, NetGraph, NetPort, NetSummary, NormalDistribution, cli, draw, exp
from netgraph.datasets import DatasetError, split, to_float
from netgraph.generate import vae_parts

WIDTH, HEIGHT, CHANNELS, RANGE = 48, 64, 3, (-1.0, 1.0)  # the report's 64 by 48 (height, width), tanh's range
KL_WEIGHT, LATENT, LEARNING_RATE = 1e-5, 64, 1e-3  # the report's best lambda and latent size; Adam's rate
BATCH_SIZE = 64  # not given by the report
DEMO_IMAGES, DEMO_EPOCHS = 1500, 2  # the default schedule: 4 to 7 minutes on 2 CPU cores
HELD_OUT, MAX_HELD_OUT = 0.05, 1000  # validation and test fractions, each at most MAX_HELD_OUT pictures
# PyTorch's InstanceNorm2d with its defaults: epsilon 1e-5, no learnable scale or shift (affine=False)
instance_norm = lambda: NormalizationLayer(epsilon=1e-5, scaling=None, biases=None)

# --- the net, as in the report's tables -----------------------------------------------------------------


def build_encoder(width: int = WIDTH, height: int = HEIGHT) -> NetChain:
    """Table 1: 8 convolutions (kernel 4 stride 2, then kernel 3 stride 1; padding 1), each with instance normalisation
    and a ReLU, 3 → 32 → 32 → 64 → 64 → 128 → 128 → 256 → 256 channels, flattened: 3×64×48 → 256×4×3 → 3072."""
    layers: list[Any] = []
    for n in (32, 64, 128, 256):
        layers += [ConvolutionLayer(n, 4, stride=2, padding_size=1), instance_norm(), "Ramp"]
        layers += [ConvolutionLayer(n, 3, stride=1, padding_size=1), instance_norm(), "Ramp"]
    return NetChain([*layers, FlattenLayer()], input=(CHANNELS, height, width))


def decoder_grid(width: int = WIDTH, height: int = HEIGHT, decoder: str = "table") -> tuple[int, int]:
    """(rows, columns) of the 256-channel grid the decoder starts from to end at height × width. As tabled, its second
    transposed convolution (kernel 4, stride 1, padding 1) adds a row and a column and only three of the eight double
    the size: h × w grows to 8 (h + 1) × 8 (w + 1). "mirror" reads that stride as 2 (a likely misprint)."""
    return (height // 8 - 1, width // 8 - 1) if decoder == "table" else (height // 16, width // 16)


def build_decoder(latent: int = LATENT, width: int = WIDTH, height: int = HEIGHT, decoder: str = "table") -> NetChain:
    """Table 2: a fully connected layer, a reshape to 256 channels, 8 transposed convolutions (kernel 3 stride 1, then
    kernel 4; padding 1) with instance normalisation and ReLU between them, 256 → ... → 32 → 3 channels, and tanh."""
    rows, columns = decoder_grid(width, height, decoder)
    layers: list[Any] = [LinearLayer(256 * rows * columns), ReshapeLayer((256, rows, columns))]
    for i, (n, m) in enumerate(((256, 128), (128, 64), (64, 32), (32, CHANNELS))):
        stride = 1 if (i == 0 and decoder == "table") else 2  # the table's second layer has stride 1
        layers += [DeconvolutionLayer(n, 3, stride=1, padding_size=1), instance_norm(), "Ramp"]
        layers += [DeconvolutionLayer(m, 4, stride=stride, padding_size=1)]
        layers += [instance_norm(), "Ramp"] if m != CHANNELS else ["Tanh"]
    return NetChain(layers, input=latent)


def build_vae(latent: int = LATENT, width: int = WIDTH, height: int = HEIGHT, decoder: str = "table") -> NetGraph:
    """The whole net: "Input" (3, height, width) in [-1, 1], also the reconstruction's target, and two loss ports:
    "Loss", the mean squared error per pixel, and "KL", the KL divergence of q(z|x) = N(mn, e^logvar) from N(0, I)."""
    if any(side % 16 or (decoder == "table" and side < 16) for side in (width, height)):
        raise ValueError(f"width and height must each be a multiple of 16 (four halvings), got {width}×{height}")
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


def load_data(data: str | None, limit: int | None, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(training, validation, test pictures, a description), each uint8 (N, 3, 64, 48); ``limit`` keeps the first
    N training pictures (the held-out ones come on top of it; default 1,500 without --data)."""
    limit = limit or (DEMO_IMAGES if data is None else None)
    options = {"color_space": "RGB", "stands_in_for": "the report's CelebA faces"}
    if data is None:
        held = MAX_HELD_OUT if limit is None else min(MAX_HELD_OUT, max(2, round(HELD_OUT * limit)))
        how = "grey channel copied to RGB, 28x28 centre-cropped to 21x28 and resized to 48x64"
        sets = cli.picture_sets(None, (WIDTH, HEIGHT), train=limit and limit + held, test=held, how=how, **options)
        return sets.train[held:], sets.train[:held], sets.test, sets.description
    found = cli.pictures(data, (WIDTH, HEIGHT), **options)
    if (n := len(found.images)) < 3:
        raise DatasetError(f"{data}: {n} usable picture(s); at least 3 are needed (training, validation, test)")
    held = min(MAX_HELD_OUT, max(2, round(HELD_OUT * n))) if n >= 6 else 1
    train, validation, test = split(found.images, fractions=((n - 2 * held) / n, held / n, held / n), seed=seed)
    return train[:limit], validation, test, found.description


def batches(train: np.ndarray, batch_size: int, seed: int) -> Any:
    """NetTrain's generator function: the batch ``info["Batch"]`` of round ``info["Round"]`` as [-1, 1] floats, in an
    order drawn from (seed, round), each picture flipped left-right with probability 1/2 drawn from (seed, absolute
    batch number): a function of ``info`` alone, so that a run resumed from a checkpoint sees the same batches.
    Under ``mpiexec`` each process gives its share of the batch (``info["Rank"]`` of ``info["WorldSize"]``)."""

    def generate(info: dict[str, Any]) -> dict[str, np.ndarray]:
        order = np.random.default_rng((seed, info["Round"])).permutation(len(train))
        images = train[order[(info["Batch"] - 1) * batch_size : info["Batch"] * batch_size]]
        flip = np.random.default_rng((seed, 1, info["AbsoluteBatch"])).random(len(images)) < 0.5
        images[flip] = images[flip][..., ::-1]
        mine = np.array_split(np.arange(len(images)), info.get("WorldSize", 1))[info.get("Rank", 0)]
        return {"Input": to_float(images[mine], range=RANGE)}

    return generate


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train, generate and evaluate; returns the numbers it printed (for tests)."""
    parser = cli.parser("faces_vae.py", __doc__)
    data = "a folder of pictures (CelebA), CIFAR-10 or IDX files"
    cli.standard_options(parser, data=data, out="out/faces_vae", seed="random seed (all draws)")
    cli.schedule_options(parser, default_epochs=DEMO_EPOCHS, batch_size=BATCH_SIZE, batch_help="pictures per batch")
    cli.option(parser, "--train-images", int, f"train on N pictures (default {DEMO_IMAGES}; with --data all)")
    cli.option(parser, "--learning-rate", LEARNING_RATE, "Adam's (default 0.001, the report's)")
    cli.option(parser, "--kl-weight", KL_WEIGHT, "lambda, the KL weight (the report: 1e-3 to 1e-6)", type=cli.weight)
    cli.option(parser, "--latent", LATENT, "latent size (default 64; the report tried 32, 64, 128)")
    cli.option(parser, "--temperature", 0.5, "for samples_closer.png: z ~ N(0, T^2 I), closer to the centre")
    cli.option(parser, "--decoder", "table", 'table 2 as printed, or "mirror": its second stride read as 2',
               choices=["table", "mirror"])  # fmt: skip
    args = parser.parse_args(argv)
    run = cli.Run(args)

    train, validation, test, text = load_data(args.data, args.train_images, args.seed)
    parts = {"training": len(train), "validation": len(validation), "test": len(test)}
    cli.report_data(text, f"pictures, 3x{HEIGHT}x{WIDTH}", **parts)
    plan = cli.schedule(len(train), args.batch_size, args.epochs, args.iterations, DEMO_EPOCHS)
    loss = f"loss: mean squared error per pixel + {args.kl_weight:g} * KL; latent size {args.latent}"
    cli.report_schedule(plan, f"Adam, learning rate {args.learning_rate}", loss, unit="pictures")

    vae = build_vae(args.latent, decoder=args.decoder)
    total, decoder = (NetSummary(net).total_parameters for net in (vae, vae.vertices["dec"]))
    grid = "x".join(str(n) for n in (256, *decoder_grid(decoder=args.decoder)))
    print(f"net: {total:,} parameters: encoder {total - decoder:,} (8 convolutions to 256x4x3 = 3072, then mean and "
          f"log-variance), decoder {decoder:,} (from {grid}, --decoder {args.decoder})")  # fmt: skip
    draw(vae, run.path("vae.png", "the network"))
    print(f"training on the {args.device}...")
    # NetTrain for the schedule `plan`, with --checkpoint and --resume; on a failure the last good net is kept
    results = cli.train(run, vae, (batches(train, plan.batch_size, args.seed), {"RoundLength": len(train)}), "All",
                        plan, loss_function={"Loss": 1.0, "KL": args.kl_weight},
                        method=("ADAM", {"learning_rate": args.learning_rate}),
                        validation_set={"Input": to_float(validation, range=RANGE)}, target_device=args.device,
                        random_seeding=args.seed, value_range=RANGE)  # fmt: skip
    trained = cli.training_summary(results, keep="final" if args.iterations else "best", digits=4)
    trained.save(run.path("vae.npz", 'the trained net (netgraph.load; the decoder is NetExtract(net, "dec"))'))
    title = f"face VAE: MSE + {args.kl_weight:g} KL per picture"
    cli.save_loss_plot(results, run.path("loss.png", "loss per round and batch, and validation loss"), title)

    # the posterior q(z|x) = N(mn, exp(logvar)), the decoder "dec"; faces from z ~ N(0, I) and from closer to the centre
    options = {"target_device": args.device, "batch_size": 128}
    encode, decode = vae_parts(trained, ("mn", "logvar"), scale="log_variance", **options)
    x_test, rng, shown = to_float(test, range=RANGE), np.random.default_rng(args.seed), dict(value_range=RANGE, scale=2)
    cli.vae_pictures(run, decode, args.latent, encode, x_test, seed=rng, shown=12, interpolation="linear", steps=10,
                     said="64 generated faces: the decoder fed z ~ N(0, I)", **shown)  # fmt: skip
    closer = f"64 generated faces from z ~ N(0, {args.temperature:g}^2 I), closer to the centre"
    cli.vae_pictures(run, decode, args.latent, seed=rng, temperature=args.temperature, samples="samples_closer.png",
                     said=closer, **shown)  # fmt: skip
    mean, log_var = encode(x_test)

    # the test loss, the training objective, with one z ~ q(z|x) per picture as in training
    z = mean + np.exp(0.5 * log_var) * np.random.default_rng(args.seed).standard_normal(mean.shape)
    mse = float(np.mean((decode(z) - x_test) ** 2))
    kl = float(np.mean(0.5 * np.sum(mean**2 + np.exp(log_var) - 1 - log_var, axis=1)))
    numbers = {"test_mse": mse, "test_kl": kl, "test_loss": mse + args.kl_weight * kl, "parameters": total,
               "train_seconds": results["TotalTrainingTime"],
               "images_per_second": results["MeanExamplesPerSecond"]}  # fmt: skip
    print(f"\ntest set: {len(x_test)} pictures, one z ~ q(z|x) each\n  mean squared error per pixel {mse:.4f} "
          f"(pixels in [-1, 1]), KL {kl:.1f} nats per picture\n  test loss {numbers['test_loss']:.4f} = {mse:.4f} + "
          f"{args.kl_weight:g} * {kl:.1f}\n  posterior standard deviations: median "
          f"{np.median(np.exp(0.5 * log_var)):.3f} (the prior's is 1)")  # fmt: skip
    numbers["total_seconds"] = run.report(training=results["TotalTrainingTime"])
    return numbers


if __name__ == "__main__":
    cli.run_main(main)
