"""`severe data list` / `severe data check` on small hand-written dataset roots, through the real task registry."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from click.testing import CliRunner

from severe_bench.cli import cli, main

UCF_TRAIN = ["ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1", "HandstandPushups/v_HandStandPushups_g08_c01.avi 2",
             "YoYo/v_YoYo_g09_c02.avi 3"]
UCF_TEST = ["YoYo/v_YoYo_g01_c01.avi", "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def ucf_root(tmp_path: Path) -> Path:
    root = tmp_path / "ucf"
    write(root / "ucfTrainTestlist/classInd.txt", "1 ApplyEyeMakeup\r\n2 HandstandPushups\r\n3 YoYo\r\n")
    write(root / "ucfTrainTestlist/trainlist01.txt", "\r\n".join(UCF_TRAIN) + "\r\n")
    write(root / "ucfTrainTestlist/testlist01.txt", "\r\n".join(UCF_TEST) + "\r\n")
    return root


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_list_csv_ucf101(tmp_path):
    root = ucf_root(tmp_path)
    res = run("data", "list", "ucf101", "--root", str(root), "--split", "train", "--format", "csv")
    assert res.exit_code == 0, res.output
    rows = list(csv.reader(io.StringIO(res.output)))
    assert rows == [["video", "label"],
                    ["UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "0"],
                    ["UCF-101/HandstandPushups/v_HandStandPushups_g08_c01.avi", "1"],
                    ["UCF-101/YoYo/v_YoYo_g09_c02.avi", "2"]]
    res = run("data", "list", "ucf101", "--root", str(root), "--split", "test")
    assert [r[1] for r in csv.reader(io.StringIO(res.output))][1:] == ["2", "0"]


def test_list_table(tmp_path):
    root = ucf_root(tmp_path)
    res = run("data", "list", "ucf101", "--root", str(root), "--split", "test", "--format", "table")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].split() == ["video", "label"]
    assert lines[2].split() == ["UCF-101/YoYo/v_YoYo_g01_c01.avi", "2"]
    assert len(lines) == 2 + len(UCF_TEST)


def test_list_applies_the_fx_s1_label_filter(tmp_path):
    root = tmp_path / "gym"
    write(root / "annotations/gym99_val.txt",
          "aaa_E_000001_000002_A_0001_0002 5\n"
          "bbb_E_000001_000002_A_0001_0002.avi 6\n"
          "ccc_E_000001_000002_A_0001_0002 16\n"
          "ddd_E_000001_000002_A_0001_0002 17\n")
    res = run("data", "list", "fx_s1", "--root", str(root), "--split", "test")
    assert res.exit_code == 0, res.output
    assert list(csv.reader(io.StringIO(res.output)))[1:] == [
        ["subactions/bbb_E_000001_000002_A_0001_0002.mp4", "0"],
        ["subactions/ccc_E_000001_000002_A_0001_0002.mp4", "10"]]


def test_list_multilabel_and_counting_labels(tmp_path):
    root = tmp_path / "charades"
    write(root / "Charades_v1_classes.txt", "c000 Holding some clothes\nc001 Putting clothes somewhere\n"
                                            "c002 Taking some clothes from somewhere\n")
    write(root / "Charades_v1_train.csv",
          "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"
          '46GP8,HR43,Kitchen,6,7,Yes,"Cooks, then eats.",food,"x",c002 1.0 2.0;c000 0.5 3.0,24.8\n'
          'N11GT,0KZ7,Stairs,6,7,Yes,"Walks.",,"y",,18.3\n')
    res = run("data", "list", "charades", "--root", str(root))
    assert list(csv.reader(io.StringIO(res.output)))[1:] == [
        ["Charades_v1_480/46GP8.mp4", "0;2"], ["Charades_v1_480/N11GT.mp4", ""]]

    rep = tmp_path / "ucfrep"
    (rep / "annotations/val").mkdir(parents=True)
    scipy.io.savemat(str(rep / "annotations/val/v_JumpingJack_g01_c01.mat"), {"label": {
        "duration": np.array([[80.0]]), "start_frame": np.array([[2.0]]), "end_frame": np.array([[71.0]]),
        "temporal_bound": np.array([[2.0], [20.0], [38.0], [55.0], [71.0]]),
        "offset_next_estimate": np.zeros((1, 70)), "offset_pre_estimate": np.zeros((1, 70))}})
    res = run("data", "list", "ucfrep", "--root", str(rep), "--split", "test")
    assert list(csv.reader(io.StringIO(res.output)))[1:] == [["UCF-101/JumpingJack/v_JumpingJack_g01_c01.avi", "4"]]


def test_check_names_missing_videos_then_passes(tmp_path):
    root = ucf_root(tmp_path)
    res = run("data", "check", "ucf101", "--root", str(root), "--json")
    assert res.exit_code != 0
    rep = json.loads(res.output)
    assert rep["ok"] is False and rep["num_classes"] == 101
    assert rep["splits"]["train"]["samples"] == 3 and rep["splits"]["test"]["samples"] == 2
    assert rep["splits"]["train"]["classes_seen"] == 3
    assert rep["splits"]["test"]["missing_videos"] == sorted(
        str(root / "UCF-101" / line.split()[0]) for line in UCF_TEST)
    assert "crcv.ucf.edu" in rep["source"]
    for line in UCF_TRAIN + UCF_TEST:
        write(root / "UCF-101" / line.split()[0], "")
    res = run("data", "check", "ucf101", "--root", str(root))
    # every listed video is there now, but 3 + 2 lines are not UCF101 split 1's 9537 + 3783
    assert res.exit_code == 1, res.output
    assert "[train] samples: 3, classes seen: 3" in res.output and "missing videos" not in res.output
    assert "differs: train: 3 videos listed, UCF101 split 1 (trainlist01 / testlist01) has 9537 (-9534)" in res.output


def test_check_names_missing_annotation_files_and_source(tmp_path):
    root = ucf_root(tmp_path)
    (root / "ucfTrainTestlist/testlist01.txt").unlink()
    res = run("data", "check", "ucf101", "--root", str(root), "--show", "1")
    assert res.exit_code == 1
    assert f"missing annotation file: {root / 'ucfTrainTestlist/testlist01.txt'}" in res.output
    assert "missing videos: 3 of 3" in res.output and "... and 2 more" in res.output
    assert "https://www.crcv.ucf.edu/data/UCF101.php" in res.output


def test_check_reports_a_malformed_file_with_its_line(tmp_path):
    root = ucf_root(tmp_path)
    write(root / "ucfTrainTestlist/trainlist01.txt", UCF_TRAIN[0] + "\nBowling/v_Bowling_g01_c01.avi 4\n")
    res = run("data", "check", "ucf101", "--root", str(root), "--json")
    assert res.exit_code == 1
    err = json.loads(res.output)["splits"]["train"]["error"]
    assert "trainlist01.txt:2" in err and "Bowling" in err


def test_list_error_prints_file_and_line_without_traceback(tmp_path, capsys):
    root = ucf_root(tmp_path)
    write(root / "ucfTrainTestlist/testlist01.txt", "YoYo/v_YoYo_g01_c01.avi\nBowling/v_Bowling_g01_c01.avi\n")
    with pytest.raises(SystemExit) as exc:
        main(["data", "list", "ucf101", "--root", str(root), "--split", "test"])
    assert exc.value.code != 0
    err = capsys.readouterr().err
    assert "testlist01.txt:2" in err and "Traceback" not in err
