"""The method: models, losses, AHM, mining, tracker, metrics.

Pure PyTorch, numpy and OpenCV: this package runs on a bare GPU image and never imports
ray, mlflow, submitit, webdataset, or the shards/jobs/cluster packages.
"""
