"""Is the dataset read the one the protocol was published on? (PROTOCOL.md §2.2)

Each task YAML may declare ``dataset.official``: the videos per split and the classes of the official lists
(``{train, test, classes, of, other_lists}``; ``other_lists`` names known other releases by their count, e.g.
FineGym v1.1's 26320 training clips). ``compare_counts`` sets the counts found against them and explains
every difference; ``completeness`` adds the videos missing on disk or unreadable, and says whether a number
computed on this data may sit next to the published ones.
"""

from __future__ import annotations

SPLITS = ("train", "test")


def official_counts(task) -> dict | None:
    off = task.dataset.get("official")
    return dict(off) if isinstance(off, dict) else None


def compare_counts(task, found: dict) -> dict:
    """``found``: ``{"train": n, "test": n, "classes": n}`` (classes seen in train and test together).

    Returns ``{"official", "found", "differences": [text], "notes": [text], "matches": bool}``: a split
    whose count differs is a difference (the dataset is not the official one); fewer classes seen than
    declared is a note (some official lists leave a class without videos, e.g. Diving48 V2).
    """
    off = official_counts(task)
    out = {"official": off, "found": dict(found), "differences": [], "notes": [], "matches": True}
    if off is None:
        out["notes"].append(f"task {task.id} declares no official counts")
        return out
    what = off.get("of") or "the official lists"
    for split in SPLITS:
        want, got = off.get(split), found.get(split)
        if want is None or got is None or int(want) == int(got):
            continue
        known = ((off.get("other_lists") or {}).get(split) or {})
        known = {int(k): v for k, v in known.items()}
        text = f"{split}: {got} videos listed, {what} has {want} ({int(got) - int(want):+d})"
        if int(got) in known:
            text += f": this looks like {known[int(got)]}"
        elif int(got) < int(want):
            text += ": a shortened or partial list"
        out["differences"].append(text)
    want_c, got_c = off.get("classes"), found.get("classes")
    if want_c is not None and got_c is not None and int(got_c) != int(want_c):
        out["notes"].append(f"classes: {got_c} seen in the lists, {want_c} official")
    out["matches"] = not out["differences"]
    return out


def completeness(task, found: dict, missing: dict, unreadable: int = 0) -> dict:
    """``compare_counts`` plus videos absent on disk (``missing``: split -> count) and unreadable ones.

    ``complete`` is true only when the lists match the official counts (or none are declared) and every
    listed video is present and decodable; ``reasons`` says what is not.
    """
    rep = compare_counts(task, found)
    reasons = list(rep["differences"])
    for split in SPLITS:
        if missing.get(split):
            reasons.append(f"{split}: {missing[split]} of {found.get(split)} listed videos missing on disk")
    if unreadable:
        reasons.append(f"{unreadable} videos could not be decoded")
    rep.update({"missing": {s: int(missing.get(s, 0)) for s in SPLITS}, "unreadable": int(unreadable),
                "complete": not reasons, "reasons": reasons})
    return rep


def count_lists(train: list, test: list, root) -> tuple[dict, dict]:
    """(found, missing) for ``completeness``: videos per split and classes seen over both lists, and how
    many listed videos are absent under ``root``."""
    from pathlib import Path

    from ..video.frames import video_present

    found = {"train": len(train), "test": len(test),
             "classes": len({i for s in [*train, *test] for i in s.class_indices()})}
    missing = {split: sum(not video_present(Path(root) / s.video) for s in samples)
               for split, samples in (("train", train), ("test", test))}
    return found, missing
