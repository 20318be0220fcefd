"""Reading a split from the Hugging Face hub (only when a task is not found locally).

``datasets`` is imported on first use: it takes seconds to import and is not needed to read
local files.
"""

from __future__ import annotations

__all__ = ["ENV_VAR", "hub_dataset"]

#: Environment variable naming the default data root (a folder of per-task folders).
ENV_VAR = "SWAG_LORA_DATA"


def hub_dataset(name: str, config: str | None, split: str):
    """A split from the Hugging Face hub (needs network access or the ``datasets`` cache)."""
    import datasets  # heavy (seconds to import); only the hub path needs it

    try:
        if config is None:
            return datasets.load_dataset(name, split=split)
        return datasets.load_dataset(name, config, split=split)
    except Exception as err:
        if hasattr(err, "add_note"):
            err.add_note(
                f"swag_lora.tasks: could not load {name} ({config or 'default'}, {split}) from the hub; "
                f"to read a local copy pass data_dir or set {ENV_VAR}"
            )
        raise
