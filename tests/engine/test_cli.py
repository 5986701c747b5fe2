"""The command line: a clear message and exit code 2 for bad input, never a traceback."""

import json

import pytest

from tests.support import run_engine, write_disc_dataset


def assert_clean_failure(result, fragment: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert fragment in result.stderr


def test_missing_dataset(tmp_path):
    assert_clean_failure(run_engine("reconstruct", str(tmp_path / "none"), "--out", str(tmp_path / "o")),
                         "meshlift: Dataset not found")


def test_existing_output_needs_force(tmp_path, datasets):
    (tmp_path / "o").mkdir()
    assert_clean_failure(run_engine("reconstruct", str(datasets / "spot"), "--out", str(tmp_path / "o")),
                         "already exists; choose another or pass --force")


def test_bad_option_and_unavailable_device(tmp_path, datasets):
    assert_clean_failure(run_engine("reconstruct", str(datasets / "spot"), "--out", str(tmp_path / "o"),
                                    "-o", "resolution"), "Options are KEY=VALUE")
    result = run_engine("reconstruct", str(datasets / "spot"), "--out", str(tmp_path / "o"), "--device", "cuda:7")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "CUDA" in result.stderr or "cuda:7" in result.stderr


def test_masks_disagreeing_on_an_object(tmp_path):
    folder = write_disc_dataset(tmp_path / "d")
    meta = json.loads((folder / "transforms_train.json").read_text())
    for i, frame in enumerate(meta["frames"]):  # every camera looks away from the others' object
        frame["transform_matrix"][0][3] += 40.0 * i
    (folder / "transforms_train.json").write_text(json.dumps(meta))
    assert_clean_failure(run_engine("reconstruct", str(folder), "--out", str(tmp_path / "o")),
                         "do not see a common object")
    assert not (tmp_path / "o").exists()


def test_evaluate_ground_truth_against_itself(datasets):
    result = run_engine("evaluate", str(datasets / "spot" / "gt_mesh.ply"), "--dataset", str(datasets / "spot"),
                        "--samples", "50000", "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["chamfer_l1"] < 0.005 and metrics["f_score_0.5%"] > 0.99


@pytest.mark.parametrize("command", [["methods", "--json"], ["check"]])
def test_discovery_commands_print_json(command):
    result = run_engine(*command)
    assert result.returncode == 0
    data = json.loads(result.stdout)
    if command[0] == "methods":
        assert data[0]["name"] == "hull" and set(data[0]["presets"]) == {"fast", "balanced", "quality"}
    else:
        assert data["torch"].startswith("2.") and data["default_device"] in ("cpu", "cuda")
