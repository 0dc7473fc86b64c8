"""Something-Something-v2 official JSON files.

Roles: ``labels`` (``something-something-v2-labels.json``: ``{"<template without brackets>": "<index>"}``,
values are strings), ``train`` / ``test`` (``-train.json`` / ``-validation.json``: a list of
``{"id", "label", "template", "placeholders"}``). Label = labels[template with ``[`` and ``]`` removed].
Video = ``<id>.webm`` under ``video_dir`` (``video_ext`` overrides the extension). JSON has no useful line
numbers, so errors name the list entry (``entry #N``).
"""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import AnnotationError
from ..sample import Sample
from .base import Annotations, existing, read_text, role_path, video_path


def required(dataset: dict, split: str) -> list[str]:
    return [role_path(dataset, "labels"), role_path(dataset, split)]


def load_json(path: Path):
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise AnnotationError(path, exc.lineno, f"not valid JSON: {exc.msg}") from None


def template_class(template: str) -> str:
    return template.replace("[", "").replace("]", "")


def read_labels(path: Path) -> dict[str, int]:
    raw = load_json(path)
    if not isinstance(raw, dict):
        raise AnnotationError(path, None, "expected an object mapping class name -> index")
    out = {}
    for name, value in raw.items():
        try:
            out[name] = int(value)
        except (TypeError, ValueError):
            raise AnnotationError(path, None, f"class {name!r}: index {value!r} is not an integer") from None
    if sorted(out.values()) != list(range(len(out))):
        raise AnnotationError(path, None, "class indices must be 0..N-1, each once")
    return out


def read(root: Path, dataset: dict, split: str) -> Annotations:
    labels_file = existing(root, role_path(dataset, "labels"), dataset)
    list_file = existing(root, role_path(dataset, split), dataset)
    labels = read_labels(labels_file)
    names = [name for name, _ in sorted(labels.items(), key=lambda kv: kv[1])]
    entries = load_json(list_file)
    if not isinstance(entries, list):
        raise AnnotationError(list_file, None, "expected a list of {id, label, template, placeholders}")
    samples = []
    for n, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or "id" not in entry or "template" not in entry:
            raise AnnotationError(list_file, None, f"entry #{n} has no 'id' / 'template': {str(entry)[:80]}")
        name = template_class(str(entry["template"]))
        if name not in labels:
            raise AnnotationError(
                list_file, None, f"entry #{n} (id {entry['id']}): template class {name!r} is not in {labels_file.name}"
            )
        vid = str(entry["id"]).strip()
        meta = {"template": entry["template"]}
        if "placeholders" in entry:
            meta["placeholders"] = list(entry["placeholders"])
        samples.append(Sample(video=video_path(dataset, vid, ".webm", where=(list_file, None, f"entry #{n}")), label=labels[name], id=vid, meta=meta))
    return Annotations(samples=samples, class_names=names, files=[labels_file, list_file])
