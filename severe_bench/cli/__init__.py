"""The ``severe`` command line.

Sub-commands live in their own modules and are imported only when used, so ``severe --help`` and
``severe tasks list`` do not pay for importing torch.
"""

from __future__ import annotations

import importlib
import json
import os
import sys

import click

from .. import __version__
from ..errors import SevereError

# command name -> "module:attribute" (a click.Command or click.Group)
COMMANDS = {
    "tasks": "severe_bench.cli.tasks_cmd:tasks",
    "data": "severe_bench.cli.data_cmd:data",
    "synth": "severe_bench.cli.synth_cmd:synth",
    "eval": "severe_bench.cli.eval_cmd:eval_cmd",
    "checkpoints": "severe_bench.cli.checkpoints_cmd:checkpoints",
    "table": "severe_bench.cli.table_cmd:table",
    "plot": "severe_bench.cli.plot_cmd:plot",
    "cka": "severe_bench.cli.cka_cmd:cka",
    "bias": "severe_bench.cli.bias_cmd:bias",
    "submit": "severe_bench.cli.submit_cmd:submit",
    "leaderboard": "severe_bench.cli.leaderboard_cmd:leaderboard",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="Environment: SEVERE_CACHE (downloads, generated synthetic data, FLOP counts; default "
                    "$XDG_CACHE_HOME/severe-bench, i.e. ~/.cache/severe-bench), SEVERE_VIDEO_BACKEND "
                    "(decord or pyav), SEVERE_HOME (another tasks/ and checkpoints.yaml).")
@click.version_option(__version__, prog_name="severe-bench")
def cli():
    """SEVERE benchmark harness: evaluate how well a pre-trained video model generalises."""


def wants_json(args: list[str]) -> bool:
    """Whether the command line asks for machine-readable output (``--json`` or ``--format json``)."""
    for i, a in enumerate(args):
        if a == "--":
            break
        if a == "--json" or a == "--format=json" or (a == "--format" and args[i + 1: i + 2] == ["json"]):
            return True
    return False


def _fail(args: list[str], kind: str, message: str, code: int, shown: bool = False):
    """Print an error (on stderr; as JSON on stdout too when the command was asked for JSON) and exit."""
    if not shown:
        click.echo(f"error: {message}", err=True)
    if wants_json(args):
        click.echo(json.dumps({"ok": False, "error": {"kind": kind, "message": message, "exit_code": code}}))
    sys.exit(code)


def main(argv=None):
    """Entry point: user mistakes (SevereError) print a clear message, never a traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        # standalone_mode=False returns ctx.exit() codes instead of raising; pass them on
        rv = cli.main(args=args, prog_name="severe", standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except SevereError as exc:
        _fail(args, type(exc).__name__, str(exc), exc.exit_code)
    except click.exceptions.Abort:
        _fail(args, "aborted", "aborted", 130)
    except click.UsageError as exc:
        exc.show()  # usage line and message on stderr
        _fail(args, "usage", exc.format_message(), exc.exit_code, shown=True)
    except click.ClickException as exc:
        _fail(args, type(exc).__name__, exc.format_message(), exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _fail(args, "interrupted", "interrupted", 130)
    except OSError as exc:
        # the file system refused something (permissions, full disk, a file where a folder should be): say
        # which path and why instead of a traceback; SEVERE_DEBUG=1 shows the traceback for bug reports
        if os.environ.get("SEVERE_DEBUG"):
            raise
        paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p)
        _fail(args, "OSError", f"{paths + ': ' if paths else ''}{exc.strerror or exc}", 2)


if __name__ == "__main__":
    main()
