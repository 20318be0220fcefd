"""The members a method decodes with: the same weight settings and forward modes as for multiple
choice (:mod:`swag_lora.bayes.registry`), as one flat list.

MAP, SWA, SWAG (low-rank or diagonal), MC dropout, the deep ensemble (the MAP adapters of M runs)
and MultiSWAG (S SWAG draws from each of M runs) all put the model into one state per member
for a ``with`` block, so decoding treats them alike. Methods that produce logits without a
weight setting (Laplace-LoRA's linearised predictive) or that fit a temperature have no such
members and are refused.
"""

from __future__ import annotations

from ..bayes.predictive import Concatenation, Method
from ..bayes.registry import MethodContext, build_method
from ..errors import InvalidSettingError

__all__ = ["GENERATION_METHODS", "generation_method"]

GENERATION_METHODS = ("map", "swa", "swag", "swag-diag", "mc-dropout", "ensemble", "multiswag")


def generation_method(name: str, ctx: MethodContext) -> Method:
    """Method ``name`` of ``ctx``'s runs as one :class:`~swag_lora.bayes.predictive.Method` whose
    members are entered one at a time (multi-run methods: every run's members in turn)."""
    if name not in GENERATION_METHODS:
        raise InvalidSettingError(f"method {name!r} cannot generate (it has no weight-setting members); choose "
                                  f"from {', '.join(GENERATION_METHODS)}")
    built = build_method(name, ctx)
    if isinstance(built, Concatenation):
        members = [m for part in built.parts for m in part.members]
        return Method(built.name, members, {**built.settings, "n_members": len(members)})
    return built
