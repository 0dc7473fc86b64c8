"""User-facing errors.

Anything a user can cause (bad path, bad file, bad checkpoint, unknown id) raises a ``SevereError``
subclass with an actionable message; the CLI prints it without a traceback and exits non-zero.
"""


class SevereError(Exception):
    """Base class for errors caused by user input; the message says what to do."""

    exit_code = 2


class UnknownTaskError(SevereError):
    pass


class MissingFileError(SevereError):
    pass


class AnnotationError(SevereError):
    """A malformed annotation file: the message carries ``file:line`` and the reason."""

    def __init__(self, path, line, reason):
        self.path, self.line, self.reason = str(path), line, reason
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")


class CheckpointError(SevereError):
    pass


class ConfigError(SevereError):
    pass


class OutputError(SevereError):
    """An output or state file cannot be written (read-only, full disk, a file where a folder should be)."""


class ResultError(SevereError):
    """A result JSON that cannot be read or fails validation; the message names the file and the problems."""


class TrainingDivergedError(SevereError):
    """Training produced a non-finite loss; the message names the pass and step."""


class RunLockedError(SevereError):
    """Another process holds the run lock of this (out, task, seed)."""

    exit_code = 3
