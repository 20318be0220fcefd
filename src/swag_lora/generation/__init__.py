"""Generation with a posterior: free-form answers and how far to trust them.

- :mod:`.members`: the members of a method (MAP, SWA, SWAG, MC dropout, ensembles) as one list;
- :mod:`.decoding`: ensemble decoding (S KV caches, averaged next-token distributions) and
  sample-then-decode, with per-token total, aleatoric and epistemic uncertainty;
- :mod:`.uncertainty`: answer-level measures, grouping answers by meaning, semantic entropy;
- :mod:`.answers`: generated answers as records (text, uncertainty, correctness);
- :mod:`.quality`: accuracy, and AUROC, PRR and AURC of every uncertainty score;
- :mod:`.inputs`: prompts from files or standard input;
- :mod:`.generator`: :class:`Generator` and :func:`generate`, the Python API of ``swag-lora generate``.

Training on text is the ``generation`` objective of ``swag-lora train``
(:class:`~swag_lora.lm.generative.GenerativeLM`, :mod:`swag_lora.lm.text_encoding`).
"""

from .generator import GenerateResult, Generator, generate

__all__ = ["GenerateResult", "Generator", "generate"]
