"""The harness's children die with it: a test session killed before its teardown (CI's
timeout, kill -9) must not leave a control plane or Prometheus running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from localkube import processes
from localkube.processes import tied_argv

HARNESS = """
import sys, time
from pathlib import Path
from localkube.processes import ManagedProcess, tie_children_to_this_process
if sys.argv[1] == "tied":
    tie_children_to_this_process()
child = ManagedProcess(name="sleeper", argv=["sleep", "300"], log_path=Path(sys.argv[2]))
child.start()
print(child.pid, flush=True)
time.sleep(300)
"""


def _state(pid: int) -> str | None:
    """The process's state letter, None once it is gone (a zombie counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if state in ("Z", "X") else state


def _wait(predicate: object, *, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _kill_harness_and_return_child(mode: str, tmp_path: Path) -> int:
    tools = str(Path(__file__).resolve().parents[2] / "tools")
    harness = subprocess.Popen(
        [sys.executable, "-c", HARNESS, mode, str(tmp_path / "child.log")],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": tools},
    )
    assert harness.stdout is not None
    child = int(harness.stdout.readline())
    # Once the child runs `sleep` itself, setpriv (which execs it) has set its tie.
    _wait(
        lambda: Path(f"/proc/{child}/cmdline").read_bytes().startswith(b"sleep\0"),
        timeout=10,
        what="the child to exec",
    )
    harness.send_signal(signal.SIGKILL)
    harness.wait(timeout=10)
    return child


def test_a_tied_child_dies_when_the_harness_is_killed(tmp_path: Path) -> None:
    child = _kill_harness_and_return_child("tied", tmp_path)
    _wait(lambda: _state(child) is None, timeout=10, what="the tied child to die")


def test_children_are_tied_only_when_asked_and_only_from_the_main_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(processes, "_tied", threading.Event())
    assert tied_argv(["etcd"]) == ["etcd"]  # `localkube up`: its cluster outlives the command
    processes.tie_children_to_this_process()
    assert tied_argv(["etcd"])[-2:] == ["--", "etcd"]
    assert "--pdeathsig" in tied_argv(["etcd"])
    # Linux signals when the forking *thread* ends: a worker thread's child is left untied.
    from_worker: list[list[str]] = []
    worker = threading.Thread(target=lambda: from_worker.append(tied_argv(["etcd"])))
    worker.start()
    worker.join()
    assert from_worker == [["etcd"]]


def test_rss_is_read_for_a_live_process_and_none_once_it_is_gone() -> None:
    rss = processes.rss_bytes(os.getpid())
    assert rss is not None and rss > 2**20
    child = subprocess.Popen(["true"])
    child.wait()
    assert processes.rss_bytes(child.pid) is None
