"""Options and hint helpers every command shares, so the CLI speaks one vocabulary."""

from __future__ import annotations

import shlex

import click


class PrimaryNameOption(click.Option):
    """An option whose help shows only its first name; the other names stay accepted (older spellings)."""

    def get_help_record(self, ctx):
        names = self.opts
        self.opts = names[:1]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = names


DATA_ROOT_HELP = ("Dataset root (or a folder holding one sub-folder per dataset). Default: the datasets config "
                  "file, and for the built-in synthetic suite the generated cache.")


def data_root_option(help_text: str = DATA_ROOT_HELP):
    """``--data-root DIR``, the one name for a dataset root in every command (``--root`` is still accepted)."""
    return click.option("--data-root", "--root", "data_root", cls=PrimaryNameOption, default=None,
                        type=click.Path(file_okay=False), help=help_text)


def shell_command(*args) -> str:
    """A command line for the user to copy, each argument quoted for a POSIX shell."""
    return shlex.join(str(a) for a in args)
