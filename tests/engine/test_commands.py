"""Every command as careful as ``reconstruct`` (issue 22): ``poses`` writes its folder whole or not
at all and cancels cleanly, ``evaluate`` and a file given as the dataset answer in one sentence,
``methods`` lists every option, messages say what they mean, libraries' log lines stay off the
terminal, and the READMEs' commands run as written."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.cli import build_parser, main
from engine.data.transforms import load_split
from engine.errors import InputError
from engine.method_listing import format_value
from engine.methods import describe_methods
from engine.pipeline import reconstruct
from engine.progress import Progress
from engine.protocol import ReconstructJob
from tests.support import ROOT, run_engine, write_disc_dataset

# A line the terminal may show during a job: a progress bar, one of the engine's own messages, the
# one-line error, or the result (stdout). Anything else is a library talking.
ENGINE_LINE = re.compile(r"^(\s*|.*: +\d+%\|.*\| \d+/\d+ \[[^\]]*\]|\[(info|warning)\] .*|meshlift: .*)$")
GLOG_LINE = re.compile(r"^[IWEF]\d{8} ", re.MULTILINE)
TINY_HULL = ["--method", "hull", "--preset", "fast", "-o", "resolution=32", "-o", "faces=500",
             "-o", "texture_size=64"]


def library_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` (bars redraw with carriage returns) that the engine did not write."""
    return [line for line in re.split(r"[\r\n]", stderr) if not ENGINE_LINE.match(line)]


def photo_folder(folder: Path, datasets: Path, count: int, step: int = 1) -> Path:
    """``count`` of spot-tabletop's photos, ``r_0, r_step, ...``, linked into ``folder`` (no poses)."""
    folder.mkdir()
    for i in range(0, count * step, step):
        (folder / f"r_{i}.jpg").symlink_to(datasets / "spot-tabletop" / "train" / f"r_{i}.jpg")
    return folder


# --- 1. poses: an output folder that appears whole, refusal without --force, clean cancel ---------

def test_poses_refuses_an_existing_output_and_never_replaces_its_photos(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "keep.jpg").write_bytes(b"mine")
    assert main(["poses", str(photos), "--out", str(photos)]) == 2
    assert "already exists; choose another or pass --force to replace it" in capsys.readouterr().err
    assert main(["poses", str(photos), "--out", str(photos), "--force"]) == 2
    assert "holds the input" in capsys.readouterr().err
    assert (photos / "keep.jpg").read_bytes() == b"mine"


@pytest.fixture(scope="module")
def poses_run(tmp_path_factory, datasets):
    """``poses`` on 12 of spot-tabletop's photos (no masks: SfM only), as a user runs it."""
    work = tmp_path_factory.mktemp("poses")
    photos = photo_folder(work / "photos", datasets, 12, step=2)
    out = work / "cameras"
    result = run_engine("poses", str(photos), "--out", str(out), "--masks", "none")
    return result, out


def test_poses_writes_cameras_a_model_and_its_log_but_no_scratch(poses_run):
    result, out = poses_run
    assert result.returncode == 0, result.stderr
    assert "images registered" in result.stdout
    assert {p.name for p in out.iterdir()} <= {"transforms.json", "sparse", "undistorted", "log.txt"}
    assert (out / "sparse" / "0").is_dir() and len(load_split(out)) >= 3  # file paths valid after the rename
    assert not list(out.parent.glob(".cameras.*")), "staging left behind"


def test_poses_keeps_colmap_log_lines_off_the_terminal(poses_run):
    result, out = poses_run
    assert not library_lines(result.stderr), library_lines(result.stderr)[:5]
    log = (out / "log.txt").read_text()
    assert len(GLOG_LINE.findall(log)) > 20 and "meshlift stage: finding cameras" in log


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_poses_cancels_within_a_second_leaving_nothing(tmp_path, datasets, signum):
    photos = photo_folder(tmp_path / "photos", datasets, 60)
    out = tmp_path / "cameras"
    process = subprocess.Popen([sys.executable, "-m", "engine", "poses", str(photos), "--out", str(out)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = ""
    while "finding cameras: features" not in seen:  # COLMAP is extracting features
        assert process.poll() is None, seen
        seen += process.stderr.read(1)
    time.sleep(0.5)
    sent = time.monotonic()
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - sent < 1.5
    assert process.returncode == 130
    assert "Cancelled; nothing was written." in stderr
    assert "Traceback" not in stderr and "received" not in stderr  # no KeyboardInterrupt, no glog stack dump
    assert not out.exists() and not list(tmp_path.glob(".cameras.*"))


# --- 2. evaluate: one sentence and exit 2 -------------------------------------------------------

def test_evaluate_answers_bad_input_in_one_sentence(tmp_path, datasets, capsys):
    spot = str(datasets / "spot")
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, fragment in [
        ([str(tmp_path / "none.obj"), "--dataset", spot], "Mesh not found"),
        ([str(tmp_path), "--dataset", spot], "is a folder; give the mesh file"),
        ([str(datasets / "spot" / "transforms_train.json"), "--dataset", spot], "Cannot read"),
        ([str(datasets / "spot" / "gt_mesh.ply"), "--dataset", str(tmp_path / "none")], "Dataset not found"),
        ([str(datasets / "spot" / "gt_mesh.ply"), "--dataset", str(empty)], "Nothing to score against"),
    ]:
        assert main(["evaluate", *args]) == 2, args
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1 and fragment in captured.err, captured.err


# --- 3. methods: every option, its value in each preset, its doc ---------------------------------

def test_methods_lists_every_option_with_its_presets_values_and_doc(capsys):
    assert main(["methods"]) == 0
    text = capsys.readouterr().out
    flat = " ".join(text.split())
    blocks = dict(zip([m["name"] for m in describe_methods()], text.split("\n\n"), strict=True))
    for method in describe_methods():
        rows = {line.split()[0]: line.split() for line in blocks[method["name"]].splitlines()
                if re.match(r"  \S", line)}  # the table's rows (docs are indented further)
        for name, entry in method["options"].items():
            values = [format_value(preset[name]) for preset in method["presets"].values()]
            assert rows[name][1:1 + len(values)] == values, (method["name"], name)
            assert " ".join(entry["doc"].split()) in flat, (method["name"], name)


# --- 4. a file as the dataset --------------------------------------------------------------------

@pytest.mark.parametrize(("name", "fragment"), [
    ("transforms_test.json", "holds the 'test' views, not the training views"),
    ("gt_mesh.ply", "is a mesh (PLY), not a dataset"),
    ("train/r_0.png", "is one image, not a dataset"),
])
def test_a_file_that_is_not_the_training_split_is_refused_by_name(tmp_path, datasets, capsys, name, fragment):
    out = tmp_path / "out"
    assert main(["reconstruct", str(datasets / "spot" / name), "--out", str(out)]) == 2
    assert fragment in capsys.readouterr().err
    assert not out.exists()


def test_the_training_camera_file_is_a_dataset(tmp_path):
    folder = write_disc_dataset(tmp_path / "d")
    result = reconstruct(ReconstructJob(dataset=str(folder / "transforms_train.json"), out=str(tmp_path / "o"),
                                        method="hull", preset="fast", device="cpu",
                                        options={"resolution": 32, "faces": 500, "texture_size": 64}),
                         Progress(lambda _event: None))
    assert result["report"]["views"] == 6


# --- 5. messages that say what they mean ---------------------------------------------------------

def test_a_view_limit_below_three_says_so(tmp_path):
    folder = write_disc_dataset(tmp_path / "d")
    with pytest.raises(InputError, match="limit of 0 view") as caught:
        load_split(folder, max_views=0)
    assert "has 1 view" not in str(caught.value)


def test_a_missing_dataset_is_the_first_and_only_line(tmp_path):
    result = run_engine("reconstruct", str(tmp_path / "none"), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert result.stderr == f"meshlift: Dataset not found: {tmp_path / 'none'}\n"


def test_report_gives_the_region_in_the_dataset_frame_like_a_jobs_region(tmp_path):
    folder = write_disc_dataset(tmp_path / "d")
    region = [-0.6, -0.5, -0.4, 0.6, 0.5, 0.4]
    result = reconstruct(ReconstructJob(dataset=str(folder), out=str(tmp_path / "o"), method="hull", preset="fast",
                                        device="cpu", region=region,
                                        options={"resolution": 32, "faces": 500, "texture_size": 64}),
                         Progress(lambda _event: None))
    roi = json.loads(Path(result["files"]["report"]).read_text())["region_of_interest"]
    assert roi["world_min"] + roi["world_max"] == pytest.approx(region, abs=1e-6)
    assert roi["unit_max"] == pytest.approx([1.0, 0.5 / 0.6, 0.4 / 0.6], abs=1e-6)
    assert roi["world_center"] == pytest.approx([0.0, 0.0, 0.0], abs=1e-6) and roi["world_radius"] == pytest.approx(0.6)


# --- 6. quiet logs -------------------------------------------------------------------------------

def test_reconstruct_shows_bars_and_its_own_lines_and_keeps_the_rest_in_log_txt(tmp_path):
    folder = write_disc_dataset(tmp_path / "d")
    out = tmp_path / "o"
    result = run_engine("reconstruct", str(folder), "--out", str(out), *TINY_HULL)
    assert result.returncode == 0, result.stderr
    assert not library_lines(result.stderr), library_lines(result.stderr)[:5]  # e.g. Warp's CUDA driver probe
    log = (out / "log.txt").read_text()
    assert "meshlift stage: carving" in log and "meshlift [info] Visual Hull" in log
    assert any(line.split() == ["log", str(out / "log.txt")] for line in result.stdout.splitlines())


@pytest.mark.parametrize("echo", [False, True])
def test_library_output_goes_to_the_log_and_to_the_terminal_only_when_asked(tmp_path, echo):
    script = f"""
import ctypes, os, sys
from pathlib import Path
from engine.job_log import JobLog, terminal
with JobLog(echo={echo}) as log:
    os.write(2, b"native stderr\\n")
    ctypes.CDLL(None).puts(b"native stdout")
    print("python stderr", file=sys.stderr)
    terminal().write("bar\\n")
    log.record({{"type": "log", "level": "warning", "message": "engine says"}})
    sys.stdout.flush()
    ctypes.CDLL(None).fflush(None)
    log.copy_into(Path({str(tmp_path)!r}))
print("after", file=sys.stderr)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=True)
    log = (tmp_path / "log.txt").read_text()
    assert {"native stderr", "native stdout", "python stderr", "meshlift [warning] engine says"} <= {
        line.split(" ", 1)[1] if line.startswith(tuple("0123456789")) else line for line in log.splitlines()}
    assert "bar" not in log and "bar\n" in done.stderr and done.stderr.endswith("after\n")
    assert ("native stderr" in done.stderr) == echo and ("python stderr" in done.stderr) == echo
    assert done.stdout == ""


# --- 7. the READMEs' commands run as written ------------------------------------------------------

def shell_blocks(path: Path) -> list[str]:
    """The lines of ``path``'s ```bash blocks (comments stripped, continuation lines joined)."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            command = line.split(" #")[0].strip()
            if command:
                lines.append(command)
    return lines


@pytest.mark.parametrize("readme", ["README.md", "engine/README.md"])
def test_readme_commands_use_the_environment_and_parse(readme):
    commands = shell_blocks(ROOT / readme)
    assert commands or readme == "engine/README.md"
    for command in commands:
        words = shlex.split(command)
        assert words[0] not in ("python", "python3", "pip"), f"{readme}: '{command}' is not the project's environment"
        if words[:3] == [".venv/bin/python", "-m", "engine"]:
            build_parser().parse_args(words[3:])  # exits (SystemExit) on an unknown command or option
        elif words[0] in (".venv/bin/python", "bash"):
            script = next(word for word in words[1:] if not word.startswith("-"))
            assert (ROOT / script).is_file() or script.startswith("$"), f"{readme}: no {script}"
