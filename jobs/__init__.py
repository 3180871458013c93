"""Jobs: each wires shards + pul into one plain function of its config, runs on Ray, logs
to MLflow. The `pul` CLI lives here (jobs/cli.py)."""
