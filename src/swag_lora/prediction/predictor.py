"""Predict with uncertainty: a run's averaged answer to each input, and how sure it is.

:class:`Predictor` holds a loaded run and one method's members, drawn once (``seed``), so every
call with the same predictor, and every input of one :func:`predict` call, sees the same
posterior samples; inputs run in length-sorted batches. For each input it gives the Bayesian
model average p̄ over the choices (log-mean-exp in float64, as ``evaluate`` computes it, so the
two agree on the same questions; renormalised to sum to 1 in float64), the predicted choice, its confidence max p̄, the predictive
entropy H[p̄] and the mutual information H[p̄] − E_s H[p_s] (both in nats, not normalised).

With a threshold (answer only when confidence ≥ ``min_confidence``, and/or when mutual
information ≤ ``max_mutual_information``) each prediction says whether it abstained, and
:meth:`Predictor.threshold_report` measures the threshold on labelled data (by default the run's
validation split): the share it answers (coverage), their accuracy, and the thresholds that
reach other coverages, so a user can choose one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import metrics as M
from ..bayes.registry import MethodContext, build_method
from ..bayes.sampling import SamplingOptions
from ..errors import InvalidSettingError
from ..evaluation.data import EvalSpec, encode_for_run
from ..metrics.selective import answered, aurc, coverage_thresholds, selective_outcome
from ..runs.config import RunError
from ..runs.load import LoadedRun, check_run_quantization, load_run
from ..runs.provenance import provenance
from ..tasks import DataDirs, Row
from .inputs import read_inputs, rows_from_records

__all__ = ["PredictResult", "Prediction", "Predictor", "predict"]


@dataclass
class Prediction:
    """One input's averaged prediction and its uncertainty."""

    id: str
    choices: list[str]
    probabilities: list[float]
    prediction: int
    confidence: float
    entropy: float
    mutual_information: float
    abstained: bool | None = None
    label: int | None = None

    @property
    def prediction_text(self) -> str:
        return self.choices[self.prediction]

    def to_dict(self) -> dict:
        """The JSON line ``predict`` writes: ``abstained`` only with a threshold, ``label`` and
        ``correct`` only when the input gave its answer."""
        out = {
            "id": self.id,
            "choices": self.choices,
            "probabilities": self.probabilities,
            "prediction": self.prediction,
            "prediction_text": self.prediction_text,
            "confidence": self.confidence,
            "entropy": self.entropy,
            "mutual_information": self.mutual_information,
        }
        if self.abstained is not None:
            out["abstained"] = self.abstained
        if self.label is not None:
            out["label"] = self.label
            out["correct"] = self.label == self.prediction
        return out


@dataclass
class PredictResult:
    """What :func:`predict` returns: the predictions in input order and a summary (settings,
    provenance, and the threshold's validation report when a threshold was given)."""

    predictions: list[Prediction]
    summary: dict = field(default_factory=dict)


class Predictor:
    """A run's predictive with one fixed set of members (drawn once, from ``seed``)."""

    def __init__(
        self,
        run: LoadedRun | str | os.PathLike,
        method: str | None = None,
        n_samples: int = 10,
        scale: float = 1.0,
        seed: int = 0,
        batch_size: int = 16,
        progress: bool = False,
        allow_base_mismatch: bool = False,
        quantization: dict | None = None,
    ) -> None:
        if batch_size < 1:
            raise InvalidSettingError(f"batch_size must be at least 1, got {batch_size}")
        sampling = SamplingOptions(n_samples=n_samples, scale=scale, seed=seed)
        if isinstance(run, LoadedRun):
            check_run_quantization(run.config, quantization, f"run {run.path}")
            self.run = run
        else:
            self.run = load_run(run, allow_base_mismatch=allow_base_mismatch, quantization=quantization)
        self.run.config.require_objective("multiple-choice", self.run.path, "swag-lora predict")
        method = method or self.run.trained_with  # swag, blob or ivon: the run's own posterior
        self.method = build_method(method, MethodContext([self.run], sampling=sampling, batch_size=batch_size))
        self.batch_size = batch_size
        self.progress = progress
        self.settings = {"method": method, "scale": scale, "seed": seed, **self.method.settings,
                         "members": len(self.method) if hasattr(self.method, "__len__") else None}

    def rows(self, inputs) -> list[Row]:
        """Rows from a path (``"-"``: standard input), rows, or records (dicts)."""
        if isinstance(inputs, (str, os.PathLike)):
            return read_inputs(inputs, self.run.config)
        return rows_from_records(inputs, self.run.config)

    def log_probs(self, rows: Sequence[Row]) -> np.ndarray:
        """[N, S, C] log-probabilities of every member, as ``evaluate`` computes them."""
        data = encode_for_run(self.run, rows, "inputs", "predict")
        return self.method.log_probs(self.run.model, data.features, data.collator, self.batch_size, self.progress)

    def predict(
        self,
        inputs: Iterable | str | os.PathLike,
        min_confidence: float | None = None,
        max_mutual_information: float | None = None,
    ) -> list[Prediction]:
        """One :class:`Prediction` per input, in input order."""
        rows = self.rows(inputs)
        if not rows:
            return []
        lp = self.log_probs(rows)
        p_bar = np.exp(M.average_log_probs(lp))
        p_bar /= p_bar.sum(axis=1, keepdims=True)  # float32 member log-probabilities sum to 1 only to ~1e-7
        confidence = p_bar.max(axis=1)
        entropy = M.predictive_entropy(p_bar)
        mi = M.mutual_information(lp)
        keep = None
        if min_confidence is not None or max_mutual_information is not None:
            keep = answered(confidence, mi, min_confidence, max_mutual_information)
        out = []
        for i, row in enumerate(rows):
            n = len(row.choices)
            out.append(Prediction(
                id=row.id,
                choices=list(row.choices),
                probabilities=[float(p) for p in p_bar[i, :n]],
                prediction=int(p_bar[i, :n].argmax()),
                confidence=float(confidence[i]),
                entropy=float(entropy[i]),
                mutual_information=float(mi[i]),
                abstained=None if keep is None else bool(not keep[i]),
                label=row.label if row.label >= 0 else None,
            ))
        return out

    def validation_rows(self, validation=None):
        """Labelled rows to measure a threshold on: ``validation`` as rows or a
        ``TASK[:SPLIT[:LIMIT]]`` spec, by default the run's own validation split."""
        cfg = self.run.config
        data = cfg.data
        if validation is None:
            if data.validation_limit == 0:
                raise RunError("this run was trained without validation data; give labelled data to measure the "
                               "threshold on (validation=TASK[:SPLIT[:LIMIT]], --validation on the command line)")
            spec = EvalSpec(task=data.task, split="validation", limit=data.validation_limit,
                            data_dir=data.data_dir, source=data.data_source, subset_seed=data.subset_seed)
            return spec.load(cfg)
        if isinstance(validation, str):
            spec = EvalSpec.parse(validation, data_dir=DataDirs.parse(data.data_dir).pinned(data.task))
            if spec.split == "test" and ":" not in validation:
                spec.split = "validation"
            return spec.load(cfg)
        return list(validation)

    def threshold_report(
        self, rows: Sequence[Row], min_confidence: float | None = None, max_mutual_information: float | None = None,
        coverages: Sequence[float] = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3),
    ) -> dict:
        """The threshold's coverage and accuracy on labelled ``rows``, and the thresholds that
        would reach each of ``coverages`` (on confidence; on mutual information too when the
        method has several members)."""
        predictions = self.predict(rows, min_confidence, max_mutual_information)
        if any(p.label is None for p in predictions):
            raise InvalidSettingError("measuring a threshold needs labelled data: every question with its answer")
        correct = np.array([p.label == p.prediction for p in predictions])
        confidence = np.array([p.confidence for p in predictions])
        mi = np.array([p.mutual_information for p in predictions])
        report = {
            "min_confidence": min_confidence,
            "max_mutual_information": max_mutual_information,
            "aurc_confidence": aurc(confidence, correct),
            "by_coverage": [
                {"target_coverage": r["target_coverage"], "min_confidence": r["threshold"],
                 "coverage": r["coverage"], "accuracy": r["accuracy"]}
                for r in coverage_thresholds(confidence, correct, coverages)
            ],
        }
        if len(getattr(self.method, "members", ())) > 1:
            report["aurc_mutual_information"] = aurc(-mi, correct)
            report["by_coverage_mutual_information"] = [
                {"target_coverage": r["target_coverage"], "max_mutual_information": -r["threshold"],
                 "coverage": r["coverage"], "accuracy": r["accuracy"]}
                for r in coverage_thresholds(-mi, correct, coverages)
            ]
        if min_confidence is not None or max_mutual_information is not None:
            keep = np.array([not p.abstained for p in predictions])
            report.update(selective_outcome(keep, correct))
        else:
            report.update(n=len(predictions), accuracy_all=float(correct.mean()))
        return report


def predict(
    run: LoadedRun | str | os.PathLike,
    inputs: Iterable | str | os.PathLike,
    *,
    method: str | None = None,
    n_samples: int = 10,
    scale: float = 1.0,
    seed: int = 0,
    batch_size: int = 16,
    min_confidence: float | None = None,
    max_mutual_information: float | None = None,
    validation=None,
    progress: bool = False,
    allow_base_mismatch: bool = False,
    quantization: dict | None = None,
) -> PredictResult:
    """Predictions for ``inputs`` (a path, ``"-"`` for standard input, rows or records) with one
    set of posterior members drawn for the call; what ``swag-lora predict`` does.

    With a threshold, the summary's ``threshold`` entry reports it on ``validation`` (rows or a
    ``TASK[:SPLIT[:LIMIT]]`` spec; default: the run's validation split). ``quantization``: the
    base-model quantisation expected (:func:`~swag_lora.runs.load.check_run_quantization`)."""
    predictor = Predictor(run, method, n_samples, scale, seed, batch_size, progress, allow_base_mismatch,
                          quantization)
    predictions = predictor.predict(inputs, min_confidence, max_mutual_information)
    summary = {
        "run": str(predictor.run.path),
        "task": (predictor.run.config.splits.get("train") or {}).get("task"),
        **predictor.settings,
        "n_inputs": len(predictions),
        "provenance": provenance(),
    }
    if min_confidence is not None or max_mutual_information is not None:
        rows = predictor.validation_rows(validation)
        report = predictor.threshold_report(rows, min_confidence, max_mutual_information)
        if hasattr(rows, "to_dict"):
            report["data"] = rows.to_dict()
        summary["threshold"] = report
        summary["abstained"] = sum(1 for p in predictions if p.abstained)
    return PredictResult(predictions, summary)
