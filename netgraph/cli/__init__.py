"""What every training script's command line needs, so that a script shows its net and little else.

- the standard options: :func:`standard_options` (``--data``, ``--out``, ``--device``, ``--seed``) and
  :func:`schedule_options` (``--epochs``, ``--iterations``, ``--batch-size``, with ``--checkpoint`` and
  ``--resume``), or :func:`phase_options` for a training in phases; one-line options whose type follows their
  default (:func:`option`); argument types that refuse nonsense at once (:func:`count`, :func:`positive`,
  :func:`weight`, :func:`fraction`);
- the training length in NetTrain's terms, one way for every script: :func:`schedule`, :func:`phase_schedule`;
  a parser (:func:`parser`, :class:`Parser`) that checks options that go together and keeps the command line;
- the data: the user's ``--data``, else Fashion-MNIST standing in, saying so (:func:`pictures`, with class
  labels; :func:`picture_sets`, with a test set; :func:`stand_in`, :func:`data_folder`, :func:`list_skipped`),
  and a part held out (:func:`hold_out`, :func:`split_pictures`);
- the reports: the data, the parameters, the schedule and a phase of training (:func:`report_data`,
  :func:`report_parameters`, :func:`learnable_parameters`, :func:`report_schedule`, :func:`report_phase`), how
  training went and which net is kept (:func:`training_summary`), the loss on held-out data
  (:func:`report_vae_loss`), the loss plot (:func:`save_loss_plot`), the pictures of a trained VAE
  (:func:`vae_pictures`, :func:`reconstruction_pictures`, :func:`slerp_pictures`) and of one in training
  (:class:`RoundPictures`), the time taken and the files written (:class:`Run`);
- new pictures from a trained net's decoder, as a command (:func:`sample_options`, :func:`write_samples`,
  :func:`save_samples`);
- training that is not lost (:func:`train`: NetTrain with the schedule, ``--checkpoint DIR`` and ``--resume``
  of :func:`checkpoint_options`; on a failure the last good net kept and the way to resume said,
  :class:`TrainingStoppedError`); argument types for paths that refuse a file where a folder goes (:func:`folder`)
  and a file name prefix that leaves its folder (:func:`file_prefix`);
- errors a user can act on turned into one line on stderr and exit status 1 (:func:`run_main`);
- a script loaded as a module, to reuse its nets (:func:`load_script`).

A script built from these pieces (``net`` and its data as the script defines them)::

    def main(argv=None):
        parser = cli.parser("my_vae.py", __doc__)
        cli.standard_options(parser, data="a folder of pictures", out="out/my_vae")
        cli.schedule_options(parser, default_epochs=2, batch_size=32)
        cli.option(parser, "--learning-rate", 1e-3, "ADAM's learning rate")
        args = parser.parse_args(argv)
        run = cli.Run(args)
        found = cli.pictures(args.data, 28, stands_in_for="your pictures")
        plan = cli.schedule(len(found.images), args.batch_size, args.epochs, args.iterations, default_epochs=2)
        results = cli.train(run, net, {"Input": to_float(found.images)}, "All", plan,
                            learning_rate=args.learning_rate)
        trained = cli.training_summary(results, keep="final" if args.iterations else "best")
        trained.save(run.path("vae.npz", "the trained net"))
        run.report(training=results["TotalTrainingTime"])

    if __name__ == "__main__":
        cli.run_main(main)

The package sits on top of netgraph: nothing in the library imports it. Its modules, each readable
on its own: :mod:`~netgraph.cli.options`, :mod:`~netgraph.cli.data`, :mod:`~netgraph.cli.reports`,
:mod:`~netgraph.cli.running`, :mod:`~netgraph.cli.training`.
"""

from __future__ import annotations

from .data import (
    Pictures,
    PictureSets,
    choose_classes,
    data_folder,
    hold_out,
    holds_a_data_set,
    list_skipped,
    picture_sets,
    pictures,
    split_pictures,
    stand_in,
)
from .options import (
    Parser,
    Schedule,
    checkpoint_options,
    count,
    file_prefix,
    folder,
    fraction,
    option,
    parser,
    phase_options,
    phase_schedule,
    positive,
    schedule,
    schedule_options,
    standard_options,
    weight,
)
from .reports import (
    RoundPictures,
    Run,
    learnable_parameters,
    reconstruction_pictures,
    report_data,
    report_parameters,
    report_phase,
    report_schedule,
    report_vae_loss,
    sample_options,
    save_loss_plot,
    save_samples,
    slerp_pictures,
    training_summary,
    vae_pictures,
    write_samples,
)
from .running import load_script, run_main
from .training import TrainingStoppedError, train

__all__ = [
    "checkpoint_options",
    "choose_classes",
    "Parser",
    "PictureSets",
    "Pictures",
    "RoundPictures",
    "Run",
    "Schedule",
    "count",
    "data_folder",
    "file_prefix",
    "folder",
    "fraction",
    "hold_out",
    "holds_a_data_set",
    "learnable_parameters",
    "list_skipped",
    "load_script",
    "option",
    "parser",
    "phase_options",
    "phase_schedule",
    "picture_sets",
    "pictures",
    "positive",
    "reconstruction_pictures",
    "report_data",
    "report_parameters",
    "report_phase",
    "report_schedule",
    "report_vae_loss",
    "run_main",
    "sample_options",
    "slerp_pictures",
    "save_loss_plot",
    "save_samples",
    "schedule",
    "schedule_options",
    "stand_in",
    "split_pictures",
    "standard_options",
    "train",
    "training_summary",
    "TrainingStoppedError",
    "vae_pictures",
    "weight",
    "write_samples",
]
