"""``severe bias``: representation bias B = log2(M / M_rnd) of tasks, and the transfer ratio of two checkpoints
against it (docs/PROTOCOL.md, representation bias)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd

from ..atomic import atomic_write_text, check_writable_dir
from ..errors import SevereError
from .options import data_root_option

MEASURE_HELP = ("imagenet-tsn (default, the published definition of SynAPT Table 4.2): an ImageNet image model "
                "on TSN frames, SGD linear probe; checkpoint-static: the checkpoint under test on one frame "
                "repeated over time (--mode video: on the clip itself).")


@click.command("bias")
@click.option("--task", "task_ids", multiple=True, help="Task id (repeatable; default with --bias-table: its tasks).")
@click.option("--measure", type=click.Choice(["imagenet-tsn", "checkpoint-static"]), default="imagenet-tsn",
              show_default=True, help=MEASURE_HELP)
@click.option("--representation", default=None,
              help="imagenet-tsn: the image model (default imagenet_resnet18; also imagenet_resnet50 or a "
                   "torchvision ResNet file). checkpoint-static: the video checkpoint under test (required).")
@click.option("--arch", default=None, help="Architecture when the checkpoint file does not say.")
@click.option("--trust-checkpoint", is_flag=True, help="Allow pickled (non weights-only) checkpoint files.")
@click.option("--mode", type=click.Choice(["static", "video"]), default="static", show_default=True,
              help="checkpoint-static only: static = the clip's middle frame repeated over time.")
@click.option("--layer", default=None, help="Feature layer (default: the backbone's last).")
@data_root_option()
@click.option("--profile", default="full", show_default=True, help="Task profile (its test clip, bias values).")
@click.option("--segments", type=int, default=None, help="imagenet-tsn: TSN segments per video (default: tasks/_bias.yaml).")
@click.option("--frames-per-segment", type=int, default=None, help="imagenet-tsn: frames from each segment.")
@click.option("--probe-epochs", type=click.IntRange(min=1), default=None, help="imagenet-tsn: probe epochs.")
@click.option("--frames", type=int, default=None, help="checkpoint-static: clip length (default: the task's test clip).")
@click.option("--crop", type=int, default=None, help="Crop size (default: the task's / the bias file's).")
@click.option("--resize", type=int, default=None, help="Short side before the crop (default: the task's / bias file's).")
@click.option("--max-train", type=int, default=None, help="At most N training videos (spread evenly).")
@click.option("--max-test", type=int, default=None, help="At most N test videos (spread evenly).")
@click.option("--weight-decay", type=float, default=None,
              help="L2 of the probe (imagenet-tsn default: the bias file's 5e-4; checkpoint-static default: chosen "
                   "on a 20% hold-out of the training features, never on test).")
@click.option("--bias-table", default=None,
              help="Use this bias.json/bias.csv of an earlier run instead of measuring ('published': SynAPT "
                   "Table 4.2).")
@click.option("--results", "result_paths", multiple=True, type=click.Path(),
              help="Result JSONs/directories with the two checkpoints' evaluations (for --compare).")
@click.option("--compare", nargs=2, default=None, metavar="A B",
              help="Transfer ratio A / B per task (labels of results, or published rows with --with-reference).")
@click.option("--with-reference", is_flag=True,
              help="Show SynAPT Table 4.2's published M and B beside the measured ones; with --compare also take "
                   "the published SynAPT/PPMA fine-tuning and linear-probe numbers.")
@click.option("--extract-batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False), default=None,
              help="Feature cache (default: OUT/features).")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def bias(task_ids, measure, representation, arch, trust_checkpoint, mode, layer, data_root, profile, segments,
         frames_per_segment, probe_epochs, frames, crop, resize, max_train, max_test, weight_decay, bias_table,
         result_paths, compare, with_reference, extract_batch_size, workers, device, out_dir, cache_dir, as_json):
    """Representation bias B = log2(M / M_rnd) of each --task (M: top-1 of a linear probe trained on the task's
    training videos' frozen features, tested on its test videos; M_rnd = 100/C), by default as SynAPT measures it
    (ImageNet ResNet-18, TSN frames), optionally against the transfer ratio A / B of two checkpoints (--compare).
    Writes OUT/bias.csv and OUT/bias.json (B is null there when the probe scores 0 %, i.e. B = −∞), and with
    --compare OUT/ratio_vs_bias.csv (SynAPT Table 4.3's layout) and OUT/bias_vs_transfer.png/pdf."""
    from .. import bias as B

    if result_paths and compare is None:
        raise SevereError("--results are for --compare A B")
    if not task_ids and not bias_table:
        raise SevereError("give --task (repeatable), or --bias-table with a bias table of an earlier run")
    out = check_writable_dir(Path(out_dir), "--out")  # a bad --out fails now, not after the measurement
    values = None
    if bias_table:
        table, meta = B.read_bias_table(bias_table)
        if task_ids:
            unknown = [t for t in task_ids if t not in set(table["task"])]
            if unknown:
                raise SevereError(f"--bias-table {bias_table} has no row for {', '.join(unknown)} "
                                  f"(it has: {', '.join(table['task'])})")
            table = table.set_index("task").loc[list(task_ids)].reset_index()
        tasks = list(table["task"])
    else:
        tasks = list(task_ids)
    if compare:  # check the comparison inputs before the (slow) feature extraction
        values = _comparison_values(result_paths, with_reference)
        B.ratio_groups(values, compare[0], compare[1], tasks)

    if not bias_table:
        table, meta = B.measure_bias(
            tasks, representation, Path(cache_dir) if cache_dir else out / "features", measure=measure, arch=arch,
            trust=trust_checkpoint, mode=mode, layer=layer, data_root=data_root, profile=profile,
            max_train=max_train, max_test=max_test, weight_decay=weight_decay, extract_batch_size=extract_batch_size,
            workers=workers, device=device, segments=segments, frames_per_segment=frames_per_segment,
            probe_epochs=probe_epochs,
            clip={k: v for k, v in (("frames", frames), ("crop", crop), ("resize", resize)) if v},
            log=lambda m: click.echo(m, err=True))
    if with_reference:
        table = B.with_reference(table)
        meta["reference"] = {"columns": ["published_probe_top1", "published_bias"],
                             "source": B.published_bias()["source"].iloc[0],
                             "definition": B.MEASURES[B.IMAGENET_TSN]}
    label = meta["measure"]["label"]
    written = []
    wide = None
    if compare:
        a, b = compare
        ratios = B.ratio_groups(values, a, b, tasks)
        primary = ratios[ratios["group"] == ratios["group"].iloc[0]]
        table = table.merge(primary.drop(columns="group").rename(columns={"value_a": f"value_{a}",
                                                                         "value_b": f"value_{b}"}),
                            on="task", how="left")
        meta["compare"] = {"a": a, "b": b, "ratio": "A / B", "primary": str(ratios["group"].iloc[0]),
                           "groups": list(dict.fromkeys(ratios["group"]))}
        wide = B.ratio_table(table, ratios, a, b, label)
        long = ratios.merge(table[["task", "bias"]], on="task")
        wide_path = out / "ratio_vs_bias.csv"
        atomic_write_text(wide_path, wide.to_csv(index=False, float_format="%.6g"))
        written.append(wide_path)
        written += B.plot_ratio_vs_bias(long, a, b, meta["representation"]["label"], out,
                                        measure=meta["measure"]["name"])
    csv_path, json_path = out / "bias.csv", out / "bias.json"
    atomic_write_text(csv_path, table.to_csv(index=False, float_format="%.6g"))
    payload = {**meta, "rows": json.loads(table.to_json(orient="records"))}
    if wide is not None:
        payload["ratio_vs_bias"] = json.loads(wide.to_json(orient="records"))
    atomic_write_text(json_path, json.dumps(payload, indent=1, default=str))
    written = [csv_path, json_path] + written
    if as_json:
        click.echo(json.dumps(payload, indent=1, default=str))
        return
    from tabulate import tabulate

    click.echo(f"representation bias [{label}] — {meta['measure'].get('description') or ''}")
    shown = [c for c in ("task", "num_classes", "probe_top1", "bias", "published_probe_top1", "published_bias",
                         "transfer_ratio") if c in table]
    click.echo(tabulate(table[shown], headers="keys", tablefmt="github", showindex=False, floatfmt=".3f"))
    if with_reference:
        same = meta.get("comparable_with_published")
        click.echo("published_*: SynAPT Table 4.2 (imagenet-tsn, ImageNet TSN ResNet-18)"
                   + ("" if same else "; NOT the same measurement as this table's (another measure, "
                                       "representation, profile or overridden values)"))
    if wide is not None:
        click.echo("\ntransfer ratio vs. bias (SynAPT Table 4.3 layout)")
        click.echo(tabulate(wide, headers="keys", tablefmt="github", showindex=False, floatfmt=".2f"))
    for p in written:
        click.echo(str(p))


def _comparison_values(result_paths, with_reference: bool) -> pd.DataFrame:
    """(method, task, value, group) rows: the user's results grouped by protocol, then the published ones."""
    from .. import bias as B

    sources = []
    if result_paths:
        from ..report import load_results

        user = load_results(result_paths)
        sources.append(user[["method", "task", "value"]].assign(group=user["protocol_name"].fillna("results")))
    if with_reference:
        for kind, name in (("ft", "published FT"), ("lp", "published LP")):
            sources.append(B.published_transfer(kind)[["method", "task", "value"]].assign(group=name))
    if not sources:
        raise SevereError("--compare needs --results and/or --with-reference")
    return pd.concat(sources, ignore_index=True)
