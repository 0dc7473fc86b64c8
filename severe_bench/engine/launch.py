"""``severe eval --launcher slurm``: one submitit job per (checkpoint, task, seed).

Each job runs the ordinary ``evaluate`` for its task and seed, so it writes the same result folder as a local
run. A job with several GPUs runs one process per GPU (``tasks_per_node``) joined as DDP ranks through
submitit's ``TorchDistributedEnvironment``. On preemption or timeout submitit calls ``checkpoint``, which
requeues the same job: the run then resumes from the training state saved after its last finished pass.
``--launcher local`` uses submitit's local executor (subprocesses on this machine) — the same code path,
handy to try a job array without a cluster.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ..errors import ConfigError

LAUNCHERS = ("none", "slurm", "local")


class EvalJob:
    """A picklable (task, seed) evaluation that submitit can run, checkpoint and requeue."""

    def __init__(self, task_id: str, seed: int, opts: dict):
        self.task_id, self.seed, self.opts = task_id, int(seed), dict(opts)

    def __call__(self) -> list[str]:
        import submitit

        from .runner import EvalOptions, evaluate

        env = submitit.JobEnvironment()
        if env.num_tasks > 1:  # one process per GPU: DDP ranks
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        opts = EvalOptions(**{**self.opts, "out_dir": Path(self.opts["out_dir"]), "seeds": (self.seed,)})
        if opts.workers is None:  # SLURM already gives each task its own cores (--cpus-per-gpu): use them all
            opts.workers = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
        return [str(p) for p in evaluate([self.task_id], opts, log=lambda m: print(m, flush=True))]

    def checkpoint(self, *args, **kwargs):
        """Preempted or out of time: requeue this job; ``evaluate`` resumes from the saved training state."""
        import submitit

        # never --restart again: the requeued job must keep the state its first attempt saved
        return submitit.helpers.DelayedSubmission(EvalJob(self.task_id, self.seed, {**self.opts, "restart": False}))


def submit(task_ids: list[str], opts, launcher: str, partition: str | None = None, gpus: int = 1,
           time_min: int = 720, cpus_per_gpu: int = 8, folder: Path | None = None) -> list:
    """Submit one job per (task, seed) of ``opts`` (a ``runner.EvalOptions``); returns the submitit jobs."""
    import submitit

    if launcher not in ("slurm", "local"):
        raise ConfigError(f"--launcher must be one of {', '.join(LAUNCHERS)}, got {launcher!r}")
    if launcher == "slurm" and not partition:
        raise ConfigError("--launcher slurm needs --partition")
    if gpus < 0 or time_min < 1:
        raise ConfigError("--gpus must be >= 0 and --time >= 1 (minutes)")
    from .. import registry

    for task_id in task_ids:  # unknown tasks fail here, not in a queued job
        registry.get_task(task_id, profile=opts.profile)
    folder = Path(folder or Path(opts.out_dir) / "_submitit")
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster=launcher)
    params = {"timeout_min": int(time_min), "nodes": 1, "tasks_per_node": max(1, gpus),
              "cpus_per_task": int(cpus_per_gpu), "name": "severe-eval"}
    if launcher == "slurm":
        params.update(slurm_partition=partition, gpus_per_node=gpus, slurm_signal_delay_s=120)
    elif gpus:
        params.update(gpus_per_node=gpus)
    executor.update_parameters(**params)
    base = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(opts).items()}
    jobs = []
    with executor.batch():
        for task_id in task_ids:
            for seed in opts.seeds:
                jobs.append(executor.submit(EvalJob(task_id, seed, base)))
    return jobs
