"""Effective transport: conductivity, tortuosity factor and M-factor (paper Section 3.4)."""

from cbagpu.transport.conductance import PHASE_SIGMA, parse_sigma
from cbagpu.transport.solver import (
    DEFAULT_TOL,
    TransportResult,
    effective_conductivity,
    transport,
)

__all__ = [
    "DEFAULT_TOL",
    "PHASE_SIGMA",
    "TransportResult",
    "effective_conductivity",
    "parse_sigma",
    "transport",
]
