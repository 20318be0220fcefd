"""The calibration benchmark: a grid of (task, seed) runs from one YAML file, trained and
evaluated unit by unit (resumable), its results file, and ``docs/results.md``.

- :mod:`.config`: :class:`BenchConfig`; :mod:`.layout`: where units write, the chosen settings;
- :mod:`.units`: timing and the training units; :mod:`.tuning`: the validation tuning;
- :mod:`.driver`: :class:`Driver`, the evaluation units and the plan;
- :mod:`.results`: ``calibration.json`` from the evaluations; :mod:`.report`: the report.
"""

from .config import BenchConfig, BenchConfigError, TaskGrid
from .driver import Driver

__all__ = ["BenchConfig", "BenchConfigError", "Driver", "TaskGrid"]
