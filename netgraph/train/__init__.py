"""NetTrain: fit a net's arrays to data, as the Wolfram Language's NetTrain does.

The modules, from the top down (each imports only those below it, and the engine):

* :mod:`~netgraph.train.nettrain`: ``NetTrain`` itself: reads the options, sets up the run, trains
  it with the loop and returns the trained net or the results asked for.
* :mod:`~netgraph.train.loop`: the training loop: rounds of batches, the end of each round, the checks that
  no array went bad, and what only rank 0 does when there are several processes.
* :mod:`~netgraph.train.parallel`: the step of several processes (``mpiexec``): shares of the batch, one
  allreduce of one buffer; the processes themselves are :mod:`netgraph.distributed`'s.
* :mod:`~netgraph.train.step`: one training step in one process, :func:`~netgraph.train.step.reduce_and_check`
  between the gradients and the optimiser's update, and the validation loss.
* :mod:`~netgraph.train.checkpoints`: the checkpointing option, writing checkpoints and what they record.
* :mod:`~netgraph.train.resume`: reading a checkpoint, checking it against the run and resuming from it.
* :mod:`~netgraph.train.state`: ``TrainingRun``, the one object a step, a checkpoint and the loop work
  on, and ``TrainingState``, the counters a checkpoint saves.
* :mod:`~netgraph.train.progress`: the progress reporter (a tqdm bar in a terminal, the live panel in a
  notebook, plain lines elsewhere, or a log file), the user's progress function and the stopping criterion.
* :mod:`~netgraph.train.panel`: the notebook's live panel (tqdm's notebook bar, the loss plot updated in
  place, a picture of the user's beside it).
* :mod:`~netgraph.train.data`: training data as columns, generator functions, the validation split.
* :mod:`~netgraph.train.losses`: loss specifications, and the loss layers attached for them.
* :mod:`~netgraph.train.results`: the results object and ``TrainingError``.
"""

from .nettrain import NetTrain
from .results import NetTrainResults, TrainingError

__all__ = ["NetTrain", "NetTrainResults", "TrainingError"]
