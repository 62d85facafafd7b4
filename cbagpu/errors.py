"""The errors cbagpu raises on purpose, under one base class.

Catch :class:`CbagpuError` to handle anything the package refuses or fails to do; anything
else that escapes is a bug. Bad input is also a :class:`ValueError` (so ``except
ValueError`` keeps working), a missing backend also a :class:`RuntimeError`, a request too
large for memory also a :class:`MemoryError`.

The command line maps :class:`InvalidInputError` and :class:`BackendUnavailableError` (and
:class:`InsufficientMemoryError`) to exit status 2, :class:`TasksFailedError` and other
:class:`CbagpuError` to exit status 1, and lets every other exception show its traceback.
"""

from __future__ import annotations


class CbagpuError(Exception):
    """Base of every error cbagpu raises on purpose."""


class InvalidInputError(CbagpuError, ValueError):
    """An argument, parameter or file content that cbagpu cannot accept (checked before any
    work starts)."""


class BackendUnavailableError(CbagpuError, RuntimeError):
    """A backend (or a capability of it) was asked for explicitly but cannot run here."""


class InsufficientMemoryError(CbagpuError, MemoryError):
    """A request would not fit in the memory available; raised before allocating, with the
    estimate."""


class TasksFailedError(CbagpuError, RuntimeError):
    """Some tasks of a study failed; the finished ones are kept (``failed`` names the others)."""

    def __init__(self, message: str, failed: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.failed: dict[str, str] = dict(failed or {})


__all__ = [
    "BackendUnavailableError",
    "CbagpuError",
    "InsufficientMemoryError",
    "InvalidInputError",
    "TasksFailedError",
]
