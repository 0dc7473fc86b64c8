"""``severe eval``: run a checkpoint through the protocol of each task of a suite."""

from __future__ import annotations

from pathlib import Path

import click

from .options import data_root_option, shell_command


@click.command("eval")
@click.option("--checkpoint", "-c", required=True,
              help="Registry name, local path, URL, Hugging Face model folder or Hub id (owner/name) of the "
                   "checkpoint; 'scratch' for random initialisation.")
@click.option("--suite", default=None, help="Named task list (see `severe tasks list`). Default: synth.")
@click.option("--task", "-t", "task_ids", multiple=True, help="Task id (repeatable); overrides --suite.")
@data_root_option()
@click.option("--profile", default="full", show_default=True,
              help="'full' (the protocol), 'smoke' (CPU-sized check) or 'fast_decode' (frames resized while "
                   "decoding); the last two are marked not comparable.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder for results.")
@click.option("--seed", "seeds", multiple=True, type=int, help="Seed (repeatable). Default: 0.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--workers", default=None, type=click.IntRange(min=0),
              help="Decoding processes per training process (0: decode in the main process). "
                   "Default: the cores available to each process.")
@click.option("--precision", default="auto", show_default=True, type=click.Choice(["auto", "bf16", "fp32"]),
              help="auto: bf16 autocast on CUDA, fp32 elsewhere. Recorded in the result; not a protocol value.")
@click.option("--compile", "compile_model", is_flag=True, help="torch.compile the model (CUDA; first steps are slow).")
@click.option("--launcher", default="none", show_default=True, type=click.Choice(["none", "slurm", "local"]),
              help="none: run here. slurm: submit one submitit job per (task, seed) and return; a preempted or "
                   "timed-out job is requeued and resumes. local: the same jobs through submitit's local executor.")
@click.option("--partition", default=None, help="SLURM partition (--launcher slurm).")
@click.option("--gpus", default=1, show_default=True, type=click.IntRange(min=0),
              help="GPUs per job (--launcher); more than one runs the job's ranks as DDP.")
@click.option("--time", "time_min", default=720, show_default=True, type=click.IntRange(min=1),
              help="Time limit per job in minutes (--launcher).")
@click.option("--cpus-per-gpu", default=8, show_default=True, type=click.IntRange(min=1),
              help="CPU cores per job process (--launcher); the decoding workers default to them.")
@click.option("--label", default=None, help="Method name in tables (default: checkpoint name).")
@click.option("--arch", default=None, help="Architecture when the checkpoint file does not tell (e.g. r2plus1d_18).")
@click.option("--allow-partial", is_flag=True, help="Evaluate even if backbone weights are missing (recorded).")
@click.option("--trust-checkpoint", is_flag=True, help="Unpickle the checkpoint fully (only for files you trust).")
@click.option("--restart", is_flag=True, help="Discard unfinished or finished runs in --out and start again.")
@click.option("--refresh", is_flag=True,
              help="Download a registry or URL checkpoint again even when a copy is cached.")
def eval_cmd(checkpoint, suite, task_ids, data_root, profile, out_dir, seeds, device, workers, precision,
             compile_model, launcher, partition, gpus, time_min, cpus_per_gpu, label, arch, allow_partial,
             trust_checkpoint, restart, refresh):
    """Fine-tune/evaluate CHECKPOINT on each task and write one result JSON per task and seed.

    \b
    Examples:
      severe eval --checkpoint scratch --suite synth --profile smoke --out runs/quick
      severe eval --checkpoint ctp --suite severe --data-root /data --out runs/ctp --seed 0 --seed 1 --seed 2
    """
    from ..engine.runner import EvalOptions, evaluate
    from ..registry import suite_tasks

    if task_ids and suite:
        raise click.UsageError("give --suite or --task, not both")
    ids = list(task_ids) if task_ids else suite_tasks(suite or "synth")
    opts = EvalOptions(checkpoint=checkpoint, out_dir=Path(out_dir), data_root=data_root, profile=profile,
                       seeds=tuple(seeds) or (0,), device=device, workers=workers, label=label, arch=arch,
                       allow_partial=allow_partial, trust_checkpoint=trust_checkpoint, restart=restart,
                       precision=precision, compile=compile_model, refresh=refresh)
    from ..engine import distributed

    if launcher != "none":
        from ..engine.launch import submit

        jobs = submit(ids, opts, launcher, partition=partition, gpus=gpus, time_min=time_min, cpus_per_gpu=cpus_per_gpu)
        for job in jobs:
            click.echo(f"submitted job {job.job_id}")
        click.echo(f"{len(jobs)} job(s), one per (task, seed); logs in {Path(out_dir) / '_submitit'}; "
                   f"results appear in {out_dir} as they finish")
        return
    try:
        paths = evaluate(ids, opts, log=click.echo)
        speaker = distributed.rank() == 0  # under torchrun only rank 0 reports
    finally:
        distributed.shutdown()
    if not speaker:
        return
    click.echo(f"\n{len(paths)} result file(s) in {out_dir}; make a table with: {shell_command('severe', 'table', out_dir)}")
