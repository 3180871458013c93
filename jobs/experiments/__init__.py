"""`pul experiment NAME`: the paper's claims, each checked by one command.

An experiment is a sweep (jobs/sweep) over the settings the claim compares, on inputs the
pipeline prepares once (jobs/pipeline, stopped after mining), plus a report: a Markdown
table and a PNG, written to the output folder and logged to the sweep's MLflow run.

- noise-robustness (noise_robustness.py): BCE against NR on labeled pairs with annotation
  noise added on purpose (supplement Sec. D, Fig. 6);
- ahm-vs-rss (ahm_vs_rss.py): AHM against random mini-batches at small batch sizes
  (supplement Sec. C);
- unsupervised-vs-supervised (supervised_gap.py): AlexPUL against the supervised SiamFC
  baseline on the same videos and steps.

Budgets are presets under configs/experiments/ (small: this 2-core machine; full: a GPU
cluster); run.py ties the parts together.
"""
