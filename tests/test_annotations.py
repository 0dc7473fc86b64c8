"""Official annotation readers, on small hand-written files in the exact official formats (with their quirks)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from severe_bench.data.annotations import FORMATS, read_annotations, required_files
from severe_bench.errors import AnnotationError, ConfigError, MissingFileError


def write(path: Path, text: str, crlf: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.replace("\n", "\r\n") if crlf else text
    path.write_bytes(data.encode("utf-8"))
    return path


# --- UCF101 ---------------------------------------------------------------------------------------

UCF = {
    "name": "ucf101",
    "files": {
        "class_index": "ucfTrainTestlist/classInd.txt",
        "train": "ucfTrainTestlist/trainlist01.txt",
        "test": "ucfTrainTestlist/testlist01.txt",
    },
    "video_dir": "UCF-101",
    "source": "https://www.crcv.ucf.edu/data/UCF101.php",
}


def ucf_root(tmp_path: Path) -> Path:
    write(tmp_path / "ucfTrainTestlist/classInd.txt", "1 ApplyEyeMakeup\n2 HandstandPushups\n3 YoYo\n", crlf=True)
    write(
        tmp_path / "ucfTrainTestlist/trainlist01.txt",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n"
        "HandStandPushups/v_HandStandPushups_g08_c01.avi 2\n"  # folder case differs from classInd
        "\n"
        "YoYo/v_YoYo_g09_c02.avi 3\n\n",
        crlf=True,
    )
    write(
        tmp_path / "ucfTrainTestlist/testlist01.txt",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\nHandstandPushups/v_HandStandPushups_g01_c01.avi\n",
        crlf=True,
    )
    return tmp_path


def test_ucf101_train_and_test(tmp_path):
    root = ucf_root(tmp_path)
    train = read_annotations("ucf101", root, UCF, "train")
    assert train.class_names == ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]
    assert [(s.video, s.label) for s in train.samples] == [
        ("UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0),
        ("UCF-101/HandStandPushups/v_HandStandPushups_g08_c01.avi", 1),
        ("UCF-101/YoYo/v_YoYo_g09_c02.avi", 2),
    ]
    assert train.samples[1].id == "v_HandStandPushups_g08_c01"
    test = read_annotations("ucf101", root, UCF, "test")  # test lists carry no label
    assert [s.label for s in test.samples] == [0, 1]
    assert all("\r" not in s.video for s in test.samples)
    assert set(train.files) == {root / UCF["files"]["class_index"], root / UCF["files"]["train"]}


def test_ucf101_unknown_class_names_file_and_line(tmp_path):
    root = ucf_root(tmp_path)
    write(root / "ucfTrainTestlist/testlist01.txt", "YoYo/v_YoYo_g01_c01.avi\n\nBowling/v_Bowling_g01_c01.avi\n")
    with pytest.raises(AnnotationError) as err:
        read_annotations("ucf101", root, UCF, "test")
    assert err.value.line == 3
    assert "testlist01.txt:3" in str(err.value) and "Bowling" in str(err.value)


def test_ucf101_label_disagreeing_with_folder_is_an_error(tmp_path):
    root = ucf_root(tmp_path)
    write(root / "ucfTrainTestlist/trainlist01.txt", "YoYo/v_YoYo_g09_c02.avi 1\n")
    with pytest.raises(AnnotationError, match=r"trainlist01.txt:1: label 1 disagrees"):
        read_annotations("ucf101", root, UCF, "train")


def test_ucf101_malformed_label(tmp_path):
    root = ucf_root(tmp_path)
    write(root / "ucfTrainTestlist/trainlist01.txt", "YoYo/v_YoYo_g09_c02.avi 3\nYoYo/v_YoYo_g09_c03.avi three\n")
    with pytest.raises(AnnotationError, match=r"trainlist01.txt:2: label 'three' is not an integer"):
        read_annotations("ucf101", root, UCF, "train")


def test_missing_file_is_named_with_its_source(tmp_path):
    root = ucf_root(tmp_path)
    (root / "ucfTrainTestlist/testlist01.txt").unlink()
    with pytest.raises(MissingFileError) as err:
        read_annotations("ucf101", root, UCF, "test")
    msg = str(err.value)
    assert str(root / "ucfTrainTestlist/testlist01.txt") in msg
    assert UCF["source"] in msg


def test_required_files_and_registry():
    assert set(FORMATS) >= {"ucf101", "ssv2", "finegym", "ucfrep", "charades", "hmdb51", "diving48", "ntu60",
                            "ek100_verb", "path_label"}
    assert required_files("ucf101", UCF, "test") == ["ucfTrainTestlist/classInd.txt", "ucfTrainTestlist/testlist01.txt"]
    with pytest.raises(ConfigError, match="unknown annotation format 'nope'"):
        read_annotations("nope", Path("."), UCF, "train")
    with pytest.raises(ConfigError, match="no file for role 'val'"):
        required_files("ucf101", UCF, "val")


# --- Something-Something-v2 -----------------------------------------------------------------------

SSV2 = {
    "name": "ssv2",
    "files": {"labels": "labels/labels.json", "train": "labels/train.json", "test": "labels/validation.json"},
    "video_dir": "20bn-something-something-v2",
    "source": "qualcomm",
}


def ssv2_root(tmp_path: Path) -> Path:
    write(tmp_path / "labels/labels.json", json.dumps({
        "Approaching something with your camera": "0",
        "Spinning something that quickly stops spinning": "2",
        "Putting something on a surface": "1",
    }))
    write(tmp_path / "labels/train.json", json.dumps([
        {"id": "74225", "label": "spinning cube that quickly stops spinning",
         "template": "Spinning [something] that quickly stops spinning", "placeholders": ["cube"]},
        {"id": "116154", "label": "putting a pen on a table", "template": "Putting [something] on a surface",
         "placeholders": ["a pen"]},
    ]))
    write(tmp_path / "labels/validation.json", json.dumps([
        {"id": "1", "label": "x", "template": "Approaching [something] with your camera", "placeholders": ["x"]},
    ]))
    return tmp_path


def test_ssv2_templates_and_string_indices(tmp_path):
    root = ssv2_root(tmp_path)
    ann = read_annotations("ssv2", root, SSV2, "train")
    assert ann.class_names == ["Approaching something with your camera", "Putting something on a surface",
                               "Spinning something that quickly stops spinning"]
    assert [(s.video, s.label, s.id) for s in ann.samples] == [
        ("20bn-something-something-v2/74225.webm", 2, "74225"),
        ("20bn-something-something-v2/116154.webm", 1, "116154"),
    ]
    assert ann.samples[0].meta["placeholders"] == ["cube"]
    assert [s.label for s in read_annotations("ssv2", root, SSV2, "test").samples] == [0]


def test_ssv2_unknown_template_names_the_entry(tmp_path):
    root = ssv2_root(tmp_path)
    write(root / "labels/validation.json", json.dumps([
        {"id": "1", "template": "Approaching [something] with your camera"},
        {"id": "9", "template": "Juggling [something]"},
    ]))
    with pytest.raises(AnnotationError, match=r"validation.json: entry #2 \(id 9\).*'Juggling something'"):
        read_annotations("ssv2", root, SSV2, "test")


# --- FineGym --------------------------------------------------------------------------------------

GYM = {"name": "finegym", "files": {"train": "annotations/gym99_train.txt", "test": "annotations/gym99_val.txt"},
       "video_dir": "subactions", "video_ext": ".mp4", "source": "finegym"}


def test_finegym_with_and_without_avi_suffix(tmp_path):
    write(tmp_path / "annotations/gym99_train.txt",
          "0LtLS9wROrk_E_002407_002435_A_0003_0005 6\n"
          "0LtLS9wROrk_E_002407_002435_A_0008_0010.avi 16\n"
          "A_b-c_E_000010_000020_A_0001_0002 98\n", crlf=True)
    ann = read_annotations("finegym", tmp_path, GYM, "train")
    assert [(s.video, s.label) for s in ann.samples] == [
        ("subactions/0LtLS9wROrk_E_002407_002435_A_0003_0005.mp4", 6),
        ("subactions/0LtLS9wROrk_E_002407_002435_A_0008_0010.mp4", 16),
        ("subactions/A_b-c_E_000010_000020_A_0001_0002.mp4", 98),
    ]
    assert ann.samples[1].id == "0LtLS9wROrk_E_002407_002435_A_0008_0010"
    assert ann.samples[2].meta == {"youtube_id": "A_b-c", "event": (10, 20), "action": (1, 2)}
    assert ann.class_names is None


def test_finegym_categories_and_malformed_line(tmp_path):
    write(tmp_path / "annotations/gym99_categories.txt",
          "Clabel: 0; set: 1; Glabel: 1; (VT) round-off, flic-flac with 0.5 turn on\n"
          "Clabel: 1; set: 1; Glabel: 2; (VT) round-off, flic-flac on, stretched salto\n")
    ds = {**GYM, "files": {**GYM["files"], "classes": "annotations/gym99_categories.txt"}}
    write(tmp_path / "annotations/gym99_val.txt", "x_E_000001_000002_A_0001_0002 1\n")
    ann = read_annotations("finegym", tmp_path, ds, "test")
    assert ann.class_names[0] == "(VT) round-off, flic-flac with 0.5 turn on"
    assert "annotations/gym99_categories.txt" in required_files("finegym", ds, "test")
    write(tmp_path / "annotations/gym99_val.txt", "x_E_000001_000002_A_0001_0002 1\nx_E_000001_000002_A_0001_0002\n")
    with pytest.raises(AnnotationError, match=r"gym99_val.txt:2: expected '<clip name> <label>'"):
        read_annotations("finegym", tmp_path, GYM, "test")
    write(tmp_path / "annotations/gym99_val.txt", "not_a_clip_name 3\n")
    with pytest.raises(AnnotationError, match=r"gym99_val.txt:1: clip name 'not_a_clip_name'"):
        read_annotations("finegym", tmp_path, GYM, "test")


# --- UCFRep ---------------------------------------------------------------------------------------

UCFREP = {"name": "ucfrep", "files": {"train": "annotations/train", "test": "annotations/val"},
          "video_dir": "UCF-101", "source": "ucfrep"}


def write_ucfrep_mat(path: Path, bounds, start, end, duration=None) -> None:
    """The layout of the UCFRep release: a 1x1 struct `label`, scalars 1x1, bounds a column, offsets rows."""
    n = end - start + 1
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {"label": {
        "duration": np.array([[duration if duration is not None else end + 5]], dtype=np.float64),
        "start_frame": np.array([[start]], dtype=np.float64),
        "end_frame": np.array([[end]], dtype=np.float64),
        "temporal_bound": np.array(bounds, dtype=np.float64).reshape(-1, 1),
        "offset_next_estimate": np.arange(n, dtype=np.float64).reshape(1, -1),
        "offset_pre_estimate": np.arange(n, 0, -1, dtype=np.float64).reshape(1, -1),
    }})


def test_ucfrep_mat_struct(tmp_path):
    mat = tmp_path / "annotations/train/v_JumpingJack_g01_c01.mat"
    write_ucfrep_mat(mat, [3, 20, 38, 55, 71], start=3, end=71)
    # the file really has the reference code's layout: anno['label'][0,0]['temporal_bound'][:,0]
    ref = scipy.io.loadmat(str(mat))["label"][0, 0]
    assert list(ref["temporal_bound"][:, 0]) == [3, 20, 38, 55, 71]
    assert int(ref["start_frame"][0, 0]) == 3 and ref["offset_next_estimate"][0, :].shape == (69,)
    # HandStandPushups videos live in UCF-101/HandstandPushups/
    write_ucfrep_mat(tmp_path / "annotations/train/v_HandStandPushups_g02_c03.mat", [0, 10, 20], start=0, end=20)
    (tmp_path / "UCF-101/HandstandPushups").mkdir(parents=True)
    (tmp_path / "UCF-101/JumpingJack").mkdir(parents=True)
    ann = read_annotations("ucfrep", tmp_path, UCFREP, "train")
    by_id = {s.id: s for s in ann.samples}
    jj = by_id["v_JumpingJack_g01_c01"]
    assert jj.label == 4.0 and isinstance(jj.label, float) and jj.label_str() == "4"
    assert jj.video == "UCF-101/JumpingJack/v_JumpingJack_g01_c01.avi"
    assert jj.meta["temporal_bound"] == [3, 20, 38, 55, 71]
    assert (jj.meta["start_frame"], jj.meta["end_frame"], jj.meta["duration"]) == (3, 71, 76)
    assert len(jj.meta["offset_pre_estimate"]) == 69 and jj.meta["offset_pre_estimate"][0] == 69
    assert by_id["v_HandStandPushups_g02_c03"].video == "UCF-101/HandstandPushups/v_HandStandPushups_g02_c03.avi"
    assert by_id["v_HandStandPushups_g02_c03"].label == 2.0


def test_ucfrep_other_struct_layouts_and_reference_drop_rule(tmp_path):
    folder = tmp_path / "annotations/val"
    # scalars as plain numbers, bounds as a row vector, saved with squeeze-friendly 1-D arrays
    folder.mkdir(parents=True)
    scipy.io.savemat(str(folder / "v_Rowing_g01_c01.mat"), {"label": {
        "duration": 50, "start_frame": 1, "end_frame": 40, "temporal_bound": np.array([1, 14, 27, 40]),
        "offset_next_estimate": np.zeros(40), "offset_pre_estimate": np.zeros(40)}}, oned_as="row")
    # a struct array built by hand (what savemat writes for a numpy record)
    rec = np.zeros((1, 1), dtype=[(f, object) for f in ("duration", "start_frame", "end_frame", "temporal_bound",
                                                         "offset_next_estimate", "offset_pre_estimate")])
    rec[0, 0] = (np.array([[30.0]]), np.array([[0.0]]), np.array([[29.0]]), np.array([[0.0], [15.0], [29.0]]),
                 np.zeros((1, 30)), np.zeros((1, 30)))
    scipy.io.savemat(str(folder / "v_Lunges_g03_c01.mat"), {"label": rec})
    # one cycle only: the reference loader drops it (len(bound) < 3)
    write_ucfrep_mat(folder / "v_Rowing_g02_c01.mat", [5, 30], start=5, end=30)
    ann = read_annotations("ucfrep", tmp_path, UCFREP, "test")
    assert {s.id: s.label for s in ann.samples} == {"v_Rowing_g01_c01": 3.0, "v_Lunges_g03_c01": 2.0}
    assert [vid for vid, _ in ann.skipped] == ["v_Rowing_g02_c01"]
    assert ann.samples[0].video == "UCF-101/Lunges/v_Lunges_g03_c01.avi"  # no folders on disk: name as is


def test_ucfrep_bad_files(tmp_path):
    folder = tmp_path / "annotations/val"
    folder.mkdir(parents=True)
    scipy.io.savemat(str(folder / "v_Rowing_g01_c01.mat"), {"label": {"duration": 5, "start_frame": 1}})
    with pytest.raises(AnnotationError, match=r"v_Rowing_g01_c01.mat: .*no field 'end_frame'"):
        read_annotations("ucfrep", tmp_path, UCFREP, "test")
    (folder / "v_Rowing_g01_c01.mat").write_text("not a mat file")
    with pytest.raises(AnnotationError, match="not a readable MATLAB file"):
        read_annotations("ucfrep", tmp_path, UCFREP, "test")
    with pytest.raises(MissingFileError, match=r"annotation folder .*annotations/train"):
        read_annotations("ucfrep", tmp_path, UCFREP, "train")


# --- Charades -------------------------------------------------------------------------------------

CHARADES = {"name": "charades", "files": {"classes": "Charades_v1_classes.txt", "train": "Charades_v1_train.csv",
                                          "test": "Charades_v1_test.csv"},
            "video_dir": "Charades_v1_480", "source": "allenai"}
CHARADES_HEADER = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"


def charades_root(tmp_path: Path) -> Path:
    write(tmp_path / "Charades_v1_classes.txt",
          "c000 Holding some clothes\nc001 Putting clothes somewhere\nc002 Taking some clothes from somewhere\n")
    write(tmp_path / "Charades_v1_train.csv", CHARADES_HEADER
          + '46GP8,HR43,Kitchen,6,7,Yes,"A person cooks food on a stove, then washes a cup.",food;stove;cup,'
            '"A person cooks, then\nwashes.",c002 11.90 21.20;c000 0.00 12.60;c002 25.0 30.0,24.83\n'
          + 'N11GT,0KZ7,Stairs,6,7,Yes,"Someone walks.",,"Walks.",,18.33\n', crlf=True)
    return tmp_path


def test_charades_quoted_fields_and_empty_actions(tmp_path):
    root = charades_root(tmp_path)
    ann = read_annotations("charades", root, CHARADES, "train")
    assert ann.class_names[1] == "Putting clothes somewhere"
    first, second = ann.samples
    assert (first.id, first.video, first.label) == ("46GP8", "Charades_v1_480/46GP8.mp4", (0, 2))
    assert first.meta["segments"] == [(2, 11.9, 21.2), (0, 0.0, 12.6), (2, 25.0, 30.0)]
    assert first.meta["length"] == pytest.approx(24.83)
    assert (second.id, second.label, second.label_str()) == ("N11GT", (), "")
    assert first.label_str() == "0;2"


def test_charades_bad_action_and_unknown_class(tmp_path):
    root = charades_root(tmp_path)
    write(root / "Charades_v1_test.csv", CHARADES_HEADER + 'AAAAA,s,k,1,1,Yes,"x",,"y",c001 1.0,3.0\n')
    with pytest.raises(AnnotationError, match=r"Charades_v1_test.csv:2: action 'c001 1.0'"):
        read_annotations("charades", root, CHARADES, "test")
    write(root / "Charades_v1_test.csv", CHARADES_HEADER + 'AAAAA,s,k,1,1,Yes,"x",,"y",c001 1 2;c157 0 1,3.0\n')
    with pytest.raises(AnnotationError, match=r"Charades_v1_test.csv:2: class 'c157'"):
        read_annotations("charades", root, CHARADES, "test")


def test_charades_pyslowfast_frame_lists(tmp_path):
    root = charades_root(tmp_path)
    write(root / "frame_lists/val.csv",
          "original_vido_id video_id frame_id path labels\n"
          '46GP8 0 0 46GP8/46GP8-000001.jpg ""\n'
          '46GP8 0 1 46GP8/46GP8-000002.jpg "2"\n'
          '46GP8 0 2 46GP8/46GP8-000003.jpg "0,2"\n'
          'N11GT 1 0 N11GT/N11GT-000001.jpg ""\n')
    ds = {**CHARADES, "files": {**CHARADES["files"], "test": "frame_lists/val.csv"}}
    with pytest.raises(ConfigError, match="frame_fps"):  # a frame folder's rate must be stated
        read_annotations("charades", root, ds, "test")
    ds = {**ds, "video_dir": "Charades_v1_rgb", "frame_fps": 24}
    ann = read_annotations("charades", root, ds, "test")
    assert [(s.id, s.label, s.meta["num_frames"]) for s in ann.samples] == [("46GP8", (0, 2), 3), ("N11GT", (), 1)]
    assert ann.samples[0].video == "Charades_v1_rgb/46GP8"  # the 24 fps frame folder
    assert ann.samples[0].meta["segments"] == [(0, 2 / 24, 2 / 24), (2, 1 / 24, 2 / 24)]
    write(root / "frame_lists/val.csv", "original_vido_id video_id frame_id path labels\n46GP8 0 0 p \"7\"\n")
    with pytest.raises(AnnotationError, match=r"val.csv:2: label 7 is out of range"):
        read_annotations("charades", root, ds, "test")


# --- HMDB51 ---------------------------------------------------------------------------------------

HMDB = {"name": "hmdb51", "files": {"splits": "testTrainMulti_7030_splits", "split_id": 1}, "video_dir": "hmdb51",
        "source": "serre-lab"}


def test_hmdb51_split_codes_and_sorted_classes(tmp_path):
    d = tmp_path / "testTrainMulti_7030_splits"
    write(d / "wave_test_split1.txt", "wave_a.avi 1 \nwave_b.avi 2 \nwave_c.avi 0 \n", crlf=True)
    write(d / "brush_hair_test_split1.txt", "April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 \nbh_b.avi 2 \n")
    write(d / "wave_test_split2.txt", "wave_a.avi 2 \n")
    train = read_annotations("hmdb51", tmp_path, HMDB, "train")
    assert train.class_names == ["brush_hair", "wave"]
    assert [(s.video, s.label) for s in train.samples] == [
        ("hmdb51/brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi", 0), ("hmdb51/wave/wave_a.avi", 1)]
    test = read_annotations("hmdb51", tmp_path, HMDB, "test")
    assert [s.id for s in test.samples] == ["bh_b", "wave_b"]
    split2 = read_annotations("hmdb51", tmp_path, {**HMDB, "files": {**HMDB["files"], "split_id": 2}}, "test")
    assert [s.id for s in split2.samples] == ["wave_a"]
    assert required_files("hmdb51", HMDB, "train") == ["testTrainMulti_7030_splits"]
    write(d / "wave_test_split1.txt", "wave_a.avi 1\nwave_b.avi 4\n")
    with pytest.raises(AnnotationError, match=r"wave_test_split1.txt:2: expected '<video>.avi <0\|1\|2>'"):
        read_annotations("hmdb51", tmp_path, HMDB, "train")


# --- Diving48 -------------------------------------------------------------------------------------

DIVING = {"name": "diving48", "files": {"train": "Diving48_V2_train.json", "test": "Diving48_V2_test.json"},
          "video_dir": "rgb", "video_ext": ".mp4", "source": "svcl"}


def test_diving48_json_and_vocab(tmp_path):
    write(tmp_path / "Diving48_V2_train.json", json.dumps([
        {"vid_name": "-mmq0PT-u8k_00155", "label": 1, "start_frame": 0, "end_frame": 76},
        {"vid_name": "_8Vy3dlHg2w_00000", "label": 0, "start_frame": 10, "end_frame": 50}]))
    vocab = [["Back", "15som", "05Twis", "FREE"], ["Back", "15som", "15Twis", "FREE"]]
    write(tmp_path / "Diving48_vocab.json", json.dumps(vocab))
    ann = read_annotations("diving48", tmp_path, DIVING, "train")
    assert [(s.video, s.label, s.meta) for s in ann.samples] == [
        ("rgb/-mmq0PT-u8k_00155.mp4", 1, {"start_frame": 0, "end_frame": 76}),
        ("rgb/_8Vy3dlHg2w_00000.mp4", 0, {"start_frame": 10, "end_frame": 50})]
    ds = {**DIVING, "files": {**DIVING["files"], "classes": "Diving48_vocab.json"}}
    names = read_annotations("diving48", tmp_path, ds, "train").class_names
    assert names == ["Back 15som 05Twis FREE", "Back 15som 15Twis FREE"]
    write(tmp_path / "Diving48_V2_test.json", json.dumps([{"vid_name": "a", "label": 0}, {"vid_name": "b"}]))
    with pytest.raises(AnnotationError, match=r"Diving48_V2_test.json: entry #2 lacks"):
        read_annotations("diving48", tmp_path, DIVING, "test")


# --- NTU RGB+D 60 ---------------------------------------------------------------------------------

NTU = {"name": "ntu60", "files": {"train": "nturgb+d_rgb", "test": "nturgb+d_rgb"}, "video_dir": "nturgb+d_rgb",
       "source": "rose1"}


def test_ntu60_cross_subject_from_folder_listing(tmp_path):
    d = tmp_path / "nturgb+d_rgb"
    d.mkdir()
    for name in ("S001C001P001R001A001_rgb.avi", "S001C002P003R002A060_rgb.avi", "S017C003P038R001A023_rgb.avi",
                 "S018C001P042R001A061_rgb.avi", "S001C001P002R001A005_rgb.avi", "README.txt"):
        (d / name).write_bytes(b"")
    train = read_annotations("ntu60", tmp_path, NTU, "train")
    assert [(s.video, s.label) for s in train.samples] == [
        ("nturgb+d_rgb/S001C001P001R001A001_rgb.avi", 0), ("nturgb+d_rgb/S001C001P002R001A005_rgb.avi", 4),
        ("nturgb+d_rgb/S017C003P038R001A023_rgb.avi", 22)]
    assert train.samples[0].id == "S001C001P001R001A001" and train.samples[2].meta["performer"] == 38
    test = read_annotations("ntu60", tmp_path, NTU, "test")
    assert [(s.id, s.label) for s in test.samples] == [("S001C002P003R002A060", 59)]
    assert [vid for vid, _ in test.skipped] == ["S018C001P042R001A061"]  # an NTU-120 action


def test_ntu60_from_a_list_file(tmp_path):
    write(tmp_path / "ntu_all.txt", "S001C001P001R001A010_rgb.avi\nS001C001P003R001A011_rgb.avi\nbogus.avi\n")
    ds = {**NTU, "files": {"train": "ntu_all.txt", "test": "ntu_all.txt"}}
    with pytest.raises(AnnotationError, match=r"ntu_all.txt:3: 'bogus.avi' is not an NTU name"):
        read_annotations("ntu60", tmp_path, ds, "train")
    write(tmp_path / "ntu_all.txt", "S001C001P001R001A010_rgb.avi\nS001C001P003R001A011_rgb.avi\n")
    assert [(s.video, s.label) for s in read_annotations("ntu60", tmp_path, ds, "test").samples] == [
        ("nturgb+d_rgb/S001C001P003R001A011_rgb.avi", 10)]
    with pytest.raises(MissingFileError, match="video folder or list"):
        read_annotations("ntu60", tmp_path / "nowhere", NTU, "train")


# --- EPIC-KITCHENS-100 verbs ----------------------------------------------------------------------

EK = {"name": "ek100", "files": {"train": "EPIC_100_train.csv", "test": "EPIC_100_validation.csv"}, "video_dir": ".",
      "source": "epic-kitchens"}
EK_HEADER = ("narration_id,participant_id,video_id,narration_timestamp,start_timestamp,stop_timestamp,start_frame,"
             "stop_frame,narration,verb,verb_class,noun,noun_class,all_nouns,all_noun_classes\n")


def test_ek100_verb_segments(tmp_path):
    write(tmp_path / "EPIC_100_train.csv", EK_HEADER
          + "P01_01_0,P01,P01_01,00:00:01.089,00:00:00.14,00:00:03.37,8,202,open door,open,3,door,3,['door'],[3]\n"
          + "P01_01_1,P01,P01_01,00:00:02.629,00:00:04.37,00:00:06.17,262,370,\"turn on light, then wait\",turn-on,6,"
            "light,114,\"['light', 'switch']\",\"[114, 9]\"\n", crlf=True)
    ann = read_annotations("ek100_verb", tmp_path, EK, "train")
    assert [(s.id, s.video, s.label) for s in ann.samples] == [
        ("P01_01_0", "P01/videos/P01_01.MP4", 3), ("P01_01_1", "P01/videos/P01_01.MP4", 6)]
    assert ann.samples[1].meta["start_frame"] == 262 and ann.samples[1].meta["stop_frame"] == 370
    assert ann.samples[1].meta["narration"] == "turn on light, then wait"
    write(tmp_path / "EPIC_100_validation.csv", EK_HEADER + "P02_01_0,P02,P02_01,a,b,c,10,20,x,take,x,y,1,[],[]\n")
    with pytest.raises(AnnotationError, match=r"EPIC_100_validation.csv:2: verb_class 'x' is not an integer"):
        read_annotations("ek100_verb", tmp_path, EK, "test")
    write(tmp_path / "EPIC_100_validation.csv", "narration_id,participant_id,video_id\nP02_01_0,P02,P02_01\n")
    with pytest.raises(AnnotationError, match=r"EPIC_100_validation.csv:1: header lacks column\(s\) start_frame"):
        read_annotations("ek100_verb", tmp_path, EK, "test")


# --- generic path/label lists ---------------------------------------------------------------------

PL = {"name": "mini_ssv2", "files": {"train": "train.txt", "test": "test.txt"}, "video_dir": "videos", "source": "x"}


def test_path_label_line_shapes(tmp_path):
    write(tmp_path / "train.txt",
          "clips/a.mp4;3\n"
          "clips/b.mp4 4\n"
          "frames/c 120 5\n"
          "frames/d 1 300 6\n"
          "peeling apples/erjpP2MAlOQ_000001_000011 7\n"
          "frames/e;1;90;8\n", crlf=True)
    ann = read_annotations("path_label", tmp_path, PL, "train")
    assert [(s.video, s.label) for s in ann.samples] == [
        ("videos/clips/a.mp4", 3), ("videos/clips/b.mp4", 4), ("videos/frames/c", 5), ("videos/frames/d", 6),
        ("videos/peeling apples/erjpP2MAlOQ_000001_000011", 7), ("videos/frames/e", 8)]
    assert ann.samples[2].meta == {"num_frames": 120}
    assert ann.samples[3].meta == {"start_frame": 1, "end_frame": 300}
    assert ann.samples[0].id == "clips/a"
    with_ext = read_annotations("path_label", tmp_path, {**PL, "video_ext": "webm"}, "train")
    assert with_ext.samples[0].video == "videos/clips/a.webm" and with_ext.samples[2].video == "videos/frames/c.webm"
    write(tmp_path / "test.txt", "clips/a.mp4 3\nclips/b.mp4\n")
    with pytest.raises(AnnotationError, match=r"test.txt:2: expected 'path label'"):
        read_annotations("path_label", tmp_path, PL, "test")
    write(tmp_path / "test.txt", "clips/a.mp4;x\n")
    with pytest.raises(AnnotationError, match=r"test.txt:1: label / frame columns must be integers"):
        read_annotations("path_label", tmp_path, PL, "test")


def test_path_label_class_file_bounds_labels(tmp_path):
    write(tmp_path / "classes.txt", "pick leg\nattach leg\n")
    write(tmp_path / "test.txt", "v1.mp4 1\nv2.mp4 2\n")
    ds = {**PL, "files": {**PL["files"], "classes": "classes.txt"}}
    with pytest.raises(AnnotationError, match=r"test.txt:2: label 2 is out of range \(only 2 classes\)"):
        read_annotations("path_label", tmp_path, ds, "test")
