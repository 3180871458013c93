"""The sweep job (`pul tune`): its config and entry point. The job lives in jobs/sweep/."""

from __future__ import annotations

from jobs.sweep.config import SweepConfig
from jobs.sweep.run import SweepOutcome, sweep

__all__ = ["SweepConfig", "SweepOutcome", "sweep"]
