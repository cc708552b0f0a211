"""The CLI's tests. `cubehook history` reads what a real pipeline recorded: the workers' fixtures,
defined once in tests/jobs/conftest.py, are brought in here by name."""

from tests.jobs.conftest import pipeline, runtime, runtime_env, worker_settings

__all__ = ["pipeline", "runtime", "runtime_env", "worker_settings"]
