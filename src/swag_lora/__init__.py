"""swag-lora: Bayesian LoRA fine-tuning of causal LMs with SWAG."""

__version__ = "0.1.0"

from .posterior import SwagPosterior

__all__ = ["SwagPosterior", "__version__"]
