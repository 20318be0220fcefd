"""IVON in the Trainer: the optimizer in place of AdamW over the tracked parameters, one
posterior sample per optimizer step (``sampled_params(train=True)`` around the forward and
backward pass, as the ``ivon-opt`` README and IVON-LoRA's ``finetune.py`` do).

``ivon-opt`` is an optional dependency (``pip install ivon-opt``, GPL-3.0-or-later; ``make
setup`` installs it). One sample per optimizer step means one micro-batch per step: the
gradient IVON records when a sample ends is the parameters' ``.grad``, which gradient
accumulation would sum over micro-batches drawn at one sample, so accumulation is refused.
"""

from __future__ import annotations

from ..bayes.ivon import default_hess_init
from ..errors import InvalidSettingError, MissingDependencyError
from .settings import IvonSettings

__all__ = ["make_ivon", "resolve_ess"]


def resolve_ess(settings: IvonSettings, n_train: int) -> float:
    """λ, the effective sample size: the setting, or the training-set size."""
    return float(settings.ess) if settings.ess is not None else float(n_train)


def make_ivon(params: list, settings: IvonSettings, learning_rate: float, ess: float):
    """An ``ivon.IVON`` over ``params`` (one group, in the given order) at ``learning_rate``."""
    try:
        import ivon  # optional dependency (GPL): only IVON runs need it
    except ImportError as err:
        raise MissingDependencyError("--bayes_method ivon needs the ivon-opt package: pip install ivon-opt") from err
    if not learning_rate > 0:
        raise InvalidSettingError(f"IVON needs a learning rate > 0, got {learning_rate}")
    hess_init = settings.hess_init if settings.hess_init is not None else default_hess_init(ess)
    return ivon.IVON(params, lr=learning_rate, ess=ess, hess_init=hess_init, beta1=settings.beta1,
                     beta2=settings.beta2, weight_decay=settings.weight_decay, mc_samples=1,
                     clip_radius=settings.clip_radius, rescale_lr=settings.rescale_lr)
