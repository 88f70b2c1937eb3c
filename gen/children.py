"""Child processes that an interrupt can end: Yosys, OpenSTA, Verilator builds, simulations.

Every tool sparsegen starts goes through :func:`run`, which puts the child in a process group of
its own and remembers it while it runs. :func:`interrupt` (the command line calls it on Ctrl-C)
ends every live group, so ``make`` and the compilers under a Verilator build go too, and makes
later :func:`run` calls fail at once with :class:`Interrupted` instead of starting new work,
which stops a pool of worker threads within one job's Python time.

A child in a group of its own does not see the terminal's Ctrl-C itself; ending it is this
module's job. That is what keeps a second Ctrl-C from leaving an orphan behind: the children are
ended by the first one, before anything else runs.
"""

import contextlib
import os
import signal
import subprocess
import threading
import time

__all__ = ["Interrupted", "run", "interrupt", "end_all", "live_count", "reset", "critical",
           "in_critical"]

_live: set[subprocess.Popen] = set()
_lock = threading.Lock()
_interrupted = threading.Event()
_critical = 0


class Interrupted(KeyboardInterrupt):
    """Raised by :func:`run` after :func:`interrupt`: no new child is started."""


def run(command, *, capture_output: bool = False, timeout: float | None = None,
        input=None, **kwargs) -> subprocess.CompletedProcess:
    """:func:`subprocess.run` (same arguments and result) with the child ended by
    :func:`interrupt` and by any exception in the calling thread, its whole process group
    included.

    Raises
    ------
    Interrupted
        :func:`interrupt` was called: the command is not started.
    subprocess.TimeoutExpired
        ``timeout`` seconds passed; the child's group has been ended.
    """
    if _interrupted.is_set():
        raise Interrupted(f"interrupted: not starting {command[0]}")
    if capture_output:
        kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
    if input is not None:
        kwargs["stdin"] = subprocess.PIPE
    with subprocess.Popen(command, start_new_session=True, **kwargs) as process:
        with _lock:
            _live.add(process)
        try:
            if _interrupted.is_set():
                # interrupt() ran between the check above and the add: it set the flag before
                # it read the live set, so either it saw this child or this check sees the flag
                raise Interrupted(f"interrupted: ending {command[0]}")
            stdout, stderr = process.communicate(input, timeout=timeout)
        except BaseException:
            _end(process, grace=0.5)
            raise
        finally:
            with _lock:
                _live.discard(process)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _end(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM to the child's group, SIGKILL after ``grace`` seconds if the child lives on."""
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(process, signal.SIGKILL)   # the group may outlive its leader: end it all


def interrupt() -> None:
    """Refuse new children from now on and send SIGTERM to every live child's group.

    Safe to call from a signal handler: it signals and returns without waiting.
    """
    _interrupted.set()
    with _lock:
        live = list(_live)
    for process in live:
        _signal_group(process, signal.SIGTERM)


def end_all(grace: float = 1.0) -> None:
    """After :func:`interrupt`: wait up to ``grace`` seconds in all for the children to go, then
    SIGKILL every group still alive."""
    deadline = time.monotonic() + grace
    with _lock:
        live = list(_live)
    for process in live:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _signal_group(process, signal.SIGKILL)


def live_count() -> int:
    """How many children :func:`run` is waiting for right now (for tests)."""
    with _lock:
        return len(_live)


def reset() -> None:
    """Allow new children again (after :func:`interrupt`; for tests that call ``main``)."""
    _interrupted.clear()


@contextlib.contextmanager
def critical():
    """A section an interrupt must not cut short (putting a set of output files in place):
    while one runs, :func:`in_critical` is true and the command line unwinds through it
    instead of exiting at once."""
    global _critical
    with _lock:
        _critical += 1
    try:
        yield
    finally:
        with _lock:
            _critical -= 1


def in_critical() -> bool:
    """Whether a :func:`critical` section is running in any thread."""
    with _lock:
        return _critical > 0
