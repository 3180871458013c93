"""The MLflow integration: runs (`runs`), the model registry (`registry`), `--model` URIs
(`model_uri`), the tracking server (`server`) and the pyfunc tracker flavour (`pyfunc`)."""
