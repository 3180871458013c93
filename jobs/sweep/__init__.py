"""`pul tune`: stage 3 swept over a search space on Ray Tune, ranked, the best registered.

config.py   the sweep's typed config (searcher, scheduler, validation set, stage 3)
space.py    the YAML search space: parsing, checking against TCConfig, Tune's param space
tuner.py    searcher (grid, random, Optuna), scheduler (FIFO, ASHA), concurrency, resume
trial.py    one trial: a Ray Train run of stage 3 at one point, scored on the benchmark
validation.py  the cheap held-out AUC every trial reports while it trains
relay.py    how that value reaches Tune from inside the Ray Train run
results.py  the trials as Tune left them (finished or stopped early), ranked
ranking.py  the ranking as a Markdown table and a PNG
publish.py  the ranking logged, stopped trials' runs closed, the best tracker registered
run.py      the job end to end: `sweep(cfg, work)`
"""
