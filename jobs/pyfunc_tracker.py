"""The loader module of trackers registered before the MLflow code moved to jobs/tracking/.

Their MLmodel files name `jobs.pyfunc_tracker`; MLflow imports it and calls
`_load_pyfunc`, so this name must keep resolving for as long as such versions exist.
"""

from jobs.tracking.pyfunc import _load_pyfunc

__all__ = ["_load_pyfunc"]
