"""Domain errors. The CLI maps each to one line on stderr and an exit code.

Each message says what to do next; none of them carries document text.
"""

from __future__ import annotations


class TranslateDirError(Exception):
    """Base of every error the tool reports to the user.

    ``path`` names the file the error is about (empty when none): the message
    reads "path: reason", and a report that already names the file shows
    ``reason`` alone.
    """

    exit_code = 1

    def __init__(self, reason: str, *, path: str = "") -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.reason = reason
        self.path = path


class ConfigError(TranslateDirError):
    """pipeline.toml or the command line asks for something invalid."""

    exit_code = 2


class UsageError(ConfigError):
    """The command line is inconsistent (e.g. input folder equals output folder)."""


class BackendUnavailable(TranslateDirError):
    """The model server does not answer, or refuses to serve us."""

    exit_code = 3


class ModelNotFound(BackendUnavailable):
    """The backend answers but does not have the requested model."""


class RemoteRefused(BackendUnavailable):
    """A non-loopback backend was named without --allow-remote (privacy guard)."""


class LockHeld(TranslateDirError):
    """Another translate-dir run holds the lock on this output folder."""

    exit_code = 4


class DocumentError(TranslateDirError):
    """One input file cannot be read or parsed (binary, bad encoding, bad front matter)."""


class ModelUnfit(TranslateDirError):
    """The first answers all failed the same check: this model cannot do the job.

    Raised early, so a model that never writes the target script costs a few
    requests instead of thousands; what was finished is kept.
    """


class WriteError(TranslateDirError):
    """An output file could not be written; nothing partial was left behind."""


class RequestFailed(TranslateDirError):
    """One request to the backend failed after its retries; the chunk is kept in the source."""


class TransientError(RequestFailed):
    """A failure worth retrying: busy server, timeout, dropped stream."""


class ContextOverflow(RequestFailed):
    """The request did not fit the model's context (input cut or HTTP 400 overflow).

    The orchestrator splits the chunk and tries again with smaller pieces.
    """


class OutputTruncated(RequestFailed):
    """The answer was cut (output-token bound or a stream without its final event)."""


class ValidationFailed(TranslateDirError):
    """A translated chunk failed its structural checks."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
