"""``severe checkpoints list | show NAME | verify PATH_OR_NAME | fetch NAME``."""

from __future__ import annotations

import json

import click

from .options import shell_command

TRUST_HELP = ("Load files that pickle objects outside the allow-list (numpy, argparse.Namespace). This can run "
              "arbitrary code from the file: only for files you trust.")


def _registry():
    from ..checkpoints.registry import load_registry

    return load_registry()


def _fmt_norm(norm: dict) -> str:
    if norm.get("mean") is None:
        return f"none (raw [0, 1] values), {norm.get('channel_order', 'RGB')}"
    return f"mean {norm['mean']} std {norm['std']}, {norm.get('channel_order', 'RGB')}"


@click.group()
def checkpoints():
    """Known checkpoints: list, inspect, verify a file, download."""


@checkpoints.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(as_json):
    """All registry checkpoints (names work anywhere --checkpoint is accepted)."""
    from tabulate import tabulate

    from ..checkpoints.fetch import find_local
    from ..checkpoints.hashlock import lock_path, read_lock

    reg = _registry()
    lock = read_lock()
    rows = []
    for e in reg.entries.values():
        local = find_local(e)
        check = hash_check(e, lock)
        rows.append({"name": e.name, "label": e.label, "architecture": e.architecture, "layout": e.layout,
                     "pretraining": e.pretraining.get("dataset", ""), "sha256_known": bool(e.source.sha256),
                     "hash_check": check, "locked_sha256": (lock.get(e.name) or {}).get("sha256"),
                     "verified": bool(local) and check != "none",
                     "local": str(local) if local else None})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = [[r["name"], r["label"], r["architecture"], r["layout"], r["pretraining"],
              ("verified" if r["verified"] else "unverified") if r["local"] else "-",
              r["hash_check"] if r["hash_check"] != "none" else "-"] for r in rows]
    click.echo(tabulate(table, headers=["name", "label", "architecture", "layout", "pre-training", "local copy",
                                        "sha256 check"]))
    click.echo(f"\nsha256 check: 'publisher sha256' / 'publisher prefix' are checked on every fetch and use; 'lock' "
               f"is the sha256 of the first download ({lock_path()}), compared with every later download.")


def hash_check(entry, lock: dict) -> str:
    """What a fetch of ``entry`` is checked against: ``publisher sha256``, ``publisher prefix``, ``lock`` or
    ``none``."""
    from ..checkpoints.hashlock import publisher_sha256_prefix

    if entry.source.sha256:
        return "publisher sha256"
    if entry.source.sha256_prefix or publisher_sha256_prefix(entry.source.url):
        return "publisher prefix"
    if (lock.get(entry.name) or {}).get("sha256"):
        return "lock"
    return "none"


@checkpoints.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--recompute", is_flag=True, help="Count FLOPs anew with fvcore instead of using cached counts.")
def show_cmd(name, as_json, recompute):
    """Everything the registry knows about NAME, with fvcore FLOPs and parameters at the protocol inputs."""
    from ..checkpoints.fetch import entry_path, find_local
    from ..checkpoints.flops import flops_and_params
    from ..checkpoints.hub import hub_cache
    from ..models import backbone_spec

    reg = _registry()
    e = reg.get(name)
    costs = {}
    for shape in backbone_spec(e.architecture).protocol_inputs:
        g, p = flops_and_params(e.architecture, shape, use_cache=not recompute, **e.arch_kwargs)
        costs["x".join(map(str, shape))] = {"gflops": g, "params": p}
    local = find_local(e)
    data = {
        "name": e.name, "label": e.label, "method": e.method, "architecture": e.architecture,
        "arch_kwargs": e.arch_kwargs, "layout": e.layout, "layout_rules": reg.layouts[e.layout].to_dict(),
        "pretraining": e.pretraining, "source": e.source.to_dict(),
        "archive": reg.archives[e.source.archive].__dict__ if e.source.archive else None,
        "citation": e.citation, "normalisation": e.normalisation, "bn_eps": e.bn_eps,
        "overrides": e.overrides, "meta": e.meta, "fvcore": costs,
        "cache_path": str(hub_cache() if e.source.hub else entry_path(e)), "local": str(local) if local else None, "notes": e.notes,
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{e.name}: {e.label}")
    click.echo(f"  method        {e.method}")
    click.echo(f"  citation      {e.citation}")
    click.echo(f"  architecture  {e.architecture} {e.arch_kwargs or ''}".rstrip())
    if e.pretraining:
        click.echo("  pre-training  " + ", ".join(f"{k} {v}" for k, v in e.pretraining.items()))
    for shape, c in costs.items():
        click.echo(f"  cost {shape:<13} {c['gflops']:.2f} GFLOPs, {c['params'] / 1e6:.2f} M parameters (fvcore, no head)")
    if e.meta.get("file_size_mb"):
        click.echo(f"  file size     {e.meta['file_size_mb']} MB")
    scoped_norm = any("normalisation" in ov["set"] for ov in e.overrides)
    click.echo(f"  input         {_fmt_norm(e.normalisation)}" + ("  (where no override below applies)" if scoped_norm else ""))
    vit_kwargs = {**dict(reg.layouts[e.layout].arch_kwargs), **e.arch_kwargs}
    click.echo(f"  BatchNorm eps {e.bn_eps:g}" if not e.architecture.startswith("vit") else
               f"  LayerNorm eps {vit_kwargs.get('norm_eps', 1e-6):g}"
               + (f" (fc_norm {vit_kwargs['fc_norm_eps']:g})" if "fc_norm_eps" in vit_kwargs else ""))
    for ov in e.overrides:
        click.echo(f"  override      {_fmt_override(ov)}")
    src = e.source
    if src.hub:
        where = f"Hugging Face Hub {src.hub}" + (f" @ {src.revision}" if src.revision else "")
    else:
        where = src.url or f"{reg.archives[src.archive].url} (member {src.member})"
    click.echo(f"  source        {where}")
    digest = src.sha256 or (f"prefix {src.sha256_prefix}" if src.sha256_prefix else "unknown")
    click.echo(f"  file          {src.file or '-'}  sha256 {digest}")
    if src.homepage:
        click.echo(f"  homepage      {src.homepage}")
    click.echo(f"  local copy    {local or '- (' + shell_command('severe', 'checkpoints', 'fetch', e.name) + ')'}")
    rules = reg.layouts[e.layout]
    click.echo(f"  layout        {e.layout}: {rules.description}")
    for field in ("container", "requires", "drop", "select", "strip_prefix", "rename", "concat", "fresh",
                  "arch_kwargs"):
        value = getattr(rules, field)
        if field == "container":
            value = tuple("<top level>" if v is None else v for v in value)
        if value:
            click.echo(f"    {field:<12} {list(value)}")
    if e.notes:
        click.echo(f"  notes         {e.notes}")


def _fmt_override(ov: dict) -> str:
    """One line: the values, where they apply, and the source (docs/PROTOCOL.md §3.3)."""
    scope = " and ".join(part for part in (
        f"protocols {', '.join(ov['protocols'])}" if ov["protocols"] else "",
        f"tasks {', '.join(ov['tasks'])}" if ov["tasks"] else "") if part)
    src = f"  [{ov['source']}]" if ov.get("source") else ""
    values = dict(ov["set"])
    shown = f"input {_fmt_norm(values.pop('normalisation'))}" if isinstance(values.get("normalisation"), dict) else ""
    shown = "; ".join(p for p in (shown, json.dumps(values) if values else "") if p)
    return f"{shown} on {scope}{src}"


def _verify_report(info: dict, ok: bool) -> list[str]:
    lines = [f"file          {info['path']} ({info['size_bytes'] / 1e6:.1f} MB)",
             f"sha256        {info['sha256']}"]
    if info.get("config"):
        lines.append(f"config        {info['config']} ({info.get('model_class') or 'VideoMAE'}; architecture from it)")
    if (info.get("source") or {}).get("hub"):
        src = info["source"]
        lines.append(f"hub           {src['hub']} @ {src.get('revision') or 'main'}")
    known = info.get("registry_entry")
    lines.append(f"registry      {known if known else 'unknown file (layout detected from its keys)'}")
    others = [c for c in info["layout_candidates"] if c != info["layout"]]
    lines.append(f"layout        {info['layout']}" + (f" (equally: {', '.join(others)})" if others else "")
                 + (f", weights under {info['container']!r}" if info.get("container") else ", weights at the top level"))
    kw = {k: v for k, v in info["arch_kwargs"].items()}
    lines.append(f"architecture  {info['architecture']} {kw}")
    lines.append(f"loaded        {info['loaded']} of {info['expected']} backbone tensors; "
                 f"{info['dropped_count']} file tensors dropped by the layout rules")
    if info["dropped"]:
        lines.append("  dropped     " + ", ".join(f"{k} ({n})" for k, n in sorted(info["dropped"].items())))
    if info["initialised_fresh"]:
        lines.append(f"fresh         {', '.join(info['initialised_fresh'])} (initialised fresh, as the reference recipe)")
    if info["optional_missing"]:
        lines.append(f"not in file   {len(info['optional_missing'])} BatchNorm num_batches_tracked counters (no effect)")
    if info.get("pos_embed_resized"):
        lines.append(f"pos_embed     resampled {info['pos_embed_resized']}")
    origin = ", ".join(info["quirks_from"]) if info["quirks_from"] else "the registry defaults"
    lines.append(f"input         {_fmt_norm(info['normalisation'])}; BatchNorm eps {info['bn_eps']:g}; quirks of {origin}")
    for title, key in (("missing", "missing"), ("unexpected", "unexpected"), ("shape mismatch", "shape_mismatch"),
                       ("non-finite (NaN or inf)", "nonfinite")):
        if info.get(key):
            lines.append(f"{title} ({len(info[key])}):")
            lines += [f"  {k}" for k in info[key]]
    lines.append("OK: every backbone weight was loaded from the file" if ok else
                 "FAILED: the file holds NaN or infinite weights" if info.get("nonfinite") and not
                 (info["missing"] or info["unexpected"] or info["shape_mismatch"]) else
                 "FAILED: the backbone cannot be loaded exactly from this file")
    return lines


@checkpoints.command("verify")
@click.argument("spec", metavar="PATH_OR_NAME")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (architecture, layout, missing, unexpected, sha256).")
@click.option("--arch", default=None, help="Expected architecture (default: inferred from the keys).")
@click.option("--layout", default=None, help="Force a registry layout (or generic:<prefix>) instead of detecting one.")
@click.option("--trust-checkpoint", "trust", is_flag=True, help=TRUST_HELP)
@click.pass_context
def verify_cmd(ctx, spec, as_json, arch, layout, trust):
    """Check that a checkpoint file (or registry NAME) loads every backbone weight. Exit 0 only then; otherwise
    exit 1 and list the missing and unexpected keys."""
    from ..checkpoints.hashlock import read_lock
    from ..checkpoints.loader import load_checkpoint

    loaded = load_checkpoint(spec, arch=arch, allow_partial=True, trust=trust, layout=layout, count_flops=False)
    info = loaded.info
    reg = _registry()
    entry = reg.entries.get(spec) if spec in reg.entries else reg.by_sha256(info["sha256"])
    info["registry_entry"] = entry.name if entry else None
    locked = (read_lock().get(entry.name) or {}).get("sha256") if entry else None
    info["locked_sha256"] = locked  # the first verified download's hash (checkpoints/hashlock.py), if any
    info["matches_lock"] = None if locked is None else locked == info["sha256"]
    ok = not (info["missing"] or info["unexpected"] or info["shape_mismatch"] or info.get("nonfinite"))
    if as_json:
        keys = ("path", "config", "model_class", "source", "sha256", "size_bytes", "registry_entry", "architecture", "arch_kwargs", "layout",
                "layout_candidates", "container", "loaded", "expected", "missing", "unexpected", "shape_mismatch",
                "nonfinite", "initialised_fresh", "optional_missing", "dropped", "dropped_count", "pos_embed_resized",
                "normalisation", "bn_eps", "overrides", "quirks_from", "locked_sha256", "matches_lock")
        click.echo(json.dumps({"ok": ok, **{k: info.get(k) for k in keys}}, indent=2))
    else:
        click.echo("\n".join(_verify_report(info, ok)))
        if info["matches_lock"] is not None:
            click.echo(f"hash lock: {'same as' if info['matches_lock'] else 'DIFFERS from'} the first download "
                       f"({info['locked_sha256']})")
    if not ok:
        ctx.exit(1)


@checkpoints.command("fetch")
@click.argument("names", nargs=-1, required=True)
@click.option("--force", "--refresh", "force", is_flag=True, help="Download again even if a copy is cached.")
def fetch_cmd(names, force):
    """Download registry checkpoints into the cache (resumable; sha256-checked where the hash is known)."""
    from ..checkpoints.fetch import fetch
    from ..checkpoints.hashlock import read_lock
    from ..checkpoints.safe_load import sha256_file

    reg = _registry()
    entries = [reg.get(n) for n in names]  # fail on a typo before downloading anything
    for e in entries:
        path = fetch(e, reg, force=force)
        digest = sha256_file(path)
        check = {"publisher sha256": "verified", "publisher prefix": "prefix verified",
                 "lock": "same as the first download" if (read_lock().get(e.name) or {}).get("sha256") == digest
                 else "differs from the first download"}.get(hash_check(e, read_lock()), "not in the registry")
        click.echo(f"{e.name}: {path}\n  sha256 {digest} ({check})")
