"""Task registry: one YAML per task under ``tasks/`` (config as data, in the spirit of lm-eval-harness).

A task file may ``include:`` a shared ``_*.yaml`` base (e.g. the R(2+1)D fine-tune protocol); its own keys
override the base's (deep merge). Profiles (``_profile_<name>.yaml``) are applied on top for quick runs.
The protocol hash is computed from the resolved values that decide the numbers (dataset files and filter,
train-subset rule, protocol, metric, profile), so changing any protocol value changes the hash.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, MissingFileError, SevereError, UnknownTaskError
from .resources import resource_path

SUITES_FILE = "_suites.yaml"
# Descriptive keys that never change a number: excluded from the protocol hash.
_UNHASHED_TOP = {"name", "description", "factor", "citation", "aliases", "include",
                 "bias"}  # bias: values of `severe bias`, hashed into its own bias_hash
_UNHASHED_DATASET = {"source", "name", "description", "official"}


def tasks_dir() -> Path:
    if os.environ.get("SEVERE_TASKS_DIR"):
        return Path(os.environ["SEVERE_TASKS_DIR"])
    return resource_path("tasks")


def _load_yaml(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def deep_merge(base: dict, override: dict) -> dict:
    """``override`` on top of ``base``; nested mappings merge, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _resolve_includes(path: Path, seen: tuple = ()) -> dict:
    if path in seen:
        raise ConfigError(f"{path}: include cycle via {' -> '.join(str(p) for p in seen)}")
    data = _load_yaml(path)
    includes = data.pop("include", None) or []
    if isinstance(includes, str):
        includes = [includes]
    merged: dict = {}
    for inc in includes:
        inc_path = path.parent / inc
        if not inc_path.exists():
            raise ConfigError(f"{path}: include {inc!r} not found ({inc_path})")
        merged = deep_merge(merged, _resolve_includes(inc_path, seen + (path,)))
    return deep_merge(merged, data)


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def protocol_hash_of(values: dict) -> str:
    """The protocol hash of resolved protocol values (what a result records under ``protocol.values``)."""
    return hashlib.sha256(_canonical(values).encode()).hexdigest()[:16]


@dataclass
class Task:
    id: str
    config: dict  # fully resolved (includes and profile applied)
    profile: str = "full"
    path: Path | None = None
    _hash: str = field(default="", repr=False)

    # Convenience views on the resolved config.
    @property
    def name(self) -> str:
        return self.config.get("name", self.id)

    @property
    def factor(self) -> str:
        return self.config.get("factor", "extra")

    @property
    def dataset(self) -> dict:
        return self.config["dataset"]

    @property
    def protocol(self) -> dict:
        return self.config["protocol"]

    @property
    def metric(self) -> dict:
        return self.config["metric"]

    @property
    def train_subset(self) -> dict | None:
        return self.config.get("train_subset")

    @property
    def num_classes(self) -> int | None:
        return self.dataset.get("num_classes")

    @property
    def comparable(self) -> bool:
        """Only the full protocol gives numbers that may go next to published ones."""
        return self.profile == "full"

    def hashed_values(self) -> dict:
        values = {k: v for k, v in self.config.items() if k not in _UNHASHED_TOP}
        values["dataset"] = {k: v for k, v in self.dataset.items() if k not in _UNHASHED_DATASET}
        values["profile"] = self.profile
        return values

    @property
    def protocol_hash(self) -> str:
        if not self._hash:
            self._hash = protocol_hash_of(self.hashed_values())
        return self._hash


def list_task_ids() -> list[str]:
    return sorted(p.stem for p in tasks_dir().glob("*.yaml") if not p.name.startswith("_"))


def _validate(task_id: str, cfg: dict, path: Path) -> None:
    for key in ("dataset", "protocol", "metric"):
        if key not in cfg:
            raise ConfigError(f"{path}: task {task_id!r} has no {key!r} section")
    for key in ("format", "files"):
        if key not in cfg["dataset"]:
            raise ConfigError(f"{path}: task {task_id!r} dataset has no {key!r}")
    if "name" not in cfg["metric"] or "higher_is_better" not in cfg["metric"]:
        raise ConfigError(f"{path}: task {task_id!r} metric needs 'name' and 'higher_is_better'")


def get_task(task_id: str, profile: str = "full", overrides: dict | None = None, track: str | None = None) -> Task:
    """Resolve a task by id.

    ``track="vit"`` swaps the CNN fine-tune protocol for the ViT one (``_finetune_vit.yaml`` plus the task's
    ``protocol_vit`` overrides); ``profile`` applies ``_profile_<name>.yaml``; ``overrides`` are merged last.
    """
    path = tasks_dir() / f"{task_id}.yaml"
    if task_id.startswith("_") or not path.exists():
        valid = ", ".join(list_task_ids())
        raise UnknownTaskError(f"unknown task {task_id!r}; valid task ids: {valid}")
    cfg = _resolve_includes(path)
    vit_overrides = cfg.pop("protocol_vit", None) or {}
    if track == "vit" and cfg.get("track") != "vit":
        vit_bases = {"finetune": "_finetune_vit.yaml", "linear": "_linear_vit.yaml",
                     "linear_frozen_bn": "_linear_vit.yaml"}  # a ViT has no BatchNorm: one probe
        if cfg["protocol"].get("name") not in vit_bases:
            raise SevereError(
                f"task {task_id!r} uses protocol {cfg['protocol'].get('name')!r}, which has no ViT track; "
                "use an R(2+1)D-18 checkpoint for it"
            )
        base = _resolve_includes(tasks_dir() / vit_bases[cfg["protocol"]["name"]])
        cfg["track"] = "vit"
        cfg["protocol"] = deep_merge(base["protocol"], vit_overrides)
    if profile != "full":
        prof_path = tasks_dir() / f"_profile_{profile}.yaml"
        if not prof_path.exists():
            known = sorted(p.stem[len("_profile_"):] for p in tasks_dir().glob("_profile_*.yaml"))
            raise ConfigError(f"unknown profile {profile!r}; known profiles: full, {', '.join(known)}")
        prof = _load_yaml(prof_path)
        # A profile may carry per-protocol sections (keyed by protocol name) and a common part.
        common = {k: v for k, v in prof.items() if k != "by_protocol"}
        cfg = deep_merge(cfg, common)
        per = (prof.get("by_protocol") or {}).get(cfg["protocol"].get("name"), {})
        cfg["protocol"] = deep_merge(cfg["protocol"], per)
    if overrides:
        cfg = deep_merge(cfg, overrides)
    cfg.setdefault("id", task_id)
    if cfg["id"] != task_id:
        raise ConfigError(f"{path}: id {cfg['id']!r} does not match the file name")
    _validate(task_id, cfg, path)
    return Task(id=task_id, config=cfg, profile=profile, path=path)


def load_suites() -> dict[str, list[str]]:
    data = _load_yaml(tasks_dir() / SUITES_FILE)
    return {name: list(ids) for name, ids in data.get("suites", {}).items()}


def suite_tasks(name: str) -> list[str]:
    suites = load_suites()
    if name not in suites:
        raise SevereError(f"unknown suite {name!r}; known suites: {', '.join(sorted(suites))}")
    return suites[name]


# --- data roots ------------------------------------------------------------------------------------

def datasets_config_path() -> Path:
    if os.environ.get("SEVERE_DATASETS"):
        return Path(os.environ["SEVERE_DATASETS"])
    base = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    return base / "severe-bench" / "datasets.yaml"


@dataclass(frozen=True)
class DataRoot:
    """The folder a task's dataset is read from, and why that one (printed by ``data check`` and ``eval``)."""

    path: Path
    how: str


def _annotation_files(task: Task) -> list[str]:
    from .data.annotations import required_files

    needed: list[str] = []
    for split in ("train", "test"):
        try:
            needed += [r for r in required_files(task.dataset["format"], task.dataset, split) if r not in needed]
        except SevereError:
            pass  # a task-file problem; reported when the split is read
    return needed


def _layout_score(task: Task, folder: Path) -> tuple[int, bool]:
    """(how many of the task's annotation files are in ``folder``, whether its video folder is there)."""
    found = sum((folder / rel).exists() for rel in _annotation_files(task))
    video_dir = str(task.dataset.get("video_dir") or "").strip("/")
    return found, bool(video_dir) and (folder / video_dir).is_dir()


def choose_data_root(task: Task, given: Path) -> DataRoot:
    """``--data-root DIR``: DIR itself or ``DIR/<dataset name>``, whichever holds the task's annotation files.

    A sub-folder named like the dataset is not enough: HMDB51's own video folder is ``hmdb51/``, so with the
    videos in place ``DIR/hmdb51`` exists but holds none of the annotation files. Ties (neither holds them)
    go to the folder holding the task's video folder, then to DIR as given.
    """
    ds_name = task.dataset.get("name", task.id)
    sub = given / ds_name
    if not sub.is_dir():
        return DataRoot(given, "as given")
    here, there = _layout_score(task, given), _layout_score(task, sub)
    total = len(_annotation_files(task))
    if there > here:
        why = ("it holds the task's annotation files" if there[0] > here[0]
               else f"it holds the video folder {task.dataset.get('video_dir')}/; no annotation files in either")
        return DataRoot(sub, f"{ds_name}/ inside the given folder: {why}")
    if here[0]:
        return DataRoot(given, f"as given: it holds {here[0]} of the task's {total} annotation files")
    return DataRoot(given, f"as given (neither it nor {ds_name}/ inside it holds the task's annotation files)")


def locate_data_root(task: Task, data_root: str | Path | None = None) -> DataRoot:
    """Where this task's dataset lives, and why there.

    Order: ``--data-root`` (see ``choose_data_root``); the datasets config file
    (``~/.config/severe-bench/datasets.yaml``: ``<dataset name>: /path``, used as written); for the built-in
    synthetic datasets, the generated suite in the cache (created on first use).
    """
    ds_name = task.dataset.get("name", task.id)
    if data_root is not None:
        root = Path(data_root).expanduser()
        if not root.exists():
            raise MissingFileError(f"data root {root} does not exist")
        if not root.is_dir():
            raise MissingFileError(f"data root {root} is not a folder")
        return choose_data_root(task, root)
    cfg_path = datasets_config_path()
    if cfg_path.exists():
        roots = _load_yaml(cfg_path)
        if ds_name in roots:
            root = Path(str(roots[ds_name])).expanduser()
            if not root.exists():
                raise MissingFileError(f"{cfg_path}: root for {ds_name!r} ({root}) does not exist")
            return DataRoot(root, f"from {cfg_path} ({ds_name})")
    if task.dataset.get("builtin") == "synth":
        from .synth import ensure_suite

        return DataRoot(ensure_suite() / ds_name, "built-in synthetic suite in the cache")
    raise MissingFileError(
        f"no data root for dataset {ds_name!r} (task {task.id}): pass --data-root DIR or add "
        f"'{ds_name}: /path/to/{ds_name}' to {cfg_path}. Official files: {task.dataset.get('source', 'see the task file')}"
    )


def resolve_data_root(task: Task, data_root: str | Path | None = None) -> Path:
    """The folder of ``locate_data_root``."""
    return locate_data_root(task, data_root).path


# --- samples ---------------------------------------------------------------------------------------

def apply_label_filter(samples: list, label_filter: dict | None) -> list:
    """Keep samples whose label lies in ``[min, max]`` and re-index by ``offset`` (FX-S1: 6..16, -6)."""
    if not label_filter:
        return samples
    lo, hi = label_filter["min"], label_filter["max"]
    offset = label_filter.get("offset", -lo)
    from .data.sample import Sample

    return [
        Sample(video=s.video, label=s.label + offset, id=s.id, meta=s.meta)
        for s in samples
        if lo <= s.label <= hi
    ]


def read_split_annotations(task: Task, root: str | Path, split: str):
    """The task's ``Annotations`` for ``split`` (``train`` or ``test``), label filter applied to the samples."""
    from .data.annotations import read_annotations

    if split not in ("train", "test"):
        raise SevereError(f"split must be 'train' or 'test', got {split!r}")
    from .data.duplicates import drop_duplicates
    from .errors import AnnotationError

    ann = read_annotations(task.dataset["format"], Path(root), task.dataset, split)
    listed = (task.dataset.get("files") or {}).get(split)
    where = Path(root) / str(listed) if listed else (ann.files[0] if ann.files else Path(root))
    ann = drop_duplicates(ann, split, where)
    lf = task.dataset.get("label_filter")
    ann = replace(ann, samples=apply_label_filter(ann.samples, lf))
    if not ann.samples:  # fail before any training (and in `data check`), not after it
        raise AnnotationError(where, None, f"the {split} list of task {task.id} has no samples"
                              f"{' in the label range ' + str(lf['min']) + '..' + str(lf['max']) if lf else ''}")
    return ann


def read_split(task: Task, root: str | Path, split: str):
    """The task's samples for ``split`` (``train`` or ``test``), label filter applied."""
    return read_split_annotations(task, root, split).samples


def class_names(task: Task, root: str | Path) -> list[str] | None:
    """Class names after the label filter (None when the format has none)."""
    from .data.annotations import read_annotations

    ann = read_annotations(task.dataset["format"], Path(root), task.dataset, "train")
    names = ann.class_names
    lf = task.dataset.get("label_filter")
    if names and lf:
        names = names[lf["min"]: lf["max"] + 1]
    return names


def train_lists(task: Task, root: str | Path) -> tuple[list, list]:
    """(the full training list, the list the task trains on): the second is the few-sample subset when the
    task has a ``train_subset`` rule (PROTOCOL.md §3), else the full list itself."""
    from .data.subset import apply_train_subset

    full = read_split(task, root, "train")
    return full, apply_train_subset(full, task.train_subset, Path(root))
