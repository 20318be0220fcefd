"""Training with the Hugging Face ``Trainer``: SWAG collection as a callback, the SWAG
learning-rate schedule, best-validation MAP tracking, complete-or-ignored checkpoints.

- :mod:`.settings`: :class:`SwagSettings` (when to collect; no transformers);
- :mod:`.schedule`: the SWAG learning-rate schedule for any optimizer;
- :mod:`.callbacks`: :class:`SwagCallback` (use it with any Trainer, TRL's too), the MAP
  tracker and the non-finite-loss guard;
- :mod:`.checkpoints`: the completeness marker, resume finder, rotation, SWAG trainer state;
- :mod:`.trainer`: :class:`SwagTrainer`, all of the above for a multiple-choice model.
"""
