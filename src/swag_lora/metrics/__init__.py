"""Metrics of averaged predictives, as pure functions on numpy arrays (no model, no torch).

- :mod:`.averaging`: the model average log p̄ of [N, S, C] member log-probabilities, and its
  temperature;
- :mod:`.scores`: accuracy, NLL, Brier, ECE/MCE, entropies, mutual information;
- :mod:`.summary`: ``summarise``, every metric of one evaluation;
- :mod:`.misclassification`: telling wrong answers from right ones by uncertainty (AUROC);
- :mod:`.ood`: OOD detection (ROC, AUROC, average precision) from uncertainty scores;
- :mod:`.selective`: risk-coverage curves, AURC and abstention thresholds;
- :mod:`.bootstrap`: paired bootstrap intervals of differences between two methods;
- :mod:`.rejection`: prediction-rejection curves and PRR of generated answers;
- :mod:`.text`: exact match and token F1 of generated answers (SQuAD's normalisation).

Every name is re-exported here, so ``from swag_lora import metrics as M; M.accuracy(...)``.
"""

from .averaging import as_float64, average_log_probs, check_labels, num_choices, predictive_log_probs, temper
from .bootstrap import METRIC_FUNCTIONS, paired_bootstrap
from .misclassification import ERROR_SCORES, error_detection, error_detection_auroc
from .ood import auroc, average_precision, ood_detection, roc_curve, uncertainty_scores
from .rejection import DEFAULT_REJECTION_RANGES, prediction_rejection_ratio, rejection_area, rejection_curve
from .scores import (
    DEFAULT_ECE_BINS,
    accuracy,
    brier_score,
    confidence_bins,
    expected_calibration_error,
    expected_entropy,
    maximum_calibration_error,
    mutual_information,
    negative_log_likelihood,
    predictive_entropy,
    reliability,
)
from .selective import (
    answered,
    aurc,
    coverage_thresholds,
    excess_aurc,
    expected_prefix_sums,
    oracle_aurc,
    random_aurc,
    risk_coverage_curve,
    selective_outcome,
)
from .summary import summarise
from .text import exact_match, normalize_answer, token_f1

__all__ = [
    "DEFAULT_ECE_BINS",
    "DEFAULT_REJECTION_RANGES",
    "ERROR_SCORES",
    "METRIC_FUNCTIONS",
    "accuracy",
    "answered",
    "as_float64",
    "aurc",
    "auroc",
    "average_log_probs",
    "average_precision",
    "brier_score",
    "check_labels",
    "confidence_bins",
    "coverage_thresholds",
    "error_detection",
    "error_detection_auroc",
    "exact_match",
    "excess_aurc",
    "expected_calibration_error",
    "expected_entropy",
    "expected_prefix_sums",
    "maximum_calibration_error",
    "mutual_information",
    "negative_log_likelihood",
    "normalize_answer",
    "num_choices",
    "ood_detection",
    "oracle_aurc",
    "paired_bootstrap",
    "prediction_rejection_ratio",
    "predictive_entropy",
    "predictive_log_probs",
    "random_aurc",
    "rejection_area",
    "rejection_curve",
    "reliability",
    "risk_coverage_curve",
    "roc_curve",
    "selective_outcome",
    "summarise",
    "temper",
    "token_f1",
    "uncertainty_scores",
]
