"""Evaluation: every method of a run on every dataset in one protocol, and the files it writes.

- :mod:`.data`: :class:`EvalSpec` (which task and split) and :class:`EvalData` (encoded for a
  run, with its number of choice slots);
- :mod:`.harness`: build each method once, evaluate it everywhere, write records with OOD
  metrics (:func:`evaluate_run`, :func:`evaluate_methods`);
- :mod:`.store`: evaluation folders on disk and reuse of saved member log-probabilities;
- :mod:`.sample_study`: NLL/ECE against the number of samples S.
"""
