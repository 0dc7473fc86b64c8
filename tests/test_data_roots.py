"""Data roots never move silently (the folder holding the task's annotation files wins, and the choice is
said), and no annotation line can make the harness read outside the dataset root (file:line errors)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from severe_bench import registry
from severe_bench.cli import cli
from severe_bench.errors import AnnotationError

HMDB_CLASSES = ("brush_hair", "cartwheel")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def hmdb_layout(root: Path, lines: dict | None = None) -> Path:
    """The documented HMDB51 layout: split lists in testTrainMulti_7030_splits/, videos in hmdb51/<class>/."""
    for cls in HMDB_CLASSES:
        text = (lines or {}).get(cls) or f"{cls}_a.avi 1\n{cls}_b.avi 2\n{cls}_c.avi 0\n"
        write(root / "testTrainMulti_7030_splits" / f"{cls}_test_split1.txt", text)
        for name in ("a", "b"):
            write(root / "hmdb51" / cls / f"{cls}_{name}.avi", "")
    return root


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_hmdb51_root_stays_put_when_its_video_folder_is_named_hmdb51(tmp_path):
    root = hmdb_layout(tmp_path / "data")
    task = registry.get_task("hmdb51")
    located = registry.locate_data_root(task, root)
    assert located.path == root  # not root/hmdb51, the video folder
    assert "annotation files" in located.how
    samples = registry.read_split(task, located.path, "train")
    assert [s.video for s in samples] == ["hmdb51/brush_hair/brush_hair_a.avi", "hmdb51/cartwheel/cartwheel_a.avi"]
    res = run("data", "check", "hmdb51", "--root", str(root))
    assert "missing" not in res.output, res.output  # every listed video found under the chosen root
    assert f"root: {root} (as given: it holds" in res.output


def test_dataset_named_subfolder_used_when_it_holds_the_annotations(tmp_path):
    hmdb_layout(tmp_path / "all" / "hmdb51")
    task = registry.get_task("hmdb51")
    located = registry.locate_data_root(task, tmp_path / "all")
    assert located.path == tmp_path / "all" / "hmdb51"
    assert located.how.startswith("hmdb51/ inside the given folder: it holds the task's annotation files")
    res = run("data", "check", "hmdb51", "--root", str(tmp_path / "all"))
    assert "missing" not in res.output, res.output
    assert f"root: {tmp_path / 'all' / 'hmdb51'} (hmdb51/ inside" in res.output


def test_neither_folder_holds_annotations_keeps_the_given_root_and_says_so(tmp_path):
    (tmp_path / "d" / "hmdb51" / "brush_hair").mkdir(parents=True)  # videos only
    task = registry.get_task("hmdb51")
    located = registry.locate_data_root(task, tmp_path / "d")
    assert located.path == tmp_path / "d"
    assert "neither" in located.how
    res = run("data", "check", "hmdb51", "--root", str(tmp_path / "d"))
    assert res.exit_code == 1
    assert f"missing annotation file: {tmp_path / 'd' / 'testTrainMulti_7030_splits'}" in res.output


def test_named_subfolder_with_the_video_folder_wins_a_tie(tmp_path):
    (tmp_path / "d" / "ucf101" / "UCF-101").mkdir(parents=True)
    located = registry.locate_data_root(registry.get_task("ucf101"), tmp_path / "d")
    assert located.path == tmp_path / "d" / "ucf101"
    assert "video folder UCF-101/" in located.how


@pytest.mark.parametrize("line", [
    "ApplyEyeMakeup/../../outside/secret.avi 1",
    "ApplyEyeMakeup/../../../../outside/secret.avi 1",
])
def test_ucf_list_line_leaving_the_root_is_refused_with_file_and_line(tmp_path, line):
    root = tmp_path / "ucf"
    write(root / "ucfTrainTestlist/classInd.txt", "1 ApplyEyeMakeup\n")
    lst = write(root / "ucfTrainTestlist/trainlist01.txt", f"ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 1\n{line}\n")
    write(root / "ucfTrainTestlist/testlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi\n")
    write(tmp_path / "outside" / "secret.avi", "secret")
    with pytest.raises(AnnotationError) as err:
        registry.read_split(registry.get_task("ucf101"), root, "train")
    assert str(err.value).startswith(f"{lst}:2: video path ")
    assert "leaves its video folder ('..')" in str(err.value)
    res = run("data", "check", "ucf101", "--root", str(root))
    assert res.exit_code == 1 and f"{lst}:2:" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("entry,reason", [
    ("/etc/passwd;0", "is absolute"),
    ("C:/Windows/win.ini;0", "is absolute"),
    ("Class/../../outside/secret.avi;0", "leaves its video folder"),
    ("a/./b/../../../x.avi;0", "leaves its video folder"),
])
def test_generic_list_escaping_paths_refused(tmp_path, entry, reason):
    root = tmp_path / "ikea"
    lst = write(root / "ikeafa_train.txt", f"ok/clip.avi;1\n\n{entry}\n")
    write(root / "ikeafa_test.txt", "ok/clip2.avi;1\n")
    with pytest.raises(AnnotationError) as err:
        registry.read_split(registry.get_task("ikeafa"), root, "train")
    assert str(err.value).startswith(f"{lst}:3: ") and reason in str(err.value)


def test_paths_that_stay_inside_are_kept(tmp_path):
    root = tmp_path / "ikea"
    write(root / "ikeafa_train.txt", "a/../b/clip.avi;1\n./c/clip.avi;2\n")
    write(root / "ikeafa_test.txt", "c.avi;1\n")
    samples = registry.read_split(registry.get_task("ikeafa"), root, "train")
    assert [s.video for s in samples] == ["videos/a/../b/clip.avi", "videos/./c/clip.avi"]


def test_hmdb_split_line_escaping_is_refused(tmp_path):
    root = hmdb_layout(tmp_path / "h", {"cartwheel": "cartwheel_a.avi 1\n../../../secret.avi 1\n"})
    with pytest.raises(AnnotationError) as err:
        registry.read_split(registry.get_task("hmdb51"), root, "train")
    assert str(err.value).startswith(f"{root / 'testTrainMulti_7030_splits' / 'cartwheel_test_split1.txt'}:2: ")


def test_json_entry_escaping_is_refused_with_its_entry_number(tmp_path):
    import json

    root = tmp_path / "div"
    lst = write(root / "Diving48_V2_train.json", json.dumps(
        [{"vid_name": "ok1", "label": 0}, {"vid_name": "../../etc/secret", "label": 1}]))
    write(root / "Diving48_V2_test.json", json.dumps([{"vid_name": "ok2", "label": 0}]))
    with pytest.raises(AnnotationError) as err:
        registry.read_split(registry.get_task("diving48"), root, "train")
    assert str(err.value).startswith(f"{lst}: entry #2: video path '../../etc/secret' leaves its video folder")
