"""Reports built only from saved evaluation files: markdown tables and PNG plots.

- :mod:`.records`: find and group saved evaluations; :mod:`.format`: mean ± std, method order;
- :mod:`.tables`, :mod:`.plots`, :mod:`.selective`: the report's parts;
- :mod:`.run_report`: :func:`write_report` (``swag-lora report``).

The calibration benchmark's report (:mod:`swag_lora.benchmark.report`) uses the same parts.
"""
