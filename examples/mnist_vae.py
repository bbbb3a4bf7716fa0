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
    python examples/mnist_vae.py --checkpoint runs/mnist --resume  # checkpoints every round; continue from the newest

Data: --data is a folder of MNIST-format IDX files (train-images-idx3-ubyte[.gz] and
train-labels-idx1-ubyte[.gz], with the t10k files as the test set when present) or a folder of
pictures, read in grey at 28x28 (centre-cropped). Without --data, MNIST is read from the cache
(downloaded when the network allows), else Fashion-MNIST (Debian's dataset-fashion-mnist).
"""

from __future__ import annotations

import numpy as np

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
from netgraph import NetChain, NetExtract, NetGraph, NetPort, NetTake, NormalDistribution, cli, draw, exp
from netgraph.datasets import mnist, to_float
from netgraph.generate import bits_per_dim, elbo, vae_parts

NLATENT = 8  # the post's latent size
PIXELS = 28 * 28
# The `make demo` schedule, sized to finish in well under 10 minutes on a 2-core CPU, where
# forward and backward of this net run at about 500 images/s: two passes over 54,000 images.
# The post trained 2,000 batches of 32 (64,000 images) in 10 hours.
DEMO_EPOCHS = 2
VALIDATION_FRACTION = 0.1
TEST_FRACTION = 0.1  # held out for the ELBO when the data has no test set of its own

# --- the net, as in the post --------------------------------------------------------------------------
# fmt: off


def build_latent_loss(size: int | None = None) -> NetGraph:
    """The post's latentLoss, wired port by port: 0.5 * Σ (mn² + e^(2 sd) - 1 - 2 sd), the KL divergence
    of N(mn, e^(2 sd)) from N(0, 1). ``size`` fixes the length of "mn" and "sd" (else the net infers it)."""
    return NetGraph(
        [ElementwiseLayer(lambda x: -0.5 * x), TotalLayer(),
         ElementwiseLayer(lambda x: -(x**2)), ElementwiseLayer(lambda x: -exp(2 * x)),
         ElementwiseLayer(lambda x: 1 + 2 * x), SummationLayer()],
        [(NetPort("mn"), 3), (NetPort("sd"), 4), (NetPort("sd"), 5), ([3, 4, 5], 2, 6, 1)],
        ports={"mn": size, "sd": size} if size else None,
    )


def build_encoder() -> NetChain:
    """Three convolutions with Ramp, flattened: 1×28×28 → 32×26×26 → 64×12×12 → 64×9×9 → 5184."""
    return NetChain([
        ConvolutionLayer(32, 3), "Ramp",
        ConvolutionLayer(64, 3, stride=2), "Ramp",
        ConvolutionLayer(64, 4), "Ramp",
        FlattenLayer(),
    ], input=(1, 28, 28))


def build_decoder(nlatent: int = NLATENT) -> NetChain:
    """8 → 5184 → 64×9×9, then deconvolutions back up to 1×28×28 and a LogisticSigmoid."""
    return NetChain([
        LinearLayer(5184), "Ramp", ReshapeLayer((64, 9, 9)),
        DeconvolutionLayer(64, 4), "Ramp",
        DeconvolutionLayer(32, 3, stride=2), "Ramp",
        DeconvolutionLayer(1, 4), "LogisticSigmoid",
    ], input=nlatent)


def build_vae(nlatent: int = NLATENT) -> NetGraph:
    """The full network: input "Input" (1, 28, 28), whose loss target is the input itself, and the
    output ports "Loss" (784 × mean squared error) and "KL" (latentLoss)."""
    mn = LinearLayer(nlatent)
    sd = NetChain([LinearLayer(nlatent), ElementwiseLayer(lambda x: 0.5 * x)])
    exp_sd = ElementwiseLayer(exp)
    return NetGraph({
        "enc": build_encoder(), "mn": mn, "sd": sd, "expSd": exp_sd,
        "eps": RandomArrayLayer(NormalDistribution(0, 1), output=nlatent),
        "times": ThreadingLayer("Times"), "z": TotalLayer(), "dec": build_decoder(nlatent),
        "loss": MeanSquaredLossLayer(), "scale": ElementwiseLayer(lambda x: PIXELS * x),
        "latentLoss": build_latent_loss(),
    }, [
        (NetPort("Input"), "enc", "mn"),
        ("enc", "sd", "expSd"),
        (["expSd", "eps"], "times"),
        (["mn", "times"], "z", "dec", NetPort("loss", "Input")),
        (NetPort("Input"), NetPort("loss", "Target")),
        ("loss", "scale", NetPort("Loss")),
        ("mn", NetPort("latentLoss", "mn")),
        ("sd", NetPort("latentLoss", "sd")),
        ("latentLoss", NetPort("KL")),
    ], input=(1, 28, 28))


# fmt: on
# --- the run ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train, generate and evaluate; returns the numbers it printed (for tests)."""
    parser = cli.parser("mnist_vae.py", __doc__)
    data, seed = "MNIST-format IDX files or pictures (default: MNIST, else Fashion-MNIST)", "random seed (all draws)"
    cli.standard_options(parser, data=data, out="out/mnist_vae", seed=seed)
    iterations = "training batches in all, as the post counts (it used 2000)"
    cli.schedule_options(parser, default_epochs=DEMO_EPOCHS, batch_size=32, iterations_help=iterations)
    cli.option(parser, "--learning-rate", 5e-4, "ADAM's learning rate")
    cli.option(parser, "--train-images", int, "train on the first N training images only (default all)")
    cli.option(parser, "--test-images", int, "compute the test ELBO on the first N test images (default all)")
    args = parser.parse_args(argv)
    run = cli.Run(args)
    options = {"target_device": args.device, "batch_size": 256}

    # data: a validation split is held out of the training images
    own = ("MNIST", lambda kind: mnist(download=True, kind=kind))  # the post's data, else Fashion-MNIST stands in
    sets = cli.picture_sets(args.data, 28, stands_in_for="MNIST", own=own, own_test=True, fraction=TEST_FRACTION,
                            train=args.train_images, test=args.test_images, seed=args.seed)  # fmt: skip
    (train, validation), test = cli.hold_out(to_float(sets.train), VALIDATION_FRACTION, args.seed), to_float(sets.test)
    cli.report_data(sets.description, training=len(train), validation=len(validation), test=len(test))
    plan = cli.schedule(len(train), args.batch_size, args.epochs, args.iterations, DEMO_EPOCHS)
    post = "(the post: 2000 batches of 32 with ADAM at 0.0005, 10 hours)"
    cli.report_schedule(plan, f"ADAM, learning rate {args.learning_rate}", post)

    vae = build_vae()
    print(vae)
    draw(vae, run.path("vae.png", "the network"))
    print(f"training on the {args.device}...")
    # NetTrain[vae, <|"Input" -> images|>, All, LossFunction -> {"Loss", "KL"}, Method -> {"ADAM", ...}, ...]
    # for the schedule `plan`, with --checkpoint and --resume; on a failure the last good net is kept
    results = cli.train(run, vae, {"Input": train}, "All", plan, loss_function=["Loss", "KL"],
                        method=("ADAM", {"learning_rate": args.learning_rate}),
                        validation_set={"Input": validation} if len(validation) else None,
                        target_device=args.device, random_seeding=args.seed)  # fmt: skip
    # as the post, the net after the last batch of --iterations; else the round of lowest validation loss
    trained = cli.training_summary(results, keep="final" if args.iterations else "best")
    trained.save(run.path("vae.npz", 'the trained net (netgraph.load; the decoder is NetExtract(net, "dec"))'))
    loss = run.path("loss.png", "round and validation loss per training round")
    cli.save_loss_plot(results, loss, f"VAE on {sets.name}: Loss + KL per image")

    # the decoder, taken out of the trained net two ways: NetExtract and NetTake
    dec, taken = NetExtract(trained, "dec"), NetTake(trained, (NetPort("z", "Output"), "dec"))
    z = np.random.default_rng(args.seed).standard_normal((64, NLATENT))
    print(f'decoder: NetExtract(trained, "dec") = {dec}')
    same = np.allclose(taken(z, **options), dec(z, **options), atol=1e-6)
    print(f'         NetTake(trained, (NetPort("z", "Output"), "dec")) gives the same pictures: {same}')

    # samples, reconstructions, interpolations and the ELBO; the posterior q(z|x) = N(mn, e^(2 sd))
    encode, decode = vae_parts(trained, **options)
    cli.vae_pictures(run, decode, NLATENT, encode, test, seed=args.seed, scale=2, interpolation="spherical",
                     what="test images")  # fmt: skip
    mean, log_var = encode(test)

    # the test ELBO, one z per image; the posterior (computed once) is shared by both likelihoods
    bern, gauss = (elbo(lambda _x: (mean, log_var), decode, test, likelihood=kind, seed=args.seed, parts=True)
                   for kind in ("bernoulli", "gaussian"))  # fmt: skip
    sse = -2.0 * (gauss["reconstruction"] + 0.5 * PIXELS * np.log(2 * np.pi))  # Σ (x - x̂)²
    objective, constant = float(np.mean(sse + gauss["kl"])), 0.5 * PIXELS * float(np.log(np.pi))
    numbers = {"elbo_bernoulli": float(np.mean(bern["elbo"])), "elbo_gaussian": float(np.mean(gauss["elbo"])),
               "kl": float(np.mean(bern["kl"])), "test_loss": objective, "elbo_gaussian_half": -(objective + constant),
               "train_seconds": results["TotalTrainingTime"]}  # fmt: skip
    bits = float(np.mean(bits_per_dim(bern["elbo"], PIXELS)))
    print(f"""
test set: {len(test)} images, one z ~ q(z|x) each
  test ELBO, Bernoulli likelihood: {numbers["elbo_bernoulli"]:.2f} nats per image ({bits:.4f} bits per pixel); \
KL term {numbers["kl"]:.2f} nats
    NOTE: this reads the decoder's outputs as probabilities of grey, not binarised, pixels: the cross-entropy
    bound much VAE code reports, not a normalised likelihood, for a net trained on squared error.
  test ELBO, Gaussian likelihood: {numbers["elbo_gaussian"]:.2f} nats per image with variance 1, \
{numbers["elbo_gaussian_half"]:.2f} with variance 1/2
    (densities over continuous pixels: neither compares with the Bernoulli one)
  test loss, the training objective 784·MSE + KL: {objective:.2f} per image, the negative ELBO of variance 1/2 less
    the constant 392·ln π = {constant:.1f} nats""")
    numbers["total_seconds"] = run.report(training=results["TotalTrainingTime"])
    return numbers


if __name__ == "__main__":
    cli.run_main(main)
