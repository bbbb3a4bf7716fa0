"""What NetTrain gives back: the results object of ``prop="All"``, and the error raised on bad numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..layer import Layer, NetError


class TrainingError(NetError):
    """Training stopped on bad numbers (NaN or ±Inf in a loss, a gradient, the arrays or the validation loss);
    ``last_good_net`` holds the last net seen with finite arrays and losses (see :mod:`netgraph.train.nettrain`)."""

    def __init__(self, message: str, last_good_net: Layer | None = None):
        super().__init__(message)
        self.last_good_net = last_good_net


#: The properties NetTrain gives, by Wolfram's names
PROPERTIES = (
    "TrainedNet",
    "FinalNet",
    "RoundLossList",
    "BatchLossList",
    "ValidationLossList",
    "RoundLoss",
    "ValidationLoss",
    "BestValidationRound",
    "TotalTrainingTime",
    "MeanExamplesPerSecond",
    "ReasonTrainingStopped",
    "TotalRounds",
    "TotalBatches",
    "BatchSize",
    "BatchesPerRound",
    "ExamplesProcessed",
    "TrainingExamples",
    "ValidationExamples",
    "OptimizationMethod",
    "InitialLearningRate",
    "FinalLearningRate",
    "CheckpointingFiles",
    "LossPlot",
)

#: Wolfram's other names for some properties
ALIASES = {
    "LossEvolutionPlot": "LossPlot",
    "FinalRoundLoss": "RoundLoss",
    "FinalValidationLoss": "ValidationLoss",
    "TotalInputs": "ExamplesProcessed",
    "MeanInputsPerSecond": "MeanExamplesPerSecond",
}


@dataclass
class NetTrainResults:
    """What ``NetTrain(..., prop="All")`` returns; index it with Wolfram's property names."""

    properties: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        name = ALIASES.get(name, name)
        if name not in self.properties:
            raise KeyError(f"NetTrain results have no property {name!r}; they have {sorted(self.properties)}")
        return self.properties[name]

    def keys(self) -> list[str]:
        return sorted(self.properties)
