"""swag-lora: Bayesian LoRA fine-tuning of causal LMs with SWAG."""

__version__ = "0.1.0"
