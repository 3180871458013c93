"""Stop signals as an exception, so that a long command ends through its `finally` blocks.

Ctrl-C (SIGINT), `kill` (SIGTERM) and a closed terminal (SIGHUP) normally end Python at
once (SIGTERM, SIGHUP) or wherever it happens to be (SIGINT): child processes such as an
MLflow server or Ray's training workers are left running, and nobody says what was kept.
Inside `stop_signals_raise()` each of them raises `Stopped` in the main thread instead; the
command ends its children, prints one line and exits with 128 + the signal number.

A signal a launcher has set up is left alone: one ignored (SIGINT for a job started with
`&` by a non-interactive shell) stays ignored, and a handler of its own (submitit's SIGTERM
during a Slurm requeue) stays in charge. Ray's driver handlers are not a launcher's: they
exit without cleanup, and are replaced like the defaults.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(BaseException):
    """A stop signal arrived. A BaseException, like KeyboardInterrupt: `except Exception`
    code on the way out lets it through."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        """The shell's convention: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP."""
        return 128 + self.signum


@contextlib.contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise `Stopped` in the main thread.

    After the first one, further stop signals are ignored until the block is left, so the
    cleanup it starts is not cut short by an impatient second Ctrl-C. Outside the main
    thread (a Ray Tune trial) nothing changes: Python delivers signals to the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    installed: dict[int, object] = {}

    def handler(signum: int, frame: object) -> None:
        for sig in installed:
            signal.signal(sig, signal.SIG_IGN)
        raise Stopped(signum)

    for sig in STOP_SIGNALS:
        if _overridable(signal.getsignal(sig)):
            installed[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, previous in installed.items():
            signal.signal(sig, previous)


def stop_handlers() -> dict[int, Any]:
    """The current handler of each stop signal (to hand to `reclaim_stop_signals`)."""
    return {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}


def reclaim_stop_signals(before: dict[int, Any]) -> None:
    """Put back the stop-signal handlers `before` (taken before `ray.init`), main thread only.

    `ray.init` replaces the driver's SIGTERM handler with its own, which exits at once with
    status 15 (no message, no cleanup), and in C with one that aborts (status 134). Ray's
    own handlers found in `before` (Ray was started earlier in this process) are taken as
    the defaults they replaced."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, handler in before.items():
        if handler is None:  # not set from Python: nothing known to put back
            continue
        if _from_ray(handler):
            handler = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        signal.signal(sig, handler)  # also undoes a replacement made in C


def _from_ray(handler: Any) -> bool:
    return callable(handler) and getattr(handler, "__module__", "").startswith("ray.")


def _overridable(handler: Any) -> bool:
    """The interpreter's defaults, or Ray's, which end the process without cleanup."""
    return handler in (signal.SIG_DFL, signal.default_int_handler) or _from_ray(handler)
