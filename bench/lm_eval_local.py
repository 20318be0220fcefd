"""Run EleutherAI's lm-evaluation-harness (PyPI ``lm-eval``) on the local benchmark copies and
read back what it scored, question by question.

The task definitions are the YAML files in ``bench/lm_eval_tasks/`` (lm-eval's own ``arc_easy``
and ``openbookqa`` pointed at local files). Their ``data_files`` are written relative to the
repository root (``../shared/data``); :func:`local_tasks` copies them into a folder with the
paths pointing at the data folder given, so they work from any directory.

Used by ``bench/vs_lm_eval.py`` and ``tests/test_lm_eval.py``.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["LM_EVAL_TASKS", "TASKS_DIR", "LmEvalDoc", "accuracies", "local_tasks", "run_lm_eval"]

TASKS_DIR = Path(__file__).resolve().parent / "lm_eval_tasks"
DATA_IN_YAML = "../shared/data"
# lm-eval's task name in bench/lm_eval_tasks -> swag-lora's task name and cloze prompt
LM_EVAL_TASKS = {"arc_easy_local": ("arc-easy", "question"), "openbookqa_local": ("obqa", "bare")}


@dataclass
class LmEvalDoc:
    """One question as lm-eval scored it: the summed log-likelihood of each choice (``lls``),
    its ``acc`` and ``acc_norm`` (0 or 1), the gold index and the document's ``id``."""

    id: str
    lls: list[float]
    gold: int
    acc: float
    acc_norm: float


def local_tasks(data_dir: str | Path, into: str | Path) -> Path:
    """``bench/lm_eval_tasks`` copied into ``into`` with ``data_files`` under ``data_dir``; pass
    the folder to lm-eval as its ``include_path``."""
    into = Path(into)
    into.mkdir(parents=True, exist_ok=True)
    for path in TASKS_DIR.iterdir():
        if path.suffix == ".yaml":
            text = path.read_text(encoding="utf-8").replace(DATA_IN_YAML, str(Path(data_dir).resolve()))
            (into / path.name).write_text(text, encoding="utf-8")
        elif path.suffix == ".py":
            shutil.copy(path, into / path.name)
    return into


def run_lm_eval(model, tasks: list[str], include_path: str | Path, *, model_args: str | None = None,
                samples: dict[str, list[int]] | None = None, limit: int | None = None,
                batch_size: int = 16) -> dict[str, list[LmEvalDoc]]:
    """lm-eval's ``simple_evaluate`` of ``model`` (``"hf"`` with ``model_args``, or an ``HFLM``)
    on ``tasks`` (zero-shot, on the CPU), and what it scored per question, in document order
    (``samples``: the document indices per task; ``limit``: the first documents)."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    out = simple_evaluate(
        model=model, model_args=model_args, tasks=list(tasks), task_manager=TaskManager(include_path=str(include_path)),
        samples=samples, limit=limit, batch_size=batch_size, device="cpu", log_samples=True,
        num_fewshot=0, bootstrap_iters=0, random_seed=0, numpy_random_seed=0, torch_random_seed=0,
        fewshot_random_seed=0,
    )
    per_task = {}
    for task in tasks:
        docs = sorted(out["samples"][task], key=lambda s: s["doc_id"])
        per_task[task] = [
            LmEvalDoc(str(s["doc"]["id"]), [float(r[0]) for r in s["filtered_resps"]], int(s["target"]),
                      float(s["acc"]), float(s["acc_norm"]))
            for s in docs
        ]
    return per_task


def accuracies(docs: list[LmEvalDoc]) -> dict[str, float]:
    """lm-eval's ``acc`` and ``acc_norm`` over ``docs``."""
    return {"acc": float(np.mean([d.acc for d in docs])), "acc_norm": float(np.mean([d.acc_norm for d in docs]))}
