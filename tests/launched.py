"""Commands the tests start as real processes, none of which outlives its test.

A command's output goes to a file (a pipe nobody reads can fill and stall it). torchrun starts each
worker in a session of its own, so ending the launcher's process group does not reach the workers,
and a worker whose launcher was killed is handed to init, out of the test's sight. So every process
of a command carries a mark in its environment, which the workers inherit, and whatever carries the
mark is killed when the test is done with the command, however it ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Iterator

import psutil
import pytest

MARK = "ARMADA_TEST_COMMAND"


class Started:
    def __init__(self, command: list[str], log: Path, env: dict | None, cwd: Path | None = None):
        self.mark, self.log = uuid.uuid4().hex, log
        with open(log, "w") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                            env={**os.environ, **(env or {}), MARK: self.mark}, cwd=cwd)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> list[psutil.Process]:
        """Every process of the command still running (zombies are dead, only not yet reaped)."""
        found = []
        for process in psutil.process_iter():
            with suppress(psutil.Error):
                if process.status() != psutil.STATUS_ZOMBIE and process.environ().get(MARK) == self.mark:
                    found.append(process)
        return found

    def wait(self, timeout: float) -> int:
        """The exit status; past `timeout` the test fails, showing the output."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.process.args[0]} did not finish in {timeout} s; its output ends:\n{self.output()[-3000:]}")

    def kill(self) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        left = self.alive()
        for process in left:
            with suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(left, timeout=30)
        self.process.wait()


@contextmanager
def started(command: list[str], log: Path, env: dict | None = None) -> Iterator[Started]:
    """`command` running, its output in `log`; every process of it killed on leaving, however the test went."""
    command = Started([str(part) for part in command], log, env)
    try:
        yield command
    finally:
        command.kill()
