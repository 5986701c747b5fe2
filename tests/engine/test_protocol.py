"""The worker protocol (``engine/protocol.py``): job files and their checks, the events, safe names."""

from __future__ import annotations

import pytest

from engine import protocol
from engine.errors import InputError
from engine.protocol import ReconstructJob, parse_job, safe_name


def test_a_job_round_trips_through_its_file_form():
    job = ReconstructJob(dataset="/data/spot", out="/tmp/out", method="neus", options={"iterations": 300},
                         region=[-1, -1, 0, 1, 1, 2])
    data = job.to_dict()
    assert data["command"] == "reconstruct" and set(data) - {"command"} == set(protocol.JOB_FIELD_TYPES)
    assert parse_job(data) == job


@pytest.mark.parametrize(("data", "message"), [
    ({"out": "x"}, "The job needs the field\\(s\\): dataset"),
    ({"dataset": "d", "out": "o", "colour": 1}, "Unknown job field\\(s\\): colour"),
    ({"dataset": "d", "out": "o", "force": 1}, "The job field 'force' must be bool"),
    ({"dataset": "d", "out": "o", "max_views": True}, "The job field 'max_views' must be int or null"),
    ({"command": "train", "dataset": "d", "out": "o"}, "Unknown job command 'train'"),
    ([1, 2], "must hold a JSON object"),
])
def test_bad_jobs_are_refused_in_one_sentence(data, message):
    with pytest.raises(InputError, match=message):
        parse_job(data)


def test_events_carry_their_type_and_fields():
    assert protocol.progress_event("carving", 3, 10, 1.5) == {
        "type": "progress", "stage": "carving", "step": 3, "total": 10, "eta": 1.5}
    assert protocol.progress_event("fit", 1, 2, None, {"colour": 0.1})["losses"] == {"colour": 0.1}
    assert protocol.error_event(protocol.INPUT, "No.")["type"] in protocol.FINAL_EVENTS
    assert protocol.result_event({"obj": "/a.obj"}, {})["type"] == protocol.RESULT
    assert protocol.preview_event("/p/preview-0001.npz", protocol.PREVIEW_NPZ, 30) == {
        "type": "preview", "path": "/p/preview-0001.npz", "format": "npz", "step": 30}
    assert protocol.PREVIEW in protocol.EVENT_TYPES and protocol.PREVIEW not in protocol.FINAL_EVENTS


def test_safe_names():
    assert safe_name("Cam.001 (left)/ä", "x") == "Cam.001_left"
    assert safe_name("..", "mesh") == "mesh" and safe_name("_a b_", "m") == "a_b"
