"""A tour of Meshlift in Blender's real interface, as a new user would take it (not run in CI).

In a fresh user profile: build the extension zip and install it (Install from Disk), press Set Up
Engine (first with Blender's own Python, then with a Python 3.11 as the base when Blender's is
not 3.11), reconstruct from the scene's cameras with the live preview on and cancel that job with
Esc once the preview shows, run a second one to the end, and undo it. It takes screenshots on the
way and writes ``OUT/report.json``: each step with its time, the set-up's messages, what the scene
held after each job and after the undo, and the longest gap between two ticks of a 50 ms
interface timer while each job ran (renders included): how long the interface was unresponsive.

With the blender-ui tool (``../shared/tools/blender-ui``: Debian's Blender 4.3 on Xvfb)::

    mount --bind /root/.pyenv /opt/blender-ui-root/root/.pyenv    # the base Python, inside the chroot
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
      bash ../shared/tools/blender-ui/run.sh scripts/ui_tour.py /tmp/scene.blend -- --checkout $PWD \\
      --out /tmp/ui-tour --base-python /root/.pyenv/versions/3.11.7/bin/python3.11 \\
      --wheel-folder /host/opt/wheels --torch-index https://pypi.org/simple

(the scene: ``tests/addon/blender.py``'s ``build_scene``; this machine cannot reach
download.pytorch.org, so PyTorch's CPU wheel comes from the local wheel folder, pinned ``+cpu``).
``--engine-python /usr/local/bin/host-python`` skips Set Up Engine: a shorter tour, the jobs only
(``HOST_PYTHON`` then names this machine's engine interpreter).
The driver runs from a timer, so Blender's event loop keeps running between its steps. Behind a
TLS-intercepting proxy, pip inside the chroot needs that proxy's CA: pass
``PIP_CERT=/host/etc/ssl/certs/ca-certificates.crt`` (and the same ``REQUESTS_CA_BUNDLE``,
``CURL_CA_BUNDLE``, which requests prefers) to ``run.sh``. ``scripts/ui_tour_tools.py`` tours the
other tools with the helpers here (``install()``, ``engine()``, ``run()``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import bpy

HEARTBEAT = 0.05
# The preset is cut down so that a job takes a minute or two on a small CPU.
DMTET_OPTIONS = {"resolution": "32", "iterations": "150", "refine_iterations": "30", "faces": "6000",
                 "texture_size": "512"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ui_tour.py")
    parser.add_argument("--checkout", required=True, help="the Meshlift checkout to build the zip from")
    parser.add_argument("--out", default="/tmp/ui-tour", help="screenshots and report.json")
    parser.add_argument("--zip", help="an already built meshlift zip (default: build one from the checkout)")
    parser.add_argument("--base-python", default="", help="Base Python for the second set-up attempt")
    parser.add_argument("--wheel-folder", default="", help="the set-up's Wheel Folder")
    parser.add_argument("--torch-index", default="", help="the set-up's PyTorch Index")
    parser.add_argument("--engine-python", default="", help="skip Set Up Engine and use this interpreter")
    parser.add_argument("--sidebar-tab", default="1308,253", help="where the Meshlift tab is (x,y)")
    # Known arguments only: a driver that imports these helpers (ui_tour_tools.py) has its own too.
    return parser.parse_known_args(sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else [])[0]


ARGS = parse_args()
OUT = Path(ARGS.out)
OUT.mkdir(parents=True, exist_ok=True)
T0 = time.monotonic()
REPORT: dict = {"blender": bpy.app.version_string, "steps": [], "gaps": {}}
SHOTS: list[subprocess.Popen] = []


def log(step: str, **details: object) -> None:
    REPORT["steps"].append({"t": round(time.monotonic() - T0, 1), "step": step, **details})
    print("tour:", step, details, flush=True)
    (OUT / "report.json").write_text(json.dumps(REPORT, indent=1, default=str))


def shot(name: str) -> None:
    """A screenshot of the whole screen, taken without blocking the interface."""
    SHOTS.append(subprocess.Popen(["import", "-window", "root", str(OUT / f"{name}.png")]))
    log("screenshot", name=name)


class Heartbeat:
    """A 50 ms interface timer; the longest gap between its ticks while ``phase`` is set."""

    phase: str | None = None
    last: float | None = None

    @classmethod
    def tick(cls) -> float:
        now = time.monotonic()
        if cls.phase is not None and cls.last is not None:
            gap = now - cls.last
            entry = REPORT["gaps"].setdefault(cls.phase, {"max_s": 0.0, "ticks": 0})
            entry["ticks"] += 1
            entry["max_s"] = round(max(entry["max_s"], gap), 3)
        cls.last = now
        return HEARTBEAT

    @classmethod
    def measure(cls, phase: str | None) -> None:
        cls.phase, cls.last = phase, time.monotonic()


def view3d() -> tuple[bpy.types.Window, bpy.types.Area, bpy.types.Region]:
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                return window, area, next(r for r in area.regions if r.type == "WINDOW")
    raise RuntimeError("no 3D view")


def xdotool(*args: str) -> None:
    subprocess.run(["xdotool", *args], check=False)


def build_zip() -> Path:
    if ARGS.zip:
        return Path(ARGS.zip)
    folder = OUT / "dist"
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([bpy.app.binary_path, "--command", "extension", "build", "--source-dir", ARGS.checkout,
                    "--output-dir", str(folder)], check=True)
    return next(folder.glob("meshlift-*.zip"))


def scene_state() -> dict:
    return {"meshes": sorted(o.name for o in bpy.data.objects if o.type == "MESH"),
            "collections": sorted(c.name for c in bpy.data.collections)}


class Session:
    """What the steps share once the zip is installed: the 3D view, the add-on and its preferences."""

    def __init__(self) -> None:
        self.window, self.area, self.region = view3d()
        self.module_name = "bl_ext.user_default.meshlift"
        self.addon = sys.modules[self.module_name]
        self.prefs = bpy.context.preferences.addons[self.module_name].preferences

    def override(self) -> AbstractContextManager:
        """The context for operators started as from the 3D view."""
        return bpy.context.temp_override(window=self.window, area=self.area, region=self.region)


def install() -> Iterator[float]:
    """Dismiss the splash, build and install the zip, open the sidebar on the Meshlift tab with the
    cameras selected; returns (``yield from``) the :class:`Session`."""
    xdotool("key", "Escape")  # a fresh profile opens the Quick Setup splash
    yield 1.0
    path = build_zip()
    result = bpy.ops.extensions.package_install_files(filepath=str(path), repo="user_default",
                                                     enable_on_install=True)
    session = Session()
    log("installed the zip", zip=str(path), result=list(result),
        enabled=session.module_name in bpy.context.preferences.addons)
    session.area.spaces.active.show_region_ui = True
    session.region.data.view_location = (0.2, -0.1, 0.3)
    session.region.data.view_distance = 9.0
    for obj in bpy.context.scene.objects:
        obj.select_set(obj.type == "CAMERA")
    yield 1.5
    x, y = ARGS.sidebar_tab.split(",")
    xdotool("mousemove", x, y, "click", "1")  # the sidebar opens on its first tab: click "Meshlift"
    yield 3.0
    shot("01-no-engine")
    return session


def engine(session: Session) -> Iterator[float]:
    """``--engine-python`` as the engine, else Set Up Engine (first with Blender's own Python as the
    base, then with ``--base-python``); returns (``yield from``) whether there is an engine."""
    prefs, setup_ops = session.prefs, session.addon.operators.engine_setup
    if ARGS.engine_python:  # a short tour: an interpreter that has the engine already, no set-up
        prefs.python_path = ARGS.engine_python
        log("engine python given", python=ARGS.engine_python)
        return True
    # Set Up Engine, first as it comes: Blender's own Python as the base.
    prefs.wheel_folder, prefs.torch_index, prefs.torch_build = ARGS.wheel_folder, ARGS.torch_index, "CPU"
    with session.override():
        log("set up engine", result=list(bpy.ops.meshlift.setup_engine()))
    while setup_ops.is_running():
        yield 0.5
    setup = setup_ops.current()
    log("set-up ended", state=setup.state, message=setup.message, base=setup.plan.base_python)
    if setup.state != "done" and ARGS.base_python:
        yield 1.0
        shot("02-setup-refused")
        yield 1.0
        prefs.base_python = ARGS.base_python
        with session.override():
            log("set up engine again", base=ARGS.base_python, result=list(bpy.ops.meshlift.setup_engine()))
        shots = 0
        while setup_ops.is_running():
            if shots < 2 and setup_ops.current().progress.stage.startswith("installing"):
                shot(f"03-setup-running-{shots}")
                shots += 1
                yield 5.0
            yield 0.5
        setup = setup_ops.current()
        log("set-up ended", state=setup.state, message=setup.message, seconds=round(setup.elapsed, 1),
            python=prefs.python_path)
    return setup.state == "done"


def started_job(jobs) -> Iterator[float]:
    """The job the operator just started, once it exists (a modal operator started while the engine
    still lists its methods starts it on a later tick), or ``None`` (it failed); via ``yield from``."""
    waited = 0.0
    while jobs.active_job() is None and jobs.STATUS.state != "error" and waited < 120:
        yield 0.1
        waited += 0.1
    log("job started", after_s=round(waited, 1), started=jobs.active_job() is not None)
    return jobs.active_job()


def tour() -> Iterator[float]:
    session = yield from install()
    if not (yield from engine(session)):
        return
    jobs = session.addon.operators.scene_job
    yield 2.0
    shot("04-idle")

    # A DMTet job with the live preview, cancelled with Esc once the preview shows.
    settings = bpy.context.scene.meshlift
    settings.method_id, settings.preset_id, settings.preview = "dmtet", "fast", True
    for key, value in DMTET_OPTIONS.items():
        row = settings.options.add()
        row.key, row.value = key, value
    for attempt in ("cancelled", "finished"):
        before = scene_state()
        Heartbeat.measure(f"{attempt} job: rendering")
        with session.override():
            log(f"reconstruct ({attempt})", result=list(bpy.ops.meshlift.reconstruct_cameras("INVOKE_DEFAULT")))
        job = yield from started_job(jobs)
        shots = 0
        while jobs.is_running():
            if job.rendering and shots == 0 and job.renders.index >= 3:
                shot(f"05-{attempt}-rendering")
                shots = 1
            if not job.rendering and Heartbeat.phase.endswith("rendering"):
                Heartbeat.measure(f"{attempt} job: engine")
            if job.preview is not None and job.preview.shown and shots < 2:
                yield 1.0
                shot(f"06-{attempt}-preview")
                shots = 2
                if attempt == "cancelled":
                    xdotool("mousemove", "700", "500")
                    xdotool("key", "Escape")  # a real key press, to the modal operator
                    log("pressed Esc", preview_shown=job.preview.shown)
            yield 0.2
        Heartbeat.measure(None)
        log(f"{attempt} job ended", status=jobs.STATUS.state, message=jobs.STATUS.message,
            lines=list(jobs.STATUS.lines), seconds=round(job.elapsed, 1), before=before, after=scene_state(),
            previews_shown=job.preview.shown if job.preview else 0)
        yield 1.5
        shot(f"07-{attempt}-done")
    with session.override():
        bpy.ops.ed.undo()
    yield 1.0
    log("after undo", state=scene_state())
    shot("08-after-undo")
    yield 2.0


def run(steps: Iterator[float]) -> None:
    """Advance ``steps`` from a timer (each yields the seconds until the next); then quit Blender."""

    def advance() -> float | None:
        try:
            return next(steps)
        except StopIteration:
            pass
        except Exception:
            log("error", traceback=traceback.format_exc())
        for process in SHOTS:
            process.wait(timeout=30)
        log("done", gaps=REPORT["gaps"])
        bpy.ops.wm.quit_blender()
        return None

    bpy.app.timers.register(Heartbeat.tick, first_interval=HEARTBEAT, persistent=True)
    bpy.app.timers.register(advance, first_interval=3.0)


if __name__ == "__main__":
    run(tour())
