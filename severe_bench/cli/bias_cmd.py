"""``severe bias``: representation bias B = log2(M / M_rnd) of tasks under a static representation, and the
transfer ratio of two checkpoints against it (PROTOCOL.md §7)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd

from ..errors import SevereError


@click.command("bias")
@click.option("--task", "task_ids", multiple=True, required=True, help="Task id (repeatable).")
@click.option("--representation", required=True,
              help="Checkpoint whose static features (one frame repeated over time) define φ.")
@click.option("--arch", default=None, help="Architecture when the checkpoint file does not say.")
@click.option("--trust-checkpoint", is_flag=True, help="Allow pickled (non weights-only) checkpoint files.")
@click.option("--mode", type=click.Choice(["static", "video"]), default="static", show_default=True,
              help="static: the clip's middle frame repeated over time (the bias of PROTOCOL.md §7).")
@click.option("--layer", default=None, help="Feature layer (default: the backbone's last).")
@click.option("--data-root", type=click.Path(file_okay=False), default=None)
@click.option("--profile", default="full", show_default=True, help="Task profile whose test clip size is used.")
@click.option("--frames", type=int, default=None, help="Clip length (default: the task's test clip).")
@click.option("--crop", type=int, default=None, help="Crop size (default: the task's test crop).")
@click.option("--resize", type=int, default=None, help="Short side before the crop (default: the task's).")
@click.option("--max-train", type=int, default=None, help="At most N training videos (spread evenly).")
@click.option("--max-test", type=int, default=None, help="At most N test videos (spread evenly).")
@click.option("--weight-decay", type=float, default=None,
              help="L2 of the probe (default: chosen on a 20% hold-out of the training features).")
@click.option("--results", "result_paths", multiple=True, type=click.Path(),
              help="Result JSONs/directories with the two checkpoints' evaluations (for --compare).")
@click.option("--compare", nargs=2, default=None, metavar="A B",
              help="Transfer ratio A / B per task (labels of results, or published rows with --with-reference).")
@click.option("--with-reference", is_flag=True,
              help="Also take --compare values from the published SynAPT/PPMA fine-tuning numbers.")
@click.option("--extract-batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), default=None,
              help="Feature cache (default: OUT/features).")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def bias(task_ids, representation, arch, trust_checkpoint, mode, layer, data_root, profile, frames, crop, resize,
         max_train, max_test,
         weight_decay, result_paths, compare, with_reference, extract_batch_size, workers, device, out_dir,
         cache_dir, as_json):
    """Representation bias B = log2(M / M_rnd) of each --task under the static features of --representation
    (M: top-1 of a linear probe trained on the task's training videos, tested on its test videos; M_rnd = 100/C),
    optionally against the transfer ratio A / B of two checkpoints (--compare). Writes OUT/bias.csv and
    OUT/bias.json (B is null there when the probe scores 0 %, i.e. B = −∞) and OUT/bias_vs_transfer.png/pdf."""
    from .. import bias as B

    if compare is None and (result_paths or with_reference):
        raise SevereError("--results/--with-reference are for --compare A B")
    out = Path(out_dir)
    values = None
    if compare:  # check the comparison inputs before the (slow) feature extraction
        sources = []
        if result_paths:
            from ..report import load_results

            user = load_results(result_paths)
            sources.append(user[["method", "task", "value"]])
        if with_reference:
            sources.append(B.published_transfer("ft")[["method", "task", "value"]])
        if not sources:
            raise SevereError("--compare needs --results and/or --with-reference")
        values = pd.concat(sources, ignore_index=True)
        B.transfer_ratios(values, compare[0], compare[1], list(task_ids))

    table, meta = B.measure_bias(
        list(task_ids), representation, Path(cache_dir) if cache_dir else out / "features", arch=arch,
        trust=trust_checkpoint, mode=mode, layer=layer, data_root=data_root, profile=profile, max_train=max_train,
        max_test=max_test, weight_decay=weight_decay, extract_batch_size=extract_batch_size, workers=workers,
        device=device, clip={k: v for k, v in (("frames", frames), ("crop", crop), ("resize", resize)) if v},
        log=lambda m: click.echo(m, err=True))
    written = []
    if compare:
        ratios = B.transfer_ratios(values, compare[0], compare[1], list(task_ids))
        table = table.merge(ratios.rename(columns={"value_a": f"value_{compare[0]}", "value_b": f"value_{compare[1]}"}),
                            on="task")
        meta["compare"] = {"a": compare[0], "b": compare[1], "ratio": "A / B"}
        written += B.plot_ratio_vs_bias(table, compare[0], compare[1], meta["representation"]["label"], out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / "bias.csv", out / "bias.json"
    table.to_csv(csv_path, index=False, float_format="%.6g")
    payload = {**meta, "rows": json.loads(table.to_json(orient="records"))}
    json_path.write_text(json.dumps(payload, indent=1))
    written = [csv_path, json_path] + written
    if as_json:
        click.echo(json.dumps(payload, indent=1))
    else:
        from tabulate import tabulate

        click.echo(tabulate(table, headers="keys", tablefmt="github", showindex=False, floatfmt=".3f"))
        for p in written:
            click.echo(str(p))
