"""Child processes of the harness: started in their own process group with a log file each,
stopped as a group (TERM, then KILL), so nothing outlives the harness.

A harness that may be killed before it stops them (a test session killed by CI's timeout or a
person's Ctrl-C twice) calls `tie_children_to_this_process()` first: from then on each child
is started through util-linux's `setpriv --pdeathsig KILL`, so the kernel kills it when the
harness dies. `localkube up` and the demo do not: their cluster outlives the command."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_tied = threading.Event()  # set once, by a harness: a flag without a global statement


def tie_children_to_this_process() -> None:
    """Children started from now on die with this process (see the module's docstring)."""
    _tied.set()


def tied_argv(argv: list[str]) -> list[str]:
    """`argv` run so that it gets SIGKILL when the thread starting it ends, if this process
    asked for that. Linux sends the parent-death signal when the *thread* that forked the
    child exits, so a child started from any other thread than the main one (which lives as
    long as the process) is left untied rather than killed early."""
    setpriv = shutil.which("setpriv")
    on_main_thread = threading.current_thread() is threading.main_thread()
    if not _tied.is_set() or setpriv is None or not on_main_thread:
        return argv
    return [setpriv, "--pdeathsig", "KILL", "--", *argv]


@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                tied_argv(self.argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self, *, timeout: float = 10.0) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            _signal_group(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=timeout)
        # Children of the leader (if any) share its group: make sure none survive it.
        _signal_group(self.popen.pid, signal.SIGKILL)

    def kill(self, *, timeout: float = 10.0) -> None:
        """SIGKILL the group at once, as a crash would (no graceful shutdown), and reap it."""
        if self.popen is None:
            return
        _signal_group(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=timeout)

    def again(self) -> ManagedProcess:
        """A new, not yet started process with the same command line, environment and log
        (appended to): the same component restarted on its ports and data directory."""
        return ManagedProcess(
            name=self.name, argv=list(self.argv), log_path=self.log_path, env=self.env, cwd=self.cwd
        )


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def rss_bytes(pid: int) -> int | None:
    """The process's resident size (VmRSS of /proc/PID/status); None once it has none (a
    zombie) or is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


def group_members(pgid: int) -> list[int]:
    """PIDs still in process group ``pgid`` (Linux /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        # fields: state ppid pgrp ...; a zombie already reaped by nobody still counts as gone.
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def wait_until(
    predicate: object, *, timeout: float, interval: float = 0.2, what: str = "condition"
) -> None:
    """Poll ``predicate()`` until it is truthy; raise TimeoutError naming ``what``."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:
            last_error = exc
        time.sleep(interval)
    detail = f" (last error: {last_error!r})" if last_error else ""
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
