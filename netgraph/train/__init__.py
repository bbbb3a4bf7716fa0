"""NetTrain: fit a net's arrays to data, as the Wolfram Language's NetTrain does."""

from .nettrain import NetTrain, NetTrainResults, TrainingError
from .schedule import Schedule, schedule

__all__ = ["NetTrain", "NetTrainResults", "Schedule", "TrainingError", "schedule"]
