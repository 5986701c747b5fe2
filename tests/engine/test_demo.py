"""The README's main job: `python -m engine demo` renders the built-in object and reconstructs it."""

import json
from pathlib import Path

from tests.support import run_engine


def test_demo_end_to_end(tmp_path):
    result = run_engine("demo", "--out", str(tmp_path), "--preset", "fast", "--json")
    assert result.returncode == 0, result.stderr
    event = json.loads(result.stdout)
    assert event["type"] == "result"
    for path in event["files"].values():
        assert Path(path).parent == tmp_path / "result" and Path(path).is_file()
    metrics = event["report"]["metrics"]
    # the torus's hole is visible from the cameras that look through it, so the hull recovers it
    assert metrics["f_score_0.5%"] > 0.9
    assert metrics["psnr"] > 24.0
