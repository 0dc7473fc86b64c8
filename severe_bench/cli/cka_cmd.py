"""``severe cka``: representation similarity (linear CKA, minibatch unbiased HSIC; RBF optional).

Two uses:

* ``severe cka --features A.npy B.npy [--json]``: CKA between two saved (n × d) feature matrices;
* ``severe cka --task T --checkpoint A --checkpoint B [...] --out DIR``: features of one centre clip per video of
  the task's evaluation list, then a layer × layer heatmap for the first two checkpoints and a
  checkpoint × checkpoint matrix at each one's last layer; numbers as csv/json beside the plots.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

from ..atomic import check_writable_dir
from ..errors import MissingFileError, SevereError
from .options import data_root_option


def _load_matrix(path: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(f"feature file {p} does not exist")
    if p.stat().st_size == 0:
        raise SevereError(f"{p}: the file is empty; save the (n × d) features with numpy.save")
    try:
        arr = np.load(p, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:  # EOFError: a truncated header (click would call it "aborted")
        raise SevereError(f"{p}: not a .npy array ({type(exc).__name__}: {exc})") from None
    if isinstance(arr, np.lib.npyio.NpzFile):
        names = list(arr.files)
        arr.close()
        raise SevereError(f"{p}: an .npz archive (arrays {names[:5]}), not one .npy matrix; save each feature "
                          "matrix with numpy.save and pass the two .npy files")
    if arr.ndim < 2 or arr.shape[0] == 0:
        raise SevereError(f"{p}: features must be an (n × d) array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise SevereError(f"{p}: features must be numeric, got dtype {arr.dtype}")
    return arr.reshape(arr.shape[0], -1) if arr.ndim > 2 else arr


@click.command("cka")
@click.option("--features", nargs=2, type=click.Path(dir_okay=False), default=None,
              help="Two saved feature matrices A.npy B.npy (n × d, same examples in the same row order).")
@click.option("--json", "as_json", is_flag=True, help="With --features: print {\"cka\": value}.")
@click.option("--task", "task_id", default=None, help="Task whose evaluation list provides the videos.")
@click.option("--checkpoint", "checkpoints", multiple=True,
              help="Checkpoint (path or registry name); repeat, at least twice.")
@click.option("--arch", default=None, help="Architecture when a checkpoint file does not say.")
@click.option("--trust-checkpoint", is_flag=True, help="Allow pickled (non weights-only) checkpoint files.")
@click.option("--layers", default=None, help="Comma-separated layer names for the layer × layer map (default: all).")
@click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True)
@click.option("--max-videos", type=int, default=None, help="Use at most N videos, spread evenly over the list.")
@data_root_option()
@click.option("--profile", default="full", show_default=True, help="Task profile whose test clip is used.")
@click.option("--mode", type=click.Choice(["video", "static"]), default="video", show_default=True,
              help="static: the middle frame repeated over time.")
@click.option("--frames", type=int, default=None, help="Clip length (default: the task's test clip).")
@click.option("--crop", type=int, default=None, help="Crop size (default: the task's test crop).")
@click.option("--resize", type=int, default=None, help="Short side before the crop (default: the task's).")
@click.option("--kernel", type=click.Choice(["linear", "rbf"]), default="linear", show_default=True)
@click.option("--rbf-scale", type=float, default=1.0, show_default=True,
              help="RBF bandwidth = scale × median pairwise distance (of the first minibatch).")
@click.option("--batch-size", type=int, default=1024, show_default=True,
              help="CKA minibatch size (unbiased HSIC per minibatch; n ≤ batch size is the full-batch estimate).")
@click.option("--extract-batch-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Videos per forward pass.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True, help="Video decoding processes.")
@click.option("--device", default="auto", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help="Output directory (task mode).")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), default=None,
              help="Feature cache (default: OUT/features).")
def cka(features, as_json, task_id, checkpoints, arch, trust_checkpoint, layers, split, max_videos, data_root,
        profile, mode, frames, crop, resize, kernel, rbf_scale, batch_size, extract_batch_size, workers, device,
        out_dir, cache_dir):
    """Centered kernel alignment between representations (PROTOCOL.md §8)."""
    from ..similarity.cka import MIN_BATCH

    if batch_size < MIN_BATCH:  # before any (slow) feature extraction
        raise SevereError(f"--batch-size must be at least {MIN_BATCH} (the unbiased HSIC estimator divides by "
                          f"n(n-3)), got {batch_size}")
    if features:
        if task_id or checkpoints:
            raise SevereError("give either --features A.npy B.npy or --task with --checkpoint, not both")
        from ..similarity.streaming import cka_of_arrays

        a, b = (_load_matrix(p) for p in features)
        matrix, n = cka_of_arrays([a], [b], batch_size=batch_size, kernel=kernel, rbf_scale=rbf_scale)
        value = float(matrix[0, 0])
        if as_json:
            click.echo(json.dumps({"cka": value}))
        else:
            click.echo(f"{value:.6f}")
            click.echo(f"({kernel} CKA, unbiased HSIC, {n} examples, minibatch {min(batch_size, n)})", err=True)
        return
    if not task_id or len(checkpoints) < 2:
        raise SevereError("pass --features A.npy B.npy, or --task T with at least two --checkpoint")
    if not out_dir:
        raise SevereError("--out DIR is required with --task")
    check_writable_dir(Path(out_dir), "--out")  # before the checkpoints load and the features are extracted
    from ..similarity.task import run_task_cka

    written = run_task_cka(
        task_id=task_id, checkpoints=list(checkpoints), out_dir=Path(out_dir),
        cache_dir=Path(cache_dir) if cache_dir else None, arch=arch, trust=trust_checkpoint,
        layers=[l.strip() for l in layers.split(",") if l.strip()] if layers else None, split=split,
        max_videos=max_videos, data_root=data_root, profile=profile, mode=mode, kernel=kernel,
        rbf_scale=rbf_scale, batch_size=batch_size, extract_batch_size=extract_batch_size, workers=workers,
        device=device, clip={k: v for k, v in (("frames", frames), ("crop", crop), ("resize", resize)) if v},
        log=lambda m: click.echo(m, err=True))
    for p in written:
        click.echo(str(p))
    sys.stdout.flush()
