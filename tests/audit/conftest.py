"""The audit trail's tests: the store, its migrations, retention and erasure, on SQLite and on
PostgreSQL when it is reachable. They use the workers' fixtures, defined once in
tests/jobs/conftest.py and brought in here by name: the database, the store, and a whole pipeline
for what maintenance does."""

from tests.jobs.conftest import database_url, pipeline, runtime, runtime_env, store, worker_settings

__all__ = ["database_url", "pipeline", "runtime", "runtime_env", "store", "worker_settings"]
