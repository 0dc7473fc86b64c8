"""``severe leaderboard add|build|serve|export``: the board's store and its static site."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import SevereError
from .options import shell_command

DEFAULT_DB = "leaderboard.db"
_DB = click.option("--db", default=DEFAULT_DB, show_default=True, type=click.Path(dir_okay=False),
                   help="The board's SQLite database.")


class BundleRejected(SevereError):
    """A bundle that failed the board's checks; the message lists every reason."""

    exit_code = 1


@click.group("leaderboard")
def leaderboard():
    """Maintain a SEVERE leaderboard: validate and store submissions, build and serve its static site."""


@leaderboard.command("add")
@click.argument("bundle", type=click.Path(dir_okay=False))
@_DB
@click.option("--data-root", default=None, type=click.Path(file_okay=False),
              help="The board's copy of the datasets (annotation files): labels and test lists are checked against it.")
def add(bundle, db, data_root):
    """Validate BUNDLE (from `severe submit`) and, only if every check passes, store it in one transaction.

    A rejection lists every reason and leaves the database byte-for-byte as it was.
    """
    from ..leaderboard.bundle import read_bundle
    from ..leaderboard.store import add_entry, duplicate_checker
    from ..leaderboard.validate import check_bundle

    contents, problems = read_bundle(Path(bundle))
    verdict = None
    if contents is not None and not problems:
        verdict = check_bundle(contents, duplicate_checker(Path(db)), Path(data_root) if data_root else None)
        problems = verdict.problems
    if problems:
        raise BundleRejected(f"bundle {bundle} rejected ({len(problems)} reason{'s' if len(problems) > 1 else ''}; "
                             f"{db} unchanged):\n  - " + "\n  - ".join(problems))
    entry_id = add_entry(Path(db), contents, verdict)
    tasks = sorted({r.task for r in verdict.runs})
    click.echo(f"accepted {contents.manifest['entry']['name']!r} as entry #{entry_id} ({verdict.status} board): "
               f"{len(verdict.runs)} results, tasks {', '.join(tasks)}"
               + ("" if data_root else "; labels not checked (no --data-root)"))


@leaderboard.command("build")
@_DB
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the static site.")
def build(db, out):
    """Write the static site (HTML + JSON + CSV; opens from disk, no server needed)."""
    from ..leaderboard.site import build_site

    summary = build_site(Path(db), Path(out))
    click.echo(f"wrote {summary['index']} ({summary['entries']} entries, {summary['submitted']} submitted)")


@leaderboard.command("serve")
@click.argument("site", type=click.Path(file_okay=False))
@click.option("--port", default=8000, show_default=True, type=int)
def serve(site, port):
    """Serve a built SITE folder on http://127.0.0.1:PORT (local preview; the site needs no server)."""
    import functools
    import http.server

    root = Path(site)
    if not (root / "index.html").is_file():
        build = shell_command("severe", "leaderboard", "build", "--out", root)
        raise SevereError(f"{root} has no index.html: build it first with `{build}`")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise SevereError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}; pick another --port") from exc
    click.echo(f"serving {root} on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    finally:
        server.server_close()


@leaderboard.command("export")
@_DB
@click.option("--format", "fmt", type=click.Choice(["latex", "md"]), default="latex", show_default=True)
@click.option("--which", type=click.Choice(["main", "partial"]), default="main", show_default=True,
              help="The main board (published rows + entries with all eight tasks) or the partial entries.")
@click.option("--rank-colors", is_flag=True, help="LaTeX: colour cells by rank as in the paper.")
@click.option("--standalone", is_flag=True, help="LaTeX: a complete compilable document.")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Write here instead of standard output.")
def export(db, fmt, which, rank_colors, standalone, out):
    """The board as a LaTeX or Markdown table (the `severe table` renderer)."""
    from ..leaderboard.export import export_board

    text = export_board(Path(db), fmt, which, rank_colors=rank_colors, standalone=standalone)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text, nl=False)
