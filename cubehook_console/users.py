"""The console's users and roles, and the trail of what people did there.

Users live in the audit trail's database (``console_users``): a name, a role, and an argon2id hash
of the password (argon2-cffi's defaults, RFC 9106's second recommendation), or none for a user who
only ever comes through single sign-on. Roles grow: a viewer reads; a reviewer also decides; an
operator also replays dead letters and quarantined deliveries and re-enables the webhook.

Every human action, refused ones included, is recorded in ``console_actions``: who, what, when,
from where, and a short detail that names no customer (never a note's text, never a password).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from workers.audit.schema import console_actions, console_users, now

NAME_PATTERN = r"^[A-Za-z0-9._@-]{1,128}$"
_hasher = PasswordHasher()
# Checked when the name is unknown, so that a wrong name costs what a wrong password does.
_DUMMY_HASH = _hasher.hash("not a password of anyone's")


class Role(StrEnum):
    VIEWER = "viewer"
    REVIEWER = "reviewer"
    OPERATOR = "operator"

    def may(self, needed: Role) -> bool:
        """Roles grow: an operator may do what a reviewer may, a reviewer what a viewer may."""
        order = list(Role)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    has_password: bool


class UserStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, name: str, role: Role, password: str | None) -> bool:
        """Add a user, or update the role and password of one that exists; True when added."""
        stamp = now()
        hashed = _hasher.hash(password) if password else None
        try:
            with self.engine.begin() as tx:
                tx.execute(
                    insert(console_users).values(
                        name=name, role=role.value, password_hash=hashed, created_at=stamp, updated_at=stamp
                    )
                )
            return True
        except IntegrityError:
            with self.engine.begin() as tx:
                tx.execute(
                    update(console_users)
                    .where(console_users.c.name == name)
                    .values(role=role.value, password_hash=hashed, updated_at=stamp)
                )
            return False

    def get(self, name: str) -> User | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(console_users.c.role, console_users.c.password_hash).where(
                    console_users.c.name == name
                )
            ).first()
        if row is None:
            return None
        return User(name, Role(row.role), row.password_hash is not None)

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when the password is theirs; None otherwise (a wrong name costs the same)."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(console_users.c.role, console_users.c.password_hash).where(
                    console_users.c.name == name
                )
            ).first()
        hashed = row.password_hash if row is not None and row.password_hash else _DUMMY_HASH
        try:
            _hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or not row.password_hash:
            return None
        if _hasher.check_needs_rehash(hashed):  # the parameters were raised since: store it anew
            self.add(name, Role(row.role), password)
        return User(name, Role(row.role), True)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who does something, and from where (the client's address, as the console sees it)."""

    name: str
    address: str


class Trail:
    """The human actions' audit trail."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, actor: Actor, action: str, target: str | None, ok: bool, detail: str = "") -> None:
        with self.engine.begin() as tx:
            tx.execute(
                insert(console_actions).values(
                    at=now(),
                    user_name=actor.name[:128],
                    action=action,
                    target=target[:256] if target else None,
                    address=actor.address[:64],
                    ok=ok,
                    detail=detail[:2000],
                )
            )

    def about(self, target: str, limit: int = 100) -> list[dict[str, Any]]:
        """The latest actions about one thing (a session, a job), newest first."""
        query = (
            select(console_actions)
            .where(console_actions.c.target == target)
            .order_by(console_actions.c.at.desc(), console_actions.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def latest(self, limit: int = 50) -> list[dict[str, Any]]:
        query = select(console_actions).order_by(console_actions.c.at.desc(), console_actions.c.id.desc())
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query.limit(limit))]
