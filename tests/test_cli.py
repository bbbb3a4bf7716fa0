"""netgraph.cli, the command-line plumbing of the examples: options, the schedule, the data fallback, the
reports and the error runner."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pytest
from PIL import Image

from layers import BatchNormalizationLayer, LinearLayer
from netgraph import (
    BackendError,
    NetChain,
    NetExtract,
    NetFileError,
    NetGraph,
    NetInitialize,
    NetPort,
    TrainingError,
    cli,
    generate,
)
from netgraph.datasets import DatasetError, DatasetNotFoundError, SkippedFile, fashion_mnist, write_idx


def test_schedule_in_rounds_or_batches():
    s = cli.schedule(100, 32, None, 10, default_epochs=2)
    assert (s.rounds, s.total, s.batch_size, s.per_round) == (3, 10, 32, 4)
    assert s.description == "10 batches of 32 (--iterations)"
    function, spec = s.stop
    assert function({}) == "StopTraining" and spec == {"Interval": ("Batches", 10)}
    s = cli.schedule(100, 32, None, None, default_epochs=2)
    assert (s.rounds, s.total, s.stop) == (2, 8, None) and s.description == "2 rounds of 4 batches of 32 (the default)"
    s = cli.schedule(10, 64, 3, None, default_epochs=2)  # a batch is never bigger than the data
    assert (s.rounds, s.total, s.batch_size, s.per_round) == (3, 3, 10, 1)
    s = cli.schedule(100, 32, default_iterations=300, flag="--pretrain-iterations")
    assert (s.rounds, s.total) == (75, 300) and s.description == "300 batches of 32 (the default)"
    assert cli.schedule(100, 32, iterations=5, flag="--pretrain-iterations").description.endswith(
        "(--pretrain-iterations)"
    )
    assert cli.schedule(100, 32, epochs=1, default_iterations=300).description == "1 rounds of 4 batches of 32"
    with pytest.raises(DatasetError, match="no training examples"):
        cli.schedule(0, 32, None, None, default_epochs=2)
    with pytest.raises(ValueError, match="give epochs or iterations"):
        cli.schedule(10, 32)


def test_options_refuse_nonsense(capsys):
    parser = cli.parser("demo.py", "Trains a net.")
    cli.standard_options(parser, data="pictures", out="out/demo", seed="random seed (shuffling)")
    cli.schedule_options(parser, default_epochs=3, batch_size=16)
    parser.add_argument("--kl-weight", type=cli.weight, default=1.0)
    parser.add_argument("--learning-rate", type=cli.positive, default=1e-3)
    args = parser.parse_args(["--epochs", "2", "--data", "photos", "--seed", "7"])
    assert vars(args) == {
        **{"epochs": 2, "iterations": None, "batch_size": 16, "kl_weight": 1.0, "learning_rate": 1e-3},
        **{
            "data": "photos",
            "out": "out/demo",
            "device": "CPU",
            "seed": 7,
            "checkpoint": None,
            "resume": False,
            "phases": [],
        },
        "command_line": ("demo.py", ["--epochs", "2", "--data", "photos", "--seed", "7"]),
    }
    for bad in (
        ["--epochs", "0"],
        ["--epochs", "x"],
        ["--epochs", "1", "--iterations", "2"],
        ["--batch-size", "-3"],
        ["--device", "TPU"],
        ["--kl-weight", "-1"],
        ["--kl-weight", "inf"],
        ["--learning-rate", "0"],
        ["--learning-rate", "nan"],
    ):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args(bad)
        assert exit_.value.code == 2, bad
    errors = capsys.readouterr().err
    assert "argument --epochs: must be at least 1, got 0" in errors and "must be positive, got nan" in errors
    help_text = parser.format_help()
    assert "Trains a net." in help_text and "(default out/demo)" in help_text and "(default 16)" in help_text
    only_epochs = cli.parser("demo.py", None)
    cli.schedule_options(only_epochs, default_epochs=3, batch_size=16, iterations=False)
    assert "--iterations" not in only_epochs.format_help()
    with pytest.raises(argparse.ArgumentTypeError):
        cli.count("2.5")


def test_run_main_turns_errors_into_one_line(capsys):
    def failing(error):
        def main():
            raise error

        return main

    for error in (
        DatasetError("photos/: no usable images"),
        BackendError("no CUDA device; install CuPy"),
        NetFileError("vae.npz: not a net file"),
        PermissionError("[Errno 13] Permission denied: 'out'"),
    ):
        with pytest.raises(SystemExit) as exit_:
            cli.run_main(failing(error), prog="demo.py")
        assert exit_.value.code == 1
        captured = capsys.readouterr()
        assert captured.err == f"demo.py: {error}\n" and captured.out == ""
    hints = {TrainingError: "try a lower --learning-rate"}
    with pytest.raises(SystemExit):
        cli.run_main(failing(TrainingError("the loss became NaN")), hints, prog="demo.py")
    assert capsys.readouterr().err == "demo.py: the loss became NaN\n  (try a lower --learning-rate)\n"
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        cli.run_main(failing(ZeroDivisionError()), prog="demo.py")
    assert cli.run_main(lambda: 3) is None


def results(**changes):
    base = {
        "TotalTrainingTime": 2.0,
        "TotalRounds": 1,
        "TotalBatches": 3,
        "MeanExamplesPerSecond": 48.0,
        "ReasonTrainingStopped": "TrainingProgressFunction",
        "RoundLossList": [],
        "ValidationLossList": [],
        "BatchLossList": [5.0, 4.0, 3.0],
        "BatchesPerRound": 4,
        "BestValidationRound": None,
        "TrainedNet": "best",
        "FinalNet": "final",
    }
    return {**base, **changes}


def test_training_summary_keeps_the_net_asked_for(capsys):
    assert cli.training_summary(results(), keep="final", unit="pictures") == "final"
    printed = capsys.readouterr().out
    assert "3 batches, 48.0 pictures/s; stopped by TrainingProgressFunction" in printed
    assert "last batch loss 3.00; kept the net after batch 3" in printed and "round losses" not in printed
    assert cli.training_summary(results(RoundLossList=[4.123456]), digits=4) == "best"
    printed = capsys.readouterr().out
    assert "round losses 4.1235" in printed and "kept the net" not in printed
    with pytest.raises(ValueError, match="keep"):
        cli.training_summary(results(), keep="last")


def test_loss_plot_and_report(tmp_path, capsys):
    run = cli.Run(tmp_path / "a" / "b")
    assert run.out.is_dir() and run.seconds() >= 0
    path = cli.save_loss_plot(results(), run.out / "loss.png", "a title")
    assert path.is_file() and path.stat().st_size > 0
    seconds = run.report([("loss.png", "the loss"), ("missing.png", "not there")], training="no training")
    printed = capsys.readouterr().out
    assert seconds >= 0 and "s in all, no training" in printed
    assert f"{run.out / 'loss.png'}: the loss" in printed and "missing.png" not in printed


def test_data_fallback_and_skipped_files(tmp_path, capsys):
    with pytest.raises(DatasetNotFoundError, match="no such folder \\(--data takes a folder of pictures"):
        cli.data_folder(str(tmp_path / "nowhere"))
    assert cli.data_folder(str(tmp_path)) == tmp_path
    skipped = [SkippedFile(tmp_path / f"{i}.jpg", "truncated image") for i in range(7)]
    cli.list_skipped(skipped, read=3)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 7 and printed[5] == "  ... and 2 more files skipped"
    assert printed[6] == "  7 files skipped, 3 pictures read"
    try:
        found = cli.pictures(None, 8, stands_in_for="your photographs", how="resized", limit=2)
    except DatasetError as err:
        pytest.skip(f"Fashion-MNIST is not installed: {err}")
    assert found.images.shape == (2, 1, 8, 8)
    assert capsys.readouterr().out == "no --data: Fashion-MNIST stands in for your photographs; resized\n"


def test_load_script_runs_a_file_without_its_main_block(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(
        "from dataclasses import dataclass\n\n@dataclass\nclass Spec:\n    size: int = 3\n\n"
        "if __name__ == '__main__':\n    raise SystemExit('not run')\n"
    )
    module = cli.load_script(script, "job_module")
    try:
        assert module.Spec().size == 3 and sys.modules["job_module"] is module
    finally:
        sys.modules.pop("job_module", None)
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('broken')\n")
    with pytest.raises(RuntimeError):
        cli.load_script(broken)
    assert "script_broken" not in sys.modules
    again = cli.load_script(script)  # a fresh module each time, under the default name
    try:
        assert again is not module and sys.modules["script_job"] is again
    finally:
        sys.modules.pop("script_job", None)


def test_option_reads_its_type_from_the_default(capsys):
    parser = cli.parser("demo.py", None)
    cli.option(parser, "--learning-rate", 5e-4, "ADAM's learning rate")
    cli.option(parser, "--latent", 64, "latent size (default 64; 32, 64, 128)")
    cli.option(parser, "--train-images", int, "train on the first N pictures (default all)")
    cli.option(parser, "--overfit", False, "no validation")
    cli.option(parser, "--prefix", "synthetic_", "file name prefix")
    cli.option(parser, "--kl-weight", 0.0, "weight of the KL term", type=cli.weight, metavar="W")
    args = parser.parse_args([])
    assert vars(args) == {
        **{"learning_rate": 5e-4, "latent": 64, "train_images": None, "overfit": False},
        **{"prefix": "synthetic_", "kl_weight": 0.0, "command_line": ("demo.py", [])},
    }
    args = parser.parse_args(["--latent", "8", "--train-images", "3", "--overfit", "--kl-weight", "0.5"])
    assert (args.latent, args.train_images, args.overfit, args.kl_weight) == (8, 3, True, 0.5)
    text = parser.format_help()
    assert "ADAM's learning rate (default 0.0005)" in text and "--latent N" in text and "--kl-weight W" in text
    assert "(default 64; 32, 64, 128)" in text and "(default 64)" not in text  # a default named once
    assert "file name prefix (default synthetic_)" in text and "no validation (default" not in text
    for bad in (["--learning-rate", "0"], ["--latent", "0"], ["--train-images", "x"], ["--kl-weight", "-1"]):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args(bad)
        assert exit_.value.code == 2, bad
    capsys.readouterr()


def test_run_notes_the_files_it_writes(tmp_path, capsys):
    run = cli.Run(tmp_path / "out")
    assert run.path("net.npz", "the trained net") == run.out / "net.npz"
    (run.out / "net.npz").write_bytes(b"")
    written = run.png("grid.png", "a grid", np.zeros((4, 6)))
    assert written == run.out / "grid.png" and written.stat().st_size > 0
    run.path("never.png", "never written")
    run.report([("extra.txt", "not there either")], training=0.5)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2:] == [f"  {run.out / 'net.npz'}: the trained net", f"  {run.out / 'grid.png'}: a grid"]


def test_report_data_and_schedule(capsys):
    cli.report_data("20 pictures from photos/", "pictures", " (--overfit)", training=20, validation=0)
    cli.report_schedule(cli.schedule(20, 8, 3), "Adam, learning rate 0.001", "no early stopping", at_most=True)
    cli.report_schedule(cli.schedule(20, 8, iterations=2), "ADAM", unit="pictures")
    assert capsys.readouterr().out.splitlines() == [
        "data: 20 pictures from photos/",
        "      20 training, 0 validation pictures (--overfit)",
        "schedule: at most 3 rounds of 3 batches of 8 = 9 batches, 72 images; Adam, learning rate 0.001",
        "          no early stopping",
        "schedule: 2 batches of 8 (--iterations) = 2 batches, 16 pictures; ADAM",
    ]


def picture(folder, name: str, grey: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((12, 16, 3), grey, np.uint8)).save(folder / name)


def test_pictures_of_a_folder_take_their_class_from_the_sub_folder(tmp_path, capsys):
    for name, grey in (("horse", 10), ("bird", 200)):
        for i in range(3):
            picture(tmp_path / "photos" / name, f"{i}.png", grey)
    (tmp_path / "photos" / "bird" / "broken.png").write_bytes(b"not a png")
    found = cli.pictures(str(tmp_path / "photos"), (8, 6), stands_in_for="x", color_space="RGB", limit=5)
    printed = capsys.readouterr().out
    assert "broken.png" in printed and "1 files skipped, 6 pictures read" in printed
    assert found.images.shape == (5, 3, 6, 8) and found.class_names == ("bird", "horse")
    assert found.labels.tolist() == [0, 0, 0, 1, 1] and found.images[0, 0, 0, 0] == 200
    assert found.name == "photos"
    assert found.description == (
        f"6 pictures from {tmp_path / 'photos'} (colour, 8×6; by folder: bird 3, horse 3), the first 5 used"
    )
    flat = cli.pictures(str(tmp_path / "photos" / "horse"), 4, stands_in_for="x", resampling="OpenCV")
    assert flat.class_names == ("horse",) and flat.labels.tolist() == [0, 0, 0]
    assert flat.description.endswith("(grey, 4×4)")
    with pytest.raises(DatasetNotFoundError, match="no such folder"):
        cli.pictures(str(tmp_path / "nowhere"), 8, stands_in_for="x")


def idx_folder(folder, train: int, test: int = 0):
    folder.mkdir()
    for kind, n in (("train", train), ("t10k", test)):
        if n:
            write_idx(folder / f"{kind}-images-idx3-ubyte", np.full((n, 28, 28), 9 if kind == "t10k" else 1, np.uint8))
            write_idx(folder / f"{kind}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8) % 3)
    return folder


def test_data_sets_are_read_with_their_labels(tmp_path):
    folder = idx_folder(tmp_path / "digits", 6)
    assert cli.holds_a_data_set(folder) and not cli.holds_a_data_set(tmp_path)
    found = cli.pictures(str(folder), 14, stands_in_for="x")
    assert found.images.shape == (6, 1, 14, 14) and found.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert found.class_names == ("0", "1", "2") and found.name == "digits"
    assert found.description.startswith("MNIST-format files in")
    for place in ("cifar-10-batches-bin/data_batch_1.bin", "cifar-10-batches-py/test_batch", "cifar-10-python.tar.gz"):
        (tmp_path / place).parent.mkdir(exist_ok=True)
        (tmp_path / place).write_bytes(b"")
        assert cli.holds_a_data_set(tmp_path), place
        (tmp_path / place).unlink()
    assert not cli.holds_a_data_set(tmp_path / "nowhere")
    (tmp_path / "archive.tar.gz").write_bytes(b"")
    assert cli.holds_a_data_set(tmp_path / "archive.tar.gz")  # a file: an archive


def test_picture_sets_hold_out_a_test_set_or_read_its_own(tmp_path, capsys):
    with_t10k = idx_folder(tmp_path / "a", 10, 4)
    sets = cli.picture_sets(str(with_t10k), 28, stands_in_for="x", own_test=True, train=7, test=3)
    assert (len(sets.train), len(sets.test)) == (7, 3) and np.all(sets.test == 9) and np.all(sets.train == 1)
    assert sets.description.endswith("its t10k files are the test set") and sets.name == "a"
    held = cli.picture_sets(str(with_t10k), 28, stands_in_for="x", fraction=0.2, seed=0)  # own_test not asked
    assert (len(held.train), len(held.test)) == (8, 2) and np.all(held.test == 1)
    assert held.description.endswith("; 2 held out as the test set")
    without = idx_folder(tmp_path / "b", 10)
    sets = cli.picture_sets(str(without), 28, stands_in_for="x", own_test=True, fraction=0.5, most=3, seed=0)
    assert (len(sets.train), len(sets.test)) == (7, 3) and sets.description.endswith("3 held out as the test set")
    for i in range(5):
        picture(tmp_path / "c", f"{i}.png", 50 * i)
    sets = cli.picture_sets(str(tmp_path / "c"), 8, stands_in_for="x", fraction=0.4, seed=1)
    kept, out = cli.hold_out(cli.pictures(str(tmp_path / "c"), 8, stands_in_for="x").images, 0.4, 1)
    assert np.array_equal(sets.train, kept) and np.array_equal(sets.test, out)
    capsys.readouterr()


def test_picture_sets_try_the_scripts_own_data_first(capsys):
    def own(kind):
        n = {"train": 5, "test": 3}[kind]
        return np.full((n, 4, 4), 7 if kind == "train" else 8, np.uint8), np.zeros(n)

    sets = cli.picture_sets(None, 4, stands_in_for="DIGITS", own=("DIGITS", own), train=4)
    assert sets.train.shape == (4, 1, 4, 4) and sets.test.shape == (3, 1, 4, 4) and np.all(sets.test == 8)
    assert sets.name == "DIGITS" and sets.description == "DIGITS (4 training and 3 test pictures)"
    assert capsys.readouterr().out == ""

    def missing(kind):
        raise DatasetNotFoundError("DIGITS train files not found.\nTo get them: ...")

    try:
        sets = cli.picture_sets(None, 4, stands_in_for="DIGITS", own=("DIGITS", missing), train=3, test=2)
    except DatasetError as err:
        pytest.skip(f"Fashion-MNIST is not installed: {err}")
    assert capsys.readouterr().out == (
        "DIGITS is not available (DIGITS train files not found.): Fashion-MNIST stands in for DIGITS\n"
    )
    assert sets.train.shape == (3, 1, 4, 4) and sets.test.shape == (2, 1, 4, 4) and sets.name == "Fashion-MNIST"
    assert sets.description == "3 Fashion-MNIST pictures (train; grey, 4×4) and 2 test pictures"


def test_fraction_is_in_zero_one():
    assert cli.fraction("0") == 0.0 and cli.fraction("0.99") == 0.99
    for bad in ("1", "-0.1", "nan", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.fraction(bad)


def tiny_vae():
    """A net with a decoder vertex "dec" from a latent vector of 3 to a 1×4×5 picture."""
    decoder = NetChain([LinearLayer((1, 4, 5)), "LogisticSigmoid"], input=3)
    return NetGraph({"enc": LinearLayer(3), "dec": decoder}, [(NetPort("Input"), "enc", "dec")], input=6)


def test_a_sample_command_writes_pictures_with_a_saved_decoder(tmp_path, capsys):
    net = NetInitialize(tiny_vae(), random_seeding=0)
    net.save(tmp_path / "vae.npz")
    parser = cli.parser("demo.py", None)
    cli.sample_options(parser, net=str(tmp_path / "vae.npz"), prefix="new_", missing="train one first")
    args = parser.parse_args(["--count", "3", "--out", str(tmp_path / "made"), "--temperature", "0.5", "--seed", "4"])
    result = cli.write_samples(args)
    printed = capsys.readouterr().out
    assert [path.name for path in result["files"]] == ["new_0001.png", "new_0002.png", "new_0003.png"]
    assert result["count"] == 3 and all(path.is_file() for path in result["files"])
    assert "latent size 3" in printed and "wrote 3 pictures of 5×4 (z ~ N(0, 0.5² I))" in printed
    z = 0.5 * np.random.default_rng(4).standard_normal((3, 3))
    want = NetExtract(net, "dec")(z)[:, 0]
    got = np.stack([np.asarray(Image.open(path), dtype=np.float64) / 255 for path in result["files"]])
    assert np.abs(got - want).max() <= 1 / 255 + 1e-6  # the decoder's pictures, z drawn from the seed
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["--count", "1", "--out", str(tmp_path), "--net", str(tmp_path / "missing.npz")])
    assert exit_.value.code == 2
    assert "missing.npz: no such file (train one first)" in capsys.readouterr().err
    NetInitialize(LinearLayer(2, input=(1, 2, 2))).save(tmp_path / "linear.npz")  # takes pictures, not codes
    args = parser.parse_args(["--count", "1", "--out", str(tmp_path / "b"), "--net", str(tmp_path / "linear.npz")])
    with pytest.raises(NetFileError, match="has no decoder"):
        cli.write_samples(args)


def test_save_samples_in_chunks_from_one_draw(tmp_path):
    decode = lambda z: np.broadcast_to((z[:, :1, None, None] + 3) / 6, (len(z), 1, 2, 2))
    written = cli.save_samples(decode, 12, 2, tmp_path / "a", seed=1, chunk=5, prefix="p")
    assert [path.name for path in written][::5] == ["p0001.png", "p0006.png", "p0011.png"]
    whole = cli.save_samples(decode, 12, 2, tmp_path / "b", seed=1, chunk=100)
    for a, b in zip(written, whole):
        assert a.read_bytes() == b.read_bytes()  # the chunks draw as one draw would
    assert cli.save_samples(decode, 3, 2, tmp_path / "c", temperature=0.0)[0].name == "sample_0001.png"


def test_learnable_and_reported_parameters(capsys):
    net = NetGraph(
        {"a": NetChain([LinearLayer(3), BatchNormalizationLayer()]), "b": LinearLayer(2), "c": LinearLayer(1)},
        [("a", "b", "c")],
        input=4,
    )
    assert cli.learnable_parameters(net.vertices["a"]) == 15 + 6  # the moving mean and variance are not learnt
    assert cli.learnable_parameters(net) == 21 + 8 + 3
    assert cli.report_parameters(net, front=("a", "b"), back=("c",)) == 32
    assert capsys.readouterr().out == (
        "parameters: front 29 (a 21, b 8), back 3; 32 learnable, plus 6 moving statistics of the batch normalisations\n"
    )


def test_split_pictures_draws_then_holds_out(capsys):
    found = cli.Pictures(
        np.arange(40, dtype=np.uint8).reshape(10, 1, 2, 2), np.arange(10) % 3, ("a", "b", "c"), "t", ""
    )
    (train, train_labels), (validation, validation_labels) = cli.split_pictures(found, 0.25, seed=1, draw=8)
    assert capsys.readouterr().out == "      8 of them drawn at random (--train-images)\n"
    assert (len(train), len(validation)) == (6, 2)
    pictures = np.concatenate([train, validation])
    assert len({p.tobytes() for p in pictures}) == 8  # 8 different pictures, each with its own label
    np.testing.assert_array_equal(pictures[:, 0, 0, 0] // 4 % 3, np.concatenate([train_labels, validation_labels]))
    again = cli.split_pictures(found, 0.25, seed=1, draw=8)
    np.testing.assert_array_equal(again[0][0], train)  # the seed fixes both draws
    capsys.readouterr()
    (everything, _), (held, _) = cli.split_pictures(found, 0.2, seed=1, draw=50)  # more than there are: all
    assert (len(everything), len(held)) == (8, 2) and capsys.readouterr().out == ""


def test_report_phase_and_vae_loss(capsys):
    cli.report_phase("pre-training", cli.schedule(1000, 64, 2, None), 1000, 100, "pictures")
    cli.report_phase("fine-tuning", cli.schedule(50, 64, None, 3), 50, 0)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("pre-training: 1,000 training, 100 validation pictures; 2 rounds")
    assert "rounds)" not in printed[0]  # counted in rounds: no rounds to work out
    assert printed[1] == "fine-tuning: 50 training, 0 validation images; 3 batches of 50 (--iterations) = 150 images " \
                         "(3.00 rounds)"  # fmt: skip
    encode = lambda x: (x[:, :2], np.zeros((len(x), 2)))
    decode = lambda z: np.full((len(z), 3), 0.25)
    x = np.random.default_rng(0).random((7, 3))
    loss = cli.report_vae_loss(encode, decode, x, "test rows", seed=2, terms=("NLL", "KL"), unit="nats", then=".")
    assert loss == generate.vae_loss(encode, decode, x, seed=2)
    r, k = loss["reconstruction"], loss["kl"]
    assert capsys.readouterr().out == f"  7 test rows: NLL {r:.1f} + KL {k:.1f} = {r + k:.1f} nats.\n"


def test_reconstruction_pictures_rows_by_model(tmp_path):
    x = np.random.default_rng(2).random((9, 1, 4, 4))
    labels = np.array([0, 1, 2, 1, 0, 1, 2, 1, 1])
    halve = (lambda x: (x.reshape(len(x), -1) / 2, np.zeros((len(x), 16))), lambda z: z.reshape(len(z), 1, 4, 4))
    run = cli.Run(tmp_path)
    shown = cli.reconstruction_pictures(run, x, {"halved": halve}, "a test", labels=labels, classes=(1, 0), shown=3)
    np.testing.assert_array_equal(shown, x[[1, 3, 5, 0, 4]])  # the first 3 of class 1, then those of class 0
    assert run.files == {"reconstructions.png": "a test"}
    strip = np.asarray(Image.open(tmp_path / "reconstructions.png").convert("L"))
    first = cli.reconstruction_pictures(cli.Run(tmp_path / "b"), x, {"a": halve, "b": halve}, "x", shown=4, scale=2)
    np.testing.assert_array_equal(first, x[:4])
    assert np.asarray(Image.open(tmp_path / "b" / "reconstructions.png")).shape[0] > 1.5 * strip.shape[0]  # 3 rows


def test_slerp_pictures_pairs_the_two_classes(tmp_path, capsys):
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    images = np.random.default_rng(1).random((10, 1, 4, 4))
    encode = lambda x: (np.stack([x[:, 0, 0, 0] + 1, x[:, 0, 0, 1]], axis=1), np.zeros((len(x), 2)))
    decode = lambda z: np.broadcast_to(np.tanh(z[:, :1, None, None]), (len(z), 1, 4, 4))
    run = cli.Run(tmp_path)
    angles, pool = cli.slerp_pictures(
        run, encode, decode, images, labels, (2, 0), ("x", "y"), mus=3, rows=5, pool=2, seed=0, scale=2
    )
    assert pool == 2 and angles.shape == (5,) and np.all((0 <= angles) & (angles <= 180))
    printed = capsys.readouterr().out
    assert "slerp: 5 y pictures, each paired with one of 2 x pictures; slerp at mu = 0.40, 0.55, 0.70" in printed
    assert f"angles between the paired codes: {', '.join(f'{a:.0f}°' for a in angles)}" in printed
    assert run.files["slerp.png"] == "the 5x3 grid: slerp from x (mu=0) to y (mu=1) at mu 0.4..0.7, per row"
    grid = Image.open(tmp_path / "slerp.png")
    assert grid.size == (3 * 8 + 4 * 2, 5 * 8 + 6 * 2)  # 3 columns, 5 rows of 8 px cells with 2 px borders
    assert Image.open(tmp_path / "slerp_pairs.png").size[0] > 7 * 8  # both pictures, both decodes, 3 mixtures
    # the same seed draws the same pairs; the second class has fewer pictures than rows, so some repeat
    again, _ = cli.slerp_pictures(cli.Run(tmp_path / "b"), encode, decode, images, labels, (2, 0), ("x", "y"),
                                  mus=3, rows=5, pool=2, seed=0)  # fmt: skip
    np.testing.assert_allclose(again, angles)


def test_vae_pictures_writes_the_usual_pictures(tmp_path, capsys):
    decode = lambda z: np.broadcast_to(1 / (1 + np.exp(-z[:, :1, None, None])), (len(z), 1, 4, 4))
    encode = lambda x: (x.reshape(len(x), -1)[:, :2] * 4 - 2, np.zeros((len(x), 2)))
    x = np.random.default_rng(0).random((15, 1, 4, 4))
    run = cli.Run(tmp_path / "a")
    samples = cli.vae_pictures(run, decode, 2, encode, x, seed=3, scale=2, interpolation="spherical", what="tests")
    z = np.random.default_rng(3).standard_normal((64, 2))
    assert np.allclose(samples, decode(z))  # the prior samples of the seed
    assert run.files == {
        "samples.png": "64 samples: the decoder fed z ~ N(0, I)",
        "reconstructions.png": "tests over their reconstructions from the posterior mean",
        "interpolation.png": "spherical interpolation between the codes of two tests, per row",
    }
    strip = Image.open(run.out / "reconstructions.png")
    interpolation = Image.open(run.out / "interpolation.png")
    assert strip.size[0] > 16 * 8 and interpolation.size[0] > 11 * 8  # 16 pictures, 11 steps, at scale 2
    assert interpolation.size[1] > 6 * 8  # six pairs of the first 12 pictures
    alone = cli.Run(tmp_path / "b")
    cli.vae_pictures(alone, decode, 2, seed=3, scale=2, samples="prior.png", said="the prior")
    assert alone.files == {"prior.png": "the prior"}
    assert (alone.out / "prior.png").read_bytes() == (run.out / "samples.png").read_bytes()
    one = cli.Run(tmp_path / "c")
    cli.vae_pictures(one, decode, 2, encode, x[:1], interpolation="linear")
    assert sorted(one.files) == ["reconstructions.png", "samples.png"]  # one picture: no pair to interpolate
    capsys.readouterr()


def test_round_pictures_show_training_round_by_round(tmp_path):
    net = NetInitialize(tiny_vae_with_posterior(), random_seeding=0)
    folder = tmp_path / "rounds"
    folder.mkdir()
    (folder / "generated_0099.png").write_bytes(b"an earlier run's")
    picture = np.full((1, 4, 5), 0.5)
    pictures = cli.RoundPictures(folder, picture, 3, seed=2, generate_every=2, reconstruct_every=3, scale=2)
    assert pictures.strip() is None
    for done in range(1, 7):
        pictures({"Net": net, "Round": done})
    assert sorted(path.name for path in folder.iterdir()) == [
        "generated_0002.png", "generated_0004.png", "generated_0006.png",
        "reconstruction_0003.png", "reconstruction_0006.png",
    ]  # fmt: skip
    z = np.random.default_rng(2).standard_normal((3, 3))  # one draw per generated picture, in turn
    for k, done in enumerate((2, 4, 6)):
        assert np.allclose(pictures.generated[done], NetExtract(net, "dec")(z[k : k + 1])[0])
    assert sorted(pictures.reconstructed) == [3, 6] and pictures.reconstructed[3].shape == (1, 4, 5)
    assert Image.open(folder / "reconstruction_0003.png").size[0] > 2 * 2 * 5  # two cells at scale 2
    strip = pictures.strip(most=2)
    assert strip.size[0] > 2 * 2 * 5 and strip.size[1] > 2 * 2 * 4  # 2 columns; generated over reconstructions


def tiny_vae_with_posterior():
    """A net with the vertices vae_parts reads: "mn" and "sd" (the posterior) and "dec", 1×4×5 pictures."""
    decoder = NetChain([LinearLayer((1, 4, 5)), "LogisticSigmoid"], input=3)
    connections = [(NetPort("Input"), "mn", "dec"), (NetPort("Input"), "sd")]
    return NetGraph({"mn": LinearLayer(3), "sd": LinearLayer(3), "dec": decoder}, connections, input=(1, 4, 5))


def test_pictures_of_one_stand_in_class(capsys):
    try:
        found = cli.pictures(None, 12, stands_in_for="cakes", how="bags", label=8, limit=4)
    except DatasetError as err:
        pytest.skip(f"Fashion-MNIST is not installed: {err}")
    assert found.images.shape == (4, 1, 12, 12) and found.labels.tolist() == [8] * 4
    assert (
        found.description == "4 Fashion-MNIST pictures of 'Bag' (train; grey, 12×12)" and found.name == "Fashion-MNIST"
    )
    assert capsys.readouterr().out == "no --data: Fashion-MNIST stands in for cakes; bags\n"
    images, labels = fashion_mnist()
    bags = images[labels == 8][:4]
    same = cli.pictures(None, 28, stands_in_for="cakes", label=8, limit=4, color_space="RGB")
    assert np.array_equal(same.images, np.repeat(bags[:, None], 3, axis=1))  # at their own size, grey as RGB
    assert "(train; grey as RGB, 28×28)" in same.description
    capsys.readouterr()


def test_phase_options_and_schedules(capsys):
    parser = cli.parser("demo.py", None)
    check = cli.phase_options(parser, {"pretrain": ("pre rounds", "pre batches"), "finetune": ("fine rounds", "fine")})
    parser.add_argument("--batch-size", type=int, default=10)
    args = parser.parse_args(["--pretrain-epochs", "2", "--finetune-iterations", "7"])
    check(args)
    pre, fine = (cli.phase_schedule(args, name, 95, 300) for name in ("pretrain", "finetune"))
    assert (pre.rounds, pre.total, pre.stop) == (2, 20, None) and pre.description == "2 rounds of 10 batches of 10"
    assert (fine.rounds, fine.total) == (1, 7) and fine.description == "7 batches of 10 (--finetune-iterations)"
    args = parser.parse_args(["--iterations", "3"])
    check(args)
    assert cli.phase_schedule(args, "finetune", 95, 150).description == "3 batches of 10 (--iterations)"
    default = cli.phase_schedule(parser.parse_args([]), "finetune", 95, 150)
    assert default.total == 150 and default.description == "150 batches of 10 (the default)"
    for bad in (["--pretrain-epochs", "1", "--pretrain-iterations", "2"], ["--finetune-epochs", "0"]):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args(bad)
        assert exit_.value.code == 2, bad
    with pytest.raises(SystemExit) as exit_:
        check(parser.parse_args(["--iterations", "3", "--finetune-epochs", "2"]))
    assert exit_.value.code == 2
    assert "--iterations sets every phase; it cannot go with --finetune-epochs" in capsys.readouterr().err
    assert all(text in parser.format_help() for text in ("pre rounds", "fine rounds", "--finetune-iterations N"))


def test_choose_classes_by_name_number_preference_and_stand_in():
    toy = cli.Pictures(np.zeros((4, 1, 2, 2), np.uint8), np.array([0, 1, 2, 2]), ("Cat", "Bird", "Horse"), "toy", "")
    assert cli.choose_classes(None, toy, ("bird", "horse")) == (1, 2, "(the paper's)")
    assert cli.choose_classes(["horse", "0"], toy, ("bird", "horse"))[:2] == (2, 0)
    stand_in = cli.choose_classes(None, toy, ("eagle", "pony"), {("Cat", "Bird", "Horse"): ("Horse", "Cat")})
    assert stand_in == (2, 0, "(toy has no eagles or ponys; --classes picks others)")
    assert cli.choose_classes(None, toy, ("eagle", "pony"))[:2] == (0, 1)
    with pytest.raises(DatasetError, match="'unicorn' is not a class of toy; its classes are 0 Cat, 1 Bird, 2 Horse"):
        cli.choose_classes(["unicorn", "cat"], toy, ("bird", "horse"))
    with pytest.raises(DatasetError, match="two different classes"):
        cli.choose_classes(["cat", "0"], toy, ("bird", "horse"))
