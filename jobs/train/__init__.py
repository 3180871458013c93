"""The training runner shared by every stage: Ray Train DDP, checkpoints, resume, MLflow."""
