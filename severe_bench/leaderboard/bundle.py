"""Submission bundles: one checkpoint's results as a zip that the board can check without trusting it.

Layout (schema ``severe-bench/bundle/v1``)::

    manifest.json                              who, which checkpoint, environment, sha256 + size of every member
    results/<task>/seed<k>/result.json         as ``severe eval`` wrote them
    results/<task>/seed<k>/predictions.json    per-video scores and labels (engine/predictions.py)

``write_bundle`` makes one from a results folder (``severe submit``). ``read_bundle`` opens an untrusted one:
every member is checked (path inside the bundle, a plain file, no link, size limits per member and in total,
compression ratio) before a byte of it is decompressed, and each problem is reported rather than raised.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import re
import stat
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..engine.predictions import PREDICTIONS_FILE, PREDICTIONS_SCHEMA
from ..errors import SevereError
from ..provenance import code_version, utc_now
from ..results import RESULT_FILE, SCHEMA as RESULT_SCHEMA

BUNDLE_SCHEMA = "severe-bench/bundle/v1"
MANIFEST = "manifest.json"
# results/<task id>/seed<k>/<result.json | predictions.json>
MEMBER_RE = re.compile(r"^results/([a-z0-9][a-z0-9_]*)/seed(\d+)/(result\.json|predictions\.json)$")
# A zip's timestamps are not content: fixed, so the same results give the same bundle bytes.
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Limits:
    """What the board accepts. SSv2's predictions (24,777 videos x 174 scores) are about 50 MB of JSON."""

    member_bytes: int = 128 << 20
    total_bytes: int = 512 << 20
    members: int = 512
    ratio: float = 100.0  # uncompressed / compressed; JSON of floats compresses 3-5x, a bomb 1000x


@dataclass
class Bundle:
    """The checked contents of a bundle: parsed JSON per member name, and the bundle's own sha256."""

    manifest: dict
    members: dict[str, object] = field(default_factory=dict)
    sha256: str = ""

    def runs(self) -> list[tuple[str, int, dict, dict]]:
        """(task, seed, result, predictions) for every result in the bundle, in member order."""
        out = []
        for name, doc in self.members.items():
            m = MEMBER_RE.match(name)
            if m and m.group(3) == RESULT_FILE:
                out.append((m.group(1), int(m.group(2)), doc, self.members.get(name[: -len(RESULT_FILE)] + PREDICTIONS_FILE)))
        return out


# --- writing (severe submit) ---------------------------------------------------------------------------------

def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def default_backbone(architecture: str) -> str:
    """The board's backbone label of an architecture id (the paper's spelling)."""
    names = {"r2plus1d_18": "R(2+1)D-18", "r3d_18": "R3D-18", "vit_b_16": "ViT-B", "vit_s_16": "ViT-S"}
    return names.get(architecture, architecture)


def environment() -> dict:
    """The submitting machine's software: enough to say which library versions produced the numbers."""
    from importlib import metadata

    packages = {}
    for name in ("torch", "torchvision", "numpy", "scikit-learn", "av", "decord", "severe-bench"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"python": platform.python_version(), "platform": platform.platform(), "packages": packages,
            "severe_bench_code": code_version(), "argv0": Path(sys.argv[0]).name}


def collect_runs(results_dir: Path) -> list[tuple[str, int, Path, Path]]:
    """(task, seed, result file, predictions file) of every result under ``results_dir`` (as ``severe eval --out``
    lays them out); refuses a result without its predictions."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise SevereError(f"results folder {results_dir} does not exist")
    runs, missing = [], []
    for path in sorted(results_dir.rglob(RESULT_FILE)):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SevereError(f"{path}: cannot read result JSON: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("schema") != RESULT_SCHEMA:
            continue
        task, seed = str(doc.get("task", {}).get("id")), doc.get("seed")
        if not isinstance(seed, int) or not re.fullmatch(r"[a-z0-9][a-z0-9_]*", task):
            raise SevereError(f"{path}: result has no valid task id / integer seed")
        preds = path.with_name(PREDICTIONS_FILE)
        if not preds.is_file():
            missing.append(str(path.parent))
        runs.append((task, seed, path, preds))
    if missing:
        raise SevereError(f"no {PREDICTIONS_FILE} beside the results in: {', '.join(missing)}; the board recomputes "
                          "every metric from the per-video scores (re-run them with this severe-bench version)")
    if not runs:
        raise SevereError(f"no severe-bench result JSONs under {results_dir}")
    seen = {}
    for task, seed, path, _ in runs:
        if (task, seed) in seen:
            raise SevereError(f"two results for {task} seed {seed}: {seen[task, seed]} and {path}; keep one")
        seen[task, seed] = path
    return runs


def write_bundle(results_dir: Path, out: Path, name: str, paper: str | None = None, backbone: str | None = None) -> dict:
    """Write the bundle of one checkpoint's results; returns its manifest."""
    runs = collect_runs(results_dir)
    blobs, checkpoints = {}, {}
    for task, seed, result_file, preds_file in runs:
        base = f"results/{task}/seed{seed}/"
        blobs[base + RESULT_FILE] = result_file.read_bytes()
        blobs[base + PREDICTIONS_FILE] = preds_file.read_bytes()
        model = json.loads(blobs[base + RESULT_FILE]).get("model") or {}
        ckpt = model.get("checkpoint") or {}
        key = (ckpt.get("sha256"), model.get("architecture"))
        checkpoints.setdefault(key, {"sha256": ckpt.get("sha256"), "name": ckpt.get("name"),
                                     "layout": ckpt.get("layout"), "architecture": model.get("architecture"),
                                     "label": model.get("label")})
    if len(checkpoints) > 1:
        listed = "; ".join(f"{c['name']} ({(c['sha256'] or 'no sha256')[:12]}, {c['architecture']})" for c in checkpoints.values())
        raise SevereError(f"{results_dir} holds results of {len(checkpoints)} checkpoints ({listed}); a bundle is one "
                          "checkpoint's results: point submit at one checkpoint's folder")
    checkpoint = next(iter(checkpoints.values()))
    manifest = {
        "schema": BUNDLE_SCHEMA,
        "entry": {"name": name, "paper": paper, "backbone": backbone or default_backbone(checkpoint["architecture"] or "")},
        "checkpoint": checkpoint,
        "runs": [{"task": t, "seed": s} for t, s, _, _ in runs],
        "environment": environment(),
        "created_at": utc_now(),
        "files": {n: {"sha256": _sha256(b), "size": len(b)} for n, b in sorted(blobs.items())},
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for member, data in [(MANIFEST, json.dumps(manifest, indent=1).encode())] + sorted(blobs.items()):
            info = zipfile.ZipInfo(member, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, data)
    tmp.replace(out)
    return manifest


# --- reading an untrusted bundle ------------------------------------------------------------------------------

def member_path_problem(name: str) -> str | None:
    """Why a member name is unsafe or unexpected (None when it is a bundle member this format defines)."""
    if "\\" in name or "\x00" in name:
        return f"member {name!r}: backslash or NUL in its path"
    pure = PurePosixPath(name)
    if pure.is_absolute() or re.match(r"^[A-Za-z]:", name):
        return f"member {name!r}: absolute path (must lie inside the bundle)"
    if ".." in pure.parts:
        return f"member {name!r}: '..' in its path (must lie inside the bundle)"
    if name != MANIFEST and not MEMBER_RE.match(name):
        return f"member {name!r}: not part of a bundle (expected {MANIFEST} and results/<task>/seed<k>/result.json|predictions.json)"
    return None


def _kind_problem(info: zipfile.ZipInfo) -> str | None:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return f"member {info.filename!r}: a symbolic link (links are refused)"
    # zips written without Unix modes carry no file-type bits: only a type other than "regular file" is refused
    if info.is_dir() or (stat.S_IFMT(mode) and not stat.S_ISREG(mode)):
        return f"member {info.filename!r}: not a plain file"
    return None


def _size_problems(infos: list[zipfile.ZipInfo], limits: Limits) -> list[str]:
    out = []
    if len(infos) > limits.members:
        out.append(f"{len(infos)} members, more than the limit of {limits.members}")
    total = 0
    for info in infos:
        total += info.file_size
        if info.file_size > limits.member_bytes:
            out.append(f"member {info.filename!r}: {info.file_size} bytes uncompressed, over the per-member limit "
                       f"of {limits.member_bytes} bytes")
        if info.file_size > 1 << 16 and info.file_size > limits.ratio * max(info.compress_size, 1):
            out.append(f"member {info.filename!r}: compression ratio {info.file_size / max(info.compress_size, 1):.0f}:1 "
                       f"over the limit of {limits.ratio:.0f}:1 (zip bomb?)")
    if total > limits.total_bytes:
        out.append(f"{total} bytes uncompressed in total, over the limit of {limits.total_bytes} bytes")
    return out


def read_bundle(path: Path, limits: Limits = Limits()) -> tuple[Bundle | None, list[str]]:
    """(bundle, problems). The bundle is None when its members could not all be read safely; problems lists
    every reason found (member safety, sizes, manifest hashes, JSON)."""
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        return None, [f"{path}: not a bundle file"]
    data = path.read_bytes()
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        return None, [f"{path}: not a zip bundle ({exc})"]
    with zf:
        infos = zf.infolist()
        problems = []
        names = [i.filename for i in infos]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"member {dup!r} appears more than once")
        for info in infos:
            for p in (member_path_problem(info.filename), _kind_problem(info)):
                if p:
                    problems.append(p)
        problems += _size_problems(infos, limits)
        if MANIFEST not in names:
            problems.append(f"no {MANIFEST} in the bundle")
        if problems:  # nothing unsafe is ever decompressed
            return None, problems
        raw = {}
        for info in infos:
            with zf.open(info) as f:
                blob = f.read(limits.member_bytes + 1)  # bounded even if the header lies
            if len(blob) > limits.member_bytes:
                return None, [f"member {info.filename!r}: more than {limits.member_bytes} bytes when decompressed"]
            raw[info.filename] = blob
    bundle = Bundle(manifest={}, sha256=_sha256(data))
    for name, blob in raw.items():
        try:
            doc = json.loads(blob.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            problems.append(f"member {name!r}: not valid UTF-8 JSON ({exc.__class__.__name__}: {str(exc)[:80]})")
            continue
        if name == MANIFEST:
            bundle.manifest = doc if isinstance(doc, dict) else {}
        else:
            bundle.members[name] = doc
    problems += _manifest_problems(bundle.manifest, raw)
    for name, doc in bundle.members.items():
        if name.endswith(PREDICTIONS_FILE) and (not isinstance(doc, dict) or doc.get("schema") != PREDICTIONS_SCHEMA):
            problems.append(f"member {name!r}: not a {PREDICTIONS_SCHEMA} document")
        if name.endswith(RESULT_FILE) and name[: -len(RESULT_FILE)] + PREDICTIONS_FILE not in raw:
            problems.append(f"member {name!r}: no {PREDICTIONS_FILE} beside it")
    return bundle, problems


def _manifest_problems(manifest: dict, raw: dict[str, bytes]) -> list[str]:
    if not manifest:
        return [f"{MANIFEST} is not a JSON object"]
    out = []
    if manifest.get("schema") != BUNDLE_SCHEMA:
        out.append(f"{MANIFEST}: schema {manifest.get('schema')!r}, expected {BUNDLE_SCHEMA!r}")
    entry = manifest.get("entry") if isinstance(manifest.get("entry"), dict) else {}
    if not isinstance(entry.get("name"), str) or not entry["name"].strip() or len(entry["name"]) > 80:
        out.append(f"{MANIFEST}: entry.name must be a non-empty name of at most 80 characters")
    paper = entry.get("paper")
    if paper is not None and not (isinstance(paper, str) and re.match(r"^https?://[^\s\"'<>]+$", paper)):
        out.append(f"{MANIFEST}: entry.paper must be an http(s) URL, got {paper!r}")
    files = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
    members = {n for n in raw if n != MANIFEST}
    for name in sorted(members - set(files)):
        out.append(f"member {name!r} is not listed in {MANIFEST}")
    for name in sorted(set(files) - members):
        out.append(f"{MANIFEST} lists {name!r}, which the bundle does not contain")
    for name in sorted(members & set(files)):
        want = files[name].get("sha256") if isinstance(files[name], dict) else None
        if want != _sha256(raw[name]):
            out.append(f"member {name!r}: sha256 {_sha256(raw[name])[:16]}… differs from the manifest's "
                       f"{str(want)[:16]}… (the file was changed after submit)")
    return out
