"""Rank 0's progress line: step, loss, speed and time left (Ray forwards it to the driver)."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, steps: int, start: int, enabled: bool) -> None:
        self.label, self.steps, self.start, self.enabled = label, steps, start, enabled
        self.began = time.perf_counter()

    def show(self, step: int, loss: float) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.began
        rate = (step - self.start) / elapsed if elapsed > 0 else 0.0
        left = (self.steps - step) / rate if rate > 0 else float("nan")
        bar = "#" * int(20 * step / self.steps)
        print(
            f"{self.label} [{bar:<20}] step {step}/{self.steps}  loss {loss:.4f}  "
            f"{rate:.2f} steps/s  {_clock(elapsed)} elapsed, ~{_clock(left)} left",
            file=sys.__stdout__,  # straight to the worker's log: Ray Train's print patch
            flush=True,  # would log it a second time
        )


def _clock(seconds: float) -> str:
    if seconds != seconds:  # NaN: no speed measured yet
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"
