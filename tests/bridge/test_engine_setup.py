"""Set Up Engine without Blender (``bridge/engine_setup.py``): the plan (torch build, indexes,
wheel folder), pip's progress, one sentence per failure, cancel and failure leaving nothing, and
one real set-up into a temporary folder from this machine's Python 3.11, then a job through it."""

from __future__ import annotations

import json
import sys
import time
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from meshlift.bridge import engine_setup
from meshlift.bridge.engine_setup import EngineSetup, PipProgress, plan_setup
from meshlift.bridge.errors import UserError
from meshlift.bridge.worker_process import WorkerProcess

from tests.support import ROOT, alive, fake_base_python, write_disc_dataset


def requirement_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def test_shipped_requirements_are_the_pyproject_dependencies():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert requirement_lines(engine_setup.REQUIREMENTS) == dependencies
    assert engine_setup.REQUIREMENTS.is_relative_to(ROOT / "engine")  # inside the extension zip


def test_the_plan_picks_the_torch_build(tmp_path):
    common = {"base_python": sys.executable, "target": tmp_path / "env", "log_file": tmp_path / "setup.log"}
    version = engine_setup.pinned(engine_setup.REQUIREMENTS, "torch")
    cpu = plan_setup(**common, platform="linux", driver=None)
    assert (cpu.build, cpu.torch_requirement) == ("cpu", f"torch=={version}+cpu")
    assert cpu.torch_index == "https://download.pytorch.org/whl/cpu" and cpu.pip_sources() == []
    gpu = plan_setup(**common, platform="linux", driver="570.86.15")
    assert (gpu.build, gpu.torch_requirement) == ("cuda", f"torch=={version}+{engine_setup.CUDA_BUILD}")
    assert gpu.torch_index.endswith(f"/whl/{engine_setup.CUDA_BUILD}")
    assert plan_setup(**common, platform="win32", driver="572.16", build="cpu").build == "cpu"  # the override wins
    mac = plan_setup(**common, platform="darwin", driver="x")
    assert (mac.build, mac.torch_requirement, mac.torch_index) == ("cpu", f"torch=={version}", None)
    with pytest.raises(UserError, match="no CUDA build for macOS"):
        plan_setup(**common, platform="darwin", build="cuda")
    studio = plan_setup(**common, platform="linux", driver=None, torch_index="https://mirror.example/torch",
                        extra_index="https://mirror.example/simple", wheel_folder=str(tmp_path))
    assert studio.torch_index == "https://mirror.example/torch"
    assert studio.pip_sources() == ["--extra-index-url", "https://mirror.example/simple", "--find-links", str(tmp_path)]
    offline = plan_setup(**common, driver=None, wheel_folder=str(tmp_path), offline=True)
    assert offline.pip_sources() == ["--no-index", "--find-links", str(tmp_path)]
    torch_step = next(s for s in engine_setup.steps(offline) if s.key == "torch")
    assert "--index-url" not in torch_step.argv(False)  # offline: the wheel folder only
    with pytest.raises(UserError, match="needs a wheel folder"):
        plan_setup(**common, offline=True)
    with pytest.raises(UserError, match=r"base Python '.*missing' does not exist.*Base Python"):
        plan_setup(**{**common, "base_python": str(tmp_path / "missing")})


PIP_OUTPUT = """\
Looking in indexes: https://download.pytorch.org/whl/cpu
Collecting torch==2.13.0+cpu
  Downloading https://download.pytorch.org/whl/cpu/torch-2.13.0%2Bcpu-cp311-cp311-manylinux_2_28_x86_64.whl (190.4 MB)
Progress 47600000 of 190400000
Progress 95200000 of 190400000
Collecting filelock (from torch==2.13.0+cpu)
  Downloading filelock-3.20.0-py3-none-any.whl.metadata (2.1 kB)
Requirement already satisfied: typing-extensions>=4.10.0 in ./env/lib/python3.11/site-packages
Installing collected packages: filelock, torch
Successfully installed filelock-3.20.0 torch-2.13.0+cpu
"""


def test_pip_progress_reads_what_pip_does():
    progress = PipProgress()
    seen = []
    for line in PIP_OUTPUT.splitlines():
        progress.feed(line)
        seen.append((progress.detail, progress.share))
    details = [detail for detail, _ in seen]
    assert "downloading torch-2.13.0+cpu (190.4 MB)" in details
    assert "downloading torch-2.13.0+cpu (190.4 MB): 50%" in details
    assert "collecting filelock" in details and details[-1] == "installing 2 packages"
    shares = [share for _, share in seen]
    assert shares == sorted(shares) and 0 < shares[3] < shares[4] < 0.8 and shares[-1] == 0.8


@pytest.mark.parametrize(("output", "sentence"), [
    (["WARNING: Retrying (Retry(total=4)) after connection broken by 'NewConnectionError(\"Failed to establish a "
      "new connection: [Errno -3] Temporary failure in name resolution\")'",
      "ERROR: Could not find a version that satisfies the requirement torch==2.13.0+cpu (from versions: none)"],
     "Could not reach https://download.pytorch.org/whl/cpu: check the network connection"),
    (["ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device"],
     "The disk is full: installing PyTorch needs more free space in"),
    (["Collecting torch==2.13.0+cpu", "ERROR: No matching distribution found for torch==2.13.0+cpu"],
     "Installing PyTorch failed: ERROR: No matching distribution found for torch==2.13.0+cpu"),
])
def test_failures_are_one_sentence(tmp_path, output, sentence):
    plan = plan_setup(sys.executable, tmp_path / "env", tmp_path / "log", platform="linux", driver=None)
    step = next(s for s in engine_setup.steps(plan) if s.key == "torch")
    message = engine_setup.failure_sentence(step, output, 1, plan)
    assert message.startswith(sentence) and "\n" not in message


def run_fake(tmp_path: Path, python: Path, cancel_when: str | None = None) -> EngineSetup:
    plan = plan_setup(str(python), tmp_path / "env", tmp_path / "setup.log", platform="linux", driver=None)
    setup = EngineSetup(plan).start()
    deadline = time.monotonic() + 30
    while setup.poll() == "running" and time.monotonic() < deadline:
        if cancel_when is not None and (tmp_path / cancel_when).exists():
            pid = setup._process.pid
            started = time.monotonic()
            setup.cancel()
            assert time.monotonic() - started < 5 and not alive(pid)
        time.sleep(0.02)
    return setup


def test_unsupported_python_is_refused_in_one_sentence(tmp_path):
    setup = run_fake(tmp_path, fake_base_python(tmp_path, version="3.13.1"))
    assert setup.state == "failed"
    assert "is Python 3.13.1, but the engine needs Python 3.11: set 'Base Python'" in setup.message
    assert not (tmp_path / "env").exists()


def test_a_failed_pip_step_leaves_no_half_environment(tmp_path):
    pip = 'echo "Collecting torch"; echo "ERROR: No matching distribution found for torch"; exit 1'
    setup = run_fake(tmp_path, fake_base_python(tmp_path, env_python=pip))
    assert setup.state == "failed", setup.message
    assert setup.message == "Installing PyTorch failed: ERROR: No matching distribution found for torch"
    assert not (tmp_path / "env").exists()
    log = (tmp_path / "setup.log").read_text()  # the log keeps every step's output and the sentence
    assert "== installing PyTorch:" in log and "(optional step failed, going on" in log and setup.message in log


def test_cancel_stops_the_step_and_deletes_the_environment(tmp_path):
    setup = run_fake(tmp_path, fake_base_python(tmp_path, on_venv=f'touch "{tmp_path}/venv-started"; sleep 60'),
                     cancel_when="venv-started")
    assert setup.state == "cancelled" and setup.message.startswith("Set-up cancelled")
    assert not (tmp_path / "env").exists()


def test_not_enough_disk_space_is_said_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setitem(engine_setup.FREE_SPACE, "cpu", 2**60)
    plan = plan_setup(str(fake_base_python(tmp_path)), tmp_path / "env", tmp_path / "log", platform="linux",
                      driver=None)
    with pytest.raises(UserError, match=r"Not enough free disk space in .*: the engine needs about"):
        EngineSetup(plan).start()
    assert not (tmp_path / "env").exists()


def test_real_setup_then_a_job_through_the_new_interpreter(tmp_path):
    """From this machine's Python 3.11 into a temporary folder: pip takes the local CPU wheel of
    torch (the plan pins ``+cpu``: a CUDA build cannot be taken) and the requirements from the
    package index; then the new interpreter runs a small hull job as the add-on would."""
    plan = plan_setup(sys.executable, tmp_path / "env", tmp_path / "setup.log", build="cpu")
    plan = replace(plan, torch_index=None)  # pip's own sources: this machine's wheel folder holds the CPU build
    setup = EngineSetup(plan).start()
    stages = set()
    deadline = time.monotonic() + 900
    while setup.poll() == "running" and time.monotonic() < deadline:
        stages.add(setup.progress.stage)
        time.sleep(0.2)
    assert setup.state == "done", setup.message + "\n" + (tmp_path / "setup.log").read_text()[-3000:]
    assert {"installing PyTorch", "installing the engine's requirements"} <= stages
    info = engine_setup.environment_info(plan.target)
    assert info is not None and info["torch"].endswith("+cpu") and info["build"] == "cpu"
    site = next((plan.target / "lib").glob("python3.*/site-packages"))
    assert not list(site.glob("nvidia*")), "a CUDA build of torch was installed"
    dataset = write_disc_dataset(tmp_path / "discs", count=6)
    job = {"dataset": str(dataset), "out": str(tmp_path / "out"), "method": "hull", "preset": "fast",
           "options": {"resolution": 32, "faces": 500, "texture_size": 64}}
    outcome = WorkerProcess(str(plan.python), job, tmp_path / "job.json").start().wait(timeout=300)
    assert outcome is not None and outcome.status == "done", outcome
    assert Path(outcome.result["files"]["obj"]).is_file() and json.loads(Path(
        outcome.result["files"]["report"]).read_text())["mesh"]["faces"] > 0
    engine_setup.remove_environment(plan.target)
    assert not plan.target.exists()
