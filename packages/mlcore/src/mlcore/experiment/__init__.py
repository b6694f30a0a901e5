"""Experiment files: stages (data -> search -> train -> evaluate -> compare -> report) cached by input hash.

``mlcore pipeline run FILE`` / :func:`run_experiment`; ``mlcore pipeline status FILE`` /
:func:`experiment_status`. See docs/experiments.md.
"""

from mlcore.experiment.runner import ExperimentResult, StageResult, experiment_status, run_experiment
from mlcore.experiment.spec import Experiment, Stage, load_experiment

__all__ = [
    "Experiment",
    "ExperimentResult",
    "Stage",
    "StageResult",
    "experiment_status",
    "load_experiment",
    "run_experiment",
]
