"""Winged horses from a convolutional variational autoencoder, after the study "A variational
autoencoder to generate winged horses": a VAE on 32x32 colour pictures, pre-trained on every
picture, fine-tuned on two classes (birds and horses), then spherical interpolations between the
codes of a horse and a bird, decoded part-way, give pictures that are neither: "pegasi".

The net, as the paper describes it: an encoder of 4 convolutions (each followed by batch
normalisation and a leaky ramp) and 4 dense layers, the last of which gives the posterior's mean
"mn" and log standard deviation "sd"; z = mn + Exp[sd] * eps with eps ~ N(0, I); a decoder that
mirrors it, 4 dense layers and 4 transposed convolutions, ending in a LogisticSigmoid. The loss is
the paper's equation (1): the binary cross-entropy of the pixels, summed over the 3x32x32 of them,
plus the KL divergence of equation (2). Adam trains it. The paper gives no learning rate, latent
size or layer widths: the defaults are Adam's usual 0.001 (--learning-rate), 128 latent dimensions
(--latent) and 32 channels in the first convolution, doubling in each after it (--width), which
makes 2.9 million parameters.

After each phase it writes the net and 64 pictures decoded from z ~ N(0, I). After fine-tuning it
takes 8 pictures of the second class and pairs each with one drawn at random from 21 pictures of
the first (as the paper did with its 8 horses and 21 birds), and decodes slerp(z1, z2; mu) for 8
values of mu evenly spaced over [0.4, 0.7]: the 8x8 grid of the paper's figure 2.

    python examples/pegasus_vae.py                          # Fashion-MNIST stands in, a few minutes
    python examples/pegasus_vae.py --data cifar-10-batches-bin/          # CIFAR-10, birds and horses
    python examples/pegasus_vae.py --data cifar/ --pretrain-epochs 100 --finetune-epochs 300 --device GPU
                                                            # the paper's schedule
    python examples/pegasus_vae.py --data photos/ --classes eagle pony   # a folder, by sub-folder
    python examples/pegasus_vae.py --iterations 5 --train-images 500     # a quick check

Data: --data is a folder holding the CIFAR-10 batches (binary or python version, or their
archive); or MNIST-format IDX files; or pictures, read in colour, centre-cropped and resized to
32x32, where the name of each picture's folder is its class (photos/horse/1.jpg is a "horse") and
files that cannot be read are skipped and listed. Without --data, Fashion-MNIST (Debian's
dataset-fashion-mnist) stands in for the paper's CIFAR-10 and STL-10: its grey pictures are
resized to 32x32 and their one channel copied to red, green and blue.

Classes: --classes FIRST SECOND picks the two classes of the fine-tuning, by name or number:
CIFAR-10's names (default bird horse), Fashion-MNIST's (default Sneaker Bag, as it has no birds
or horses), or a folder's sub-folder names (default bird and horse when present, else the first
two). In the grid, mu = 0 is the first class and mu = 1 the second.

Schedule: each phase runs a number of batches (--pretrain-iterations, --finetune-iterations;
--iterations N sets both) or of rounds over its pictures (--pretrain-epochs, --finetune-epochs).
The default, 300 pre-training and 150 fine-tuning batches of 64, takes 4 to 6 minutes on 2 CPU
cores and gives blurry but recognisable pictures; the paper's is --pretrain-epochs 100
--finetune-epochs 300 (on CIFAR-10, 7 million pictures: a GPU's work).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from layers import (
    BatchNormalizationLayer,
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
from netgraph import NetChain, NetGraph, NetPort, NetSummary, NetTrain, NormalDistribution, cli, draw, exp
from netgraph.datasets import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    DatasetError,
    image_folder,
    load_images,
    split,
    to_float,
)
from netgraph.generate import Decode, Encode, elbo, reconstruct, sample_prior, slerp_grid, vae_parts
from netgraph.images import image_grid, interpolation_strip, save_png

SIZE = 32
PIXELS = 3 * SIZE * SIZE
NLATENT = 128  # the paper gives neither its latent size ...
WIDTH = 32  # ... nor its layers' widths: the first convolution's channels; every size scales with it
# The leaky ramp of the paper's reference [4] (Xu et al. 2015): slope 0.01 below zero.
LEAKY = ("LeakyRamp", 0.01)
PAPER_CLASSES = ("bird", "horse")
FASHION_STAND_INS = ("Sneaker", "Bag")
# The default schedule: 300 + 150 batches of 64 = 28,800 pictures, a few minutes on 2 CPU cores,
# where this net trains at about 60 pictures per CPU-second (75 to 110 pictures a second measured
# on 2 cores shared with other jobs: 6 minutes in all). On CIFAR-10 the paper's 100 rounds over
# 45,000 pictures and 300 over 9,000 birds and horses are 7.2 million pictures.
DEFAULT_PRETRAIN_BATCHES = 300
DEFAULT_FINETUNE_BATCHES = 150
VALIDATION_FRACTION = 0.1
MEASURED = 1000  # held-out pictures on which the loss is measured after each phase
ROWS = 8  # pairs in the grid: the paper's 8 horses
FIRST_POOL = 21  # the paper's 21 birds, one drawn at random for each horse
MUS = np.linspace(0.4, 0.7, 8)  # the paper's 8 values of mu


# --- the net ---------------------------------------------------------------------------------------------


def _down(channels: int) -> list[Any]:
    """A convolution that halves the picture, batch normalisation, a leaky ramp. The convolution has
    no biases: the normalisation's own would cancel them."""
    return [ConvolutionLayer(channels, 4, stride=2, padding_size=1, biases=None), BatchNormalizationLayer(), LEAKY]


def _up(channels: int) -> list[Any]:
    """A transposed convolution that doubles the picture, batch normalisation, a leaky ramp."""
    return [DeconvolutionLayer(channels, 4, stride=2, padding_size=1, biases=None), BatchNormalizationLayer(), LEAKY]


# fmt: off
def build_encoder(width: int = WIDTH) -> NetChain:
    """4 convolutions, each halving the picture and doubling the channels: with the default width 32,
    3×32×32 → 32×16×16 → 64×8×8 → 128×4×4 → 256×2×2, flattened to 1024; then three of the four dense
    layers, 512, 256, 256 (16, 8 and 8 times the width). The fourth is the pair of heads "mn" and "sd"."""
    return NetChain([
        *_down(width), *_down(2 * width), *_down(4 * width), *_down(8 * width), FlattenLayer(),
        LinearLayer(16 * width), LEAKY, LinearLayer(8 * width), LEAKY, LinearLayer(8 * width), LEAKY,
    ], input=(3, SIZE, SIZE))


def build_decoder(nlatent: int = NLATENT, width: int = WIDTH) -> NetChain:
    """The encoder's mirror: dense layers 256, 256, 512, 1024 (for width 32), reshaped to 256×2×2,
    then 4 transposed convolutions up to 3×32×32 and a LogisticSigmoid (pixel probabilities)."""
    return NetChain([
        LinearLayer(8 * width), LEAKY, LinearLayer(8 * width), LEAKY,
        LinearLayer(16 * width), LEAKY, LinearLayer(32 * width), LEAKY, ReshapeLayer((8 * width, 2, 2)),
        *_up(4 * width), *_up(2 * width), *_up(width),
        DeconvolutionLayer(3, 4, stride=2, padding_size=1), "LogisticSigmoid",
    ], input=nlatent)


def build_vae(nlatent: int = NLATENT, width: int = WIDTH) -> NetGraph:
    """The training net: input "Input" (3, 32, 32) in [0, 1], which is also the reconstruction's
    target; outputs "Loss" (binary cross-entropy summed over the 3072 pixels) and "KL" (equation (2),
    with "sd" = log σ: ½ Σ (mn² + e^(2 sd) − 1 − 2 sd))."""
    return NetGraph({
        "enc": build_encoder(width), "mn": LinearLayer(nlatent), "sd": LinearLayer(nlatent),
        "eps": RandomArrayLayer(NormalDistribution(0, 1), output=nlatent),
        "z": ThreadingLayer(lambda m, s, e: m + exp(s) * e),
        "dec": build_decoder(nlatent, width),
        "bce": CrossEntropyLossLayer("Binary"),  # the mean over pixels ...
        "pixels": ElementwiseLayer(lambda x: PIXELS * x),  # ... times their number: the sum
        "kl": ThreadingLayer(lambda m, s: 0.5 * (m**2 + exp(2 * s) - 1 - 2 * s)), "total": SummationLayer(),
    }, [
        (NetPort("Input"), "enc", "mn"),
        ("enc", "sd"),
        (["mn", "sd", "eps"], "z", "dec", NetPort("bce", "Input")),
        (NetPort("Input"), NetPort("bce", "Target")),
        ("bce", "pixels", NetPort("Loss")),
        (["mn", "sd"], "kl", "total", NetPort("KL")),
    ], input=(3, SIZE, SIZE))
# fmt: on


# --- data ------------------------------------------------------------------------------------------------


class LabelledImages(NamedTuple):
    """Pictures uint8 (N, 3, 32, 32), their class numbers (N,) and the class names."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str
    description: str


# Files that make load_images read a folder as a data set rather than as pictures.
_DATA_SET_FILES = (
    "data_batch_1.bin",
    "data_batch_1",
    "test_batch.bin",
    "test_batch",
    "train-images-idx3-ubyte",
    "train-images-idx3-ubyte.gz",
    "cifar-10-binary.tar.gz",
    "cifar-10-python.tar.gz",
)


def _holds_a_data_set(folder: Path) -> bool:
    """True for an archive, or a folder with CIFAR-10 batches or IDX files (here or where the CIFAR-10
    archives unpack to); False for a folder of pictures, whose classes come from the pictures' paths."""
    if folder.is_file():
        return True
    places = (folder, folder / "cifar-10-batches-bin", folder / "cifar-10-batches-py")
    return any((place / name).is_file() for place in places for name in _DATA_SET_FILES)


def load_data(data: str | None) -> LabelledImages:
    """The pictures, labelled: Fashion-MNIST without --data, else what --data holds."""
    if data is None:
        found = load_images(None, SIZE, color_space="RGB")
        cli.stand_in("the paper's CIFAR-10 and STL-10", "its grey channel is copied to red, green and blue")
        described = f"{len(found.images):,} Fashion-MNIST pictures, 28x28 grey resized to 32x32"
        return LabelledImages(
            found.images, found.labels.astype(np.int64), FASHION_MNIST_CLASSES, "Fashion-MNIST", described
        )
    folder = cli.data_folder(data, "CIFAR-10 batches, MNIST-format files or a folder of pictures")
    if _holds_a_data_set(folder):
        found = load_images(folder, SIZE, color_space="RGB")
        labels = found.labels.astype(np.int64)
        if found.description.startswith("CIFAR-10"):
            return LabelledImages(found.images, labels, CIFAR10_CLASSES, "CIFAR-10", found.description)
        names = tuple(str(k) for k in range(int(labels.max()) + 1))
        return LabelledImages(found.images, labels, names, folder.name, found.description)
    found = image_folder(folder, SIZE, color_space="RGB")
    cli.list_skipped(found.skipped)
    # each picture's class is the name of the folder it is in
    parents = [path.parent.name for path in found.paths]
    names = tuple(sorted(set(parents)))
    labels = np.array([names.index(parent) for parent in parents], dtype=np.int64)
    counts = ", ".join(f"{name} {int(np.sum(labels == k))}" for k, name in enumerate(names))
    described = f"{len(found.images)} pictures in {folder}, in colour at 32x32 (by folder: {counts})"
    return LabelledImages(found.images, labels, names, folder.name, described)


def _class_number(token: str, data: LabelledImages) -> int:
    """A class by name (any case) or number."""
    for k, name in enumerate(data.class_names):
        if name.lower() == token.strip().lower():
            return k
    if token.strip().isdigit() and int(token) < len(data.class_names):
        return int(token)
    listed = ", ".join(f"{k} {name}" for k, name in enumerate(data.class_names))
    raise DatasetError(f"--classes: {token!r} is not a class of {data.name}; its classes are {listed}")


def choose_classes(requested: list[str] | None, data: LabelledImages) -> tuple[int, int, str]:
    """The two fine-tuning classes as numbers, and a sentence on how they were chosen."""
    names = [name.lower() for name in data.class_names]
    if requested:
        first, second = (_class_number(token, data) for token in requested)
        if first == second and len(names) > 1:
            raise DatasetError(f"--classes: give two different classes, not {data.class_names[first]} twice")
        return first, second, "(--classes)"
    if all(name in names for name in PAPER_CLASSES):
        return names.index(PAPER_CLASSES[0]), names.index(PAPER_CLASSES[1]), "(the paper's)"
    if data.class_names == FASHION_MNIST_CLASSES:
        first, second = (FASHION_MNIST_CLASSES.index(name) for name in FASHION_STAND_INS)
        return first, second, "(Fashion-MNIST has no birds or horses; --classes picks others)"
    present = sorted(set(data.labels.tolist()))
    if len(present) == 1:
        return (
            present[0],
            present[0],
            "(the only class, so both ends come from it; for a folder, sub-folders make classes)",
        )
    return present[0], present[1], "(the first two; --classes picks others)"


def pick_subset(images: np.ndarray, labels: np.ndarray, n: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pictures drawn at random (all when ``n`` is None or not smaller)."""
    if n is None or n >= len(images):
        return images, labels
    keep = np.sort(np.random.default_rng(seed).choice(len(images), n, replace=False))
    return images[keep], labels[keep]


# --- training ---------------------------------------------------------------------------------------------


def train_phase(
    vae: NetGraph, train: np.ndarray, validation: np.ndarray, args: Any, phase: str, title: str
) -> tuple[NetGraph, Any]:
    """NetTrain on the Loss and KL ports for a phase ("pretrain" or "finetune"); returns the net to keep (after
    the last batch when the phase is counted in batches, else the round of lowest validation loss) and the results."""
    epochs, batches = getattr(args, f"{phase}_epochs"), getattr(args, f"{phase}_iterations")
    flag = f"--{phase}-iterations" if batches else "--iterations"
    default = DEFAULT_PRETRAIN_BATCHES if phase == "pretrain" else DEFAULT_FINETUNE_BATCHES
    plan = cli.schedule(
        len(train), args.batch_size, epochs, batches or args.iterations, default_iterations=default, flag=flag
    )
    rounds = f" ({plan.total / plan.per_round:.2f} rounds)" if plan.stop else ""
    print(
        f"{title}: {len(train):,} training, {len(validation):,} validation pictures; "
        f"{plan.description} = {plan.total * plan.batch_size:,} pictures{rounds}"
    )
    results = NetTrain(
        vae,
        {"Input": train},
        "All",
        loss_function=["Loss", "KL"],
        method=("ADAM", {"learning_rate": args.learning_rate}),
        batch_size=plan.batch_size,
        max_training_rounds=plan.rounds,
        validation_set={"Input": validation} if len(validation) else None,
        training_progress_function=plan.stop,
        target_device=args.device,
        random_seeding=args.seed,
    )
    keep = "final" if plan.stop else "best"
    return cli.training_summary(results, keep=keep, unit="pictures", digits=1, losses="BCE + KL per picture"), results


def measure(net: NetGraph, images: np.ndarray, options: dict[str, Any], seed: int) -> dict[str, float]:
    """The training objective on ``images`` with one z ~ q(z|x) each: BCE and KL, nats per picture."""
    encode, decode = vae_parts(net, **options)
    terms = elbo(encode, decode, images, likelihood="bernoulli", seed=seed, parts=True)
    bce, kl = -float(np.mean(terms["reconstruction"])), float(np.mean(terms["kl"]))
    return {"bce": bce, "kl": kl, "loss": bce + kl}


def learnable_parameters(net: Any) -> int:
    """Parameters that training changes by gradients: all arrays but the moving statistics."""
    summary = NetSummary(net)
    return summary.total_parameters - summary.non_trainable_parameters


def pegasi(
    encode: Encode,
    decode: Decode,
    images: np.ndarray,
    labels: np.ndarray,
    classes: tuple[int, int],
    names: tuple[str, str],
    rng: np.random.Generator,
    out: Path,
) -> tuple[np.ndarray, int]:
    """The paper's sampling: 8 pictures of the second class, each paired with one drawn from a pool of 21 of
    the first; their posterior means interpolated by slerp at the 8 values of mu, decoded. Writes the 8×8
    grid (pegasus.png) and the rows framed by their ends (pegasus_pairs.png); returns the angles between
    the paired codes in degrees and the size of the pool."""
    firsts, seconds = (np.flatnonzero(labels == k) for k in classes)
    rows = rng.choice(seconds, ROWS, replace=len(seconds) < ROWS)
    pool = rng.choice(firsts, min(FIRST_POOL, len(firsts)), replace=False)
    ends = images[rng.choice(pool, ROWS)], images[rows]
    codes = encode(ends[0])[0], encode(ends[1])[0]
    grid = slerp_grid(decode, list(zip(*codes)), MUS)  # (8, 8, 3, 32, 32)
    save_png(image_grid(grid.reshape(-1, 3, SIZE, SIZE), columns=len(MUS), scale=2), out / "pegasus.png")
    decoded = decode(codes[0]), decode(codes[1])
    framed = [np.stack([ends[0][i], decoded[0][i], *grid[i], decoded[1][i], ends[1][i]]) for i in range(ROWS)]
    columns = [names[0], "mu=0", *(f"{mu:.2f}" for mu in MUS), "mu=1", names[1]]
    save_png(interpolation_strip(framed, labels=columns, scale=2), out / "pegasus_pairs.png")
    cosines = np.sum(codes[0] * codes[1], axis=1) / (
        np.linalg.norm(codes[0], axis=1) * np.linalg.norm(codes[1], axis=1)
    )
    return np.degrees(np.arccos(np.clip(cosines, -1, 1))), len(pool)


# --- the run ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> Any:
    parser = cli.parser("pegasus_vae.py", __doc__)
    data = "CIFAR-10 batches, MNIST-format files or pictures (default: Fashion-MNIST)"
    seed = "random seed (initialisation, shuffling, choices, samples)"
    cli.standard_options(parser, data=data, out="out/pegasus_vae", seed=seed)
    pair = {"nargs": 2, "metavar": ("FIRST", "SECOND"), "help": "the two fine-tuning classes (default bird horse)"}
    parser.add_argument("--classes", **pair)
    for flag, text in (
        ("--pretrain-epochs", "pre-training rounds over all pictures (the paper: 100)"),
        ("--pretrain-iterations", f"pre-training batches (default {DEFAULT_PRETRAIN_BATCHES})"),
        ("--finetune-epochs", "fine-tuning rounds over the two classes (the paper: 300)"),
        ("--finetune-iterations", f"fine-tuning batches (default {DEFAULT_FINETUNE_BATCHES})"),
        ("--iterations", "batches in each phase, for quick runs"),
        ("--train-images", "use N pictures drawn at random (default all)"),
    ):
        parser.add_argument(flag, type=cli.count, metavar="N", help=text)
    parser.add_argument("--batch-size", type=cli.count, metavar="N", default=64, help="pictures per batch (default 64)")
    rate = "Adam's learning rate (default 0.001)"
    parser.add_argument("--learning-rate", type=cli.positive, default=1e-3, metavar="RATE", help=rate)
    parser.add_argument(
        "--latent", type=cli.count, metavar="N", default=NLATENT, help=f"latent dimensions (default {NLATENT})"
    )
    wide = f"channels of the first convolution, doubling after (default {WIDTH})"
    parser.add_argument("--width", type=cli.count, metavar="N", default=WIDTH, help=wide)
    args = parser.parse_args(argv)
    for phase in ("pretrain", "finetune"):
        given = [f"--{phase}-{kind}" for kind in ("epochs", "iterations") if getattr(args, f"{phase}_{kind}")]
        if args.iterations and given:
            parser.error(f"--iterations sets both phases; it cannot go with {given[0]}")
        if len(given) == 2:
            parser.error(f"give {given[0]} or {given[1]}, not both")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Pre-train, fine-tune, sample and interpolate; returns the numbers it printed (for tests)."""
    args = parse_args(argv)
    run = cli.Run(args.out, args.device)
    options = {"target_device": args.device, "batch_size": 256}
    rng = np.random.default_rng(args.seed)

    # data: every picture for pre-training, the two classes for fine-tuning; 10% held out of both
    data = load_data(args.data)
    print(f"data: {data.description}")
    images, labels = pick_subset(data.images, data.labels, args.train_images, args.seed)
    if len(images) < len(data.images):
        print(f"      {len(images):,} of them drawn at random (--train-images)")
    first, second, why = choose_classes(args.classes, data)
    names = (data.class_names[first], data.class_names[second])
    both = names[0] if first == second else f"{names[0]} and {names[1]}"
    print(f"classes: {both} {why}")
    fractions = (1 - VALIDATION_FRACTION, VALIDATION_FRACTION)
    (train, train_labels), (validation, validation_labels) = split(
        (images, labels), fractions=fractions, seed=args.seed
    )
    for k in (first, second):
        if not np.any(train_labels == k):
            raise DatasetError(f"no training pictures of {data.class_names[k]} (try more --train-images)")
    chosen, chosen_validation = np.isin(train_labels, (first, second)), np.isin(validation_labels, (first, second))
    train_float, validation_float = to_float(train), to_float(validation)

    vae = build_vae(args.latent, args.width)
    print(vae)
    counts = {part: learnable_parameters(vae.vertices[part]) for part in ("enc", "mn", "sd", "dec")}
    learnable, moving = learnable_parameters(vae), NetSummary(vae).non_trainable_parameters
    print(
        f"parameters: encoder {counts['enc'] + counts['mn'] + counts['sd']:,} (of which the heads mn and sd "
        f"{counts['mn'] + counts['sd']:,}), decoder {counts['dec']:,}; {learnable:,} learnable, plus "
        f"{moving:,} moving statistics of the batch normalisations"
    )
    print(f"optimiser: Adam, learning rate {args.learning_rate}; on the {args.device}")
    print("the paper's schedule: 100 rounds over all pictures, then 300 over the two classes")
    draw(vae, run.out / "vae.png")

    # phase 1: pre-training on every picture
    pretrained, pre_results = train_phase(vae, train_float, validation_float, args, "pretrain", "pre-training")
    pretrained.save(run.out / "pretrained.npz")
    cli.save_loss_plot(pre_results, run.out / "loss_pretrain.png", f"pre-training on {data.name}: BCE + KL per picture")
    pre_encode, pre_decode = vae_parts(pretrained, **options)
    samples = sample_prior(pre_decode, 64, args.latent, seed=args.seed)
    save_png(image_grid(samples, columns=8, scale=2), run.out / "samples_pretrained.png")
    held_out = (validation_float if len(validation_float) else train_float)[:MEASURED]
    pre = measure(pretrained, held_out, options, args.seed)
    print(
        f"  {len(held_out):,} held-out pictures: BCE {pre['bce']:.1f} + KL {pre['kl']:.1f} = {pre['loss']:.1f} "
        "nats per picture"
    )

    # phase 2: fine-tuning on the two classes
    fine_train, fine_validation = train_float[chosen], validation_float[chosen_validation]
    tuned, fine_results = train_phase(
        pretrained, fine_train, fine_validation, args, "finetune", f"fine-tuning on {both}"
    )
    tuned.save(run.out / "pegasus_vae.npz")
    cli.save_loss_plot(fine_results, run.out / "loss_finetune.png", f"fine-tuning on {both}: BCE + KL per picture")
    encode, decode = vae_parts(tuned, **options)
    samples = sample_prior(decode, 64, args.latent, seed=args.seed)
    save_png(image_grid(samples, columns=8, scale=2), run.out / "samples.png")
    held_two = (fine_validation if len(fine_validation) else fine_train)[:MEASURED]
    fine, before = measure(tuned, held_two, options, args.seed), measure(pretrained, held_two, options, args.seed)
    print(
        f"  {len(held_two):,} held-out {both} pictures: BCE {fine['bce']:.1f} + KL {fine['kl']:.1f} = "
        f"{fine['loss']:.1f} nats per picture (the pre-trained net: {before['loss']:.1f})\n"
        "  NOTE: BCE reads the decoder's outputs as pixel probabilities; the pixels are grey levels, not 0 or 1,"
        "\n  so this is the cross-entropy the paper minimises, not a normalised likelihood."
    )
    numbers: dict[str, Any] = {
        "parameters": learnable,
        "pretrain_seconds": pre_results["TotalTrainingTime"],
        "pretrain_images_per_second": pre_results["MeanExamplesPerSecond"],
        "pretrain_loss": pre["loss"],
        "finetune_seconds": fine_results["TotalTrainingTime"],
        "finetune_images_per_second": fine_results["MeanExamplesPerSecond"],
        "finetune_loss": fine["loss"],
        "finetune_loss_before": before["loss"],
        "finetune_bce": fine["bce"],
        "finetune_kl": fine["kl"],
    }

    # reconstructions of held-out pictures of the two classes, by both nets
    held_labels = (validation_labels[chosen_validation] if len(fine_validation) else train_labels[chosen])[:MEASURED]
    shown = held_two[np.concatenate([np.flatnonzero(held_labels == k)[:8] for k in dict.fromkeys((first, second))])]
    rows = [shown, reconstruct(pre_encode, pre_decode, shown), reconstruct(encode, decode, shown)]
    strip = interpolation_strip(rows, row_labels=["input", "pre-trained", "fine-tuned"], scale=2)
    save_png(strip, run.out / "reconstructions.png")

    # the pegasi: 8 pictures of the second class, each paired with one of 21 of the first
    angles, pool = pegasi(encode, decode, fine_train, train_labels[chosen], (first, second), names, rng, run.out)
    print(
        f"pegasi: {ROWS} {names[1]} pictures, each paired with one of {pool} {names[0]} pictures; "
        f"slerp at mu = {', '.join(f'{mu:.2f}' for mu in MUS)}"
    )
    print(f"  angles between the paired codes: {', '.join(f'{a:.0f}°' for a in angles)}")
    numbers["pair_angles"] = angles.tolist()
    spent = f"{numbers['pretrain_seconds']:.1f} s pre-training and {numbers['finetune_seconds']:.1f} s fine-tuning"
    numbers["total_seconds"] = run.report(
        [
            ("pegasus.png", f"the 8x8 grid: slerp from {names[0]} (mu=0) to {names[1]} (mu=1) at mu 0.4..0.7, per row"),
            ("pegasus_pairs.png", "the same rows between the two pictures and their decoded codes"),
            ("samples.png", "64 samples of the fine-tuned net: the decoder fed z ~ N(0, I)"),
            ("samples_pretrained.png", "64 samples of the pre-trained net"),
            ("reconstructions.png", "held-out pictures of the two classes and their reconstructions by both nets"),
            ("loss_pretrain.png", "pre-training loss"),
            ("loss_finetune.png", "fine-tuning loss"),
            ("vae.png", "the network"),
            ("pretrained.npz", "the pre-trained net (netgraph.load)"),
            ("pegasus_vae.npz", 'the fine-tuned net (the decoder is NetExtract(net, "dec"))'),
        ],
        training=spent,
        what="pictures and the trained nets",
    )
    return numbers


if __name__ == "__main__":
    cli.run_main(main)
