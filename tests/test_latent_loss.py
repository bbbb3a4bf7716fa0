"""The latentLoss subgraph of the seed post, built verbatim (examples/mnist_vae.py), against the closed form;
and examples/latent_loss_demo.py, which shows it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from gradcheck import check_net
from netgraph import NetGraph, NetPortGradient
from scripts import EXAMPLES, load_example

# the graph of the post, as examples/mnist_vae.py builds it (its one definition)
build_latent_loss = load_example("mnist_vae").build_latent_loss


def latent_loss() -> NetGraph:
    return build_latent_loss()


def test_ports_follow_wolfram_rules():
    net = latent_loss()
    assert net.input_ports == ("mn", "sd")
    assert net.output_ports == ("Output",)
    assert [type(net[k]).__name__ for k in (1, 2, 6)] == ["ElementwiseLayer", "TotalLayer", "SummationLayer"]


def test_worked_example_of_the_reference():
    out = latent_loss()({"mn": np.array([1.0, 0.0]), "sd": np.array([0.0, np.log(2) / 2])})
    assert abs(float(out) - 0.653426) < 1e-6


@given(n=st.integers(1, 16), d=st.integers(1, 12), seed=st.integers(0, 10**6))
def test_matches_closed_form_kl_and_its_gradients(n, d, seed, device):
    rng = np.random.default_rng(seed)
    mn, sd = rng.normal(size=(n, d)), 0.7 * rng.normal(size=(n, d))
    net = build_latent_loss(d)  # "mn" -> d, "sd" -> d, as the post fixes them: n×d is a batch
    kl = net({"mn": mn, "sd": sd}, target_device=device, working_precision="Real64")
    closed = 0.5 * (mn**2 + np.exp(2 * sd) - 1 - 2 * sd).sum(axis=-1)
    np.testing.assert_allclose(kl, closed, rtol=1e-12, atol=1e-12)
    grads = net(
        {"mn": mn, "sd": sd},
        [NetPortGradient("mn"), NetPortGradient("sd")],
        target_device=device,
        working_precision="Real64",
    )
    np.testing.assert_allclose(grads[NetPortGradient("mn")], mn, rtol=1e-12)
    np.testing.assert_allclose(grads[NetPortGradient("sd")], np.exp(2 * sd) - 1, rtol=1e-12, atol=1e-12)


def test_float32_is_the_default_and_close():
    rng = np.random.default_rng(3)
    mn, sd = rng.normal(size=(64, 8)), 0.5 * rng.normal(size=(64, 8))
    kl = latent_loss()({"mn": mn, "sd": sd}, batch=True)  # the ports' shapes are open: say it is a batch
    assert kl.dtype == np.float32 and kl.shape == (64,)
    np.testing.assert_allclose(kl, 0.5 * (mn**2 + np.exp(2 * sd) - 1 - 2 * sd).sum(1), rtol=1e-5)


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    net = latent_loss()
    assert float(net({"mn": np.zeros(4), "sd": np.zeros(4)})) == 0.0
    assert np.all(net({"mn": np.random.default_rng(0).normal(size=(10, 4)), "sd": np.zeros((10, 4))}) > 0)


def test_gradient_check_through_the_checker(device):
    rng = np.random.default_rng(5)
    net = latent_loss()
    check_net(net, {"mn": rng.normal(size=(3, 4)), "sd": rng.normal(size=(3, 4))}, device=device)


def test_the_sizes_can_be_fixed():
    net = build_latent_loss(size=8)
    assert net.port_shapes["mn"] == net.port_shapes["sd"] == (8,)


def test_the_demo_script_checks_and_draws_it(tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "latent_loss_demo.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "max |KL - closed form|" in done.stdout and "-Exp[2*#]&" in done.stdout
    assert (out / "latent_loss.png").is_file() and f"drawing written to {out / 'latent_loss.png'}" in done.stdout
