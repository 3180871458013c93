"""Evaluation: tracking a labeled benchmark (`evaluate`), result files (`results`), and
scores, plots and tables from them (`report`)."""
