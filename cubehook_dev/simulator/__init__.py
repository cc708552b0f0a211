"""A local stand-in for the ComplyCube API that also sends signed webhooks, like ComplyCube does.

For development, demos, tests and benchmarks: ComplyCube itself is not reachable from CI.
``world`` holds the resources (pure, seeded), ``faults`` decides injected faults (pure, seeded),
``delivery`` sends webhooks on ComplyCube's retry schedule, ``app`` serves it all over HTTP.
"""
