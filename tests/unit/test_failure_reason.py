"""What the dead-letter queue says a job died of: the traceback's telling line."""

from __future__ import annotations

from workers.operations import failure_reason

SQLALCHEMY = """Traceback (most recent call last):
  File "x.py", line 1, in f
sqlalchemy.exc.OperationalError: (psycopg.OperationalError) connection failed: Connection refused
(Background on this error at: https://sqlalche.me/e/20/e3q8)
"""


def test_sqlalchemys_pointer_is_not_the_reason() -> None:
    assert failure_reason(SQLALCHEMY) == (
        "sqlalchemy.exc.OperationalError: (psycopg.OperationalError) connection failed: Connection refused"
    )


def test_the_last_line_is_the_reason() -> None:
    assert failure_reason("Traceback\n  File x\nValueError: bad\n\n") == "ValueError: bad"
    assert failure_reason("\n \n") == "unknown"
