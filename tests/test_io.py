"""Saving and loading: round trips are bit-identical; damaged or crafted files fail cleanly."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import layers as L
from netgraph import (
    All,
    NetChain,
    NetFileError,
    NetGraph,
    NetInitialize,
    NetPort,
    NormalDistribution,
    UniformDistribution,
    exp,
    load,
)
from netgraph import symbolic as sym
from netgraph.layer import LAYER_CLASSES, UnaryLayer


def many_layers_net():
    latent = NetGraph(
        [
            L.ElementwiseLayer(lambda x: -0.5 * x),
            L.TotalLayer(),
            L.ElementwiseLayer(lambda x: -(x**2)),
            L.ElementwiseLayer(lambda x: -exp(2 * x)),
            L.ElementwiseLayer(lambda x: 1 + 2 * x),
            L.SummationLayer(),
        ],
        [(NetPort("mn"), 3), (NetPort("sd"), 4), (NetPort("sd"), 5), ([3, 4, 5], 2, 6, 1)],
    )
    return NetInitialize(
        NetGraph(
            {
                "enc": NetChain([L.LinearLayer((2, 3)), L.FlattenLayer(), ("LeakyRamp", 0.2)]),
                "mn": L.LinearLayer(4),
                "sd": NetChain([L.LinearLayer(4), L.ElementwiseLayer(lambda x: 0.5 * x)]),
                "eps": L.RandomArrayLayer(NormalDistribution(0, 1), output=4),
                "u": L.RandomArrayLayer(UniformDistribution(1, 2), output=4),
                "mix": L.ThreadingLayer(lambda a, b, c: a + sym.where(b > 0, b, c) * 0.1),
                "kl": latent,
                "part": L.PartLayer((slice(1, 2),)),
                "cat": L.CatenateLayer(),
                "t": L.TransposeLayer([(1, 1)]),
                "agg": L.AggregationLayer("Max", All),
                "rep": L.ReplicateLayer(2),
                "res": L.ReshapeLayer([8]),
                "ct": L.ConstantTimesLayer(),
                "cp": L.ConstantPlusLayer(),
                "soft": L.SoftmaxLayer(),
                "drop": L.DropoutLayer(0.1),
                "arr": L.ConstantArrayLayer(output=4),
                "plus": L.ThreadingLayer("Plus"),
                "loss": L.CrossEntropyLossLayer("Probabilities"),
            },
            [
                (NetPort("Input"), "enc", "mn"),
                ("enc", "sd"),
                ("mn", NetPort("kl", "mn")),
                ("sd", NetPort("kl", "sd")),
                (["mn", "eps", "u"], "mix", "part"),
                (["part", "mix"], "cat", "t", "ct", "cp", "soft", "drop", "loss"),
                ("mix", "rep", "res", NetPort("Rep")),
                ("kl", "agg", NetPort("KL")),
                (["arr", "mix"], "plus", NetPort("Plus")),
            ],
            input=5,
        )
    )


def test_round_trip_is_bit_identical(tmp_path):
    net = many_layers_net()
    net.save(tmp_path / "net.npz")
    again = load(tmp_path / "net.npz")
    data = {"Input": np.random.default_rng(0).normal(size=(3, 5)), "Target": np.full((3, 6), 1 / 6)}
    a, b = net(data, random_seeding=4), again(data, random_seeding=4)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert str(again["mix"]) == str(net["mix"])
    assert again.port_shapes == net.port_shapes


def test_uninitialized_and_removed_arrays_survive(tmp_path):
    chain = NetChain([L.LinearLayer(3, biases=None), L.LinearLayer(2)], input=4)
    chain.save(tmp_path / "c.npz")
    again = load(tmp_path / "c.npz")
    assert "Biases" not in again[1].arrays and again[2].arrays["Weights"] is None


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "net.npz"
    many_layers_net().save(path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        many_layers_net().save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]  # no temporary left behind


def _rewrite(path, header=None, extra=None):
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    if header is not None:
        raw = json.dumps(header).encode()
        np.save(path.parent / "h.npy", np.frombuffer(raw, dtype=np.uint8))
        parts["net.json.npy"] = (path.parent / "h.npy").read_bytes()
    parts.update(extra or {})
    with zipfile.ZipFile(path, "w") as z:
        for n, data in parts.items():
            z.writestr(n, data)


def _header(path):
    with np.load(path) as archive:
        return json.loads(archive["net.json"].tobytes())


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "missing"])
def test_damaged_files_fail_cleanly(tmp_path, damage):
    path = tmp_path / "net.npz"
    many_layers_net().save(path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00\x01not a net" * 100)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path = tmp_path / "nothing.npz"
    with pytest.raises(NetFileError, match=str(path.name)):
        load(path)


def test_crafted_files_run_nothing(tmp_path):
    path = tmp_path / "net.npz"
    many_layers_net().save(path)
    header = _header(path)

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('code ran')",))

    # a pickled object array where an array should be
    evil = tmp_path / "evil.npy"
    np.save(evil, np.array([Boom()], dtype=object), allow_pickle=True)
    crafted = tmp_path / "crafted.npz"
    crafted.write_bytes(path.read_bytes())
    _rewrite(crafted, extra={"array0.npy": evil.read_bytes()})
    with pytest.raises(NetFileError):
        load(crafted)(np.ones(5))
    # an unknown layer type, a non-layer class name, hostile expressions
    for kind in ("os.system", "Layer", "Tensor", "__import__"):
        h = json.loads(json.dumps(header))
        h["net"]["type"] = kind
        bad = tmp_path / f"{kind}.npz"
        bad.write_bytes(path.read_bytes())
        _rewrite(bad, header=h)
        with pytest.raises(NetFileError, match="unknown layer type"):
            load(bad)
    h = json.loads(json.dumps(header))
    h["net"]["config"]["layers"]["items"][5][1]["config"]["f"] = {
        "$": "function",
        "arity": 3,
        "expr": ["system", ["var", 0]],
    }
    bad = tmp_path / "expr.npz"
    bad.write_bytes(path.read_bytes())
    _rewrite(bad, header=h)
    with pytest.raises(NetFileError, match="unknown operation"):
        load(bad)


def test_wrong_array_shape_is_refused(tmp_path):
    path = tmp_path / "net.npz"
    NetInitialize(L.LinearLayer(3, input=2)).save(path)
    np.save(tmp_path / "w.npy", np.ones((5, 5), dtype=np.float32))
    _rewrite(path, extra={"array0.npy": (tmp_path / "w.npy").read_bytes()})
    with pytest.raises(NetFileError, match="Weights"):
        load(path)


def test_saved_files_get_the_permissions_of_an_ordinary_new_file(tmp_path):
    import os

    from netgraph.images import save_png

    mask = os.umask(0o022)
    try:
        net = NetInitialize(L.LinearLayer(2, input=3))
        net.save(tmp_path / "net.npz")
        save_png(np.zeros((1, 4, 4)), tmp_path / "p.png")
    finally:
        os.umask(mask)
    for name in ("net.npz", "p.png"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz", "p.png"]


class HalvingLayer(UnaryLayer):
    """A user's own layer: it enters the register of layer classes when it is defined."""

    def __init__(self, factor: float = 0.5, **options):
        super().__init__(**options)
        self.factor = factor
        self._finish_init()

    def config(self):
        return {"factor": self.factor}

    def apply(self, x, ctx):
        return x * self.factor


def test_a_users_own_layer_class_saves_and_loads(tmp_path):
    net = NetInitialize(NetChain([L.LinearLayer(2), HalvingLayer(0.25)], input=3))
    path = tmp_path / "own.npz"
    net.save(path)
    again = load(path)
    assert isinstance(again[2], HalvingLayer) and again[2].factor == 0.25
    np.testing.assert_array_equal(again(np.ones(3)), net(np.ones(3)))


def test_a_class_of_a_taken_name_from_another_module_does_not_replace_it():
    taken = type("LinearLayer", (UnaryLayer,), {"__module__": "somebody.else"})
    assert LAYER_CLASSES["LinearLayer"] is L.LinearLayer and taken is not L.LinearLayer
    assert "UnaryLayer" not in LAYER_CLASSES and "_Variadic" not in LAYER_CLASSES
