"""Jobs: each wires shards + pul into one plain function of its config, runs on Ray, logs
to MLflow. `cli/` is the `pul` command line, `tracking/` the MLflow integration,
`evaluation/` benchmarks and reports, `train/` the runner and the stages, `pipeline/` the
whole method as one resumable job; pack, mine and tune are jobs of their own."""
