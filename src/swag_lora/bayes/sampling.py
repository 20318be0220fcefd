"""How a sampling method draws its members: one typed object from the command line to the sampler.

:class:`SamplingOptions` carries S, the SWAG covariance scale, the seed of the one generator
the draws come from, antithetic pairs and the diagonal-only variant. Every evaluation records
them (``metrics.json``), so nothing is ever read back out of a folder name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ..errors import InvalidSettingError
from .posterior import check_scale

__all__ = ["DEFAULT_N_SAMPLES", "SamplingOptions"]

DEFAULT_N_SAMPLES = 10


@dataclass(frozen=True)
class SamplingOptions:
    """S members drawn once from a generator seeded by ``seed``; SWAG draws are θ̄ + √scale·δ
    (``antithetic``: in pairs θ̄ ± √scale·δ, so S must be even; ``diag_only``: no low-rank term)."""

    n_samples: int = DEFAULT_N_SAMPLES
    scale: float = 1.0
    seed: int = 0
    antithetic: bool = False
    diag_only: bool = False

    def __post_init__(self):
        if not isinstance(self.n_samples, int) or self.n_samples < 1:
            raise InvalidSettingError(f"the number of samples must be at least 1, got {self.n_samples}")
        check_scale(self.scale)
        if self.antithetic and self.n_samples % 2:
            raise InvalidSettingError(f"antithetic sampling draws pairs: the number of samples must be even, "
                                      f"got {self.n_samples}")

    def with_(self, **changes) -> SamplingOptions:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)
