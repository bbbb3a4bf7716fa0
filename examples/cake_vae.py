"""The convolutional VAE of "Image Generation with a Variational Autoencoder" (pictures of cakes) in netgraph form,
trained with NetTrain and its early stopping: the deconvolution VAE of the Keras examples on grey 100x100 pictures,
150 latent dimensions, a binary cross-entropy loss with the KL term left out (--kl-weight puts it back), Adam at
1e-4, stopping after 25 rounds without a lower validation loss. As there, a picture is generated every round and a
reconstruction every 10 rounds (NetTrain's training_progress_function); --overfit trains on every picture, without
validation or early stopping (the write-up's second run). It also writes samples beside their nearest training
pictures and prints how far they are, next to how far unseen pictures are: a number on the write-up's finding that
an overfit net generates near-copies of its inputs.

    python examples/cake_vae.py                              # Fashion-MNIST bags stand in (about 5 min)
    python examples/cake_vae.py --size 28 --epochs 60        # a quicker look at the net learning
    python examples/cake_vae.py --data cakes/ --epochs 1000  # the write-up's run: stops early (it did at 156)
    python examples/cake_vae.py --data cakes/ --overfit --epochs 500   # the write-up's overfit run
    python examples/cake_vae.py --kl-weight 1                # a true VAE: the KL term added back
    python examples/cake_vae.py --checkpoint runs/cake --resume   # a checkpoint every round; continue from the newest

Data: --data is a folder of pictures, made grey, centre-cropped and resized to 100x100 as OpenCV's INTER_LINEAR does
(the write-up's preprocessing), or of MNIST-format files or CIFAR-10 batches; 20% are held out for validation.
Without --data, Fashion-MNIST stands in: its first 100 pictures of one kind (--fashion-class, "Bag" by default),
upscaled. The write-up trained on 431 pictures until early stopping ended it after 156 rounds; the default here, 10
rounds over 80 pictures in batches of 32 (Keras's default), takes about 5 minutes on a 2-core CPU and leaves the
pictures as noise; at --size 28 training runs 6 times faster, and --epochs 60 shows the outline and handle of a bag.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from layers import (
    ConvolutionLayer,
    CrossEntropyLossLayer,
    DeconvolutionLayer,
    ElementwiseLayer,
    FlattenLayer,
    LinearLayer,
    RandomArrayLayer,
    ReshapeLayer,
    SummationLayer,
    ThreadingLayer,
)
from netgraph import NetChain, NetGraph, NetPort, NetSummary, TrainingError, cli, draw, exp
from netgraph.datasets import FASHION_MNIST_CLASSES, to_float
from netgraph.distributions import NormalDistribution
from netgraph.generate import cross_entropy, nearest_neighbours, vae_parts
from netgraph.images import interpolation_strip

SIZE, NLATENT = 100, 150  # grey 100x100 pictures; "the number of dimensions to reduce the inputs to ... 150"
HIDDEN, FILTERS = 128, 64  # the Keras example's intermediate_dim and convolution filters, which the write-up keeps
LEARNING_RATE = 1e-4  # "the default learning rate (0.001) caused the model to diverge"
PATIENCE = 25  # "stop when the validation data loss stopped reducing for 25 epochs"
GENERATE_EVERY, RECONSTRUCT_EVERY = 1, 10  # "a randomly generated image on every epoch", a reconstruction every 10
VALIDATION_FRACTION, DEMO_IMAGES, DEMO_EPOCHS = 0.2, 100, 10  # DEMO_IMAGES: Fashion-MNIST pictures without --data
picture_scale = lambda size: max(1, -(-64 // size))  # PNGs enlarged to at least 64 pixels, room for labels

# --- the net -----------------------------------------------------------------------------------------------
# fmt: off


def build_encoder(size: int = SIZE) -> NetChain:
    """1×size×size → 64×(size/2)×(size/2) by four convolutions with Ramp, flattened, → Linear 128 with Ramp."""
    return NetChain([
        ConvolutionLayer(1, 2, padding_size="Same"), "Ramp",
        ConvolutionLayer(FILTERS, 2, stride=2, padding_size="Same"), "Ramp",
        ConvolutionLayer(FILTERS, 3, padding_size="Same"), "Ramp",
        ConvolutionLayer(FILTERS, 3, padding_size="Same"), "Ramp",
        FlattenLayer(), LinearLayer(HIDDEN), "Ramp",
    ], input=(1, size, size))


def build_decoder(size: int = SIZE, nlatent: int = NLATENT) -> NetChain:
    """nlatent → 128 → 64×(size/2)×(size/2), two deconvolutions, a stride-2 deconvolution to size+1, and a 2×2
    convolution with a LogisticSigmoid to 1×size×size (pixel probabilities)."""
    half = size // 2
    return NetChain([
        LinearLayer(HIDDEN), "Ramp",
        LinearLayer(FILTERS * half * half), "Ramp", ReshapeLayer((FILTERS, half, half)),
        DeconvolutionLayer(FILTERS, 3, padding_size="Same"), "Ramp",
        DeconvolutionLayer(FILTERS, 3, padding_size="Same"), "Ramp",
        DeconvolutionLayer(FILTERS, 3, stride=2), "Ramp",
        ConvolutionLayer(1, 2), "LogisticSigmoid",
    ], input=nlatent)


def build_vae(size: int = SIZE, nlatent: int = NLATENT) -> NetGraph:
    """The whole network: input "Input" (1, size, size), which is also the reconstruction's target, and the
    output ports "Loss" (binary cross-entropy summed over the pixels) and "KL" (the KL divergence from N(0, I)).

    "sd" is log σ, as in the Keras example, whose sampling multiplies ε by the exponential of its second
    Dense layer's output; the KL term is written for that reading.
    """
    if size < 2 or size % 2:
        raise ValueError(f"the picture size must be even (the encoder halves it), got {size}")
    return NetGraph({
        "enc": build_encoder(size), "mn": LinearLayer(nlatent), "sd": LinearLayer(nlatent),
        "eps": RandomArrayLayer(NormalDistribution(0, 1), output=nlatent),
        "z": ThreadingLayer(lambda m, s, e: m + exp(s) * e),
        "dec": build_decoder(size, nlatent),
        "bce": CrossEntropyLossLayer("Binary"), "scale": ElementwiseLayer(lambda x: size * size * x),
        "klTerms": ThreadingLayer(lambda m, s: 0.5 * (m**2 + exp(2 * s) - 1 - 2 * s)), "kl": SummationLayer(),
    }, [
        (NetPort("Input"), "enc", "mn"),
        ("enc", "sd"),
        (["mn", "sd", "eps"], "z", "dec", NetPort("bce", "Input")),
        (NetPort("Input"), NetPort("bce", "Target")),
        ("bce", "scale", NetPort("Loss")),
        (["mn", "sd"], "klTerms", "kl", NetPort("KL")),
    ], input=(1, size, size))
# fmt: on


def load_data(data: str | None, size: int, limit: int | None, fashion_class: str) -> tuple[np.ndarray, str, str]:
    """(pictures float32 (N, 1, size, size) in [0, 1], a short name, a description): --data read as the write-up did,
    grey, centre-cropped and resized as OpenCV's INTER_LINEAR; else Fashion-MNIST's first pictures of one kind."""
    label = None if fashion_class == "all" else FASHION_MNIST_CLASSES.index(fashion_class)
    kind = "pictures" if label is None else f"{fashion_class!r} pictures"
    how = f"its first {kind}, " + (f"resized from 28×28 to {size}×{size}" if size != 28 else "at their own 28×28")
    found = cli.pictures(data, size, stands_in_for="the write-up's cake photographs", how=how, resampling="OpenCV",
                         label=label, limit=limit or (DEMO_IMAGES if data is None else None))  # fmt: skip
    return to_float(found.images), found.name, found.description


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train with pictures written along the way, then generate and compare; returns the printed numbers."""
    parser = cli.parser("cake_vae.py", __doc__)
    data, seed = "a folder of pictures (default: Fashion-MNIST stands in)", "random seed (all draws)"
    cli.standard_options(parser, data=data, out="out/cake_vae", seed=seed)
    most = f"most training rounds (default {DEMO_EPOCHS}; early stopping may end training sooner)"
    cli.schedule_options(parser, default_epochs=DEMO_EPOCHS, batch_size=32, iterations=False, epochs_help=most,
                         batch_help="pictures per batch")  # fmt: skip
    cli.option(parser, "--overfit", False, "train on every picture: no validation, no stopping")
    cli.option(parser, "--kl-weight", 0.0, "weight of the KL term (default 0, as the seed)", type=cli.weight)
    cli.option(parser, "--learning-rate", LEARNING_RATE, "Adam's learning rate")
    cli.option(parser, "--patience", PATIENCE, "rounds without improvement before stopping", minimum=0)
    cli.option(parser, "--train-images", int, f"use only the first N pictures (default all; {DEMO_IMAGES} stand-ins)")
    cli.option(parser, "--fashion-class", "Bag", "the Fashion-MNIST kind that stands in without --data",
               choices=[*FASHION_MNIST_CLASSES, "all"])  # fmt: skip
    cli.option(parser, "--size", SIZE, "picture side, even (default 100, as the seed)", minimum=2)
    if (args := parser.parse_args(argv)).size % 2:
        parser.error(f"--size must be an even number of pixels, at least 2, got {args.size}")
    run, scale = cli.Run(args), picture_scale(args.size)

    images, name, text = load_data(args.data, args.size, args.train_images, args.fashion_class)
    train, validation = (images, images[:0]) if args.overfit else cli.hold_out(images, VALIDATION_FRACTION, args.seed)
    cli.report_data(text, "pictures", " (--overfit)" * args.overfit, training=len(train), validation=len(validation))
    plan = cli.schedule(len(train), args.batch_size, args.epochs, None, DEMO_EPOCHS)
    stopping = {"Criterion": "Loss", "Patience": args.patience} if len(validation) else None
    stops = (f"early stopping: after {args.patience} rounds without a lower validation loss" if stopping
             else "no validation pictures, so no early stopping: every round is trained")  # fmt: skip
    cli.report_schedule(plan, f"Adam, learning rate {args.learning_rate}; loss = cross-entropy + {args.kl_weight} × KL",
                        stops, "(the write-up: early stopping after 156 rounds over 431 pictures; overfit, 500+)",
                        unit="pictures", at_most=True)  # fmt: skip

    vae = build_vae(args.size)
    print(f"net: {vae}\n     {(parameters := NetSummary(vae).total_parameters):,} parameters")
    draw(vae, run.path("vae.png", "the network"))
    shown = (validation if len(validation) else train)[0]  # generated every round, reconstructed every 10
    by_round = cli.RoundPictures(run.out / "rounds", shown, NLATENT, seed=args.seed, device=args.device, scale=scale,
                                 generate_every=GENERATE_EVERY, reconstruct_every=RECONSTRUCT_EVERY)  # fmt: skip
    print(f"training on the {args.device}...")
    # NOTE: a KL weight of 0 leaves the port out: 0 × an overflowed KL would be NaN and stop training
    # NetTrain for the schedule `plan`, with --checkpoint and --resume; on a failure the last good net is kept
    results = cli.train(run, vae, {"Input": train}, "All", plan,
                        loss_function={"Loss": 1.0, "KL": args.kl_weight} if args.kl_weight else "Loss",
                        method=("ADAM", {"learning_rate": args.learning_rate}), training_stopping_criterion=stopping,
                        validation_set={"Input": validation} if len(validation) else None,
                        training_progress_function=(by_round, {"Interval": ("Rounds", 1)}),
                        target_device=args.device, random_seeding=args.seed, saved="cake_vae.npz")  # fmt: skip
    trained = cli.training_summary(results, unit="pictures", digits=1, losses="nats per picture")
    trained.save(run.path("cake_vae.npz", 'the trained net (netgraph.load; the decoder is NetExtract(net, "dec"))'))
    title = f"cake VAE on {name}: cross-entropy + {args.kl_weight} KL per picture"
    cli.save_loss_plot(results, run.path("loss.png", "round and validation loss per training round"), title)
    if (strip := by_round.strip()) is not None:
        run.png("progress.png", "pictures generated (and reconstructed) during training, by round", strip)
    made = len(by_round.generated), len(by_round.reconstructed)
    run.path("rounds", f"{made[0]} generated picture(s), one per round; {made[1]} reconstruction(s), every 10 rounds")

    # samples from the prior (with the KL weight 0 nothing draws q(z|x) towards N(0, I): they are a test of luck);
    # reconstructions from the posterior mean, of training pictures, then of unseen ones
    encode, decode = vae_parts(trained, target_device=args.device, batch_size=64)
    samples = cli.vae_pictures(run, decode, NLATENT, encode, {"training": train, "validation": validation},
                               seed=args.seed, scale=scale, shown=8, what="pictures")  # fmt: skip
    # how close the samples come to the training pictures, next to how close unseen pictures come
    index, gaps = nearest_neighbours(samples, train)
    strip = interpolation_strip([samples[:8], train[index[:8]]], row_labels=["sample", "nearest"], scale=scale)
    run.png("nearest.png", "samples (top) over their nearest training pictures", strip)
    numbers: dict[str, Any] = {
        "parameters": parameters, "rounds": results["TotalRounds"], "best_round": results["BestValidationRound"],
        "train_seconds": results["TotalTrainingTime"], "pictures_per_second": results["MeanExamplesPerSecond"],
        "round_loss": results["RoundLoss"], "validation_loss": results["ValidationLoss"],
        "sample_nearest_rms": float(gaps.mean())}  # fmt: skip
    print("\nsamples: RMS pixel difference (0..1) from each sample to its nearest training picture, mean over 64: "
          f"{numbers['sample_nearest_rms']:.3f}")  # fmt: skip
    if len(validation):
        numbers["validation_nearest_rms"] = gap = float(nearest_neighbours(validation, train)[1].mean())
        entropy = float(np.mean(cross_entropy(validation, decode(encode(validation)[0]))))
        numbers["validation_cross_entropy"] = entropy
        closer = "closer than" if numbers["sample_nearest_rms"] < gap else "no closer than"
        print(f"         the same for the {len(validation)} validation pictures: {gap:.3f} (the samples come {closer} "
              f"unseen pictures of the same kind)\nvalidation cross-entropy, decoding the posterior mean: {entropy:.1f}"
              f" nats per picture ({entropy / args.size**2:.4f} per pixel);\n  the validation losses above decode a z "
              "drawn from q(z|x), as training does")  # fmt: skip
    numbers["total_seconds"] = run.report(training=results["TotalTrainingTime"])
    return numbers


if __name__ == "__main__":
    hint = "the write-up found a learning rate of 0.001 too high; try a lower --learning-rate"
    cli.run_main(main, {TrainingError: hint})
