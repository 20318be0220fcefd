"""Posterior maths and predictive methods; imports torch and safetensors, never transformers.

- :mod:`.posterior`: :class:`SwagPosterior`, the SWAG moments over a flat parameter vector, the
  SWAG draw θ̄ + √scale·δ, save/load;
- :mod:`.sampling`: :class:`SamplingOptions` (S, scale, seed, antithetic, diagonal);
- :mod:`.predictive`: the :class:`Predictive` protocol, methods as lists of members, the
  Bayesian-model-average loop;
- one module per baseline: :mod:`.temperature`, :mod:`.mc_dropout`, :mod:`.laplace`,
  :mod:`.zero_shot`; :mod:`.fitting` fits temperature and SWAG scale on validation data;
- :mod:`.registry`: method name -> builder; :mod:`.names`: names, order and labels (no torch).

Import from the submodules (this package file loads nothing, so :mod:`.names` stays light).
"""
