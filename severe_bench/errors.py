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
