"""A variational autoencoder that makes extra training pictures: the Keras-style 64×64×3 VAE of the "Image
Generation using Variational autoencoder (VAE)" project (data augmentation), in netgraph's NetGraph/NetChain
form, trained with NetTrain on the ELBO; `generate` writes new pictures with its decoder.

The net is the project's summary tables, layer by layer; train prints both summaries against the project's:
encoder 13,802,688 parameters (4,032 of them batch-norm moving statistics), decoder 13,283,023 (3,014). The loss
per picture is the squared error summed over the 64·64·3 values plus the KL term summed over the 512 latent
units (Keras code with this net weights the KL 3/512 as much), with Adam at 0.0001 and beta1 0.5 as Keras code
with it, which trains 50 epochs of batches of 128 (an hour on a GPU). The default, 3 rounds over 192 pictures in
batches of 16, takes about 4 minutes on a 2-core CPU and learns the average shapes and brightness. At a learning
rate of 0.0005 the log-variance head ran away within ten batches. The batch norms keep Wolfram's momentum 0.9
(Keras's 0.99 would leave their moving statistics near their initial values after so short a schedule).

    python examples/augment_vae.py train                          # Fashion-MNIST stands in, 3 rounds
    python examples/augment_vae.py train --data faces/ --epochs 50 --batch-size 128 --train-images all --device GPU
    python examples/augment_vae.py train --checkpoint runs/augment --resume   # resumable: checkpoints every round
    python examples/augment_vae.py generate --count 500 --out extra/   # 500 new pictures, numbered PNGs

train writes the trained net vae.npz, samples.png (64 pictures from z ~ N(0, I)), reconstructions.png, loss.png
and vae.png; generate takes out the decoder of vae.npz (NetExtract(net, "dec")) and writes pictures decoded from
z ~ N(0, T² I), synthetic_0001.png, ...; T below 1 gives more typical ones. Data: --data is a folder of pictures
(colour, centre-cropped and resized to 64×64), of CIFAR-10 batches or of MNIST-format IDX files; without it
Fashion-MNIST stands in for the project's picture database.
"""

from __future__ import annotations

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
from netgraph import NetChain, NetExtract, NetGraph, NetPort, NetSummary, NormalDistribution, cli, draw, exp
from netgraph.datasets import to_float
from netgraph.generate import vae_parts

SIZE, CHANNELS, NLATENT = 64, 3, 512  # the latent size is fixed by the decoder's first layer, (512 + 1) × 1024
PIXELS = SIZE * SIZE * CHANNELS  # 12,288 values per picture
SEED_ENCODER, SEED_DECODER = (13_802_688, 4_032), (13_283_023, 3_014)  # the project's (total, non-trainable)
DEMO_EPOCHS, DEMO_TRAIN_IMAGES, DEMO_TEST_IMAGES, DEMO_BATCH = 3, 192, 32, 16  # a few minutes on a 2-core CPU

# --- the net ---------------------------------------------------------------------------------------------


def _block(layer: Any, filters: int, stride: int = 2) -> list[Any]:
    """Keras's Conv2D (or Conv2DTranspose)(filters, 5, strides, "same", LeakyReLU(0.02)), BatchNormalization()."""
    leaky = ElementwiseLayer(("LeakyRamp", 0.02))
    return [layer(filters, 5, stride=stride, padding_size="Same"), leaky, BatchNormalizationLayer()]


# fmt: off
def build_encoder(nlatent: int = NLATENT) -> NetGraph:
    """3×64×64 → five 5×5 convolution blocks (32 at stride 1; 64, 128, 256, 512 at stride 2) → 8192 →
    Linear 1024, SELU, batch norm → the output ports "Mu" and "LogVar" (Linear nlatent each)."""
    features = NetChain([
        *_block(ConvolutionLayer, 32, stride=1), *_block(ConvolutionLayer, 64), *_block(ConvolutionLayer, 128),
        *_block(ConvolutionLayer, 256), *_block(ConvolutionLayer, 512),
        FlattenLayer(), LinearLayer(1024), "SELU", BatchNormalizationLayer(),
    ])
    return NetGraph(
        {"features": features, "mu": LinearLayer(nlatent), "logVar": LinearLayer(nlatent)},
        [(NetPort("Input"), "features", "mu", NetPort("Mu")), ("features", "logVar", NetPort("LogVar"))],
        input=(CHANNELS, SIZE, SIZE),
    )


def build_decoder(nlatent: int = NLATENT, sigmoid_last: bool = True) -> NetChain:
    """nlatent → Linear 1024, SELU, batch norm → Linear 8192, SELU → 512×4×4 → four 5×5 stride-2
    deconvolution blocks (256, 128, 64, 32) → Deconvolution 3 → batch norm → LogisticSigmoid. The last batch
    norm completes the project's total; Keras code puts it after the sigmoid (``sigmoid_last=False``), here it
    comes before, so that the output is a picture in [0, 1] as the project describes."""
    tail = [BatchNormalizationLayer(), "LogisticSigmoid"][:: 1 if sigmoid_last else -1]
    return NetChain([
        LinearLayer(1024), "SELU", BatchNormalizationLayer(),
        LinearLayer(8192), "SELU", ReshapeLayer((512, 4, 4)),
        *_block(DeconvolutionLayer, 256), *_block(DeconvolutionLayer, 128), *_block(DeconvolutionLayer, 64),
        *_block(DeconvolutionLayer, 32),
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
    (12,288 × mean squared error: the squared error summed over the picture) and "KL", the ELBO's own 1 : 1."""
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


def compare_with_seed(name: str, net: Any, seed: tuple[int, int]) -> dict[str, Any]:
    """Prints one part's parameters (Keras's non-trainable ones: the batch norms' moving statistics) against the
    project's summary; returns them."""
    summary, (seed_total, seed_frozen) = NetSummary(net), seed
    total, frozen = summary.total_parameters, summary.non_trainable_parameters
    same = (total, frozen) == seed
    print(f"{name}: {total:,} parameters ({total - frozen:,} trainable, {frozen:,} moving statistics); the project's "
          f"summary: {seed_total:,} ({seed_total - seed_frozen:,} trainable, {seed_frozen:,} non-trainable): "
          + ("the same" if same else f"differs by {total - seed_total:+,} ({frozen - seed_frozen:+,})"))  # fmt: skip
    return {f"{name}_total": total, f"{name}_trainable": total - frozen, f"{name}_non_trainable": frozen}


def train(args: Any) -> dict[str, Any]:
    """The train subcommand: build, summarise, train, write the pictures and the net."""
    run = cli.Run(args)
    vae = build_vae()
    encoder, decoder = NetExtract(vae, "enc"), NetExtract(vae, "dec")
    print("encoder (channels first: a Keras (None, 64, 64, 32) is 32×64×64 here; activations are rows of their own)")
    print(f"{NetSummary(encoder)}\n\ndecoder\n{NetSummary(decoder)}\n")
    numbers = compare_with_seed("encoder", encoder, SEED_ENCODER) | compare_with_seed("decoder", decoder, SEED_DECODER)
    draw(vae, run.path("vae.png", "the network"))

    sets = cli.picture_sets(args.data, SIZE, color_space="RGB", stands_in_for="the project's picture database",
                            how="its grey channel copied to R, G and B", train=args.train_images,
                            test=args.test_images, most=args.test_images, fraction=0.1, seed=args.seed)  # fmt: skip
    images, test = to_float(sets.train), to_float(sets.test)
    held = f", {len(test)} held out (validation and reconstructions)"
    cli.report_data(sets.description, "pictures", held, training=len(images))
    plan = cli.schedule(len(images), args.batch_size, args.epochs, args.iterations, DEMO_EPOCHS)
    loss = f"loss = Loss (squared error summed over the picture) + {args.kl_weight:g} × KL"
    cli.report_schedule(plan, f"ADAM, learning rate {args.learning_rate}, beta1 {args.beta1}", loss, unit="pictures")
    print(f"training on the {args.device}...")
    # NetTrain for the schedule `plan`, with --checkpoint and --resume; on a failure the last good net is kept
    results = cli.train(run, vae, {"Input": images}, "All", plan, loss_function={"Loss": 1.0, "KL": args.kl_weight},
                        method=("ADAM", {"learning_rate": args.learning_rate, "beta1": args.beta1}),
                        validation_set={"Input": test} if len(test) else None,
                        target_device=args.device, random_seeding=args.seed)  # fmt: skip
    trained = cli.training_summary(results, keep="final", unit="pictures", digits=1)  # as the Keras code
    trained.save(run.path("vae.npz", 'the trained net (netgraph.load; the decoder is NetExtract(net, "dec"))'))
    cli.save_loss_plot(results, run.path("loss.png", "round and validation loss"), "augment VAE: Loss + KL per picture")
    numbers.update(train_seconds=results["TotalTrainingTime"], pictures_per_second=results["MeanExamplesPerSecond"])

    # pictures: prior samples and reconstructions from the posterior mean, in evaluation mode
    options = {"target_device": args.device, "batch_size": 64}
    posterior = (NetPort("enc", "Mu"), NetPort("enc", "LogVar"))  # q(z|x) = N(Mu, e^LogVar)
    encode, decode = vae_parts(trained, posterior, scale="log_variance", **options)
    cli.vae_pictures(run, decode, NLATENT, encode, test, seed=args.seed, what="held-out pictures",
                     said="64 pictures from the decoder fed z ~ N(0, I)")  # fmt: skip
    if len(test):
        terms = trained({"Input": test}, **options)
        sse, kl = float(np.mean(terms["Loss"])), float(np.mean(terms["KL"]))
        numbers.update(test_squared_error=sse, test_kl=kl)
        print(f"\nheld-out pictures ({len(test)}), one z ~ q(z|x) each:\n  squared error {sse:.1f} per picture "
              f"(mean squared error {sse / PIXELS:.5f}), KL {kl:.2f} nats\n  Loss + KL = {sse + kl:.1f} per picture; "
              f"with --kl-weight {args.kl_weight:g}: {sse + args.kl_weight * kl:.1f}")  # fmt: skip
    numbers["total_seconds"] = run.report(training=results["TotalTrainingTime"])
    print(f"new pictures: python examples/augment_vae.py generate --net {run.out / 'vae.npz'} --count N --out DIR")
    return numbers


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs a subcommand; returns the numbers it printed (for tests)."""
    parser = cli.parser("augment_vae.py", __doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,generate}")
    fit = commands.add_parser("train", help="train the VAE; write the net and its pictures")
    data = "a folder of pictures, CIFAR-10 batches or IDX files (default: Fashion-MNIST, grey copied to RGB)"
    cli.standard_options(fit, data=data, out="out/augment_vae")
    cli.schedule_options(fit, default_epochs=DEMO_EPOCHS, batch_size=DEMO_BATCH, batch_help="pictures per batch")
    all_or_count = lambda text: None if text == "all" else cli.count(text)
    cli.option(fit, "--train-images", DEMO_TRAIN_IMAGES, 'train on the first N pictures, or "all"', type=all_or_count)
    held = f"held-out pictures, for validation and reconstructions (default {DEMO_TEST_IMAGES}; at most 10%% of --data)"
    cli.option(fit, "--test-images", DEMO_TEST_IMAGES, held)
    cli.option(fit, "--learning-rate", 1e-4, "ADAM's learning rate", metavar="LR")
    cli.option(fit, "--beta1", 0.5, "ADAM's first-moment decay", type=cli.fraction, metavar="B")
    cli.option(fit, "--kl-weight", 1.0, "weight of the KL term (default 1, the ELBO)", type=cli.weight, metavar="W")
    make = commands.add_parser("generate", help="write N synthetic pictures (numbered PNGs) from z ~ N(0, T² I) with "
                               "the decoder of a net written by train, for data augmentation")  # fmt: skip
    cli.sample_options(make, net="out/augment_vae/vae.npz", prefix="synthetic_", missing="run the train command first")
    args = parser.parse_args(argv)
    return train(args) if args.command == "train" else cli.write_samples(args)


if __name__ == "__main__":
    cli.run_main(main)
