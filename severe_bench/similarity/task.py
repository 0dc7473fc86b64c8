"""CKA over a task's evaluation list: extract (cached) features per checkpoint, then the two standard views.

* layer × layer heatmap for the first two checkpoints (rows: the first one's layers, columns: the second's);
* checkpoint × checkpoint matrix at each checkpoint's last layer.

Each view is written as ``.csv`` (the matrix with labels), ``.json`` (matrix plus provenance) and ``.png``/``.pdf``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from ..errors import SevereError
from .streaming import cka_of_arrays


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "checkpoint"


def _labels(loaded_list, specs) -> list[str]:
    """Checkpoint labels: registry name, else the file stem; duplicates get ``#2``, ``#3``."""
    out: list[str] = []
    for loaded, spec in zip(loaded_list, specs):
        base = str(loaded.info.get("name") or Path(spec).stem)
        label, k = base, 2
        while label in out:
            label, k = f"{base}#{k}", k + 1
        out.append(label)
    return out


def _write_matrix(matrix: np.ndarray, rows: list[str], cols: list[str], stem: str, out_dir: Path, meta: dict,
                  title: str, row_axis: str, col_axis: str) -> list[Path]:
    from ..atomic import atomic_write_text
    from ..report.plots import cka_heatmap

    csv_path, json_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.json"
    atomic_write_text(csv_path, pd.DataFrame(matrix, index=rows, columns=cols).to_csv(float_format="%.6f"))
    payload = {**meta, "rows": rows, "columns": cols,
               "cka": [[None if np.isnan(v) else float(v) for v in r] for r in matrix]}
    atomic_write_text(json_path, json.dumps(payload, indent=1))
    return [csv_path, json_path] + cka_heatmap(matrix, rows, cols, title, out_dir, stem, row_axis, col_axis)


def run_task_cka(task_id: str, checkpoints: list[str], out_dir: Path, cache_dir: Path | None = None,
                 arch: str | None = None, trust: bool = False, layers: list[str] | None = None, split: str = "test",
                 max_videos: int | None = None, data_root=None, profile: str = "full", mode: str = "video",
                 kernel: str = "linear", rbf_scale: float = 1.0, batch_size: int = 1024,
                 extract_batch_size: int = 8, workers: int = 0, device: str = "auto",
                 clip: dict | None = None, seed: int = 0, log: Callable[[str], None] = print) -> list[Path]:
    """``clip``: optional ``frames``/``crop``/``resize`` overriding the task's test clip."""
    from ..checkpoints import load_checkpoint
    from ..engine.runner import pick_device
    from ..data.subset import evenly_spaced
    from ..features import clip_spec_for, extract_features, task_for
    from ..registry import read_split, resolve_data_root

    if len(checkpoints) < 2:
        raise SevereError("CKA needs at least two checkpoints")
    dev = pick_device(device)
    torch.manual_seed(seed)  # "scratch" checkpoints: different random nets, the same on every run
    loaded = [load_checkpoint(spec, arch=arch, trust=trust, count_flops=False) for spec in checkpoints]
    labels = _labels(loaded, checkpoints)
    task = task_for(task_id, profile, loaded[0].info.get("architecture"))
    root = resolve_data_root(task, data_root)
    samples = evenly_spaced(read_split(task, root, split), max_videos)
    cache = cache_dir or (out_dir / "features")
    log(f"cka: task {task.id} ({split}, {len(samples)} videos), checkpoints {', '.join(labels)}, mode {mode}")

    sets = []
    for i, (ld, label) in enumerate(zip(loaded, labels)):
        last = ld.backbone.layer_names[-1]
        # the first two get the layers of the layer × layer map; every checkpoint gets its last layer
        wanted = (list(layers) if layers else list(ld.backbone.layer_names)) if i < 2 else []
        if last not in wanted:
            wanted.append(last)
        task_i = task_for(task_id, profile, ld.info.get("architecture"))
        spec = clip_spec_for(task_i, ld.info, **(clip or {}))
        sets.append(extract_features(ld, task_i, root, samples, wanted, cache, split=split, mode=mode, spec=spec,
                                     batch_size=extract_batch_size, workers=workers, device=dev, label=label,
                                     log=log))

    failed = sorted({f["video"] for fs in sets for f in fs.failed})
    meta = {"task": task.id, "split": split, "mode": mode, "kernel": kernel, "estimator": "unbiased HSIC, minibatch",
            "batch_size": batch_size, "num_videos": len(samples), "failed_videos": failed,
            "protocol_hash": task.protocol_hash, "profile": task.profile,
            "checkpoints": [{"label": lab, "spec": spec, "name": ld.info.get("name"), "sha256": ld.info.get("sha256"),
                             "architecture": ld.info.get("architecture")}
                            for lab, spec, ld in zip(labels, checkpoints, loaded)]}
    cka_kw = {"batch_size": batch_size, "kernel": kernel, "rbf_scale": rbf_scale, "device": str(dev), "strict": False}
    written: list[Path] = []

    a, b = sets[0], sets[1]
    la = [l for l in a.layers if layers is None or l in layers]
    lb = [l for l in b.layers if layers is None or l in layers]
    matrix, n = cka_of_arrays([a.array(l) for l in la], [b.array(l) for l in lb], **cka_kw)
    written += _write_matrix(matrix, la, lb, f"cka_layers_{_slug(labels[0])}_vs_{_slug(labels[1])}", out_dir,
                             {**meta, "num_examples": n}, f"{kernel} CKA, {task.id} ({n} videos)",
                             labels[0], labels[1])

    lasts = [ld.backbone.layer_names[-1] for ld in loaded]
    reps = [fs.array(last) for fs, last in zip(sets, lasts)]
    matrix, n = cka_of_arrays(reps, reps, **cka_kw)
    names = [f"{lab} ({last})" if len(set(lasts)) > 1 else lab for lab, last in zip(labels, lasts)]
    stem = "cka_checkpoints_" + (_slug(lasts[0]) if len(set(lasts)) == 1 else "last")
    written += _write_matrix(matrix, names, names, stem, out_dir, {**meta, "num_examples": n, "layers": lasts},
                             f"{kernel} CKA at the last layer, {task.id} ({n} videos)", "", "")
    return written
