"""Leaderboard submissions: a real bundle is accepted; every kind of bad bundle is rejected with its reason and
the store left byte-for-byte as it was.

The results come from real tiny `severe eval` runs (conftest ``leaderboard_runs``) in a task registry whose
official synth_motion protocol is CPU-sized, so the official-protocol checks run as they do for real tasks.
"""

import hashlib
import json
import os
import stat
import zipfile

import pytest
from click.testing import CliRunner

from severe_bench.cli import cli
from severe_bench.leaderboard.bundle import MANIFEST, Limits, read_bundle, write_bundle
from severe_bench.leaderboard.store import read_board

pytestmark = pytest.mark.slow
MEMBER = "results/synth_motion/seed0/"


@pytest.fixture
def official(leaderboard_runs, monkeypatch):
    """The test registry is the board's registry for the test."""
    monkeypatch.setenv("SEVERE_TASKS_DIR", str(leaderboard_runs.tasks_dir))
    return leaderboard_runs


@pytest.fixture
def bundle(official, tmp_path):
    path = tmp_path / "entry.zip"
    write_bundle(official.full, path, name="Scratch (test)", paper="https://arxiv.org/abs/2203.14221")
    return path


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _add(bundle_path, db, data_root=None):
    extra = ["--data-root", data_root] if data_root else []
    return _invoke("leaderboard", "add", bundle_path, "--db", db, *extra)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def _rewrite(src, dst, edits=None, extra=(), fix_manifest=True):
    """Copy a bundle, replacing members (name -> new bytes) and adding raw ZipInfo members; the manifest's hashes
    are updated as a forger would (fix_manifest) unless the test wants them stale."""
    with zipfile.ZipFile(src) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    members.update(edits or {})
    if fix_manifest:
        manifest = json.loads(members[MANIFEST])
        for name, data in members.items():
            if name != MANIFEST:
                manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        members[MANIFEST] = json.dumps(manifest).encode()
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for info, data in extra:
            zf.writestr(info, data)
    return dst


def _edit_json(bundle_path, member, change):
    with zipfile.ZipFile(bundle_path) as zf:
        doc = json.loads(zf.read(member))
    change(doc)
    return json.dumps(doc).encode()


@pytest.fixture
def board(bundle, tmp_path, official):
    """A board holding one accepted entry (so "unchanged" is checked against a real database)."""
    db = tmp_path / "board.db"
    r = _add(bundle, db, official.data_root)
    assert r.exit_code == 0, r.output
    return db


def _assert_rejected(bad, db, *reasons):
    before = _digest(db)
    listing = sorted(os.listdir(db.parent))
    r = _add(bad, db)
    assert r.exit_code == 1, r.output
    message = r.output + str(r.exception)
    for reason in reasons:
        assert reason in message, message
    assert _digest(db) == before, "a rejection must leave the database byte-for-byte as it was"
    assert sorted(os.listdir(db.parent)) == listing, "no journal or new file is left behind"
    return message


def test_valid_bundle_is_accepted_with_labels_checked(official, bundle, tmp_path):
    db = tmp_path / "board.db"
    r = _add(bundle, db, official.data_root)
    assert r.exit_code == 0, r.output
    assert "accepted 'Scratch (test)' as entry #1 (partial board)" in r.output
    entries, results = read_board(db)
    assert [e["name"] for e in entries] == ["Scratch (test)"] and entries[0]["checkpoint_key"] == "scratch:r2plus1d_18"
    result = json.loads((official.full / "synth_motion" / "seed0" / "result.json").read_text())
    assert len(results) == 1 and results[0]["value"] == result["metric"]["value"]
    assert results[0]["protocol_hash"] == result["protocol"]["hash"] and results[0]["labels_checked"] == 1
    # export goes through the table renderer
    md = _invoke("leaderboard", "export", "--db", db, "--which", "partial", "--format", "md")
    assert md.exit_code == 0 and "Scratch (test)" in md.output and "synth_motion" in md.output
    latex = _invoke("leaderboard", "export", "--db", db, "--format", "latex")
    assert latex.exit_code == 0 and r"\begin{tabular}" in latex.output and "TCLR" in latex.output


def test_a_test_list_other_than_the_boards_is_refused(official, bundle, tmp_path):
    # the board's own copy of the annotations lists another test video: the submitted scores are not believed
    data = tmp_path / "data"
    import shutil

    shutil.copytree(official.data_root, data)
    listing = data / "synth_motion" / "ucfTrainTestlist" / "testlist01.txt"
    lines = listing.read_text().splitlines()
    classes = [ln.split()[1] for ln in (data / "synth_motion" / "ucfTrainTestlist" / "classInd.txt").read_text().splitlines()]
    first_class = lines[0].split("/")[0]
    other = next(c for c in classes if c != first_class)
    video = lines[0].split("/")[1]
    (data / "synth_motion" / "UCF-101" / other).mkdir(exist_ok=True)
    shutil.move(data / "synth_motion" / "UCF-101" / first_class / video, data / "synth_motion" / "UCF-101" / other / video)
    listing.write_text("\n".join([f"{other}/{video}"] + lines[1:]) + "\n")
    db = tmp_path / "board.db"
    r = _add(bundle, db, data)
    assert r.exit_code == 1 and "not in the board's test list" in r.output + str(r.exception)
    assert not db.exists()


def test_tampered_value_is_rejected(board, bundle, tmp_path):
    bad = _edit_json(bundle, MEMBER + "result.json", lambda d: d["metric"].update(value=99.0))
    forged = _rewrite(bundle, tmp_path / "bad.zip", {MEMBER + "result.json": bad}, fix_manifest=False)
    _assert_rejected(forged, board, "result.json': sha256", "changed after submit")


def test_recomputation_mismatch_is_rejected(board, bundle, tmp_path):
    def flip(doc):  # the first video's prediction turns right if it was wrong, wrong if it was right: top-1 moves
        video = next(iter(doc["videos"].values()))
        scores, label = video["scores"], video["label"]
        top = scores.index(max(scores))
        target = (label + 1) % len(scores) if top == label else label
        scores[top], scores[target] = scores[target], scores[top]

    bad = _edit_json(bundle, MEMBER + "predictions.json", flip)
    forged = _rewrite(bundle, tmp_path / "bad.zip", {MEMBER + "predictions.json": bad})
    _assert_rejected(forged, board, "synth_motion seed 0: reported top1 =", "the submitted predictions give")


def test_wrong_protocol_hash_is_rejected(board, bundle, tmp_path):
    from severe_bench.registry import Task

    def other_protocol(doc):  # a consistent result of another protocol: its own hash, not the official one
        doc["protocol"]["values"]["protocol"]["batch_size"] = 4
        values = doc["protocol"]["values"]
        other = Task(id="synth_motion", config={k: v for k, v in values.items() if k != "profile"}, profile=values["profile"])
        assert other.hashed_values() == values
        doc["protocol"]["hash"] = other.protocol_hash

    bad = _edit_json(bundle, MEMBER + "result.json", other_protocol)
    forged = _rewrite(bundle, tmp_path / "bad.zip", {MEMBER + "result.json": bad})
    _assert_rejected(forged, board, "is not the official synth_motion protocol")

    def stale_hash(doc):  # values changed, hash left: caught by the recomputation from the recorded values
        doc["protocol"]["values"]["protocol"]["batch_size"] = 4

    bad = _edit_json(bundle, MEMBER + "result.json", stale_hash)
    forged = _rewrite(bundle, tmp_path / "bad2.zip", {MEMBER + "result.json": bad})
    _assert_rejected(forged, board, "does not match the recorded protocol values")


def test_smoke_result_is_rejected(official, board, tmp_path):
    smoke = write_bundle(official.smoke, tmp_path / "smoke.zip", name="Smoke run") and tmp_path / "smoke.zip"
    message = _assert_rejected(smoke, board, "'smoke'-profile result", "official full protocol")
    assert "is not the official synth_motion protocol" in message


def test_parent_path_member_is_rejected(board, bundle, tmp_path):
    forged = _rewrite(bundle, tmp_path / "bad.zip", extra=[(zipfile.ZipInfo("../escape.json"), b"{}")])
    _assert_rejected(forged, board, "'..' in its path")


def test_symlink_member_is_rejected(board, bundle, tmp_path):
    link = zipfile.ZipInfo(MEMBER + "notes.json")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    forged = _rewrite(bundle, tmp_path / "bad.zip", extra=[(link, b"/etc/passwd")])
    _assert_rejected(forged, board, "a symbolic link")


def test_oversized_member_is_rejected(board, bundle, tmp_path):
    big = Limits().member_bytes + 1
    forged = tmp_path / "bad.zip"
    _rewrite(bundle, forged)
    with zipfile.ZipFile(forged, "a", zipfile.ZIP_DEFLATED) as zf, zf.open("results/synth_motion/seed1/result.json", "w",
                                                                            force_zip64=True) as f:
        chunk = b" " * (1 << 20)
        for _ in range(big // len(chunk)):
            f.write(chunk)
        f.write(b" " * (big % len(chunk)))
    _, problems = read_bundle(forged)
    assert any("over the per-member limit" in p for p in problems), problems
    _assert_rejected(forged, board, "over the per-member limit", "zip bomb")


def test_duplicate_is_rejected(official, board, tmp_path):
    again = tmp_path / "again.zip"
    write_bundle(official.full, again, name="Same checkpoint, new name")
    _assert_rejected(again, board, "duplicate", "is on the board already as entry #1 'Scratch (test)'")


def test_rejection_of_a_new_board_creates_nothing(official, tmp_path):
    smoke = tmp_path / "smoke.zip"
    write_bundle(official.smoke, smoke, name="Smoke run")
    db = tmp_path / "new" / "board.db"
    r = _add(smoke, db)
    assert r.exit_code == 1 and not db.parent.exists()


def test_submit_refuses_results_without_predictions(official, tmp_path):
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(official.full, folder)
    (folder / "synth_motion" / "seed0" / "predictions.json").unlink()
    r = _invoke("submit", folder, "--name", "x", "--out", tmp_path / "x.zip")
    assert r.exit_code != 0 and "no predictions.json" in str(r.exception)


def test_other_unsafe_archives_are_named(bundle, tmp_path):
    import warnings

    absolute = _rewrite(bundle, tmp_path / "abs.zip", extra=[(zipfile.ZipInfo("/etc/cron.d/x"), b"{}")])
    assert any("absolute path" in p for p in read_bundle(absolute)[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name this test writes on purpose
        twice = _rewrite(bundle, tmp_path / "twice.zip", extra=[(zipfile.ZipInfo(MEMBER + "result.json"), b"{}")])
    assert any("appears more than once" in p for p in read_bundle(twice)[1])
    stray = _rewrite(bundle, tmp_path / "stray.zip", extra=[(zipfile.ZipInfo("results/run.sh"), b"echo")])
    assert any("not part of a bundle" in p for p in read_bundle(stray)[1])
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 not really")
    assert read_bundle(junk)[0] is None and "not a zip bundle" in read_bundle(junk)[1][0]


def test_labels_other_than_the_boards_are_refused(official, bundle, tmp_path):
    # the board's class index numbers two classes the other way round: those videos' labels disagree
    import shutil

    data = tmp_path / "data"
    shutil.copytree(official.data_root, data)
    index = data / "synth_motion" / "ucfTrainTestlist" / "classInd.txt"
    lines = index.read_text().splitlines()
    (i0, c0), (i1, c1) = (ln.split() for ln in lines[:2])
    index.write_text("\n".join([f"{i0} {c1}", f"{i1} {c0}"] + lines[2:]) + "\n")
    db = tmp_path / "board.db"
    r = _add(bundle, db, data)
    message = r.output + str(r.exception)
    assert r.exit_code == 1 and "carry labels that differ from the board's test annotations" in message, message
    assert not db.exists()
