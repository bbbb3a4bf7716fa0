"""The examples never lose training: a failed training keeps the last good net and says how to resume, and
``--checkpoint DIR`` / ``--resume`` continue a run (a finished phase is read back); an ``--out`` or
``--checkpoint`` that names a file and a ``--prefix`` with a path in it are usage errors. Each example runs through
its ``main`` under :func:`netgraph.cli.run_main`, as its ``__main__`` block runs it, on tiny data."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from layers import LinearLayer
from netgraph import NetChain, cli, load
from netgraph.layer import iter_arrays
from scripts import idx_folder, load_example

EXPLODES = ["--learning-rate", "1e6"]  # the first update blows the arrays up: the next batch's loss is not finite


def pictures(folder: Path, n: int, size: tuple[int, int] = (48, 40), seed: int = 0) -> Path:
    """``n`` colour PNGs, a bright square on black."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        picture = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        top, left = rng.integers(2, min(size) // 2, size=2)
        picture[top : top + 12, left : left + 12] = rng.integers(80, 256, size=3)
        Image.fromarray(picture).save(folder / f"{i:02d}.png")
    return folder


#: each example's quickest run: its arguments (before --out) and the file its trained net goes to
QUICK = {
    "mnist_vae": (lambda tmp: ["--data", str(idx_folder(tmp / "idx")), "--iterations", "3", "--batch-size", "8"],
                  "vae.npz"),
    "faces_vae": (lambda tmp: ["--data", str(pictures(tmp / "faces", 12)), "--iterations", "3", "--batch-size", "4",
                               "--latent", "8"], "vae.npz"),
    "cake_vae": (lambda tmp: ["--data", str(pictures(tmp / "cakes", 12)), "--size", "12", "--epochs", "2",
                              "--batch-size", "4"], "cake_vae.npz"),
    "pegasus_vae": (lambda tmp: ["--data", str(class_folders(tmp / "photos")), "--iterations", "3", "--batch-size",
                                 "4", "--latent", "8", "--width", "4"], "pretrained.npz"),
    "augment_vae": (lambda tmp: ["train", "--data", str(pictures(tmp / "pictures", 8)), "--iterations", "3",
                                 "--batch-size", "2", "--test-images", "2"], "vae.npz"),
}  # fmt: skip


def class_folders(folder: Path) -> Path:
    for k, name in enumerate(("bird", "horse")):
        pictures(folder / name, 8, (32, 32), seed=k)
    return folder


def run_script(name: str, argv: list[str], capsys) -> tuple[int, str, str]:
    """``examples/<name>.py argv`` as its ``__main__`` block runs it: (exit status, stdout, stderr)."""
    module = load_example(name)
    try:
        cli.run_main(lambda: module.main(argv), prog=f"{name}.py")
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    printed = capsys.readouterr()
    return code, printed.out, printed.err


def non_finite(path: Path) -> list[str]:
    net = load(path)
    return ["/".join(map(str, p)) for p, layer, n in iter_arrays(net) if not np.isfinite(layer.arrays[n]).all()]


def command_in(message: str) -> list[str]:
    """The arguments of the command a message gives (the line ``python <script> ...``), without the script."""
    line = next(line.strip() for line in message.splitlines() if line.strip().startswith("python "))
    return shlex.split(line)[2:]


# --- a failed training -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(QUICK))
def test_a_failed_training_keeps_the_last_good_net_and_says_how_to_go_on(name, tmp_path, capsys):
    arguments, saved = QUICK[name]
    out = tmp_path / "out"
    argv = [*arguments(tmp_path), "--out", str(out), *EXPLODES]
    code, _, err = run_script(name, argv, capsys)
    assert code == 1, err
    assert "Traceback" not in err and ".last_good_net" not in err
    progress = [line for line in err.splitlines() if line.startswith("round ")]  # timed lines on a slow machine
    assert err.splitlines()[len(progress)].startswith(f"{name}.py: training failed: "), err
    kept = out / saved.replace(".npz", ".last-good.npz")
    assert f"is kept in {kept} (netgraph.load reads it)" in err
    assert f"64 samples of it: {out / saved.replace('.npz', '.last-good-samples.png')}" in err
    assert Image.open(out / saved.replace(".npz", ".last-good-samples.png")).size[0] > 8 * 8
    assert "no checkpoint to resume from (--checkpoint DIR writes one every round)" in err
    assert command_in(err) == [*argv, "--checkpoint", str(out / "checkpoints")]  # the same command, checkpointed
    assert "give a --learning-rate below 1e6" in err
    assert not non_finite(kept)  # batch-norm moving statistics included
    assert "NOTE: NaN or Inf" not in err
    assert not (out / saved).exists()  # the usual file is left to a trained net


def test_resume_continues_from_the_newest_checkpoint_after_a_failure(tmp_path, capsys):
    data, out, folder = str(idx_folder(tmp_path / "idx")), str(tmp_path / "out"), tmp_path / "ck"
    argv = ["--data", data, "--batch-size", "8", "--out", out, "--checkpoint", str(folder)]
    assert run_script("mnist_vae", [*argv, "--epochs", "1"], capsys)[0] == 0
    (first,) = folder.glob("*round1-batch0*.npz")
    code, printed, err = run_script("mnist_vae", [*argv, "--epochs", "2", "--resume", *EXPLODES], capsys)
    assert code == 1 and "Traceback" not in err
    assert f"checkpoints: resuming from the newest in {folder}/ ({first.name})" in printed
    assert "training failed: the loss became nan in round 2, batch 2" in err
    assert f"to resume from the newest checkpoint, {first}:" in err
    again = command_in(err)
    assert again[-3:] == ["--checkpoint", str(folder), "--resume"] and again.count("--resume") == 1
    assert not non_finite(Path(out) / "vae.last-good.npz")
    # the command given, with a learning rate that works
    again[again.index("--learning-rate") + 1] = "5e-4"
    code, printed, err = run_script("mnist_vae", again, capsys)
    assert code == 0, err
    assert f"resuming from the newest in {folder}/ ({first.name})" in printed
    assert "training took" in printed and "2 rounds" in printed
    assert not non_finite(Path(out) / "vae.npz")
    assert len(list(folder.glob("*.npz"))) == 2  # round 1, then round 2 of the resumed run
    code, printed, err = run_script("mnist_vae", again, capsys)  # once more: it had finished
    assert code == 0, err
    assert f"training: finished in an earlier run; read back from {folder / 'finished'} (--resume)" in printed
    assert "checkpoints:" not in printed and len(list(folder.glob("*.npz"))) == 2


def test_checkpoints_come_every_round_or_every_rounds_worth_of_batches():
    assert cli.schedule(100, 32, epochs=3).checkpoint_interval == ("Rounds", 1)
    assert cli.schedule(100, 32, iterations=10).checkpoint_interval == ("Batches", 4)  # 4 batches a round
    assert cli.schedule(100, 32, iterations=3).checkpoint_interval == ("Batches", 3)  # at its end


def with_rate(argv: list[str], rate: str) -> list[str]:
    argv = list(argv)
    argv[argv.index("--learning-rate") + 1] = rate
    return argv


def test_phases_resume_each_in_its_folder_and_a_finished_phase_is_read_back(tmp_path, capsys):
    folder, out = tmp_path / "ck", tmp_path / "out"
    argv = [*QUICK["pegasus_vae"][0](tmp_path), "--out", str(out), "--checkpoint", str(folder), "--resume"]
    code, printed, err = run_script("pegasus_vae", [*argv, *EXPLODES], capsys)
    assert code == 1 and "Traceback" not in err
    assert f"checkpoints: none in {folder / 'pretrain'}/ yet, so training starts from the beginning" in printed
    assert f"to resume from the beginning ({folder / 'pretrain'}/ holds none yet):" in err
    assert (out / "pretrained.last-good.npz").is_file()
    code, printed, err = run_script("pegasus_vae", with_rate(command_in(err), "1e-3"), capsys)
    assert code == 0, err
    assert all((folder / phase / "finished" / "results.json").is_file() for phase in ("pretrain", "finetune"))
    tuned = load(out / "pegasus_vae.npz").vertices["dec"].vertices[1].arrays["Weights"]

    code, printed, err = run_script("pegasus_vae", argv, capsys)  # both phases had finished: nothing is trained
    assert code == 0, err
    for phase in ("pretrain", "finetune"):
        assert (
            f"{phase}: finished in an earlier run; read back from {folder / phase / 'finished'} (--resume)" in printed
        )
    assert "checkpoints:" not in printed
    np.testing.assert_array_equal(load(out / "pegasus_vae.npz").vertices["dec"].vertices[1].arrays["Weights"], tuned)

    # a longer fine-tuning: pre-training is read back, fine-tuning goes on from its checkpoint after batch 3
    longer = [word for word in argv if word not in ("--iterations", "3")]
    code, printed, err = run_script("pegasus_vae", [*longer, "--pretrain-iterations", "3", "--finetune-iterations",
                                                    "6"], capsys)  # fmt: skip
    assert code == 0, err
    assert "pretrain: finished in an earlier run" in printed and "finetune: finished" not in printed
    assert re.search(
        rf"resuming from the newest in {re.escape(str(folder / 'finetune'))}/ \(\S+-round1-batch3", printed
    )
    assert "kept the net after batch 6" in printed


# --- paths ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(QUICK))
@pytest.mark.parametrize("option", ["--out", "--checkpoint"])
def test_a_file_where_a_folder_goes_is_a_usage_error(name, option, tmp_path, capsys):
    file = tmp_path / "taken"
    file.write_text("a file")
    command = ["train"] if name == "augment_vae" else []
    code, _, err = run_script(name, [*command, option, str(file)], capsys)
    assert code == 2
    assert f"argument {option}: '{file}': there is a file of that name; give a folder" in err
    assert file.read_text() == "a file"


@pytest.mark.parametrize("name", list(QUICK))
def test_resume_needs_the_checkpoint_folder(name, capsys):
    command = ["train"] if name == "augment_vae" else []
    code, _, err = run_script(name, [*command, "--resume"], capsys)
    assert code == 2
    assert "--resume continues from the checkpoints in --checkpoint DIR: give the folder they are in" in err


@pytest.fixture
def decoder_file(tmp_path: Path) -> Path:
    """A net that takes a latent vector of 2 to a 1x4x4 picture, as generate reads a decoder."""
    path = tmp_path / "decoder.npz"
    NetChain([LinearLayer((1, 4, 4)), "LogisticSigmoid"], input=2).save(path)
    return path


@pytest.mark.parametrize("prefix", ["../../x", "/etc/x", "sub/x", "..\\x", "..", "."])
def test_generate_prefix_cannot_leave_out(prefix, decoder_file, tmp_path, capsys):
    out = tmp_path / "new"
    argv = ["generate", "--net", str(decoder_file), "--count", "2", "--out", str(out), "--prefix", prefix]
    code, _, err = run_script("augment_vae", argv, capsys)
    assert code == 2
    assert f"argument --prefix: must be the start of a file name, without / or \\ (the files go in --out), got " \
           f"{prefix!r}" in err  # fmt: skip
    assert not out.exists()


def test_generate_writes_inside_out_and_refuses_a_file_as_out(decoder_file, tmp_path, capsys):
    out = tmp_path / "new"
    argv = ["generate", "--net", str(decoder_file), "--count", "2", "--prefix", "extra_.."]
    assert run_script("augment_vae", [*argv, "--out", str(out)], capsys)[0] == 0
    assert sorted(path.name for path in tmp_path.rglob("*.png")) == ["extra_..0001.png", "extra_..0002.png"]
    assert all(path.parent == out for path in tmp_path.rglob("*.png"))
    code, _, err = run_script("augment_vae", [*argv, "--out", str(decoder_file)], capsys)
    assert code == 2 and "argument --out:" in err and "give a folder" in err


def test_an_interrupted_training_is_resumed_not_read_back(tmp_path, capsys):
    x = np.linspace(-1, 1, 40, dtype=np.float32)[:, None]
    args = argparse.Namespace(out=str(tmp_path / "out"), device="CPU", checkpoint=str(tmp_path / "ck"), resume=False)
    plan = cli.schedule(len(x), 4, epochs=3)

    def interrupt(progress):
        if progress["AbsoluteBatch"] == 15:
            raise KeyboardInterrupt

    options = {"training_progress_reporting": None, "random_seeding": 1}
    net = LinearLayer(1, input=1)
    stopped = cli.train(cli.Run(args), net, (x, 2 * x), "All", plan, training_progress_function=(interrupt, {
        "Interval": ("Batches", 1)}), **options)  # fmt: skip
    assert stopped["ReasonTrainingStopped"] == "UserInterrupt" and stopped["TotalBatches"] == 15
    assert "training interrupted: --resume continues from the newest checkpoint" in capsys.readouterr().out
    assert not (tmp_path / "ck" / "finished").exists()
    args.resume = True
    done = cli.train(cli.Run(args), net, (x, 2 * x), "All", plan, **options)
    assert re.search(r"resuming from the newest in .*round1-batch0", capsys.readouterr().out)  # the round before
    assert "round2-batch0" in done["CheckpointingFiles"][0]
    assert (done["TotalRounds"], done["TotalBatches"], done["ReasonTrainingStopped"]) == (3, 30, "MaxTrainingRounds")
    again = cli.train(cli.Run(args), net, (x, 2 * x), "All", plan, **options)
    assert "training: finished in an earlier run" in capsys.readouterr().out
    assert again["RoundLossList"] == done["RoundLossList"] and again["TotalBatches"] == 30
    np.testing.assert_array_equal(again["TrainedNet"].arrays["Weights"], done["TrainedNet"].arrays["Weights"])
