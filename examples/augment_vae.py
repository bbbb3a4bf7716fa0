"""A variational autoencoder that makes extra training pictures: the Keras-style 64×64×3 VAE of the
"Image Generation using Variational autoencoder (VAE)" project (data augmentation), written with
netgraph's NetGraph/NetChain and trained with NetTrain.

The net is the project's summary tables, layer by layer (shapes here are channels-first):

  encoder  3×64×64 → Convolution 32, 5×5, stride 1, "Same" → LeakyRamp 0.02 → BatchNormalization
           → the same block with 64, 128, 256, 512 filters at stride 2 (32², 16², 8², 4²)
           → Flatten 8192 → Linear 1024 → SELU → BatchNormalization
           → two Linear 512 heads: the mean "Mu" and the log-variance "LogVar"
  sampling z = Mu + Exp[LogVar/2] * eps, eps ~ N(0, I) of size 512
  decoder  512 → Linear 1024 → SELU → BatchNormalization → Linear 8192 → SELU → Reshape 512×4×4
           → Deconvolution 256, 128, 64, 32 (5×5, stride 2, "Same"), each → LeakyRamp 0.02 → BatchNormalization
           → Deconvolution 3, 5×5, stride 1 → BatchNormalization → LogisticSigmoid: 3×64×64 in [0, 1]

It prints both summaries and compares them with the project's: encoder 13,802,688 parameters
(4,032 of them batch-norm moving statistics), decoder 13,283,023 (3,014). The latent size, 512, is
not written in the project's text; its decoder's first layer, 525,312 = (512 + 1) × 1024 parameters,
fixes it. Both tables are cut short ("..."); the rows above complete them and give their totals
exactly. The decoder's total needs a batch norm over 3 channels at the end (12 parameters, 6 of
them moving statistics). Keras code with this architecture puts it after the sigmoid; here it comes
before, so that the output is a picture in [0, 1] as the project describes ("the value of the
pixel doesn't go out of the valid range [0, 1]"). The batch norms keep netgraph's (Wolfram's)
momentum 0.9 for their moving statistics; Keras's is 0.99, which after a schedule as short as the
default here would leave them near their initial values.

Loss: the project trains on the evidence lower bound, "a reconstruction term (MSE or cross-entropy)
and a regularisation term" (the KL divergence from N(0, I)), with no weights given. This uses the
ELBO's own weighting, per image: "Loss" = 12,288 × mean squared error (the squared error summed over
the 64·64·3 values) plus "KL" (summed over the 512 latent units), 1 : 1; --kl-weight changes the
second. (Keras code with this net adds the mean squared error and the KL averaged over the latent
units and divided by 64·64: relative to this loss, a KL weight of 12,288 / (512 · 4,096) = 3/512.)

Schedule: the project names no optimiser, batch size or length. Keras code with this net trains with
Adam at learning rate 0.0001 and beta1 0.5 for 50 epochs of batches of 128 on tens of thousands of
pictures, over an hour on a GPU. The optimiser here is the same; the length is not: the net has 27 million
parameters and trains at a few pictures per second on a 2-core CPU, so the default is 3 rounds over
192 pictures in batches of 16 (36 batches, about 4 minutes). That learns the average shapes and
brightness, not sharp pictures. The Keras schedule is
--epochs 50 --batch-size 128 --train-images all (on a GPU: --device GPU).
NOTE: faster learning rates are unstable here: at 0.0005 the log-variance head ran away within ten
batches (log-variances past 20, a KL term of 1e11 per picture) and had not come back 20 batches later.

    python examples/augment_vae.py train                          # Fashion-MNIST stands in, 3 rounds
    python examples/augment_vae.py train --data faces/ --epochs 50 --train-images all --device GPU
    python examples/augment_vae.py generate --count 500 --out extra/   # 500 new pictures, numbered PNGs

train writes to --out (default out/augment_vae): the trained net vae.npz, samples.png (64 pictures
from z ~ N(0, I)), reconstructions.png (held-out pictures over their reconstructions), loss.png and
vae.png (a drawing of the net). generate loads vae.npz, takes out the decoder
(NetExtract(net, "dec")), feeds it codes z ~ N(0, T² I) and writes synthetic_0001.png, ... to its
--out folder; a temperature T below 1 gives more typical, less varied pictures.

Data: --data is a folder of pictures (read in colour, centre-cropped and resized to 64×64; files
that cannot be read are skipped and listed), of CIFAR-10 batches or of MNIST-format IDX files.
Without --data, Fashion-MNIST (Debian's dataset-fashion-mnist) stands in for the project's picture
database: its 28×28 grey pictures are resized to 64×64 and the grey channel is copied to R, G and B.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from layers import (
    BatchNormalizationLayer,
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
)
from netgraph import (
    NetChain,
    NetExtract,
    NetFileError,
    NetGraph,
    NetPort,
    NetSummary,
    NetTrain,
    NormalDistribution,
    cli,
    draw,
    exp,
    get_xp,
    load,
)
from netgraph.datasets import DatasetError, load_images, to_float
from netgraph.generate import sample_prior, vae_parts
from netgraph.images import image_grid, interpolation_strip, save_png

SIZE = 64
CHANNELS = 3
PIXELS = SIZE * SIZE * CHANNELS  # 12,288 values per picture
NLATENT = 512  # fixed by the decoder's first layer: 525,312 = (512 + 1) * 1024
SLOPE = 0.02  # the leaky ramp's slope for negative inputs
# The project's Keras summaries: (total, non-trainable) parameters.
SEED_ENCODER = (13_802_688, 4_032)
SEED_DECODER = (13_283_023, 3_014)
# The default schedule, a few minutes on a 2-core CPU (see the module docstring for the Keras one).
DEMO_EPOCHS = 3
DEMO_TRAIN_IMAGES = 192
DEMO_TEST_IMAGES = 32
DEMO_BATCH = 16
DEMO_LEARNING_RATE = 1e-4  # and beta1 0.5: Adam as the Keras code sets it
DEMO_BETA1 = 0.5
TEST_FRACTION = 0.1  # of a --data folder, held out (at most --test-images)


# --- the net ---------------------------------------------------------------------------------------------


def _conv_block(filters: int, stride: int) -> list[Any]:
    """Keras's Conv2D(filters, 5, strides, padding="same", activation=LeakyReLU(0.02)) + BatchNormalization()."""
    return [
        ConvolutionLayer(filters, 5, stride=stride, padding_size="Same"),
        ElementwiseLayer(("LeakyRamp", SLOPE)),
        BatchNormalizationLayer(),
    ]


def _deconv_block(filters: int) -> list[Any]:
    """Keras's Conv2DTranspose(filters, 5, strides=2, padding="same", activation=LeakyReLU(0.02)),
    then BatchNormalization()."""
    return [
        DeconvolutionLayer(filters, 5, stride=2, padding_size="Same"),
        ElementwiseLayer(("LeakyRamp", SLOPE)),
        BatchNormalizationLayer(),
    ]


# fmt: off
def build_encoder(nlatent: int = NLATENT) -> NetGraph:
    """3×64×64 → five 5×5 convolution blocks (32 at stride 1; 64, 128, 256, 512 at stride 2) → 8192 →
    Linear 1024, SELU, batch norm → the output ports "Mu" and "LogVar" (Linear nlatent each)."""
    features = NetChain([
        *_conv_block(32, 1), *_conv_block(64, 2), *_conv_block(128, 2), *_conv_block(256, 2), *_conv_block(512, 2),
        FlattenLayer(), LinearLayer(1024), "SELU", BatchNormalizationLayer(),
    ])
    return NetGraph(
        {"features": features, "mu": LinearLayer(nlatent), "logVar": LinearLayer(nlatent)},
        [(NetPort("Input"), "features", "mu", NetPort("Mu")), ("features", "logVar", NetPort("LogVar"))],
        input=(CHANNELS, SIZE, SIZE),
    )


def build_decoder(nlatent: int = NLATENT, sigmoid_last: bool = True) -> NetChain:
    """nlatent → Linear 1024, SELU, batch norm → Linear 8192, SELU → 512×4×4 → four 5×5 stride-2
    deconvolution blocks (256, 128, 64, 32) → Deconvolution 3 → batch norm → LogisticSigmoid.

    ``sigmoid_last=False`` gives the order of the Keras code, sigmoid then batch norm (same parameters)."""
    tail = [BatchNormalizationLayer(), "LogisticSigmoid"][:: 1 if sigmoid_last else -1]
    return NetChain([
        LinearLayer(1024), "SELU", BatchNormalizationLayer(),
        LinearLayer(8192), "SELU", ReshapeLayer((512, 4, 4)),
        *_deconv_block(256), *_deconv_block(128), *_deconv_block(64), *_deconv_block(32),
        DeconvolutionLayer(CHANNELS, 5, stride=1, padding_size="Same"), *tail,
    ], input=nlatent)


def build_kl() -> NetGraph:
    """KL(N(mu, e^logVar) ‖ N(0, 1)) summed over the latent units: Σ -½ (1 + logVar - mu² - e^logVar)."""
    return NetGraph(
        {"terms": ThreadingLayer(lambda m, lv: -0.5 * (1 + lv - m**2 - exp(lv))), "total": SummationLayer()},
        [(NetPort("Mu"), NetPort("terms", "Input1")), (NetPort("LogVar"), NetPort("terms", "Input2")),
         ("terms", "total")],
    )


def build_vae(nlatent: int = NLATENT) -> NetGraph:
    """The whole net: input "Input" (3, 64, 64), its own reconstruction target; output ports "Loss"
    (12,288 × mean squared error: the squared error summed over the picture) and "KL"."""
    return NetGraph({
        "enc": build_encoder(nlatent),
        "eps": RandomArrayLayer(NormalDistribution(0, 1), output=nlatent),
        "z": ThreadingLayer(lambda m, lv, e: m + exp(0.5 * lv) * e),
        "dec": build_decoder(nlatent),
        "loss": MeanSquaredLossLayer(), "scale": ElementwiseLayer(lambda x: PIXELS * x),
        "kl": build_kl(),
    }, [
        (NetPort("Input"), "enc"),
        ([NetPort("enc", "Mu"), NetPort("enc", "LogVar"), "eps"], "z", "dec", NetPort("loss", "Input")),
        (NetPort("Input"), NetPort("loss", "Target")),
        ("loss", "scale", NetPort("Loss")),
        (NetPort("enc", "Mu"), NetPort("kl", "Mu")),
        (NetPort("enc", "LogVar"), NetPort("kl", "LogVar")),
        ("kl", NetPort("KL")),
    ], input=(CHANNELS, SIZE, SIZE))
# fmt: on


def parameter_counts(net: Any) -> tuple[int, int, int]:
    """(total, trainable, non-trainable) as Keras counts them: the moving means and variances of the
    batch norms are the non-trainable part."""
    summary = NetSummary(net)
    total, frozen = summary.total_parameters, summary.non_trainable_parameters
    return total, total - frozen, frozen


def compare_with_seed(name: str, net: Any, seed: tuple[int, int]) -> dict[str, int]:
    """Prints one part's counts against the project's summary; returns them."""
    total, trainable, frozen = parameter_counts(net)
    seed_total, seed_frozen = seed
    same = (total, frozen) == seed
    verdict = "the same" if same else f"differs by {total - seed_total:+,} ({frozen - seed_frozen:+,} non-trainable)"
    print(
        f"{name}: {total:,} parameters ({trainable:,} trainable, {frozen:,} moving statistics); the project's"
        f" summary: {seed_total:,} ({seed_total - seed_frozen:,} trainable, {seed_frozen:,} non-trainable): {verdict}"
    )
    return {f"{name}_total": total, f"{name}_trainable": trainable, f"{name}_non_trainable": frozen}


# --- data ------------------------------------------------------------------------------------------------


def load_data(data: str | None, train_images: int | None, test_images: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training, held-out) pictures, float32 (N, 3, 64, 64) in [0, 1]; prints what was read."""
    stands_in = "the project's picture database"
    if data is None:
        how = "28×28 grey pictures resized to 64×64, the grey channel copied to R, G and B (give --data DIR for yours)"
        train = cli.pictures(None, SIZE, color_space="RGB", limit=train_images, stands_in_for=stands_in, how=how)
        test = load_images(None, SIZE, color_space="RGB", kind="test", limit=test_images)
        return to_float(train.images), to_float(test.images)
    found = cli.pictures(data, SIZE, color_space="RGB", stands_in_for=stands_in)
    print(f"data: {found.description}")
    images = to_float(found.images)
    if len(images) < 2:
        raise DatasetError(f"{data}: {len(images)} usable picture(s); training needs at least 2")
    train, test = cli.hold_out(images, TEST_FRACTION, seed, most=test_images)
    return train[:train_images], test


# --- train -----------------------------------------------------------------------------------------------


def train(args: argparse.Namespace) -> dict[str, Any]:
    """The train subcommand: build, summarise, train, write the pictures and the net."""
    run = cli.Run(args.out, args.device)
    options = {"target_device": args.device, "batch_size": 64}
    vae = build_vae()
    encoder, decoder = NetExtract(vae, "enc"), NetExtract(vae, "dec")
    print("encoder (channels first: a Keras (None, 64, 64, 32) is 32×64×64 here; activations are rows of their own)")
    print(NetSummary(encoder))
    print("\ndecoder")
    print(NetSummary(decoder))
    print()
    numbers: dict[str, Any] = {**compare_with_seed("encoder", encoder, SEED_ENCODER)}
    numbers.update(compare_with_seed("decoder", decoder, SEED_DECODER))
    draw(vae, run.out / "vae.png")

    limit = None if args.train_images == "all" else args.train_images
    images, test = load_data(args.data, limit, args.test_images, args.seed)
    print(f"      {len(images)} training pictures, {len(test)} held out (validation and reconstructions)")
    plan = cli.schedule(len(images), args.batch_size, args.epochs, args.iterations, DEMO_EPOCHS)
    print(
        f"schedule: {plan.description} = {plan.total} batches; ADAM, learning rate {args.learning_rate}, "
        f"beta1 {args.beta1};\n          loss = Loss (squared error summed over the picture) + {args.kl_weight:g} × KL"
    )
    print("          (Keras code with this net: 50 epochs of batches of 128, Adam at 0.0001 with beta1 0.5)")
    print(f"training on the {args.device}...")
    results = NetTrain(
        vae,
        {"Input": images},
        "All",
        loss_function={"Loss": 1.0, "KL": args.kl_weight},
        method=("ADAM", {"learning_rate": args.learning_rate, "beta1": args.beta1}),
        batch_size=plan.batch_size,
        max_training_rounds=plan.rounds,
        validation_set={"Input": test} if len(test) else None,
        training_progress_function=plan.stop,
        target_device=args.device,
        random_seeding=args.seed,
    )
    trained = cli.training_summary(results, keep="final", unit="pictures", digits=1)  # as the Keras code
    trained.save(run.out / "vae.npz")
    cli.save_loss_plot(results, run.out / "loss.png", "augment VAE: Loss + KL per picture")
    numbers.update(train_seconds=results["TotalTrainingTime"], pictures_per_second=results["MeanExamplesPerSecond"])

    # pictures: prior samples and reconstructions from the posterior mean, in evaluation mode
    posterior = (NetPort("enc", "Mu"), NetPort("enc", "LogVar"))
    encode, decode = vae_parts(trained, posterior, "dec", scale="log_variance", **options)
    save_png(image_grid(sample_prior(decode, 64, NLATENT, seed=args.seed), columns=8), run.out / "samples.png")
    if len(test):
        rows = [test[:16], decode(encode(test[:16])[0])]
        save_png(interpolation_strip(rows, row_labels=["input", "output"]), run.out / "reconstructions.png")
        terms = trained({"Input": test}, **options)
        sse, kl = float(np.mean(terms["Loss"])), float(np.mean(terms["KL"]))
        numbers.update(test_squared_error=sse, test_kl=kl)
        print(f"\nheld-out pictures ({len(test)}), one z ~ q(z|x) each:")
        print(f"  squared error {sse:.1f} per picture (mean squared error {sse / PIXELS:.5f}), KL {kl:.2f} nats")
        weighted = sse + args.kl_weight * kl
        print(f"  Loss + KL = {sse + kl:.1f} per picture; with --kl-weight {args.kl_weight:g}: {weighted:.1f}")
    numbers["total_seconds"] = run.report(
        [
            ("samples.png", "64 pictures from the decoder fed z ~ N(0, I)"),
            ("reconstructions.png", "held-out pictures (top) and their reconstructions from the posterior mean"),
            ("loss.png", "round and validation loss"),
            ("vae.png", "the network"),
            ("vae.npz", 'the trained net (netgraph.load; the decoder is NetExtract(net, "dec"))'),
        ],
        training=results["TotalTrainingTime"],
    )
    print(f"new pictures: python examples/augment_vae.py generate --net {run.out / 'vae.npz'} --count N --out DIR")
    return numbers


# --- generate --------------------------------------------------------------------------------------------


def generate(args: argparse.Namespace) -> dict[str, Any]:
    """The generate subcommand: the saved net's decoder fed N(0, T² I) codes, one PNG per picture."""
    started = time.perf_counter()
    get_xp(args.device)
    net = load(args.net)
    decoder = NetExtract(net, "dec") if "dec" in getattr(net, "vertices", {}) else net
    latent = decoder.port_shapes.get("Input")
    if latent is None or len(latent) != 1:
        raise NetFileError(f'{args.net}: has no decoder (a vertex "dec" or a net taking a latent vector)')
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    width = max(4, len(str(args.count)))
    rng = np.random.default_rng(args.seed)
    written: list[Path] = []
    for start in range(0, args.count, 256):  # in chunks, so that any count fits in memory
        n = min(256, args.count - start)
        pictures = sample_prior(
            lambda z: decoder(z, target_device=args.device, batch_size=64),
            n,
            latent[0],
            temperature=args.temperature,
            seed=rng,
        )
        for i, picture in enumerate(np.clip(pictures, 0.0, 1.0), start=start + 1):
            written.append(save_png(picture, out / f"{args.prefix}{i:0{width}d}.png"))
    seconds = time.perf_counter() - started
    print(f'decoder: NetExtract(load({str(args.net)!r}), "dec"), latent size {latent[0]}')
    print(
        f"wrote {len(written)} pictures of {decoder.port_shapes['Output'][2]}×{decoder.port_shapes['Output'][1]}"
        f" (z ~ N(0, {args.temperature:g}² I)) to {out}/: {written[0].name} ... {written[-1].name}"
    )
    print(f"time taken: {seconds:.1f} s ({len(written) / seconds:.1f} pictures/s)")
    return {"count": len(written), "files": written, "seconds": seconds}


# --- the command line ------------------------------------------------------------------------------------


def _count_or_all(text: str) -> int | str:
    return "all" if text == "all" else cli.count(text)


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli.parser("augment_vae.py", __doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,generate}")
    fit = commands.add_parser(
        "train",
        help="train the VAE, write the net, samples, reconstructions and the loss plot",
        description="Train the 64×64×3 VAE and write vae.npz, samples.png, reconstructions.png, loss.png and "
        "vae.png to --out. The default schedule (3 rounds over 192 pictures in batches of 16, Adam at 0.0001 "
        "with beta1 0.5) takes a few minutes on a 2-core CPU; Keras code with this net trains "
        "--epochs 50 --batch-size 128 --train-images all.",
    )
    data = "a folder of pictures, CIFAR-10 batches or IDX files (default: Fashion-MNIST, grey copied to RGB)"
    cli.standard_options(fit, data=data, out="out/augment_vae")
    cli.schedule_options(fit, default_epochs=DEMO_EPOCHS, batch_size=DEMO_BATCH, batch_help="pictures per batch")
    first = f'train on the first N pictures, or "all" (default {DEMO_TRAIN_IMAGES})'
    fit.add_argument("--train-images", type=_count_or_all, default=DEMO_TRAIN_IMAGES, metavar="N", help=first)
    held = f"held-out pictures for validation and reconstructions (default {DEMO_TEST_IMAGES}; "
    held += f"of a --data folder at most {TEST_FRACTION:.0%}%)"
    fit.add_argument("--test-images", type=cli.count, default=DEMO_TEST_IMAGES, metavar="N", help=held)
    rate = f"ADAM's learning rate (default {DEMO_LEARNING_RATE})"
    fit.add_argument("--learning-rate", type=cli.positive, metavar="LR", default=DEMO_LEARNING_RATE, help=rate)
    beta = f"ADAM's first-moment decay (default {DEMO_BETA1})"
    fit.add_argument("--beta1", type=_fraction, default=DEMO_BETA1, metavar="B", help=beta)
    fit.add_argument(
        "--kl-weight", type=cli.weight, default=1.0, metavar="W", help="weight of the KL term (default 1, the ELBO)"
    )
    make = commands.add_parser(
        "generate",
        help="write N synthetic pictures from a trained net's decoder",
        description="Load a net written by `train`, take out its decoder and write --count synthetic pictures "
        "(PNG, numbered) decoded from z ~ N(0, T² I), for data augmentation.",
    )
    make.add_argument("--count", type=cli.count, required=True, metavar="N", help="how many pictures")
    make.add_argument("--out", required=True, metavar="DIR", help="folder for the pictures")
    net = "the trained net (default out/augment_vae/vae.npz)"
    make.add_argument("--net", default="out/augment_vae/vae.npz", metavar="PATH", help=net)
    cooler = "scale of the prior's standard deviation (default 1; below 1: more typical pictures)"
    make.add_argument("--temperature", type=cli.positive, default=1.0, metavar="T", help=cooler)
    make.add_argument("--prefix", default="synthetic_", help="file name prefix (default synthetic_)")
    cli.standard_options(make)
    args = parser.parse_args(argv)
    if args.command == "generate" and not Path(args.net).is_file():
        make.error(f"--net {args.net}: no such file (run `augment_vae.py train` first, or give --net PATH)")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs a subcommand; returns the numbers it printed (for tests)."""
    args = parse_args(argv)
    return train(args) if args.command == "train" else generate(args)


if __name__ == "__main__":
    cli.run_main(main)
