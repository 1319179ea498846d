"""Momentum schedules of the key encoder, with the reference implementation's syntax."""

import math
from dataclasses import dataclass

SYNTAX = (
    '"constant,m", "constant_with_refresh,m,interval", "linear,begin,end,m_min,m_max" or '
    '"exponential,alpha,m_min,m_max"'
)
ARITY = {"constant": 1, "constant_with_refresh": 2, "linear": 4, "exponential": 3}


@dataclass(frozen=True)
class MomentumSchedule:
    """
    `m(step)` for the EMA `k = m*k + (1-m)*q`, `step` counting optimizer updates from 1:
    - `constant,m`
    - `constant_with_refresh,m,interval`: 0 (key encoder := query encoder) every `interval` updates, else m
    - `linear,begin,end,m_min,m_max`: m_min before `begin`, m_max after `end`, linear in between
    - `exponential,alpha,m_min,m_max`: `1 - step**(-alpha)`, clipped to [m_min, m_max]
    """

    kind: str
    values: tuple[float, ...]

    @classmethod
    def parse(cls, spec: str) -> "MomentumSchedule":
        kind, *raw = [part.strip() for part in spec.split(",")]
        if kind not in ARITY:
            raise ValueError(f"Unknown momentum schedule {kind!r} in --xlco_momentum {spec!r}; expected {SYNTAX}.")
        if len(raw) != ARITY[kind]:
            raise ValueError(f"--xlco_momentum {spec!r}: {kind} takes {ARITY[kind]} numbers; expected {SYNTAX}.")
        try:
            values = tuple(float(value) for value in raw)
        except ValueError:
            raise ValueError(
                f"--xlco_momentum {spec!r} has a value that is not a number; expected {SYNTAX}."
            ) from None
        momenta = {"constant": values[:1], "constant_with_refresh": values[:1]}.get(kind, values[-2:])
        if not all(0.0 <= m <= 1.0 for m in momenta):
            raise ValueError(f"--xlco_momentum {spec!r}: momenta must lie in [0, 1].")
        if kind == "constant_with_refresh" and values[1] < 1:
            raise ValueError(f"--xlco_momentum {spec!r}: the refresh interval must be >= 1.")
        if kind == "linear" and values[1] <= values[0]:
            raise ValueError(f"--xlco_momentum {spec!r}: 'end' must be greater than 'begin'.")
        return cls(kind, values)

    def __call__(self, step: int) -> float:
        if self.kind == "constant":
            return self.values[0]
        if self.kind == "constant_with_refresh":
            momentum, interval = self.values
            return 0.0 if step % int(interval) == 0 else momentum
        if self.kind == "linear":
            begin, end, m_min, m_max = self.values
            fraction = min(max((step - begin) / (end - begin), 0.0), 1.0)
            return m_min + fraction * (m_max - m_min)
        alpha, m_min, m_max = self.values
        return min(max(1.0 - math.pow(max(step, 1), -alpha), m_min), m_max)

    @property
    def final(self) -> float:
        """The momentum the schedule settles at (m; m_max for `linear` and `exponential`): what a saved model's
        config states as its `xlco_momentum`, the default of a run that continues from it."""
        return self.values[0] if self.kind in ("constant", "constant_with_refresh") else self.values[-1]

    def __str__(self) -> str:
        return ",".join([self.kind, *(f"{value:g}" for value in self.values)])
