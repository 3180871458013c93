"""The Ray Tune side of a sweep: searcher, scheduler, how many trials at once, and resuming.

Resuming: Tune saves the sweep's state (trials, the searcher's and the scheduler's) under
the sweep folder as it goes. Run again after the driver was killed, `Tuner.restore` keeps
the finished and stopped trials as they are, and starts the interrupted ones again, which
resume from their own checkpoints (trial.py).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from jobs.sweep.config import SweepConfig
from jobs.sweep.space import dimensions, tune_space
from jobs.sweep.trial import run_trial
from jobs.train.config import TrainConfig

TIME_ATTR = "step"
"""The training step: the time axis ASHA's rungs are measured on."""


def run_tuner(cfg: SweepConfig, folder: Path, context: dict[str, Any]) -> Any:
    """Run (or resume) every trial of the sweep in `folder`; Tune's ResultGrid."""
    import ray
    from ray import tune

    from jobs.runtime import connect_ray

    connect_ray()
    trainable = tune.with_parameters(run_trial, context=context)
    # the trial itself only waits for its trainer; the trainer's workers hold the resources
    trainable = tune.with_resources(trainable, {"cpu": 0, "memory": 1})
    space = tune_space(dimensions(cfg.space), grid=cfg.searcher == "grid")
    path = folder / "ray" / "sweep"
    if tune.Tuner.can_restore(str(path)):
        tuner = tune.Tuner.restore(
            str(path), trainable=trainable, resume_errored=True, param_space=space
        )
    else:
        concurrent = cfg.max_concurrent or trials_at_once(cfg.tc.train, ray.cluster_resources())
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            tune_config=tune_config(cfg, concurrent),
            run_config=tune.RunConfig(name=path.name, storage_path=str(path.parent), verbose=1),
        )
    return tuner.fit()


def tune_config(cfg: SweepConfig, concurrent: int) -> Any:
    from ray import tune

    return tune.TuneConfig(
        metric=cfg.metric,
        mode="max",
        num_samples=1 if cfg.searcher == "grid" else cfg.num_samples,
        search_alg=searcher(cfg, concurrent),
        scheduler=scheduler(cfg),
        max_concurrent_trials=concurrent,
    )


def searcher(cfg: SweepConfig, concurrent: int) -> Any:
    """grid and random: Tune's own variant generator (grid_search or sampled space);
    optuna: Optuna's TPE through OptunaSearch. Both seeded, both `concurrent` trials at once."""
    if cfg.searcher == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(seed=cfg.seed)  # Tune wraps it in a ConcurrencyLimiter
    from ray.tune.search import BasicVariantGenerator

    # given as an instance, Tune ignores TuneConfig.max_concurrent_trials for it ("requires
    # a Searcher"): every trial would start at once, each waiting for CPUs it cannot get
    return BasicVariantGenerator(random_state=cfg.seed, max_concurrent=concurrent)


def scheduler(cfg: SweepConfig) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if cfg.scheduler == "fifo":
        return FIFOScheduler()
    return ASHAScheduler(
        time_attr=TIME_ATTR,
        # rungs below the last step: a trial that has trained to the end is not stopped
        # there (its model is kept and scored)
        max_t=cfg.tc.train.steps - 1,
        grace_period=cfg.asha.grace_period,
        reduction_factor=cfg.asha.reduction_factor,
        stop_last_trials=False,
    )


def trials_at_once(train: TrainConfig, cluster: dict[str, float]) -> int:
    """Trials the cluster holds at once: each takes workers x cpus_per_worker CPUs, and
    with use_gpu one GPU per worker (so on a GPU cluster, one trial per set of GPUs)."""
    fits = [cluster.get("CPU", 1.0) / (train.workers * train.cpus_per_worker)]
    if train.use_gpu:
        fits.append(cluster.get("GPU", 0.0) / train.workers)
    # 1e-9: 2 CPUs hold four 0.5-CPU workers, whatever the float rounding
    return max(1, math.floor(min(fits) + 1e-9))
