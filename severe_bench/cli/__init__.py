"""The ``severe`` command line.

Sub-commands live in their own modules and are imported only when used, so ``severe --help`` and
``severe tasks list`` do not pay for importing torch.
"""

from __future__ import annotations

import importlib
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


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="severe-bench")
def cli():
    """SEVERE benchmark harness: evaluate how well a pre-trained video model generalises."""


def main(argv=None):
    """Entry point: user mistakes (SevereError) print a clear message, never a traceback."""
    try:
        # standalone_mode=False returns ctx.exit() codes instead of raising; pass them on
        rv = cli.main(args=argv, standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except SevereError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
