"""The whole PUL pipeline as one resumable job (`pul pipeline`, `pul demo`)."""
