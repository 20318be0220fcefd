"""Run directories: the arguments of a run, its typed config, its provenance, and training,
loading and attaching runs.

- :mod:`.arguments`: the ``swag-lora train`` argument dataclasses and config files;
- :mod:`.config`: :class:`RunConfig`, the typed ``run_config.json``;
- :mod:`.layout`: the files of a run directory; :mod:`.provenance`: versions and compatibility;
- :mod:`.build`: model and data from arguments; :mod:`.train`: :func:`train_run`;
- :mod:`.load`: :func:`load_run`, :func:`attach_run`.
"""
