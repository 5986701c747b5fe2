"""Typed method options: presets are instances, overrides are converted and checked, and front ends
get each option's doc, type, default, unit and range."""

from __future__ import annotations

import dataclasses
import json

import pytest

from engine.errors import InputError
from engine.losses import LossLog, weighted_sum
from engine.methods import METHODS, describe_methods, resolve_options
from engine.options import MeshOptions
from tests.support import run_engine


def test_every_option_is_documented_and_every_preset_is_an_instance():
    for method in METHODS.values():
        assert issubclass(method.options, MeshOptions)
        for preset in method.presets.values():
            assert type(preset) is method.options
        for field in dataclasses.fields(method.options):
            assert field.metadata["doc"].endswith("."), (method.name, field.name)


def test_overrides_are_converted_and_checked():
    neus = METHODS["neus"]
    options = resolve_options(neus, "fast", {"iterations": "300", "lr": "1e-3", "eikonal_weight": 1, "faces": 5000.0})
    assert (options.iterations, options.lr, options.eikonal_weight, options.faces) == (300, 1e-3, 1.0, 5000)
    assert isinstance(options.eikonal_weight, float) and options.rays == neus.presets["fast"].rays
    assert resolve_options(METHODS["dmtet"], "balanced", {}) == METHODS["dmtet"].presets["balanced"]
    for overrides, message in [
        ({"iterations": "3.5"}, "Option 'iterations' must be a whole number, got '3.5'"),
        ({"iterations": 0}, "Option 'iterations' must be at least 1, got 0"),
        ({"coarse_to_fine": 1.5}, "Option 'coarse_to_fine' must be at most 1.0, got 1.5"),
        ({"lr": True}, "Option 'lr' must be a number, got True"),
        ({"lr": "fast"}, "Option 'lr' must be a number, got 'fast'"),
        ({"lr": float("nan")}, "Option 'lr' must be a finite number"),
        ({"iteration": 5}, "Unknown option 'iteration' for neus. Available: "),
    ]:
        with pytest.raises(InputError, match=message.replace("(", r"\(").replace(".", r"\.")):
            resolve_options(neus, "fast", overrides)
    with pytest.raises(InputError, match="Unknown preset 'slow' for neus"):
        resolve_options(neus, "slow", {})


def test_methods_json_gives_each_option_its_doc_type_default_and_range():
    done = run_engine("methods", "--json")
    assert done.returncode == 0, done.stderr
    listed = {m["name"]: m for m in json.loads(done.stdout)}
    assert listed == {m["name"]: m for m in describe_methods()}
    iterations = listed["neus"]["options"]["iterations"]
    assert iterations["type"] == "int" and iterations["default"] == 5000 and iterations["min"] == 1
    assert iterations["unit"] == "steps" and "steps" in iterations["doc"]
    assert listed["neus"]["presets"]["fast"]["iterations"] == 600
    for method in listed.values():
        assert set(method["options"]) == set(method["presets"]["balanced"])


def test_named_losses_are_summed_with_their_weights_and_logged():
    import torch

    losses = {"colour": torch.tensor(0.5), "mask": torch.tensor(0.25), "extra": torch.tensor(2.0)}
    assert float(weighted_sum(losses, {"colour": 1.0, "mask": 4.0})) == pytest.approx(0.5 + 1.0 + 2.0)
    log = LossLog(steps=10)  # the last step is the tail (10%)
    for step in range(10):
        log.add(step, {"colour": torch.tensor(float(step))})
    assert log.latest() == {"colour": 9.0} and log.summary() == {"colour": 9.0}
    log = LossLog(steps=20)
    for step in range(20):
        log.add(step, {"colour": torch.tensor(float(step))})
    assert log.summary() == {"colour": 18.5}
