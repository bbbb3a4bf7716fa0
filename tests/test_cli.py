"""netgraph.cli, the command-line plumbing of the examples: options, the schedule, the data fallback, the
reports and the error runner."""

from __future__ import annotations

import argparse
import sys

import pytest

from netgraph import BackendError, NetFileError, TrainingError, cli
from netgraph.datasets import DatasetError, DatasetNotFoundError, SkippedFile


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
        **{"data": "photos", "out": "out/demo", "device": "CPU", "seed": 7},
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
