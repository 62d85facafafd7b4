"""Effective transport: conductivity, tortuosity factor and M-factor (paper Section 3.4)."""

from cbagpu.transport.conductance import PHASE_SIGMA, parse_sigma
from cbagpu.transport.solver import (
    DEFAULT_TOL,
    TransportResult,
    check_transport_fits,
    effective_conductivity,
    largest_solvable_edge,
    transport,
    transport_memory,
)

__all__ = [
    "DEFAULT_TOL",
    "PHASE_SIGMA",
    "TransportResult",
    "check_transport_fits",
    "effective_conductivity",
    "largest_solvable_edge",
    "parse_sigma",
    "transport",
    "transport_memory",
]
