"""docs/PROTOCOL.md is the project's protocol page: every section a help text cites exists, every task is
covered, and its value tables say what the task files say."""

import re
from pathlib import Path

import pytest

from severe_bench.registry import get_task, list_task_ids

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
SECTIONS = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", DOC, flags=re.M))


def _cited_sections():
    files = [*REPO.joinpath("severe_bench").rglob("*.py"), *REPO.joinpath("tasks").glob("*.yaml"),
             REPO / "checkpoints.yaml", REPO / "README.md", *REPO.joinpath("docs").glob("*.md")]
    for path in files:
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "PROTOCOL" in line and path.name != "PROTOCOL.md":
                for sec in re.findall(r"§\s*(\d+(?:\.\d+)?)", line):
                    yield f"{path.relative_to(REPO)}:{i}", sec.rstrip(".")


def test_section_numbers_are_unique():
    numbers = re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", DOC, flags=re.M)
    assert len(numbers) == len(set(numbers)), sorted(n for n in numbers if numbers.count(n) > 1)


def test_every_cited_section_exists():
    cited = list(_cited_sections())
    assert len(cited) > 20
    missing = [(where, sec) for where, sec in cited if sec not in SECTIONS]
    assert not missing, f"PROTOCOL.md has no section for: {missing}"


def test_every_task_is_covered():
    absent = [t for t in list_task_ids() if f"`{t}`" not in DOC and not re.search(rf"[|,] {t}[ ,]", DOC)]
    assert not absent, f"PROTOCOL.md does not mention {absent}"


def _table_rows(heading: str) -> list[list[str]]:
    body = DOC.split(heading, 1)[1].split("\n#", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in body.splitlines()
            if line.startswith("|") and not line.startswith("|---")]
    return rows[1:]  # without the header


def _ints(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", text)]


def test_schedule_table_matches_the_task_files():
    rows = _table_rows("### 3.1 Schedules")
    assert len(rows) >= 5
    for task_cell, passes, clips, milestones, *_ in rows:
        for tid in [t.strip() for t in task_cell.split(",")]:
            sched = get_task(tid).protocol["schedule"]
            assert sched["passes"] == int(passes) and sched["clips_per_video"] == int(clips), tid
            assert sched["milestones"] == _ints(milestones.split("(")[0]), tid


def test_linear_table_matches_the_task_files():
    rows = _table_rows("## 4. Linear evaluation")
    assert [r[0] for r in rows] == ["ucf101_linear", "gym99_linear", "ntu60_linear", "ssv2_linear",
                                    "ek100_verb_linear"]
    for tid, frames, batch, lr, passes_clips, milestones, _ in rows:
        p = get_task(tid).protocol
        assert (p["input"]["frames"], p["batch_size"], p["optimizer"]["lr"]) == (int(frames), int(batch), float(lr))
        assert [p["schedule"]["passes"], p["schedule"]["clips_per_video"]] == _ints(passes_clips)
        assert p["schedule"]["milestones"] == _ints(milestones) and p["schedule"]["gamma"] == 0.3


@pytest.mark.parametrize("row", range(3))
def test_scratch_table_matches_the_registry(row):
    from severe_bench.checkpoints.registry import load_registry
    from severe_bench.engine.runner import for_checkpoint

    tasks_cell, passes, milestones, wd, _ = _table_rows("### 3.4 The scratch")[row]
    info = {"name": "scratch", "overrides": load_registry().scratch_overrides}
    for tid in [t.strip() for t in tasks_cell.split(",")]:
        p = for_checkpoint(get_task(tid), info)[0].protocol
        assert p["schedule"]["passes"] == _ints(passes)[0] and p["schedule"]["milestones"] == _ints(milestones)
        assert p["optimizer"]["weight_decay"] == float(wd), tid
