"""Exception types. Every failure a user can cause has a type and a message that says what to do."""

from __future__ import annotations


class EdgeAffectError(Exception):
    """Base class: the CLI prints these as one line and exits non-zero, without a traceback."""

    exit_code = 2


class BackendUnavailableError(EdgeAffectError):
    """No TFLite interpreter package is importable."""


class ModelError(EdgeAffectError):
    """A model file is missing, truncated, not a TFLite file, or does not match its manifest."""


class DelegateError(EdgeAffectError):
    """A hardware delegate could not be loaded (callers usually fall back to CPU)."""


class FrameFormatError(EdgeAffectError):
    """A frame's dtype/shape cannot be turned into an image the pipeline understands."""


class SourceError(EdgeAffectError):
    """A video file or camera cannot be opened or has stopped delivering frames."""


class ProfileError(EdgeAffectError):
    """A firmware_configs profile is invalid (file, key and reason are in the message)."""


class OutputError(EdgeAffectError):
    """An output file cannot be written (disk full, permissions)."""
