"""engine/timing.py: the wall-time record a resumed run sums over its invocations."""

import json

from severe_bench.engine.timing import RunClock


def test_a_fresh_run_ignores_a_stale_record_and_a_resumed_one_adds_to_it(tmp_path):
    path = tmp_path / "timing.json"
    path.write_text(json.dumps({"wall_time_s": 99.0, "invocations": [
        {"started_at": "2026-12-04T10:00:00Z", "start_pass": 0, "seconds": 99.0, "device": "cuda:0"}]}))
    fresh = RunClock(path, resuming=False, device="cpu").record()
    assert [i["device"] for i in fresh["invocations"]] == ["cpu"] and fresh["wall_time_s"] < 99.0
    resumed = RunClock(path, resuming=True, device="cpu")
    resumed.resumed_from(3)
    resumed.save()
    doc = json.loads(path.read_text())
    assert [(i["start_pass"], i["device"]) for i in doc["invocations"]] == [(0, "cuda:0"), (3, "cpu")]
    assert doc["wall_time_s"] == round(99.0 + doc["invocations"][1]["seconds"], 2) >= 99.0


def test_an_older_or_damaged_record_is_read_as_far_as_it_goes(tmp_path):
    path = tmp_path / "timing.json"
    path.write_text(json.dumps({"wall_time_s": 12.5}))  # written before invocations were listed
    assert RunClock(path, resuming=True, device="cpu").record()["invocations"][0] == {
        "started_at": None, "start_pass": None, "seconds": 12.5, "device": None}
    for damaged in ("{\"wall_time_s\": ", "[]", json.dumps({"wall_time_s": -1}),
                    json.dumps({"invocations": [{"seconds": "nan"}]})):
        path.write_text(damaged)
        assert len(RunClock(path, resuming=True, device="cpu").record()["invocations"]) == 1  # only this invocation


def test_a_non_writing_rank_writes_nothing(tmp_path):
    path = tmp_path / "timing.json"
    RunClock(path, resuming=False, device="cuda:1", enabled=False).save()
    assert not path.exists()
