"""What a benchmark grid has done and what is left, with time estimates, without running
anything (``bench/calibration.py status``).

The units are the driver's, in its order and under the names its log and ``timing.json`` use.
A unit still to do is estimated by the shortest time the same unit took for another seed (work
beside it only lengthens a unit), so an estimate exists once one seed of a task has run. Before
a task's tuning has run, its evaluation groups after the first are not known (the tuned scale
decides whether a ``swag-tuned`` group exists) and are listed as one pending line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..files import read_json
from .layout import finished_run, settled_choice

__all__ = ["UnitStatus", "grid_status", "status_table"]


@dataclass
class UnitStatus:
    """One unit: its name, whether it is done, and its time (measured when done and timed,
    estimated from another seed's when to do; ``None`` when neither is known)."""

    name: str
    done: bool
    seconds: float | None


def _estimate(name: str, timing: dict, seeds: list[int]) -> float | None:
    if name in timing:
        return float(timing[name])
    match = re.search(r"/seed(\d+)(/|$)", name)
    if match is None:
        return None
    others = [name[:match.start()] + f"/seed{seed}" + name[match.end() - len(match.group(2)):] for seed in seeds]
    times = [float(timing[o]) for o in others if o in timing]
    return min(times) if times else None  # a busy machine only lengthens a unit: the shortest is the best guess


def grid_status(driver) -> list[UnitStatus]:
    """Every grid unit of ``driver`` (a :class:`~swag_lora.benchmark.driver.Driver`) in run order."""
    c, layout = driver.config, driver.layout
    timing_path = layout.timing()
    timing = read_json(timing_path) if timing_path.is_file() else {}
    seeds = [c.tune_seed] + [s for s in c.seeds if s != c.tune_seed]
    units: list[tuple[str, bool]] = []

    def seed_units(task, seed: int, tuning_seed: bool) -> None:
        units.append((f"{task.name}/seed{seed}/map", finished_run(layout.map_run(task.name, seed))))
        choice = settled_choice(c, layout, task.name)
        rates = sorted(set(float(x) for x in c.swag_learning_rates)) if tuning_seed or choice is None \
            else [choice["swag_learning_rate"]]
        for lr in rates:
            units.append((f"{task.name}/seed{seed}/{layout.swag_run(task.name, seed, lr).name}",
                          finished_run(layout.swag_run(task.name, seed, lr))))
        if tuning_seed:
            units.append((f"{task.name}/tuning", layout.tuning(task.name).is_file()))
        if choice is None:
            units.append((f"{task.name}/seed{seed}/eval (groups known once {task.name} is tuned)", False))
            return
        lr = choice["swag_learning_rate"]
        for group in driver._groups(task, choice):
            units.append((f"{task.name}/seed{seed}/eval/{group[0]}",
                          layout.eval_marker(task.name, seed, lr, group[0]).is_file()))

    for task in c.tasks:
        seed_units(task, c.tune_seed, True)
        if "zero-shot" in c.methods:
            units.append((f"{task.name}/zero-shot", layout.zero_shot_marker(task.name).is_file()))
    for seed in seeds[1:]:
        for task in c.tasks:
            seed_units(task, seed, False)
    for task in c.tasks:
        choice = settled_choice(c, layout, task.name)
        if any(m in c.methods for m in ("ensemble", "multiswag")) and len(c.seeds) > 1:
            done = choice is not None and layout.combined_marker(task.name, choice["swag_learning_rate"]).is_file()
            units.append((f"{task.name}/combined", done))
    for seed in c.seeds:
        for task in c.tasks:
            for method in ("blob", "ivon"):
                if method not in c.methods and f"{method}-mean" not in c.methods:
                    continue
                units.append((f"{task.name}/seed{seed}/{method}",
                              finished_run(layout.variational_run(task.name, seed, method))))
                units.append((f"{task.name}/seed{seed}/eval/{method}",
                              layout.variational_marker(task.name, seed, method).is_file()))
    return [UnitStatus(name, done, _estimate(name, timing, seeds) if not done or name in timing else None)
            for name, done in units]


def status_table(units: list[UnitStatus]) -> str:
    """A line per unit (done or to do, with its time) and a total of what is left."""
    lines = []
    for u in units:
        when = "" if u.seconds is None else f"{u.seconds / 60:.0f} min"
        if not u.done and u.seconds is not None:
            when = "~" + when
        lines.append(f"{'done ' if u.done else 'to do'}  {u.name:<52} {when}")
    left = [u for u in units if not u.done]
    known = sum(u.seconds for u in left if u.seconds is not None)
    unknown = sum(1 for u in left if u.seconds is None)
    lines.append(f"{len(units) - len(left)} of {len(units)} units done; left: ~{known / 3600:.1f} h estimated"
                 + (f" + {unknown} unit(s) with no estimate yet" if unknown else ""))
    return "\n".join(lines)
