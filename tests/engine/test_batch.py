"""``python -m engine batch``: many jobs in worker processes, a summary that says which failed and why,
resumable after a kill, stopped cleanly by Ctrl+C, writing nothing outside its output root; the
same batch as tasks on a local Ray cluster."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.batch.runner import BatchSettings, run_batch
from engine.batch.source import read_jobs
from engine.cli import main
from engine.errors import InputError
from tests.support import ROOT, python_that_crashes, write_disc_dataset

# The hull on a coarse grid: each job takes a few seconds, most of it the worker's start-up.
TINY = ["--method", "hull", "--preset", "fast", "--device", "cpu", "-o", "resolution=32", "-o", "faces=500",
        "-o", "texture_size=64"]
DEFAULTS = {"method": "hull", "preset": "fast", "device": "cpu",
            "options": {"resolution": 32, "faces": 500, "texture_size": 64}}
MISSING_IMAGE = "Image not found for frame 2"


def make_source(folder: Path, good: int = 2, broken: bool = True) -> Path:
    """``folder/src`` with ``good`` tiny datasets (disc-a, disc-b, ...) and, if asked, one whose image 2 is missing."""
    source = folder / "src"
    for letter in "abcdefgh"[:good]:
        write_disc_dataset(source / f"disc-{letter}")
    if broken:
        write_disc_dataset(source / "broken")
        (source / "broken" / "train" / "r_2.png").unlink()
    return source


def snapshot(folder: Path, skip: Path) -> dict[str, float]:
    """Every path under ``folder`` but ``skip`` (and what is in it), with its modification time."""
    return {str(path): path.stat().st_mtime for path in folder.rglob("*") if skip not in (path, *path.parents)}


def start_batch(source: Path, root: Path, *args: str, imports: bool = False) -> subprocess.Popen:
    """``python -m engine batch SOURCE --out ROOT ARGS`` from the repository root (``imports``: with
    ``-X importtime``, which lists every module it imports on stderr)."""
    command = [sys.executable, *(["-X", "importtime"] if imports else []), "-m", "engine", "batch", str(source),
               "--out", str(root), *TINY, *args]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def summary(root: Path) -> dict[str, dict]:
    return {row["name"]: row for row in json.loads((root / "summary.json").read_text())["jobs"]}


def workers_of(root: Path) -> list[int]:
    """Processes whose command line names a job file under ``root`` (the batch's workers)."""
    pids, logs = [], str(root / "_logs")
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and logs in (entry / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def check_summary(root: Path) -> None:
    """Two tiny discs done, the broken dataset failed with the loader's sentence, and the files to match."""
    rows = summary(root)
    assert list(rows) == ["broken", "disc-a", "disc-b"]
    assert rows["broken"]["status"] == "failed" and rows["broken"]["faces"] is None
    error = rows["broken"]["error"]
    assert error.startswith(MISSING_IMAGE) and str(root.parent / "src" / "broken") in error
    for name in ("disc-a", "disc-b"):
        assert rows[name]["status"] == "done" and rows[name]["error"] is None and rows[name]["seconds"] > 0
        assert 0 < rows[name]["faces"] <= 500
        assert json.loads((root / name / "report.json").read_text())["mesh"]["faces"] == rows[name]["faces"]
        assert (root / name / f"{name}.obj").is_file() and (root / name / f"{name}.glb").is_file()
        assert "stage: carving" in (root / "_logs" / f"{name}.log").read_text()
    assert not (root / "broken").exists() and MISSING_IMAGE in (root / "_logs" / "broken.log").read_text()
    csv_lines = (root / "summary.csv").read_text().splitlines()
    assert csv_lines[0] == "name,status,seconds,faces,error" and csv_lines[1].startswith("broken,failed,")
    assert not list(root.glob(".*partial*")), "a staging folder was left behind"


def test_batch_runs_every_job_and_says_which_failed_and_why(tmp_path):
    source = make_source(tmp_path)
    before = snapshot(tmp_path, tmp_path / "out")
    process = start_batch(source, tmp_path / "out", imports=True)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, stderr[-3000:]  # one job failed
    root = tmp_path / "out"
    check_summary(root)
    table = stdout.splitlines()
    assert table[0].split() == ["name", "status", "seconds", "faces", "error"]
    assert table[1].startswith("broken") and "failed" in table[1] and MISSING_IMAGE in table[1]
    assert table[-1] == "3 jobs: 2 done, 0 skipped, 1 failed"
    assert snapshot(tmp_path, root) == before, "the batch wrote outside its output root"
    imported = [line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")]
    assert "engine.batch.local" in imported and not [name for name in imported if name.split(".")[0] == "ray"]

    again = start_batch(source, root)  # everything done is skipped; the broken one fails again, alone
    stdout, _ = again.communicate(timeout=300)
    rows = summary(root)
    assert [rows[name]["status"] for name in ("broken", "disc-a", "disc-b")] == ["failed", "skipped", "skipped"]
    assert rows["disc-a"]["faces"] == json.loads((root / "disc-a" / "report.json").read_text())["mesh"]["faces"]
    assert stdout.splitlines()[-1] == "3 jobs: 0 done, 2 skipped, 1 failed"


def test_a_killed_batch_resumes_without_redoing_finished_jobs(tmp_path):
    source = make_source(tmp_path, good=3, broken=False)
    root = tmp_path / "out"
    process = start_batch(source, root, "--jobs", "1")  # one at a time: kill it after the first job
    wait_for(lambda: (root / "summary.json").is_file() and "done" in [r["status"] for r in summary(root).values()])
    process.kill()
    process.communicate(timeout=60)
    first = [name for name, row in summary(root).items() if row["status"] == "done"]
    assert len(first) == 1
    kept = (root / first[0] / "report.json").stat().st_mtime_ns
    wait_for(lambda: not workers_of(root), timeout=20)  # the running worker died with its batch

    again = start_batch(source, root, "--jobs", "1")
    _, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr[-3000:]
    rows = summary(root)
    assert {name: row["status"] for name, row in rows.items()} == {
        name: "skipped" if name == first[0] else "done" for name in ("disc-a", "disc-b", "disc-c")}
    assert (root / first[0] / "report.json").stat().st_mtime_ns == kept
    assert all((root / name / "report.json").is_file() for name in rows)
    assert not list(root.glob(".*partial*"))


def test_ctrl_c_stops_every_job_cleanly(tmp_path):
    source = make_source(tmp_path, good=3, broken=False)
    root = tmp_path / "out"
    process = start_batch(source, root, "--jobs", "2")
    wait_for(lambda: any("stage: " in log.read_text() for log in root.glob("_logs/*.log")))
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr[-3000:]
    assert "interrupted; run the same command again" in stderr and "Traceback" not in stderr
    rows = summary(root)
    assert set(rows) == {"disc-a", "disc-b", "disc-c"}
    stopped = [row for row in rows.values() if row["status"] == "failed"]
    assert stopped and all(row["error"].startswith(("Stopped:", "Not started:")) for row in stopped)
    for name, row in rows.items():
        assert (root / name).exists() == (row["status"] == "done")
    assert not list(root.glob(".*partial*")) and not workers_of(root)


def test_a_crashed_worker_is_retried_and_the_batch_goes_on(tmp_path, monkeypatch, capsys):
    source = make_source(tmp_path, good=1, broken=False)
    write_disc_dataset(source / "crashy")
    root = tmp_path / "out"
    monkeypatch.setattr(sys, "executable", str(python_that_crashes(tmp_path, only="crashy")))
    result = run_batch(read_jobs(source, root, DEFAULTS), root, BatchSettings(retries=2, jobs=2, threads=1))
    records = {record.name: record for record in result.records}
    assert records["disc-a"].status == "done" and records["disc-a"].tries == 1
    crashed = records["crashy"]
    assert crashed.status == "failed" and crashed.tries == 3
    assert crashed.error.startswith("The worker was killed by SIGSEGV before it finished")
    assert "Segmentation fault (simulated)" in crashed.error
    assert (root / "_logs" / "crashy.log").read_text().count("# failed (crashed)") == 3
    assert "crashy: failed" in capsys.readouterr().err


def test_jobs_from_json_lines(tmp_path):
    source = make_source(tmp_path, good=1, broken=False)
    lines = tmp_path / "jobs.jsonl"
    lines.write_text("\n".join([
        json.dumps({"dataset": "src/disc-a", "name": "first", "options": {"faces": 300}}),
        "",
        json.dumps({"command": "reconstruct", "dataset": str(source / "disc-a"), "preset": "balanced"}),
    ]))
    first, second = read_jobs(lines, tmp_path / "out", DEFAULTS)
    assert first.name == "first" and first.job.dataset == str(source / "disc-a")
    assert first.job.out == str(tmp_path / "out" / "first")
    assert first.job.options == {"resolution": 32, "faces": 300, "texture_size": 64}  # per key over the defaults
    assert second.name == "disc-a" and second.job.preset == "balanced" and second.job.method == "hull"


@pytest.mark.parametrize(("lines", "fragment"), [
    (['{"dataset": "a"'], "jobs.jsonl line 1 is not valid JSON"),
    (['{"dataset": "a"}', '{"dataset": "a", "out": "/elsewhere"}'], "jobs.jsonl line 2: a batch job has no 'out'"),
    (['{"dataset": "a", "colour": "red"}'], "jobs.jsonl line 1: Unknown job field(s): colour"),
    (['{"dataset": "x/a"}', '{"dataset": "y/a"}'], "jobs.jsonl line 1 and jobs.jsonl line 2 are both named 'a'"),
    (["", " "], "holds no job"),
])
def test_bad_job_lists_are_one_sentence(tmp_path, lines, fragment):
    (tmp_path / "jobs.jsonl").write_text("\n".join(lines))
    with pytest.raises(InputError, match=re.escape(fragment)):
        read_jobs(tmp_path / "jobs.jsonl", tmp_path / "out", DEFAULTS)


@pytest.mark.parametrize(("args", "fragment"), [
    (["one"], "is one dataset"), (["none"], "does not exist"), ([".", "-o", "colour=red"], "Unknown option 'colour'"),
    ([".", "--ship-files"], "it needs --ray"), ([".", "--retries", "-1"], "--retries must be 0 or more"),
])
def test_bad_batch_arguments_exit_2(tmp_path, capsys, args, fragment):
    write_disc_dataset(tmp_path / "one")
    code = main(["batch", *(str(tmp_path / arg) if i == 0 else arg for i, arg in enumerate(args)),
                 "--out", str(tmp_path / "out")])
    assert code == 2 and fragment in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster of 2 CPUs for this module's Ray tests (its workers import this checkout)."""
    import ray  # the optional extra meshlift[cluster], which scripts/setup.sh installs

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    yield ray
    ray.shutdown()


@pytest.mark.parametrize("ship_files", [False, True], ids=["shared-paths", "shipped-files"])
def test_batch_on_a_ray_cluster(tmp_path, ray_cluster, ship_files):
    source = make_source(tmp_path)
    root = tmp_path / "out"
    before = snapshot(tmp_path, root)
    result = run_batch(read_jobs(source, root, DEFAULTS), root, BatchSettings(ray="auto", ship_files=ship_files))
    assert not result.interrupted
    check_summary(root)
    assert (root / "_logs" / "disc-a.job.json").is_file() != ship_files  # shipped: the job file stayed on the node
    assert snapshot(tmp_path, root) == before


def test_ctrl_c_cancels_the_ray_tasks(tmp_path, ray_cluster):
    import _thread
    import threading

    source = make_source(tmp_path, good=3, broken=False)
    root = tmp_path / "out"

    def interrupt_once_a_job_runs() -> None:
        wait_for(lambda: any("stage: " in log.read_text() for log in root.glob("_logs/*.log")))
        _thread.interrupt_main()  # what Ctrl+C does: KeyboardInterrupt in the main thread

    threading.Thread(target=interrupt_once_a_job_runs, daemon=True).start()
    result = run_batch(read_jobs(source, root, DEFAULTS), root, BatchSettings(ray="auto"))
    assert result.interrupted
    stopped = [record for record in result.records if record.status == "failed"]
    assert stopped and all(record.error.startswith(("Stopped:", "Not started:")) for record in stopped)
    assert {record.name for record in result.records} == {"disc-a", "disc-b", "disc-c"}
    for record in result.records:
        assert (root / record.name).exists() == (record.status == "done")
    wait_for(lambda: not workers_of(root), timeout=20)
    assert not list(root.glob(".*partial*"))
