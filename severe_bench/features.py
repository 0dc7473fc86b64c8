"""Pooled backbone features of a task's videos, cached as .npy (for CKA and representation bias).

One centre clip per video, sampled and resized as the task's test protocol does (``protocol.test``, else
``protocol.input``), normalised with the checkpoint's own convention where it has one. ``mode="static"`` feeds
the clip's middle frame repeated over time (the checkpoint-static bias measure of PROTOCOL.md §7).
``mode="tsn"`` samples TSN-style instead (Wang et al., ECCV 2016, test mode): the whole video is cut into
``segments`` equal segments and ``frames_per_segment`` consecutive frames are taken from the middle of each; a 2D
image backbone sees every frame and averages its features over them (the ImageNet representation of SynAPT §4.2).

Features go straight into memory-mapped ``.npy`` files (rows in sample order, float32), written batch by batch, so
memory does not grow with the number of videos. A video that cannot be decoded gets a row of NaN and is listed in
``meta.json``; consumers drop such rows. A finished cache (``meta.json`` present, same key) is reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .atomic import atomic_write_text
from .errors import SevereError

MODES = ("video", "static", "tsn")
FEATURES_VERSION = 1  # bump when the extraction changes, so old caches are not reused


@dataclass
class ClipSpec:
    """How one clip is made: frames and their spacing (fps or stride), resize and crop, normalisation."""

    frames: int
    resize: int
    crop: int
    fps: float | None = None
    stride: int | None = None
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    channel_order: str = "RGB"
    segments: int | None = None  # TSN sampling (mode "tsn"): segments per video, frames taken from each
    frames_per_segment: int = 1
    segment_sampling: bool = False  # VideoMAE's SSv2 test sampling: one frame per segment of the whole video

    def sampling(self) -> dict:
        if self.segment_sampling:
            return {"segments": True}
        return {"stride": int(self.stride)} if self.stride else {"target_fps": float(self.fps or 16)}

    def as_dict(self) -> dict:
        out = {"frames": self.frames, "resize": self.resize, "crop": self.crop, "fps": self.fps,
               "stride": self.stride, "mean": list(self.mean) if self.mean is not None else None,
               "std": list(self.std) if self.std is not None else None, "channel_order": self.channel_order}
        if self.segments:  # only TSN specs carry these (older cache keys stay valid)
            out.update(segments=self.segments, frames_per_segment=self.frames_per_segment)
        if self.segment_sampling:  # likewise only segment-sampled specs
            out["segment_sampling"] = True
        return out


def tsn_spec(segments: int, frames_per_segment: int, resize: int, crop: int, normalisation: dict) -> ClipSpec:
    """A TSN clip: ``segments`` x ``frames_per_segment`` frames over the whole video, short side ``resize``,
    centre crop ``crop``, the representation's normalisation."""
    segments, per = int(segments), int(frames_per_segment)
    if segments < 1 or per < 1:
        raise SevereError(f"TSN sampling needs segments >= 1 and frames_per_segment >= 1 (got {segments}, {per})")
    return ClipSpec(frames=segments * per, resize=int(resize), crop=int(crop), mean=normalisation.get("mean"),
                    std=normalisation.get("std"), channel_order=normalisation.get("channel_order") or "RGB",
                    segments=segments, frames_per_segment=per)


def tsn_indices(num_frames: int, segments: int, frames_per_segment: int = 1) -> np.ndarray:
    """Frame indices of TSN's test-time sampling, (segments * frames_per_segment,): the video is cut into
    ``segments`` equal parts and a run of ``frames_per_segment`` frames is taken from the middle of each (frames
    repeat when the video is shorter than that)."""
    if num_frames < 1:
        raise ValueError("the video has no frames")
    room = max(num_frames - frames_per_segment + 1, 1)  # possible starts of a run
    step = room / segments
    starts = (np.arange(segments) * step + step / 2).astype(np.int64)
    idx = starts[:, None] + np.arange(frames_per_segment)[None, :]
    return np.clip(idx, 0, num_frames - 1).reshape(-1)


def clip_spec_for(task, checkpoint_info: dict, frames: int | None = None, crop: int | None = None,
                  resize: int | None = None) -> ClipSpec:
    """The task's test-time clip (centre clip), with the checkpoint's input convention (as ``severe eval``)."""
    from .engine.runner import effective_normalisation, for_checkpoint

    proto = for_checkpoint(task, checkpoint_info)[0].protocol  # the checkpoint's scoped overrides, as in eval
    test, inp = dict(proto.get("test") or {}), dict(proto.get("input") or {})
    pick = lambda key: test.get(key, inp.get(key))  # noqa: E731
    n_frames = frames or pick("frames")
    c = crop or pick("crop")
    if not n_frames or not c:
        raise SevereError(f"task {task.id}: its protocol names no clip length/crop; pass --frames and --crop")
    task_crop, task_resize = pick("crop"), test.get("resize")
    if resize:
        r = resize
    elif task_resize and task_crop:  # a changed crop keeps the task's field of view (resize/crop ratio)
        r = int(round(int(task_resize) * int(c) / int(task_crop)))
    else:
        r = int(round(int(c) * 128 / 112))  # the CNN protocol's ratio
    norm = effective_normalisation(proto, checkpoint_info)
    return ClipSpec(frames=int(n_frames), resize=int(r), crop=int(c), fps=pick("fps"), stride=pick("stride"),
                    mean=norm.get("mean"), std=norm.get("std"), channel_order=norm.get("channel_order") or "RGB",
                    segment_sampling=pick("sampling") == "segments")


def task_for(task_id: str, profile: str, architecture: str | None):
    """The task as ``severe eval`` resolves it for this architecture (ViT checkpoints get the ViT track)."""
    from .engine.runner import track_of
    from .registry import get_task

    return get_task(task_id, profile=profile, track=track_of(architecture or "r2plus1d_18"))


class CentreClips(Dataset):
    """One centre clip per video as a model input (C, T, H, W); ``static`` repeats the middle frame."""

    def __init__(self, samples, root: Path, spec: ClipSpec, mode: str = "video"):
        from .video.transforms import test_transform

        if mode not in MODES:
            raise SevereError(f"unknown feature mode {mode!r}; choose {', '.join(MODES)}")
        if (mode == "tsn") != bool(spec.segments):
            raise SevereError("TSN features need a TSN clip spec (tsn_spec) and a TSN spec needs mode 'tsn'")
        self.samples, self.root, self.spec, self.mode = list(samples), Path(root), spec, mode
        self.transform = test_transform(resize_short=spec.resize, crop=spec.crop, mean=spec.mean, std=spec.std,
                                        channel_order=spec.channel_order)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        from .data.clips import decode_test_clips
        from .video.reader import VideoDecodeError

        s = self.samples[i]
        try:
            if self.mode == "tsn":
                frames = decode_tsn_frames(self.root / s.video, self.spec.segments, self.spec.frames_per_segment)
            else:
                frames = decode_test_clips(self.root / s.video, self.spec.frames, 1, self.spec.sampling(),
                                           static=self.mode == "static")[0]  # (T, H, W, 3)
        except (VideoDecodeError, ValueError) as exc:
            return {"ok": False, "index": i, "video": s.video, "reason": str(exc)}
        clip = self.transform(frames)
        return {"ok": True, "index": i, "clip": clip}


def decode_tsn_frames(path: Path, segments: int, frames_per_segment: int = 1) -> np.ndarray:
    """The TSN frames of one video, (segments * frames_per_segment, H, W, 3) uint8."""
    from .video.reader import open_video

    with open_video(path) as video:
        return video.get_frames(tsn_indices(video.num_frames, segments, frames_per_segment))


def _collate(items):
    ok = [it for it in items if it["ok"]]
    return {"index": [it["index"] for it in ok], "clip": torch.stack([it["clip"] for it in ok]) if ok else None,
            "failed": [(it["index"], it["video"], it["reason"]) for it in items if not it["ok"]]}


@dataclass
class FeatureSet:
    """Cached features: ``array(layer)`` is an (n, d) float32 memmap, rows in ``ids`` order."""

    directory: Path
    layers: list[str]
    ids: list[str]
    failed: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def path(self, layer: str) -> Path:
        return self.directory / f"{_safe(layer)}.npy"

    def array(self, layer: str) -> np.ndarray:
        return np.load(self.path(layer), mmap_mode="r")

    def valid_rows(self) -> np.ndarray:
        bad = {f["index"] for f in self.failed}
        return np.array([i for i in range(len(self.ids)) if i not in bad], dtype=np.int64)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def weights_fingerprint(module: torch.nn.Module) -> str:
    """sha256 of a module's state (names, shapes, values): identifies weights that have no file (scratch)."""
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{tuple(tensor.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return "weights:" + h.hexdigest()


def cache_key(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _provenance(info: dict, device: torch.device) -> dict:
    """Where a feature cache came from: the weights (file, hash, source), the code and the device."""
    from .provenance import code_version, device_info, utc_now

    return {"checkpoint": {"name": info.get("name"), "sha256": info.get("sha256"), "source": info.get("source"),
                           "architecture": info.get("architecture"), "layout": info.get("layout")},
            "code_version": code_version(), "device": device_info(device), "created_at": utc_now()}


def _load_cached(directory: Path, key: str) -> FeatureSet | None:
    meta_path = directory / "meta.json"
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("key") != key or not all((directory / f"{_safe(l)}.npy").exists() for l in meta["layers"]):
        return None
    return FeatureSet(directory, meta["layers"], meta["ids"], meta.get("failed", []), meta)


@torch.no_grad()
def extract_features(loaded, task, root: Path, samples, layers: Sequence[str] | None, cache_root: Path, *,
                     split: str, mode: str = "video", spec: ClipSpec | None = None, batch_size: int = 8,
                     workers: int = 0, device: str | torch.device = "cpu", label: str | None = None,
                     log: Callable[[str], None] = lambda m: None) -> FeatureSet:
    """Features of ``samples`` at ``layers`` (default: all the backbone names) of a loaded checkpoint."""
    backbone = loaded.backbone
    all_layers = list(backbone.layer_names)
    layers = list(layers) if layers else all_layers
    unknown = [l for l in layers if l not in all_layers]
    if unknown:
        raise SevereError(f"unknown layer(s) {unknown}; this backbone has: {', '.join(all_layers)}")
    if not samples:
        raise SevereError(f"task {task.id}: no {split} videos to extract features from")
    spec = spec or clip_spec_for(task, loaded.info)
    info = loaded.info
    ids = [s.id or s.video for s in samples]
    payload = {"version": FEATURES_VERSION, "checkpoint": info.get("sha256") or weights_fingerprint(backbone),
               "architecture": info.get("architecture"), "task": task.id, "split": split, "mode": mode,
               "clip": spec.as_dict(), "layers": layers,
               "ids": hashlib.sha256("\n".join(f"{s.video}\t{s.id}" for s in samples).encode()).hexdigest()}
    key = cache_key(payload)
    name = f"{task.id}_{split}_{_safe(label or info.get('name') or 'checkpoint')}_{mode}_{key}"
    directory = Path(cache_root) / name
    cached = _load_cached(directory, key)
    if cached is not None:
        log(f"features: reusing {directory}")
        return cached

    directory.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    backbone = backbone.to(device).eval()
    data = CentreClips(samples, root, spec, mode)
    loader = DataLoader(data, batch_size=batch_size, num_workers=workers, collate_fn=_collate)
    arrays: dict[str, np.memmap] = {}
    failed: list[dict] = []
    done = 0
    for batch in loader:
        for i, video, reason in batch["failed"]:
            failed.append({"index": i, "video": video, "reason": reason})
        if batch["clip"] is not None:
            out = backbone.forward_layers(batch["clip"].to(device), layers)
            for layer in layers:
                feats = out[layer].detach().float().reshape(len(batch["index"]), -1).cpu().numpy()
                if layer not in arrays:
                    arrays[layer] = np.lib.format.open_memmap(directory / f"{_safe(layer)}.npy.partial", mode="w+",
                                                              dtype=np.float32, shape=(len(samples), feats.shape[1]))
                arrays[layer][batch["index"]] = feats
        done += len(batch["index"]) + len(batch["failed"])
        log(f"features {task.id}/{split} ({mode}): {done}/{len(samples)}")
    if not arrays:
        raise SevereError(f"task {task.id}: none of the {len(samples)} {split} videos could be decoded "
                          f"(first: {failed[0]['video']}: {failed[0]['reason']})")
    for arr in arrays.values():
        for f in failed:
            arr[f["index"]] = np.nan
        arr.flush()
    finished = list(arrays)
    arrays.clear()  # close the memmaps before the files take their final names
    for layer in finished:
        os.replace(directory / f"{_safe(layer)}.npy.partial", directory / f"{_safe(layer)}.npy")
    meta = {"key": key, **payload, "ids": ids, "failed": failed, "num_videos": len(samples),
            "checkpoint_name": info.get("name"), "checkpoint_path": info.get("path"), "label": label,
            "provenance": _provenance(info, device)}
    atomic_write_text(directory / "meta.json", json.dumps(meta, indent=1, default=str))
    return FeatureSet(directory, layers, ids, failed, meta)
