"""The audit trail: its store (events, snapshots, decisions, the action ledger), its schema and
Alembic migrations, retention and erasure, and what a minimal snapshot keeps. Imports the judging
core (what a decision is) and nothing else of the workers."""
