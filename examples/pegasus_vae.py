"""Winged horses from a convolutional VAE, after "A variational autoencoder to generate winged horses": a VAE on
32x32 colour pictures, pre-trained on every picture and fine-tuned on two classes (birds and horses); spherical
interpolations between the codes of a horse and a bird, decoded part-way, give "pegasi".

The paper's net: 4 convolutions (batch normalisation, leaky ramp) and 4 dense layers to the heads "mn" and "sd"
(log σ); z = mn + Exp[sd] * eps; a mirrored decoder ending in a LogisticSigmoid; binary cross-entropy summed over
the pixels plus KL (its equations (1) and (2)), with Adam. Unstated in the paper, so options: learning rate 0.001, 128
latent dimensions, 32 channels in the first convolution. After each phase it writes the net and 64 samples; then it
pairs 8 pictures of the second class each with one of 21 of the first and decodes slerp(z1, z2; mu) for 8 values of
mu in [0.4, 0.7]: the 8x8 grid of the paper's figure 2.

    python examples/pegasus_vae.py                                       # Fashion-MNIST stands in, a few minutes
    python examples/pegasus_vae.py --data cifar-10-batches-bin/          # CIFAR-10, birds and horses
    python examples/pegasus_vae.py --data photos/ --classes eagle pony   # a folder, classes by sub-folder
    python examples/pegasus_vae.py --iterations 5 --train-images 500     # a quick check
    python examples/pegasus_vae.py --checkpoint runs/pegasus --resume    # resumable; a finished phase is read back

Data: --data holds CIFAR-10 batches (or their archive), MNIST-format files, or pictures whose folder names are their
classes; else Fashion-MNIST (grey copied to RGB) stands in for the paper's CIFAR-10 and STL-10, Sneaker and Bag for
its classes. Each phase runs batches or rounds, by default 300 and 150 batches of 64 (4 to 6 minutes on 2 CPU
cores); the paper's is --pretrain-epochs 100 --finetune-epochs 300 (7 million pictures: a GPU's work).
"""

from __future__ import annotations

import functools
from typing import Any

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
from netgraph import NetChain, NetGraph, NetPort, NormalDistribution, cli, draw, exp
from netgraph.datasets import FASHION_MNIST_CLASSES, DatasetError, to_float
from netgraph.generate import vae_loss, vae_parts

SIZE, PIXELS = 32, 3 * 32 * 32
NLATENT, WIDTH = 128, 32  # the paper gives neither its latent size nor its widths (the first convolution's channels)
LEAKY = ("LeakyRamp", 0.01)  # the leaky ramp of the paper's reference [4] (Xu et al. 2015)
DEFAULT_BATCHES = {"pretrain": 300, "finetune": 150}  # 4 to 6 minutes on 2 CPU cores; the paper's: 7.2 M pictures
VALIDATION_FRACTION, MEASURED = 0.1, 1000  # MEASURED: held-out pictures the loss is measured on after each phase
ROWS, FIRST_POOL, MUS = 8, 21, np.linspace(0.4, 0.7, 8)  # the paper's 8 horses, 21 birds and 8 values of mu

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


#: --classes FIRST SECOND, else the paper's bird and horse, else Fashion-MNIST's sneaker and bag
choose_classes = functools.partial(cli.choose_classes, preferred=("bird", "horse"),
                                   stand_ins={FASHION_MNIST_CLASSES: ("Sneaker", "Bag")})  # fmt: skip


def train_phase(net: NetGraph, train: Any, validation: Any, args: Any, run: cli.Run, phase: str, title: str, *,
                saved: tuple[str, str], samples: tuple[str, str], plot: str) -> tuple[NetGraph, Any]:  # fmt: skip
    """A phase ("pretrain" or "finetune"): NetTrain on the Loss and KL ports; the net kept (``saved``: file, what it
    is), its loss plot (titled ``plot``) and 64 samples (``samples``) written; returns it and NetTrain's results."""
    plan = cli.phase_schedule(args, phase, len(train), DEFAULT_BATCHES[phase])
    cli.report_phase(title, plan, len(train), len(validation), "pictures")
    # NetTrain for the schedule `plan`, with the phase's checkpoints (--checkpoint DIR/<phase>, --resume); on a failure
    # the last good net is kept
    results = cli.train(run, net, {"Input": train}, "All", plan, loss_function=["Loss", "KL"],
                        method=("ADAM", {"learning_rate": args.learning_rate}),
                        validation_set={"Input": validation} if len(validation) else None,
                        target_device=args.device, random_seeding=args.seed, phase=phase, saved=saved[0])  # fmt: skip
    keep = "final" if plan.stop else "best"
    trained = cli.training_summary(results, keep=keep, unit="pictures", digits=1, losses="BCE + KL per picture")
    trained.save(run.path(*saved))
    loss = run.path(f"loss_{phase}.png", f"{'pre-training' if phase == 'pretrain' else 'fine-tuning'} loss")
    cli.save_loss_plot(results, loss, f"{plot}: BCE + KL per picture")
    decode = vae_parts(trained, target_device=args.device, batch_size=256)[1]
    cli.vae_pictures(run, decode, args.latent, seed=args.seed, scale=2, samples=samples[0], said=samples[1])
    return trained, results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Pre-train, fine-tune, sample and interpolate; returns the numbers it printed (for tests)."""
    parser = cli.parser("pegasus_vae.py", __doc__)
    data = "CIFAR-10 batches, MNIST-format files or pictures (default: Fashion-MNIST)"
    cli.standard_options(parser, data=data, out="out/pegasus_vae", seed="random seed (all draws)")
    cli.option(parser, "--classes", str, "the two fine-tuning classes (default bird horse)", nargs=2,
               metavar=("FIRST", "SECOND"))  # fmt: skip
    check_phases = cli.phase_options(parser, {
        "pretrain": ("pre-training rounds over all pictures (the paper: 100)", "pre-training batches (default 300)"),
        "finetune": ("fine-tuning rounds over the two classes (the paper: 300)", "fine-tuning batches (default 150)"),
    })  # fmt: skip
    cli.option(parser, "--train-images", int, "use N pictures drawn at random (default all)")
    cli.option(parser, "--batch-size", 64, "pictures per batch")
    cli.option(parser, "--learning-rate", 1e-3, "Adam's learning rate", metavar="RATE")
    cli.option(parser, "--latent", NLATENT, "latent dimensions")
    cli.option(parser, "--width", WIDTH, "channels of the first convolution, doubling after")
    check_phases(args := parser.parse_args(argv))
    run, options = cli.Run(args), {"target_device": args.device, "batch_size": 256}

    # data: every picture for pre-training, the two classes for fine-tuning; 10% held out of both
    data = cli.pictures(args.data, SIZE, color_space="RGB", stands_in_for="the paper's CIFAR-10 and STL-10",
                        how="its grey channel is copied to red, green and blue")  # fmt: skip
    print(f"data: {data.description}")
    parts = cli.split_pictures(data, VALIDATION_FRACTION, args.seed, draw=args.train_images)
    first, second, why = choose_classes(args.classes, data)
    names = (data.class_names[first], data.class_names[second])
    print(f"classes: {(both := names[0] if first == second else f'{names[0]} and {names[1]}')} {why}")
    (train, train_labels), (validation, validation_labels) = parts
    if missing := [data.class_names[k] for k in (first, second) if not np.any(train_labels == k)]:
        raise DatasetError(f"no training pictures of {missing[0]} (try more --train-images)")
    chosen, chosen_validation = np.isin(train_labels, (first, second)), np.isin(validation_labels, (first, second))
    train, validation = to_float(train), to_float(validation)

    vae = build_vae(args.latent, args.width)
    print(vae)
    parameters = cli.report_parameters(vae, encoder=("enc", "mn", "sd"), decoder=("dec",))
    print(f"optimiser: Adam, learning rate {args.learning_rate}; on the {args.device}\n"
          "the paper's schedule: 100 rounds over all pictures, then 300 over the two classes")  # fmt: skip
    draw(vae, run.path("vae.png", "the network"))

    # phase 1, pre-training on every picture; phase 2, fine-tuning on the two classes
    pretrained, pre_results = train_phase(
        vae, train, validation, args, run, "pretrain", "pre-training",
        saved=("pretrained.npz", "the pre-trained net (netgraph.load)"),
        samples=("samples_pretrained.png", "64 samples of the pre-trained net"),
        plot=f"pre-training on {data.name}")  # fmt: skip
    held_out = (validation if len(validation) else train)[:MEASURED]
    pre = cli.report_vae_loss(*vae_parts(pretrained, **options), held_out, "held-out pictures", seed=args.seed)
    fine_train, fine_validation = train[chosen], validation[chosen_validation]
    tuned, results = train_phase(
        pretrained, fine_train, fine_validation, args, run, "finetune", f"fine-tuning on {both}",
        saved=("pegasus_vae.npz", 'the fine-tuned net (the decoder is NetExtract(net, "dec"))'),
        samples=("samples.png", "64 samples of the fine-tuned net: the decoder fed z ~ N(0, I)"),
        plot=f"fine-tuning on {both}")  # fmt: skip
    held_two = (fine_validation if len(fine_validation) else fine_train)[:MEASURED]
    encode, decode = vae_parts(tuned, **options)
    before = vae_loss(*vae_parts(pretrained, **options), held_two, seed=args.seed)
    fine = cli.report_vae_loss(encode, decode, held_two, f"held-out {both} pictures", seed=args.seed,
                               then=f" (the pre-trained net: {before['loss']:.1f})")  # fmt: skip
    print("  NOTE: BCE reads the decoder's outputs as pixel probabilities; the pixels are grey levels, not 0 or 1,"
          "\n  so this is the cross-entropy the paper minimises, not a normalised likelihood.")  # fmt: skip

    # reconstructions of held-out pictures of the two classes, by both nets
    held_labels = (validation_labels[chosen_validation] if len(fine_validation) else train_labels[chosen])[:MEASURED]
    nets = {"pre-trained": vae_parts(pretrained, **options), "fine-tuned": (encode, decode)}
    cli.reconstruction_pictures(run, held_two, nets, "held-out pictures of the two classes and their reconstructions "
                                "by both nets", labels=held_labels, classes=(first, second), scale=2)  # fmt: skip

    # the pegasi: 8 pictures of the second class, each paired with one of 21 of the first, slerped at 8 values of mu
    angles, _ = cli.slerp_pictures(
        run, encode, decode, fine_train, train_labels[chosen], (first, second), names, mus=MUS, rows=ROWS,
        pool=FIRST_POOL, seed=args.seed, scale=2, grid="pegasus.png", pairs="pegasus_pairs.png", title="pegasi",
    )  # fmt: skip
    times = pre_results["TotalTrainingTime"], results["TotalTrainingTime"]
    spent = f"{times[0]:.1f} s pre-training and {times[1]:.1f} s fine-tuning"
    return {"parameters": parameters, "pretrain_loss": pre["loss"], "finetune_loss": fine["loss"],
            "finetune_loss_before": before["loss"], "finetune_bce": fine["reconstruction"], "finetune_kl": fine["kl"],
            "pretrain_seconds": times[0], "finetune_seconds": times[1],
            "pretrain_images_per_second": pre_results["MeanExamplesPerSecond"],
            "finetune_images_per_second": results["MeanExamplesPerSecond"], "pair_angles": angles.tolist(),
            "total_seconds": run.report(training=spent, what="pictures and the trained nets")}  # fmt: skip


if __name__ == "__main__":
    cli.run_main(main)
