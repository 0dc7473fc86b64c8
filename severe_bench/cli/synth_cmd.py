"""``severe synth``: write the built-in synthetic suite (real videos, official annotation formats)."""

from __future__ import annotations

import time
from pathlib import Path

import click


def _summary_lines(manifest: dict, out: Path) -> list[str]:
    lines = [f"synthetic suite v{manifest['version']} (seed {manifest['seed']}, scale {manifest['scale']}) in {out}"]
    for name, entry in manifest["datasets"].items():
        splits = ", ".join(f"{k} {entry['splits'][k]}" for k in ("train", "test") if k in entry["splits"])
        classes = f"{len(entry['classes'])} classes" if "classes" in entry else ""
        if "fine_labels" in entry:
            classes += f" (fine labels {entry['fine_labels'][0]}..{entry['fine_labels'][1]})"
        lines.append(f"  {name:<17} {entry['format']:<9} {entry['videos']:>4} videos "
                     f"({entry['video_ext']}, {entry['codec']})  {splits}  {classes}")
    lines.append(f"  total {manifest['total_videos']} videos")
    return lines


@click.command("synth")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory to write into (default: the cache, as `severe eval` uses it).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Generator seed.")
@click.option("--scale", type=click.Choice(["tiny", "small", "medium"]), default="small", show_default=True,
              help="Suite size: tiny (66 videos, tests), small (440), medium (~1200).")
@click.option("--force", is_flag=True, help="Regenerate even if a complete suite is already there.")
def synth(out, seed, scale, force):
    """Generate the synthetic suite: synth_motion (UCF101 layout), synth_fine (FineGym), synth_count
    (UCFRep) and synth_multilabel (Charades), plus a SUITE.json manifest."""
    from ..synth import complete_manifest, ensure_suite, generate_suite
    from ..synth.suite import suite_dir_name

    start = time.perf_counter()
    if out is None:
        from ..resources import cache_dir

        target = cache_dir() / "synth" / suite_dir_name(seed, scale)
        if force and target.exists():
            import shutil

            shutil.rmtree(target)
        existing = complete_manifest(target, seed, scale)
        target = ensure_suite(seed=seed, scale=scale)
        manifest = existing or complete_manifest(target, seed, scale)
    else:
        from ..atomic import check_writable_dir

        check_writable_dir(out, "--out")
        existing = None if force else complete_manifest(out, seed, scale)
        manifest = existing or generate_suite(out, seed=seed, scale=scale, force=True)  # checked just above
        target = out
    for line in _summary_lines(manifest, target):
        click.echo(line)
    if existing is not None:
        click.echo("already complete: nothing written (use --force to regenerate)")
    else:
        click.echo(f"wrote {manifest['total_videos']} videos in {time.perf_counter() - start:.1f}s")
