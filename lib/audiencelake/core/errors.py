"""The project's exceptions: one base class, a few specific subclasses with actionable messages."""

from __future__ import annotations


class AudiencelakeError(Exception):
    """Base class of every error raised by audiencelake."""


class ConfigError(AudiencelakeError, ValueError):
    """A configuration file or override is invalid; the message names the file, the key and the reason."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        self.file, self.key, self.reason = file, key, reason
        super().__init__(f"{file}: {key}: {reason}")


class MissingData(AudiencelakeError):
    """What a computation needs is not in the lake: a table, or rows in it (the message says which, and what would
    provide them). The stage runner skips a stage that raises it, with the message."""


class ContractError(AudiencelakeError, ValueError):
    """A data contract under schemas/ is invalid, or a DataFrame does not match its contract."""


class SourceError(AudiencelakeError):
    """A landing source cannot be read as configured."""


class QualityGateError(AudiencelakeError):
    """A table under the `fail` policy broke an error-severity expectation."""
