"""Reading a split from the Hugging Face hub (only when a task is not found locally).

``datasets`` is imported on first use: it takes seconds to import and is not needed to read
local files. Any failure (no network, ``HF_HUB_OFFLINE=1`` with nothing cached, an unknown
dataset) becomes one :class:`~swag_lora.tasks.errors.DataNotFoundError`, which the loader
completes with the local options. Offline mode fails at once (``datasets`` reads only its cache
then); without it, an unreachable hub is retried by ``huggingface_hub`` (about 25 s).
"""

from __future__ import annotations

from .errors import DataNotFoundError

__all__ = ["ENV_VAR", "hub_dataset"]

#: Environment variable naming the default data root (a folder of per-task folders).
ENV_VAR = "SWAG_LORA_DATA"


def hub_dataset(name: str, config: str | None, split: str):
    """A split from the Hugging Face hub (needs network access or the ``datasets`` cache);
    :class:`DataNotFoundError` in one line when it cannot be had."""
    import datasets  # heavy (seconds to import); only the hub path needs it

    try:
        if config is None:
            return datasets.load_dataset(name, split=split)
        return datasets.load_dataset(name, config, split=split)
    except Exception as err:  # whatever the hub client raised: the split cannot be had from the hub
        offline = " (HF_HUB_OFFLINE is set: only the datasets cache was read)" if _offline(datasets) else ""
        reason = " ".join(f"{type(err).__name__}: {err}".split())
        raise DataNotFoundError(
            f"could not load {name} ({config or 'default'}, {split}) from the Hugging Face hub{offline}: {reason}"
        ) from err


def _offline(datasets) -> bool:
    return bool(getattr(datasets.config, "HF_HUB_OFFLINE", False))
