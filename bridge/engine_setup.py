"""Set Up Engine: a private Python environment for the engine, made from a base Python.

The add-on's one-click set-up, without Blender (the operators and preferences only start it, show
its progress and cancel it). One background process at a time, never inside Blender's interpreter:

1. the base Python is checked (Python 3.11 with ``venv`` and ``ensurepip``);
2. ``python -m venv`` makes the environment (in the extension's user folder, in Blender);
3. pip updates itself, so that it reports download progress (skipped quietly when it cannot);
4. PyTorch is installed in the build the plan chose: the CPU build, or the CUDA build when an NVIDIA
   driver is found (or as the user chose), pinned with its local label (``torch==2.13.0+cpu``), so
   no other build can be taken by mistake;
5. the engine's pinned requirements (``engine/requirements.txt``, kept in step with
   ``pyproject.toml`` by a test);
6. ``python -m engine check`` runs in the new environment; a marker file then says it is complete.

Everything any step prints goes to a log file. A failure is one plain sentence (no network, disk
full, pip's own last error line, unsupported Python); a failed or cancelled set-up deletes the
environment, and one without its marker (a crash mid-way) counts as absent and is replaced by the
next set-up. :class:`EngineSetup` runs a :class:`SetupPlan`; the caller (a Blender timer, a loop)
calls :meth:`EngineSetup.poll`, which never blocks.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any

from . import EXTENSION_ROOT
from .errors import UserError
from .interpreter import executable, last_line

REQUIREMENTS = EXTENSION_ROOT / "engine" / "requirements.txt"
PYTHON_VERSION = (3, 11)
TORCH_INDEX = "https://download.pytorch.org/whl/{build}"
CUDA_BUILD = "cu128"
BUILDS = ("auto", "cpu", "cuda")
MARKER = "meshlift-engine.json"
# Free space a set-up needs (the wheels are unpacked; CUDA brings NVIDIA's libraries), in bytes.
FREE_SPACE = {"cpu": 3 * 2**30, "cuda": 12 * 2**30}
SETTINGS_HINT = "in Edit > Preferences > Add-ons > Meshlift"

CHECK_BASE = ("import json, sys\n"
              "found = {}\n"
              "for name in ('venv', 'ensurepip'):\n"
              "    try:\n"
              "        __import__(name)\n"
              "        found[name] = True\n"
              "    except ImportError:\n"
              "        found[name] = False\n"
              "print(json.dumps({'version': list(sys.version_info[:3]), **found}))\n")
NETWORK_ERRORS = ("NewConnectionError", "Failed to establish a new connection", "Name or service not known",
                  "Temporary failure in name resolution", "nodename nor servname", "getaddrinfo failed",
                  "Network is unreachable", "Connection refused", "ConnectTimeoutError", "ProxyError",
                  "Read timed out", "No route to host")
DISK_ERRORS = ("No space left on device", "[Errno 28]", "Disk quota exceeded", "[Errno 122]")


def venv_python(target: Path) -> Path:
    """The interpreter of the environment at ``target``."""
    return target / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def pinned(requirements: Path, name: str) -> str:
    """The version ``name`` is pinned to (``name==X``) in ``requirements``."""
    for line in requirements.read_text().splitlines():
        match = re.fullmatch(rf"\s*{re.escape(name)}\s*==\s*([^\s;#]+).*", line)
        if match:
            return match.group(1)
    raise ValueError(f"{requirements} pins no version of {name}")


@cache
def nvidia_driver() -> str | None:
    """The installed NVIDIA driver's version (``"570.86.15"``), or ``None`` when there is none
    (Linux: ``/proc/driver/nvidia/version``; elsewhere ``nvidia-smi``). Asked once per session."""
    proc = Path("/proc/driver/nvidia/version")
    if proc.is_file():
        match = re.search(r"Kernel Module\s+(?:for \S+\s+)?([\d.]+)", proc.read_text(errors="replace"))
        return match.group(1) if match else "unknown"
    smi = shutil.which("nvidia-smi")
    default = Path(os.environ.get("SYSTEMROOT", "C:/Windows")) / "System32" / "nvidia-smi.exe"
    if smi is None and sys.platform == "win32" and default.is_file():
        smi = str(default)
    if smi is None:
        return None
    try:
        done = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=10, check=False, stdin=subprocess.DEVNULL,
                              creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return last_line(done.stdout) or "unknown"


def choose_build(build: str, platform: str = sys.platform, driver: str | None = None) -> str:
    """``cpu`` or ``cuda``: ``build`` itself, or for ``auto`` CUDA when an NVIDIA ``driver`` is
    found (never on macOS). Raises :class:`UserError` for CUDA on macOS."""
    if build not in BUILDS:
        raise UserError(f"Unknown PyTorch build '{build}'; choose one of {', '.join(BUILDS)}.")
    if build == "cuda" and platform == "darwin":
        raise UserError("PyTorch has no CUDA build for macOS; choose the CPU build.")
    if build == "auto":
        return "cuda" if driver is not None and platform != "darwin" else "cpu"
    return build


@dataclass(frozen=True)
class SetupPlan:
    """What one set-up does.

    Attributes:
        base_python: the interpreter the environment is made from (Python 3.11).
        target: the environment's folder (must not hold a complete environment).
        log_file: where every step's output goes.
        build: ``cpu`` or ``cuda``.
        torch_requirement: e.g. ``torch==2.13.0+cpu`` (the local label pins the build).
        torch_index: the index PyTorch comes from (``--index-url``), ``None`` for pip's default.
        extra_index: another index for every package (``--extra-index-url``), or ``None``.
        wheel_folder: a folder of wheels pip may use (``--find-links``), or ``None``.
        offline: use only ``wheel_folder`` (``--no-index``).
        requirements: the engine's pinned requirements.
    """

    base_python: str
    target: Path
    log_file: Path
    build: str
    torch_requirement: str
    torch_index: str | None
    extra_index: str | None = None
    wheel_folder: str | None = None
    offline: bool = False
    requirements: Path = REQUIREMENTS

    @property
    def python(self) -> Path:
        return venv_python(self.target)

    def pip_sources(self) -> list[str]:
        """pip's options for where packages come from (besides the torch index)."""
        sources = ["--no-index"] if self.offline else []
        if self.extra_index and not self.offline:
            sources += ["--extra-index-url", self.extra_index]
        if self.wheel_folder:
            sources += ["--find-links", self.wheel_folder]
        return sources

    def describe(self) -> str:
        """One line for the log and the preferences: ``PyTorch 2.13.0+cpu from https://...``."""
        source = "a local wheel folder" if self.offline else self.torch_index or "the default package index"
        return f"PyTorch {self.torch_requirement.split('==')[1]} ({self.build.upper()} build) from {source}"


def plan_setup(base_python: str, target: str | Path, log_file: str | Path, *, build: str = "auto",
               torch_index: str = "", extra_index: str = "", wheel_folder: str = "", offline: bool = False,
               platform: str = sys.platform, driver: str | bool | None = True,
               requirements: Path = REQUIREMENTS) -> SetupPlan:
    """The plan for a set-up with the preferences' choices; raises :class:`UserError`.

    ``build`` is ``auto`` (CUDA when an NVIDIA driver is found), ``cpu`` or ``cuda``;
    ``torch_index`` empty means PyTorch's own index for that build (macOS: the default index,
    whose wheels are the CPU build there); ``driver`` is the NVIDIA driver version (``True``: look
    for it).
    """
    python = executable(base_python)
    if python is None:
        raise UserError(f"The base Python '{base_python}' does not exist or is not executable. Set 'Base Python' "
                        f"{SETTINGS_HINT} to a Python {'.'.join(map(str, PYTHON_VERSION))}.")
    if offline and not wheel_folder:
        raise UserError(f"An offline set-up needs a wheel folder: set 'Wheel Folder' {SETTINGS_HINT}.")
    if wheel_folder and not Path(wheel_folder).is_dir():
        raise UserError(f"The wheel folder {wheel_folder} does not exist.")
    chosen = choose_build(build, platform, nvidia_driver() if driver is True else driver or None)
    version = pinned(requirements, "torch")
    tag = "cpu" if chosen == "cpu" else CUDA_BUILD
    if platform == "darwin":  # PyPI's macOS wheels are the CPU build, without a local label
        requirement, index = f"torch=={version}", torch_index.strip() or None
    else:
        requirement, index = f"torch=={version}+{tag}", torch_index.strip() or TORCH_INDEX.format(build=tag)
    return SetupPlan(python, Path(target), Path(log_file), chosen, requirement, index, extra_index.strip() or None,
                     wheel_folder.strip() or None, offline, requirements)


# -- the environment on disk ------------------------------------------------------------------------


def environment_info(target: Path) -> dict[str, Any] | None:
    """What the marker of a complete environment at ``target`` says (``torch``, ``cuda_available``,
    ``python``, ...), or ``None`` when there is none or it is incomplete."""
    marker = Path(target) / MARKER
    if not marker.is_file() or not venv_python(Path(target)).exists():
        return None
    try:
        return json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def remove_environment(target: Path) -> None:
    """Delete the environment at ``target`` (complete or not); raises :class:`UserError`."""
    target = Path(target)
    if not target.exists():
        return
    marker = target / MARKER
    with contextlib.suppress(OSError):
        marker.unlink()  # first: whatever happens next, it no longer counts as complete
    for attempt in range(3):
        try:
            shutil.rmtree(target)
            return
        except FileNotFoundError:
            return
        except OSError as error:
            if attempt == 2:
                raise UserError(f"Could not delete the engine environment {target}: {error.strerror or error}") \
                    from error
            time.sleep(0.5)  # Windows: a process that just ended may still hold a file


# -- progress ---------------------------------------------------------------------------------------


@dataclass
class PipProgress:
    """Follows pip's output: what it is doing, for the progress text, and how far it is in its step.

    pip does not know how many packages it will fetch, so the share is an estimate: it grows with
    each package collected (and with the bytes of the current download when pip reports them,
    ``--progress-bar raw``), jumps when pip starts installing, and is complete when pip ends.
    """

    collected: int = 0
    installing: bool = False
    detail: str = ""
    download: str = ""
    download_share: float = 0.0

    def feed(self, line: str) -> None:
        text = line.strip()
        if match := re.fullmatch(r"Progress (\d+) of (\d+)", text):
            done, total = int(match.group(1)), int(match.group(2))
            self.download_share = done / total if total > 0 else 0.0
            self.detail = f"downloading {self.download}: {self.download_share:.0%}"
        elif match := re.match(r"Collecting (\S+)", text):
            self.collected += 1
            self.download_share = 0.0
            self.detail = f"collecting {package_name(match.group(1))}"
        elif match := re.match(r"Downloading (\S+)(?: \(([^)]+)\))?", text):
            name = wheel_name(match.group(1))
            if not name.endswith(".metadata"):
                self.download = f"{name} ({match.group(2)})" if match.group(2) else name
                self.detail = f"downloading {self.download}"
        elif match := re.match(r"Processing (\S+)", text):
            self.detail = f"using {wheel_name(match.group(1))}"
        elif text.startswith("Requirement already satisfied:"):
            self.collected += 1
        elif match := re.match(r"Installing collected packages: (.*)", text):
            names = [n.strip() for n in match.group(1).split(",") if n.strip()]
            self.installing = True
            self.detail = f"installing {len(names)} package{'s' if len(names) != 1 else ''}"

    @property
    def share(self) -> float:
        """How far pip is in its step, in [0, 0.95) until it ends."""
        if self.installing:
            return 0.8
        effective = max(self.collected - 1 + self.download_share, 0.0) if self.collected else 0.0
        return 0.75 * (1.0 - 0.8**effective)


def package_name(requirement: str) -> str:
    """``torch==2.13.0+cpu`` -> ``torch``."""
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]


def wheel_name(location: str) -> str:
    """``https://.../torch-2.13.0%2Bcpu-cp311-...whl`` -> ``torch-2.13.0+cpu``."""
    name = urllib.parse.unquote(location.rstrip("/").rsplit("/", 1)[-1].split("#")[0])
    if name.endswith(".whl"):
        return "-".join(name[:-4].split("-")[:2])
    return name


@dataclass
class SetupProgress:
    """What the preferences show: the stage, the share of the whole set-up done, pip's activity."""

    stage: str = "starting"
    fraction: float = 0.0
    detail: str = ""

    def describe(self) -> str:
        """``"installing PyTorch: downloading torch-2.13.0+cpu (190.4 MB): 45%"``."""
        return f"{self.stage}: {self.detail}" if self.detail else self.stage


# -- the steps --------------------------------------------------------------------------------------


class SetupFailure(Exception):
    """A step failed; the message is the sentence for the user."""


@dataclass(frozen=True)
class Step:
    """One background process of the set-up.

    Attributes:
        key: which step it is (``base``, ``venv``, ``pip``, ``torch``, ``requirements``, ``check``).
        stage: what the user reads (``installing PyTorch``).
        weight: its share of the progress bar.
        argv: the command, given whether pip reports download progress (``--progress-bar raw``).
        pip: parse pip's output for progress and errors.
        optional: a failure is logged and the set-up goes on.
        verify: checks the step's whole output (raises :class:`SetupFailure`).
    """

    key: str
    stage: str
    weight: float
    argv: Callable[[bool], list[str]]
    pip: bool = False
    optional: bool = False
    verify: Callable[[str], None] | None = None


def check_base_output(plan: SetupPlan) -> Callable[[str], None]:
    def verify(output: str) -> None:
        try:
            found = json.loads(last_line(output))
        except json.JSONDecodeError as error:
            raise SetupFailure(f"The base Python {plan.base_python} did not run: {last_line(output)}") from error
        version = tuple(found["version"][:2])
        if version != PYTHON_VERSION:
            wanted = ".".join(map(str, PYTHON_VERSION))
            raise SetupFailure(
                f"The base Python {plan.base_python} is Python {'.'.join(map(str, found['version']))}, but the engine "
                f"needs Python {wanted}: set 'Base Python' {SETTINGS_HINT} to a Python {wanted} (Blender 4.2 to 5.0 "
                f"from blender.org ship one).")
        missing = [name for name in ("venv", "ensurepip") if not found.get(name)]
        if missing:
            raise SetupFailure(
                f"The base Python {plan.base_python} cannot make environments (it has no {' or '.join(missing)} "
                f"module; on Debian or Ubuntu install python3.11-venv): choose another 'Base Python' {SETTINGS_HINT}.")
    return verify


def steps(plan: SetupPlan) -> list[Step]:
    """The set-up's steps, in order."""
    python = str(plan.python)
    # --no-compile: Python compiles a module when it is first imported; compiling all of torch's
    # files at install time would take longer than unpacking them.
    pip = [python, "-m", "pip", "install", "--no-input", "--disable-pip-version-check", "--no-compile"]

    def progress_bar(raw: bool) -> list[str]:
        return ["--progress-bar", "raw"] if raw else ["--progress-bar", "off"]

    def torch_sources() -> list[str]:
        if plan.offline or plan.torch_index is None:
            return []
        return ["--index-url", plan.torch_index]

    def verify_check(output: str) -> None:
        try:
            info = json.loads(last_line(output))
        except json.JSONDecodeError as error:
            raise SetupFailure(f"The new environment cannot run the engine: {last_line(output)}") from error
        if not str(info.get("torch", "")).startswith(plan.torch_requirement.split("==")[1].split("+")[0]):
            raise SetupFailure(f"The new environment has torch {info.get('torch')}, not {plan.torch_requirement}.")

    return [
        Step("base", "checking the base Python", 0.01, lambda _raw: [plan.base_python, "-c", CHECK_BASE],
             verify=check_base_output(plan)),
        Step("venv", "creating the environment", 0.04, lambda _raw: [plan.base_python, "-m", "venv", str(plan.target)]),
        Step("pip", "updating pip", 0.05, lambda _raw: [*pip, *plan.pip_sources(), "--upgrade", "pip>=24.1"],
             pip=True, optional=True),
        Step("torch", "installing PyTorch", 0.5,
             lambda raw: [*pip, *progress_bar(raw), *torch_sources(), *plan.pip_sources(), plan.torch_requirement],
             pip=True),
        Step("requirements", "installing the engine's requirements", 0.35,
             lambda raw: [*pip, *progress_bar(raw), *plan.pip_sources(), "-r", str(plan.requirements)], pip=True),
        Step("check", "checking the engine", 0.05, lambda _raw: [python, "-m", "engine", "check"], verify=verify_check),
    ]


def failure_sentence(step: Step, output: list[str], code: int, plan: SetupPlan) -> str:
    """The one sentence for a step that exited with ``code`` after printing ``output``."""
    text = "\n".join(output)
    if any(marker in text for marker in DISK_ERRORS):
        return (f"The disk is full: {step.stage} needs more free space in {plan.target.parent} (about "
                f"{FREE_SPACE[plan.build] // 2**30} GB in all).")
    if step.pip and any(marker in text for marker in NETWORK_ERRORS):
        index = plan.torch_index if step.key == "torch" and plan.torch_index else "the package index"
        return (f"Could not reach {index}: check the network connection (or a proxy), or set a local 'Wheel "
                f"Folder' {SETTINGS_HINT}.")
    errors = [line.strip() for line in output if line.strip().startswith("ERROR:")]
    last = errors[-1] if errors else last_line(text) or f"exit code {code}"
    return f"{step.stage[0].upper()}{step.stage[1:]} failed: {last}"


class EngineSetup:
    """Runs the steps of ``plan`` one background process at a time.

    :attr:`state` is ``running``, ``done``, ``failed`` or ``cancelled``; :attr:`message` the
    sentence for the user when it ended; :attr:`progress` what it is doing. Reading the processes'
    output is a daemon thread's only job (it pushes lines into a queue); everything else happens in
    the thread that calls :meth:`poll`.
    """

    def __init__(self, plan: SetupPlan) -> None:
        self.plan = plan
        self.steps = steps(plan)
        self.state = "idle"
        self.message = ""
        self.progress = SetupProgress()
        self.info: dict[str, Any] | None = None
        self.started_at = 0.0
        self.ended_at: float | None = None
        self._index = -1
        self._process: subprocess.Popen | None = None
        self._lines: queue.Queue = queue.Queue()
        self._output: list[str] = []
        self._pip = PipProgress()
        self._pip_raw = False
        self._step_started = 0.0
        self._log: IO[str] | None = None

    # -- lifetime ---------------------------------------------------------------------------
    def start(self) -> EngineSetup:
        """Check what can be checked at once (an environment already there, free space), then start
        the first step. Raises :class:`UserError`."""
        plan = self.plan
        if environment_info(plan.target) is not None:
            raise UserError(f"The engine is already set up in {plan.target}; remove it first to set it up again.")
        remove_environment(plan.target)  # what a crashed set-up left behind
        plan.target.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(plan.target.parent).free
        if free < FREE_SPACE[plan.build]:
            raise UserError(f"Not enough free disk space in {plan.target.parent}: the engine needs about "
                            f"{FREE_SPACE[plan.build] // 2**30} GB, {free / 2**30:.1f} GB are free.")
        plan.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = plan.log_file.open("w", encoding="utf-8")
        self._write_log(f"Meshlift engine set-up, {time.strftime('%Y-%m-%d %H:%M:%S')}\n{plan.describe()}\n"
                        f"base Python: {plan.base_python}\nenvironment: {plan.target}")
        self.state, self.started_at = "running", time.monotonic()
        self._next_step()
        return self

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def elapsed(self) -> float:
        return ((self.ended_at or time.monotonic()) - self.started_at) if self.started_at else 0.0

    def poll(self) -> str:
        """Take the output that arrived, advance to the next step when one ended; never blocks.
        Returns :attr:`state`."""
        while self.running:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if line is None:  # the step's output ended
                self._end_step()
                continue
            self._output.append(line)
            self._write_log(line)
            if self.steps[self._index].pip:
                self._pip.feed(line)
                self._show(self._pip.share, self._pip.detail)
        return self.state

    def wait(self, timeout: float | None = None, interval: float = 0.2) -> str:
        """Poll until the set-up ends (or ``timeout`` seconds pass); returns :attr:`state`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() == "running" and (deadline is None or time.monotonic() < deadline):
            time.sleep(interval)
        return self.state

    def cancel(self, timeout: float = 5.0) -> None:
        """Stop the running step (its whole process group) and delete the environment."""
        if not self.running:
            return
        self._stop_process(timeout)
        self._end("cancelled", "Set-up cancelled; nothing was installed.")

    # -- steps ------------------------------------------------------------------------------
    def _next_step(self) -> None:
        self._index += 1
        if self._index == len(self.steps):
            self._finish()
            return
        step = self.steps[self._index]
        self._output, self._pip = [], PipProgress()
        self._show(0.0, "")
        argv = step.argv(self._pip_raw)
        self._write_log(f"\n== {step.stage}: {' '.join(argv)}")
        self._step_started = time.monotonic()
        env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
        env.update(PYTHONUNBUFFERED="1", PYTHONNOUSERSITE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
        group = {"start_new_session": True} if os.name == "posix" else {
            "creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | getattr(subprocess, "CREATE_NO_WINDOW", 0)}
        try:
            self._process = subprocess.Popen(argv, cwd=str(EXTENSION_ROOT), stdin=subprocess.DEVNULL,
                                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                             encoding="utf-8", errors="replace", bufsize=1, env=env, **group)
        except OSError as error:
            self._fail(f"Could not start {argv[0]}: {error.strerror or error}")
            return
        threading.Thread(target=self._read, args=(self._process, self._lines), name="meshlift-setup-output",
                         daemon=True).start()

    @staticmethod
    def _read(process: subprocess.Popen, lines: queue.Queue) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            lines.put(raw.rstrip("\r\n"))
        lines.put(None)

    def _end_step(self) -> None:
        assert self._process is not None
        code = self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        step = self.steps[self._index]
        self._write_log(f"== exit code {code} after {time.monotonic() - self._step_started:.1f} s")
        try:
            if code != 0:
                raise SetupFailure(failure_sentence(step, self._output, code, self.plan))
            if step.verify is not None:
                step.verify("\n".join(self._output))
        except SetupFailure as failure:
            if not step.optional:
                self._fail(str(failure))
                return
            self._write_log(f"(optional step failed, going on: {failure})")
        if step.key == "pip":
            self._pip_raw = code == 0
        if step.key == "check":
            self.info = json.loads(last_line("\n".join(self._output)))
        self._next_step()

    def _finish(self) -> None:
        info = {**(self.info or {}), "python": str(self.plan.python), "build": self.plan.build,
                "torch_requirement": self.plan.torch_requirement, "created": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            (self.plan.target / MARKER).write_text(json.dumps(info, indent=2))
        except OSError as error:
            self._fail(f"Could not finish the environment: {error.strerror or error}")
            return
        self.info = info
        self.progress = SetupProgress("done", 1.0, "")
        devices = ", ".join(info.get("cuda_devices") or []) or "available"
        compute = f"CUDA: {devices}" if info.get("cuda_available") else "CPU only"
        self._end("done", f"The engine is set up: torch {info.get('torch')}, {compute} ({self.plan.python}).")

    def _fail(self, message: str) -> None:
        self._stop_process(5.0)
        self._end("failed", message)

    def _end(self, state: str, message: str) -> None:
        self.state, self.message, self.ended_at = state, message, time.monotonic()
        self._write_log(f"\n{state}: {message}")
        if state != "done":
            try:
                remove_environment(self.plan.target)
            except UserError as error:
                self.message += f" ({error})"
        if self._log is not None:
            self._log.close()
            self._log = None

    def _stop_process(self, timeout: float) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        self._signal(process, signal.SIGTERM if os.name == "posix" else signal.CTRL_BREAK_EVENT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal(process, signal.SIGKILL if os.name == "posix" else None)
            process.wait(timeout=timeout)

    @staticmethod
    def _signal(process: subprocess.Popen, sig: int | None) -> None:
        with contextlib.suppress(OSError):
            if os.name == "posix":
                os.killpg(process.pid, sig)  # pip's own children (builds) too
            elif sig is None:
                process.kill()
            else:
                process.send_signal(sig)

    def _show(self, share: float, detail: str) -> None:
        done = sum(step.weight for step in self.steps[:self._index])
        weight = self.steps[self._index].weight
        self.progress = SetupProgress(self.steps[self._index].stage, min(done + weight * share, 1.0), detail)

    def _write_log(self, text: str) -> None:
        if self._log is not None:
            self._log.write(text + "\n")
            self._log.flush()
