"""The web process (`cubehook web`): its two listeners, the webhook endpoint around the intake, and
the health, readiness, metrics and OpenAPI routes. Only the CLI imports it; the workers and the
console never do (an import-linter contract)."""
