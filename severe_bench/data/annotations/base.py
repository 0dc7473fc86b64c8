"""Shared pieces of the annotation readers: the result type and file/line helpers.

Every reader takes ``(root, dataset, split)`` where ``dataset`` is the task YAML ``dataset:`` mapping
(``files`` role -> root-relative path, ``video_dir``, optional ``video_ext``, ``source``) and ``split`` is a
role name in ``files`` (``train`` / ``test``). Paths in returned samples are relative to ``root``.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ...errors import AnnotationError, ConfigError, MissingFileError
from ..sample import Sample

# Extensions a list may carry on a video name; `video_ext` replaces them (e.g. clips re-encoded to .mp4).
VIDEO_EXTS = {".avi", ".mp4", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".flv"}
# Role names an optional class-name file may be given under in `files`.
CLASS_ROLES = ("classes", "class_index")


@dataclass
class Annotations:
    samples: list[Sample]
    class_names: list[str] | None
    files: list[Path]  # the annotation files (or folders) that were read, absolute
    # (id, reason) of entries the official reference code drops (e.g. UCFRep videos with < 2 cycles).
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # ids (or videos) of entries listed more than once and removed (severe_bench/data/duplicates.py)
    duplicates: list[str] = field(default_factory=list)


def files_map(dataset: dict) -> dict:
    files = dataset.get("files")
    if not isinstance(files, dict):
        raise ConfigError(f"dataset {dataset.get('name', '?')!r}: 'files' must map role -> path, got {files!r}")
    return files


def role_path(dataset: dict, role: str) -> str:
    """The root-relative path configured for ``role``; a task file without it is a config error."""
    files = files_map(dataset)
    if role not in files or files[role] in (None, ""):
        roles = ", ".join(sorted(str(k) for k in files))
        raise ConfigError(
            f"dataset {dataset.get('name', '?')!r} has no file for role {role!r} in 'files' (has: {roles})"
        )
    return str(files[role])


def optional_role(dataset: dict, *roles: str) -> str | None:
    files = files_map(dataset)
    for role in roles:
        if files.get(role):
            return str(files[role])
    return None


def split_and_optional_classes(dataset: dict, split: str) -> list[str]:
    """``required`` of a format read by ``read_split_and_classes``: the split's list, then the class-name
    file when the task names one."""
    classes = optional_role(dataset, *CLASS_ROLES)
    return [role_path(dataset, split)] + ([classes] if classes else [])


def missing(path: Path, dataset: dict, what: str = "annotation file") -> MissingFileError:
    source = dataset.get("source") or "the dataset's official download page"
    name = dataset.get("name", "dataset")
    return MissingFileError(f"missing {what} {path} for {name}; get the official files from: {source}")


def existing(root: Path, rel: str, dataset: dict, what: str = "annotation file", folder: bool = False) -> Path:
    """``root / rel`` if it exists (as a file, or a folder with ``folder=True``), else MissingFileError."""
    path = Path(root) / rel
    ok = path.is_dir() if folder else path.is_file()
    if not ok:
        raise missing(path, dataset, "annotation folder" if folder and what == "annotation file" else what)
    return path


def read_text(path: Path) -> str:
    """File text; UTF-8 (a BOM is dropped), falling back to Latin-1 for old lists."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def numbered_lines(path: Path):
    """``(line number, stripped text)`` for the non-blank lines; CRLF / CR / LF all end a line."""
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        text = line.strip()
        if text:
            yield lineno, text


def parse_int(text: str, path: Path, lineno: int | None, what: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise AnnotationError(path, lineno, f"{what} {text!r} is not an integer") from None


def normalise_ext(ext: str | None) -> str | None:
    if not ext:
        return None
    return ext if ext.startswith(".") else "." + ext


def with_ext(name: str, ext: str | None) -> str:
    """``name`` with its video extension replaced by ``ext`` (appended when it has none); ``None`` keeps it."""
    if ext is None:
        return name
    stem, old = posixpath.splitext(name)
    if old.lower() in VIDEO_EXTS:
        name = stem
    return name + ext


def escape_reason(rel: str, base: str = "the dataset root") -> str | None:
    """Why the relative path ``rel`` would leave ``base`` (absolute, a drive, or ``..`` climbing above it), or
    None when it stays inside."""
    rel = rel.replace("\\", "/")
    if ".." not in rel and not rel.startswith("/") and rel[1:2] != ":":
        return None  # the common case, checked cheaply (lists have 10^5 lines)
    if rel.startswith("/") or re.match(r"^[A-Za-z]:", rel):
        return f"video path {rel!r} is absolute; annotation paths must be relative to the dataset root"
    depth = 0
    for part in rel.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return f"video path {rel!r} leaves {base} ('..')"
        elif part not in ("", "."):
            depth += 1
    return None


def confined(rel: str, where: tuple | None, base: str = "the dataset root") -> str:
    """``rel`` if it stays inside ``base``, else AnnotationError at ``where`` = (file, line or None), or
    (file, None, "entry #n") for formats without lines (JSON)."""
    reason = escape_reason(rel, base)
    if reason is not None:
        path, line, *context = where if where else ("annotation list", None)
        raise AnnotationError(path, line, f"{context[0]}: {reason}" if context else reason)
    return rel


def video_path(dataset: dict, name: str, default_ext: str | None = None, where: tuple | None = None) -> str:
    """Root-relative video path: ``video_dir/name`` with the task's ``video_ext`` (or ``default_ext``).

    ``name`` comes from an annotation file (``where`` = (file, line or None) names the place): a name that is
    absolute or climbs out of the root with ``..`` is refused there, so no list can make us read elsewhere.
    """
    name = name.replace("\\", "/")
    confined(name, where, "its video folder")
    ext = normalise_ext(dataset.get("video_ext")) or normalise_ext(default_ext)
    name = with_ext(name, ext)
    video_dir = str(dataset.get("video_dir") or "").strip("/")
    if video_dir in ("", "."):
        return name
    return confined(posixpath.join(video_dir, name), where)


def strip_video_ext(name: str) -> str:
    stem, ext = posixpath.splitext(name)
    return stem if ext.lower() in VIDEO_EXTS else name


def names_by_index(by_index: dict[int, str], path: Path, what: str) -> list[str]:
    """The names in index order; the indices must be 0..N-1 (``what`` names them in the error)."""
    if sorted(by_index) != list(range(len(by_index))):
        raise AnnotationError(path, None, f"{what} must be 0..N-1, each once")
    return [by_index[i] for i in range(len(by_index))]


def read_indexed_classes(path: Path) -> list[str]:
    """Class names from a ``<index> <name>`` file (UCF ``classInd.txt``: 1-based, any order) or one name
    per line (index = line order)."""
    rows = list(numbered_lines(path))
    if not rows:
        raise AnnotationError(path, None, "no classes in the file")
    indexed = all(len(t.split(None, 1)) == 2 and t.split(None, 1)[0].isdigit() for _, t in rows)
    if not indexed:
        return [t for _, t in rows]
    by_index: dict[int, str] = {}
    for lineno, text in rows:
        idx_text, name = text.split(None, 1)
        idx = int(idx_text)
        if idx in by_index:
            raise AnnotationError(path, lineno, f"class index {idx} appears twice")
        by_index[idx] = name.strip()
    base = min(by_index)
    if base not in (0, 1) or sorted(by_index) != list(range(base, base + len(by_index))):
        raise AnnotationError(path, None, f"class indices must run 0..N-1 or 1..N, got {sorted(by_index)[:5]}...")
    return [by_index[i] for i in range(base, base + len(by_index))]


def read_split_and_classes(
    root: Path, dataset: dict, split: str, read_classes: Callable[[Path], list[str]]
) -> tuple[Path, list[str] | None, list[Path]]:
    """(the split's list file, class names or None, the files read) for formats whose class-name file is
    optional (any ``CLASS_ROLES`` role); ``read_classes`` parses that file in the format's own layout."""
    list_file = existing(root, role_path(dataset, split), dataset)
    files = [list_file]
    names = None
    classes_rel = optional_role(dataset, *CLASS_ROLES)
    if classes_rel:
        classes_file = existing(root, classes_rel, dataset)
        names = read_classes(classes_file)
        files.append(classes_file)
    return list_file, names, files


def check_label(label: int, names: list[str] | None, path: Path, lineno: int | None, what: str = "label") -> None:
    """Refuse a class index that is negative or, when the class names are known, not below their count."""
    if label < 0 or (names is not None and label >= len(names)):
        known = f" (only {len(names)} classes)" if names is not None else ""
        raise AnnotationError(path, lineno, f"{what} {label} is out of range{known}")
