"""The convolutional variational autoencoder of "Image Generation with a Variational Autoencoder"
(pictures of cakes), in netgraph form, trained with NetTrain and its early stopping.

The write-up adapts the deconvolution VAE of the Keras examples (linked from the Keras blog's
"Building Autoencoders in Keras") to grey 100x100 pictures: 150 latent dimensions, a binary
cross-entropy reconstruction loss with the Kullback-Leibler term left out (--kl-weight puts it
back), Adam at a learning rate of 1e-4, and training that stops when the validation loss has not
improved for 25 rounds. As there, a generated picture is written every round and a
reconstruction every 10 rounds, from NetTrain's training_progress_function; --overfit trains on
every picture with no validation and no early stopping (the write-up's second run).

    encoder "enc":  1x100x100 -> Conv 1 (2x2, same) -> Conv 64 (2x2, stride 2, same) -> 64x50x50
                    -> Conv 64 (3x3, same) -> Conv 64 (3x3, same) -> flatten -> Linear 128
    "mn", "sd":     Linear 150 each: the mean and log sigma of q(z|x); z = mn + Exp[sd] * eps
    decoder "dec":  150 -> Linear 128 -> Linear 64*50*50 -> 64x50x50 -> Deconv 64 (3x3, same) x 2
                    -> Deconv 64 (3x3, stride 2) -> 64x101x101 -> Conv 1 (2x2) -> LogisticSigmoid
    (a Ramp after every convolution and Linear layer but mn, sd and the last; 41.4 million parameters)
    losses:         "Loss" = binary cross-entropy summed over the pixels (nats per picture),
                    "KL" = the KL divergence of q(z|x) from N(0, I), weighted 0 by default

It writes to --out: the trained net, 64 samples from N(0, I), pictures over their
reconstructions, samples beside their nearest training pictures, the per-round pictures in
rounds/, a strip of them, the loss plot and a drawing of the net. It prints how far the samples
are from their nearest training pictures, next to how far unseen pictures are, which puts a number
on the write-up's finding that an overfit net generates near-copies of its inputs.

    python examples/cake_vae.py                              # Fashion-MNIST bags stand in (about 5 min)
    python examples/cake_vae.py --size 28 --epochs 60        # a quicker look at the net learning
    python examples/cake_vae.py --data cakes/ --epochs 1000  # the write-up's run: stops early (it did at 156)
    python examples/cake_vae.py --data cakes/ --overfit --epochs 500   # the write-up's overfit run
    python examples/cake_vae.py --kl-weight 1                # a true VAE: the KL term added back

Data: --data is a folder of pictures (any size; files that cannot be read are skipped and
listed). Each is made grey, its longer side cropped to the shorter one about the centre, and
resized to 100x100 as OpenCV's INTER_LINEAR does, the write-up's preprocessing; pixels are scaled
to [0, 1]. A folder of MNIST-format files or CIFAR-10 batches is read too. Without --data,
Fashion-MNIST (Debian's dataset-fashion-mnist) stands in for the cake photographs: its first 100
pictures of one kind (--fashion-class, "Bag" by default: one kind of object, as the cakes were),
upscaled from 28x28. 20% of the pictures are held out for validation (the write-up does not say
how many it held out).

Schedule: the write-up trained on 431 pictures until early stopping ended it after 156 rounds
(about 2,000 updates); the batch size is not given, so Keras's default of 32 is used. On a 2-core
CPU this net trains at about 3.5 pictures per second, so the default is 10 rounds over 80
pictures, about 5 minutes: that shows the whole pipeline, but 30 small Adam steps leave the
pictures as noise. --epochs 1000 is the write-up's run (early stopping ends it; hours on a CPU),
--train-images N takes the first N pictures only. Every layer scales with --size, and at 28
(Fashion-MNIST's own size) training runs about 6 times faster: --size 28 --epochs 60 takes about
4 minutes, and by its last rounds the reconstructions show the outline and handle of a bag.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

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
from netgraph import (
    NetChain,
    NetExtract,
    NetGraph,
    NetPort,
    NetSummary,
    NetTrain,
    NormalDistribution,
    TrainingError,
    cli,
    draw,
    exp,
)
from netgraph.datasets import FASHION_MNIST_CLASSES, DatasetError, image_folder, load_images, to_float
from netgraph.generate import sample_prior, vae_parts
from netgraph.images import image_grid, interpolation_strip, save_png

SIZE = 100  # the write-up's pictures: grey, 100x100
NLATENT = 150  # "the number of dimensions to reduce the inputs to was increased to 150"
HIDDEN = 128  # the Keras example's intermediate_dim, which the write-up does not change
FILTERS = 64  # the Keras example's number of convolution filters
LEARNING_RATE = 1e-4  # "the default learning rate (0.001) caused the model to diverge"
PATIENCE = 25  # "stop when the validation data loss stopped reducing for 25 epochs"
GENERATE_EVERY = 1  # "a randomly generated image on every epoch"
RECONSTRUCT_EVERY = 10  # "and a reconstructed input image every 10 epochs"
VALIDATION_FRACTION = 0.2
DEMO_IMAGES = 100  # Fashion-MNIST pictures used when there is no --data
DEMO_EPOCHS = 10

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
# --- data ----------------------------------------------------------------------------------------------------


def _upscale(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, 1, h, w) → uint8 (N, 1, size, size), bilinear (when enlarging, as OpenCV's INTER_LINEAR to
    within a grey level)."""
    out = [np.asarray(Image.fromarray(im[0], "L").resize((size, size), Image.Resampling.BILINEAR)) for im in images]
    return np.stack(out)[:, None]


def load_data(data: str | None, size: int, limit: int | None, fashion_class: str) -> tuple[np.ndarray, str, str]:
    """(pictures float32 (N, 1, size, size) in [0, 1], a short name, a description)."""
    if data is None:
        found = load_images(None, 28)
        chosen, kind = found.images, "pictures"
        if fashion_class != "all":
            chosen = chosen[found.labels == FASHION_MNIST_CLASSES.index(fashion_class)]
            kind = f"{fashion_class!r} pictures"
        chosen = chosen[: limit or DEMO_IMAGES]
        resized = f"resized from 28×28 to {size}×{size}" if size != 28 else "at their own 28×28"
        cli.stand_in("the write-up's cake photographs", f"its first {len(chosen)} {kind}, {resized}")
        described = f"{len(chosen)} Fashion-MNIST {kind} (grey, {size}×{size})"
        return to_float(_upscale(chosen, size)), "Fashion-MNIST", described
    folder = cli.data_folder(data, "a folder of pictures")
    try:  # the write-up's preprocessing: grey, centre crop, OpenCV INTER_LINEAR resize
        images, _, skipped = image_folder(folder, size, color_space="Grayscale", resampling="OpenCV")
        described = f"{len(images)} pictures from {folder} (grey, centre-cropped, {size}×{size})"
    except DatasetError as err:
        try:  # MNIST-format files or CIFAR-10 batches
            found = load_images(folder, size)
        except DatasetError:
            raise err from None
        images, skipped, described = found.images, found.skipped, f"{found.description} (grey, {size}×{size})"
    cli.list_skipped(skipped)
    if limit:
        images = images[:limit]
        described += f", the first {len(images)} used"
    return to_float(images), folder.name, described


# --- pictures written while training -----------------------------------------------------------------------


def picture_scale(size: int) -> int:
    """How many times to enlarge pictures of side ``size`` in the PNGs: at least 64 pixels, room for labels."""
    return max(1, math.ceil(64 / size))


class RoundPictures:
    """The training_progress_function: a picture generated from a fresh z ~ N(0, I) every round, and a
    reconstruction of one fixed picture every 10 rounds, written to ``folder`` and kept for a summary strip."""

    def __init__(self, folder: Path, picture: np.ndarray, nlatent: int, seed: int, device: str) -> None:
        self.folder = folder
        self.picture = picture[None]  # (1, 1, size, size)
        self.nlatent = nlatent
        self.rng = np.random.default_rng(seed)
        self.options = {"target_device": device}
        self.generated: dict[int, np.ndarray] = {}
        self.reconstructed: dict[int, np.ndarray] = {}
        folder.mkdir(parents=True, exist_ok=True)
        for old in [*folder.glob("generated_*.png"), *folder.glob("reconstruction_*.png")]:
            old.unlink()  # pictures of an earlier run into the same folder

    def __call__(self, progress: dict[str, Any]) -> None:
        net, done = progress["Net"], progress["Round"]
        if done % GENERATE_EVERY == 0:
            z = self.rng.standard_normal((1, self.nlatent))
            self.generated[done] = NetExtract(net, "dec")(z, **self.options)[0]
            save_png(self.generated[done], self.folder / f"generated_{done:04d}.png")
        if done % RECONSTRUCT_EVERY == 0:
            encode, decode = vae_parts(net, **self.options)
            self.reconstructed[done] = decode(encode(self.picture)[0])[0]
            cells = [self.picture[0], self.reconstructed[done]]
            scale = picture_scale(self.picture.shape[-1])
            pair = image_grid(cells, columns=2, labels=["input", f"round {done}"], scale=scale)
            save_png(pair, self.folder / f"reconstruction_{done:04d}.png")

    def strip(self, most: int = 10) -> Image.Image | None:
        """Up to ``most`` generated pictures, evenly spread over the rounds; under them the fixed picture and its
        latest reconstructions, each cell labelled with its round."""
        if not self.generated:
            return None
        rounds = sorted(self.generated)
        picked = sorted({rounds[round(i)] for i in np.linspace(0, len(rounds) - 1, min(most, len(rounds)))})
        cells = [self.generated[r] for r in picked]
        labels = [f"round {r}" for r in picked]
        if self.reconstructed:
            kept = sorted(self.reconstructed)[-max(1, len(picked) - 1) :]
            cells += [self.picture[0]] + [self.reconstructed[r] for r in kept]
            labels += ["input"] + [f"recon. {r}" for r in kept]
        return image_grid(cells, columns=len(picked), labels=labels, scale=picture_scale(cells[0].shape[-1]))


# --- measures ------------------------------------------------------------------------------------------------


def nearest(pictures: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each picture, the index of the nearest reference picture and the RMS pixel difference to it."""
    a = pictures.reshape(len(pictures), -1).astype(np.float64)
    b = references.reshape(len(references), -1).astype(np.float64)
    squared = (a**2).sum(1)[:, None] - 2 * a @ b.T + (b**2).sum(1)[None, :]
    index = squared.argmin(axis=1)
    return index, np.sqrt(np.maximum(squared[np.arange(len(a)), index], 0) / a.shape[1])


def cross_entropy(pictures: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Binary cross-entropy summed over the pixels, per picture, in nats (logs clamped at -100, as the loss layer)."""
    p = probabilities.astype(np.float64)
    with np.errstate(divide="ignore"):
        log_p, log_q = np.maximum(np.log(p), -100), np.maximum(np.log1p(-p), -100)
    terms = -(pictures * log_p + (1 - pictures) * log_q)
    return terms.reshape(len(pictures), -1).sum(axis=1)


# --- the run -------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> Any:
    parser = cli.parser("cake_vae.py", __doc__)
    seed = "random seed (initialisation, split, shuffling, sampling)"
    cli.standard_options(
        parser, data="a folder of pictures (default: Fashion-MNIST stands in)", out="out/cake_vae", seed=seed
    )
    most = f"most training rounds (default {DEMO_EPOCHS}; early stopping may end training sooner)"
    cli.schedule_options(
        parser,
        default_epochs=DEMO_EPOCHS,
        batch_size=32,
        iterations=False,
        epochs_help=most,
        batch_help="pictures per batch",
    )
    parser.add_argument("--overfit", action="store_true", help="train on every picture: no validation, no stopping")
    parser.add_argument(
        "--kl-weight", type=cli.weight, default=0.0, help="weight of the KL term (default 0, as the seed)"
    )
    parser.add_argument("--learning-rate", type=cli.positive, default=LEARNING_RATE, help="Adam's learning rate (1e-4)")
    parser.add_argument("--patience", type=int, default=PATIENCE, help="rounds without improvement before stopping")
    first = f"use only the first N pictures (default all; {DEMO_IMAGES} of Fashion-MNIST)"
    parser.add_argument("--train-images", type=cli.count, metavar="N", help=first)
    kinds, kind = (
        [*FASHION_MNIST_CLASSES, "all"],
        'the Fashion-MNIST kind that stands in without --data (default "Bag")',
    )
    parser.add_argument("--fashion-class", default="Bag", choices=kinds, help=kind)
    parser.add_argument("--size", type=int, default=SIZE, help=f"picture side, even (default {SIZE}, as the seed)")
    args = parser.parse_args(argv)
    if args.patience < 0:
        parser.error(f"--patience must be at least 0, got {args.patience}")
    if args.size < 2 or args.size % 2:
        parser.error(f"--size must be an even number of pixels, at least 2, got {args.size}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train with pictures written along the way, then generate and compare; returns the printed numbers."""
    args = parse_args(argv)
    run = cli.Run(args.out, args.device)
    options = {"target_device": args.device, "batch_size": 64}

    pictures, name, described = load_data(args.data, args.size, args.train_images, args.fashion_class)
    train, validation = (
        (pictures, pictures[:0]) if args.overfit else cli.hold_out(pictures, VALIDATION_FRACTION, args.seed)
    )
    print(f"data: {described}")
    print(f"      {len(train)} training, {len(validation)} validation pictures" + (" (--overfit)" * args.overfit))
    plan = cli.schedule(len(train), args.batch_size, args.epochs, None, DEMO_EPOCHS)
    stopping = {"Criterion": "Loss", "Patience": args.patience} if len(validation) else None
    print(
        f"schedule: at most {plan.description}; Adam, learning rate {args.learning_rate}; "
        f"loss = cross-entropy + {args.kl_weight} × KL"
    )
    if stopping:
        print(f"          early stopping: after {args.patience} rounds without a lower validation loss")
    else:
        print("          no validation pictures, so no early stopping: every round is trained")
    print("          (the write-up: early stopping after 156 rounds over 431 pictures; overfit, 500+ rounds)")

    vae = build_vae(args.size)
    parameters = NetSummary(vae).total_parameters
    print(f"net: {vae}\n     {parameters:,} parameters")
    draw(vae, run.out / "vae.png")
    shown = validation if len(validation) else train
    pictures_by_round = RoundPictures(run.out / "rounds", shown[0], NLATENT, args.seed, args.device)
    print(f"training on the {args.device}...")
    results = NetTrain(
        vae,
        {"Input": train},
        "All",
        # NOTE: a KL weight of 0 leaves the port out: 0 × an overflowed KL would be NaN and stop training
        loss_function={"Loss": 1.0, "KL": args.kl_weight} if args.kl_weight else "Loss",
        method=("ADAM", {"learning_rate": args.learning_rate}),
        batch_size=plan.batch_size,
        max_training_rounds=plan.rounds,
        validation_set={"Input": validation} if len(validation) else None,
        training_stopping_criterion=stopping,
        training_progress_function=(pictures_by_round, {"Interval": ("Rounds", 1)}),
        target_device=args.device,
        random_seeding=args.seed,
    )
    trained = cli.training_summary(results, unit="pictures", digits=1, losses="nats per picture")
    trained.save(run.out / "cake_vae.npz")
    cli.save_loss_plot(
        results, run.out / "loss.png", f"cake VAE on {name}: cross-entropy + {args.kl_weight} KL per picture"
    )
    if (strip := pictures_by_round.strip()) is not None:
        save_png(strip, run.out / "progress.png")

    # samples from the prior; with the KL weight 0 nothing draws q(z|x) towards N(0, I), so they are a test of luck
    encode, decode = vae_parts(trained, **options)
    samples = sample_prior(decode, 64, NLATENT, seed=args.seed)
    scale = picture_scale(args.size)
    save_png(image_grid(samples, columns=8, scale=scale), run.out / "samples.png")
    # reconstructions from the posterior mean: training pictures, then unseen ones
    rows, names = [], []
    for part, label in ((train, "training"), (validation, "validation")):
        if len(part):
            rows += [part[:8], decode(encode(part[:8])[0])]
            names += [label, "reconstructed"]
    save_png(interpolation_strip(rows, row_labels=names, scale=scale), run.out / "reconstructions.png")
    # how close the samples come to the training pictures, next to how close unseen pictures come
    index, sample_gap = nearest(samples, train)
    rows = [samples[:8], train[index[:8]]]
    save_png(interpolation_strip(rows, row_labels=["sample", "nearest"], scale=scale), run.out / "nearest.png")
    numbers: dict[str, Any] = {
        "parameters": parameters,
        "rounds": results["TotalRounds"],
        "best_round": results["BestValidationRound"],
        "train_seconds": results["TotalTrainingTime"],
        "pictures_per_second": results["MeanExamplesPerSecond"],
        "round_loss": results["RoundLoss"],
        "validation_loss": results["ValidationLoss"],
        "sample_nearest_rms": float(sample_gap.mean()),
    }
    print(
        "\nsamples: RMS pixel difference (0..1) from each sample to its nearest training picture, mean over 64: "
        f"{numbers['sample_nearest_rms']:.3f}"
    )
    if len(validation):
        numbers["validation_nearest_rms"] = gap = float(nearest(validation, train)[1].mean())
        numbers["validation_cross_entropy"] = entropy = float(
            cross_entropy(validation, decode(encode(validation)[0])).mean()
        )
        closer = "closer than" if numbers["sample_nearest_rms"] < gap else "no closer than"
        print(
            f"         the same for the {len(validation)} validation pictures: {gap:.3f}"
            f" (the samples come {closer} unseen pictures of the same kind)\n"
            f"validation cross-entropy, decoding the posterior mean: {entropy:.1f} nats per picture "
            f"({entropy / args.size**2:.4f} per pixel);\n"
            "  the validation losses above decode a z drawn from q(z|x), as training does"
        )

    generated = len(list((run.out / "rounds").glob("generated_*.png")))
    remade = len(list((run.out / "rounds").glob("reconstruction_*.png")))
    numbers["total_seconds"] = run.report(
        [
            ("samples.png", "64 samples: the decoder fed z ~ N(0, I)"),
            ("reconstructions.png", "pictures over their reconstructions from the posterior mean"),
            ("nearest.png", "samples (top) over their nearest training pictures"),
            ("progress.png", "pictures generated (and reconstructed) during training, by round"),
            ("rounds", f"{generated} generated picture(s), one per round; {remade} reconstruction(s), every 10 rounds"),
            ("loss.png", "round and validation loss per training round"),
            ("vae.png", "the network"),
            ("cake_vae.npz", 'the trained net (netgraph.load; the decoder is NetExtract(net, "dec"))'),
        ],
        training=results["TotalTrainingTime"],
    )
    return numbers


if __name__ == "__main__":
    cli.run_main(
        main, {TrainingError: "the write-up found a learning rate of 0.001 too high; try a lower --learning-rate"}
    )
