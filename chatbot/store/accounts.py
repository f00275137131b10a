"""Accounts: users, their conversation space (one owner each), session versions, one-time links, and moving an
anonymous session's conversations into an account. Every query names the user it touches."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from .rows import _iso, _now, _seconds, _valid_id
from .schema import LINK_PURPOSES, ROLES, USER_STATES, USERNAME_MAX, conversations, links, owners, users

# Any fixed 64-bit number: two first sign-ups at once on Postgres take turns, so only one becomes admin.
_FIRST_USER_LOCK_KEY = 0x6163636F756E7473


class UsernameTaken(Exception):
    """Another account already has that name (compared case-insensitively)."""


class LinkInvalid(Exception):
    """The one-time link is unknown, used, expired or for something else."""


@dataclass(frozen=True)
class LoginState:
    """What a login token is checked against: one read per check."""

    user_id: str
    username: str
    owner_id: str
    role: str
    state: str
    session_version: int

    @property
    def active(self) -> bool:
        """Whether the account may use the app."""
        return self.state == "active"


_USER_COLUMNS = (users.c.id, users.c.username, users.c.password_hash, users.c.role, users.c.state,
                 users.c.created_at, users.c.session_version, users.c.daily_token_limit, users.c.oidc_subject,
                 owners.c.id.label("owner_id"), owners.c.last_seen_at)


def _user(row: sa.Row) -> dict:
    """A users row (joined with its owner) as a dict; the password hash stays in it for the sign-in check."""
    user = dict(row._mapping)
    user["created_at"] = _iso(user["created_at"])
    user["last_seen_at"] = _iso(user["last_seen_at"]) if user["last_seen_at"] else None
    return user


def _token_hash(token: str) -> str:
    """The stored form of a link token (the token itself is only ever in the link)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _clean_username(username: object) -> str:
    """A username as stored: stripped text of 1 to USERNAME_MAX characters; ValueError otherwise."""
    if not isinstance(username, str) or not username.strip() or len(username.strip()) > USERNAME_MAX:
        raise ValueError(f"username must be 1 to {USERNAME_MAX} characters")
    return username.strip()


class AccountQueries:
    """User and link queries (mixed into Store, which provides `_transaction` and `dialect`)."""

    def create_user(self, username: str, password_hash: str | None, *, pending: bool, invite: str | None = None,
                    oidc_subject: str | None = None) -> dict:
        """Create an account and its conversation space in one transaction, and return it.

        The first account is an active admin whatever the policy. Otherwise it is pending when `pending`, and with
        an `invite` token that invitation is used up in the same transaction (LinkInvalid if it cannot be).
        UsernameTaken when the name (case-insensitively) or the single sign-on subject is already known.
        """
        username = _clean_username(username)
        now = _now()
        user_id, owner_id = uuid.uuid4().hex, uuid.uuid4().hex
        try:
            with self._transaction() as conn:
                if self.dialect == "postgresql":
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_FIRST_USER_LOCK_KEY)))
                first = conn.scalar(sa.select(sa.func.count()).select_from(users)) == 0
                if not first and invite is not None:
                    self._use_link(conn, invite, "invite", now)
                role, state = ("admin", "active") if first else ("user", "pending" if pending else "active")
                conn.execute(sa.insert(users).values(
                    id=user_id, username=username, password_hash=password_hash, role=role, state=state,
                    created_at=now, session_version=1, daily_token_limit=None, oidc_subject=oidc_subject))
                conn.execute(sa.insert(owners).values(id=owner_id, created_at=now, last_seen_at=now, user_id=user_id))
        except IntegrityError as err:
            raise UsernameTaken(username) from err
        return self.get_user(user_id)

    def count_users(self) -> int:
        """How many accounts exist."""
        with self._transaction(write=False) as conn:
            return conn.scalar(sa.select(sa.func.count()).select_from(users))

    def find_user(self, username: str) -> dict | None:
        """The account with this name (case-insensitively), with its password hash; None if there is none."""
        if not isinstance(username, str) or not username.strip() or len(username.strip()) > USERNAME_MAX:
            return None
        return self._one_user(sa.func.lower(users.c.username) == username.strip().lower())

    def get_user(self, user_id: str) -> dict | None:
        """One account by id, or None."""
        return self._one_user(users.c.id == user_id) if _valid_id(user_id) else None

    def user_by_subject(self, subject: str) -> dict | None:
        """The account linked to a single sign-on subject, or None."""
        return self._one_user(users.c.oidc_subject == subject) if isinstance(subject, str) and subject else None

    def login_state(self, user_id: str) -> LoginState | None:
        """What a login token for `user_id` is checked against (one read), or None for an unknown account."""
        if not _valid_id(user_id):
            return None
        query = (sa.select(users.c.id, users.c.username, owners.c.id.label("owner_id"), users.c.role, users.c.state,
                           users.c.session_version)
                 .join(owners, owners.c.user_id == users.c.id).where(users.c.id == user_id))
        with self._transaction(write=False) as conn:
            row = conn.execute(query).first()
        return None if row is None else LoginState(*row)

    def login_states(self, user_ids: list[str]) -> dict[str, tuple[str, int]]:
        """{user id: (state, session version)} for every known account among `user_ids`, in one read."""
        wanted = [user_id for user_id in set(user_ids) if _valid_id(user_id)]
        if not wanted:
            return {}
        query = sa.select(users.c.id, users.c.state, users.c.session_version).where(users.c.id.in_(wanted))
        with self._transaction(write=False) as conn:
            return {row.id: (row.state, row.session_version) for row in conn.execute(query)}

    def set_password_hash(self, user_id: str, password_hash: str, *, end_sessions: bool) -> None:
        """Store a new hash; a password change also ends every session (a rehash on sign-in does not)."""
        values = {"password_hash": password_hash}
        if end_sessions:
            values["session_version"] = users.c.session_version + 1
        self._update_user(user_id, values)

    def end_sessions(self, user_id: str) -> None:
        """Sign out everywhere: every login token of the account made before now is dead."""
        self._update_user(user_id, {"session_version": users.c.session_version + 1})

    def set_user_state(self, user_id: str, state: str) -> None:
        """Approve (active), or disable (which also ends every session); pending is only ever a new account's."""
        if state not in USER_STATES:
            raise ValueError(f"state must be one of {USER_STATES}")
        values = {"state": state}
        if state == "disabled":
            values["session_version"] = users.c.session_version + 1
        self._update_user(user_id, values)

    def set_user_role(self, user_id: str, role: str) -> None:
        """Make an account an admin or an ordinary user."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        self._update_user(user_id, {"role": role})

    def set_daily_token_limit(self, user_id: str, limit: int | None) -> None:
        """Override USER_DAILY_TOKENS for one account (None: the default; 0: no limit)."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError("limit must be an integer >= 0 or None")
        self._update_user(user_id, {"daily_token_limit": limit})

    def link_subject(self, user_id: str, subject: str) -> None:
        """Link a single sign-on subject to an existing account (found by its verified email)."""
        self._update_user(user_id, {"oidc_subject": subject})

    def delete_user(self, user_id: str) -> None:
        """Delete an account with all its data (its owner, conversations, messages, usage and links cascade)."""
        if not _valid_id(user_id):
            raise LookupError(user_id)
        with self._transaction() as conn:
            if conn.execute(sa.delete(users).where(users.c.id == user_id)).rowcount == 0:
                raise LookupError(user_id)

    # one-time links

    def create_link(self, purpose: str, *, created_by: str, ttl_seconds: float, user_id: str | None = None) -> str:
        """Make a one-time link token (an invitation, or a password reset for `user_id`); only its hash is kept."""
        if purpose not in LINK_PURPOSES:
            raise ValueError(f"purpose must be one of {LINK_PURPOSES}")
        token = secrets.token_urlsafe(32)
        now = _now()
        with self._transaction() as conn:
            conn.execute(sa.insert(links).values(token_hash=_token_hash(token), purpose=purpose, user_id=user_id,
                                                 created_by=created_by, created_at=now,
                                                 expires_at=now + _seconds(ttl_seconds, "ttl_seconds")))
        return token

    def check_link(self, token: str, purpose: str) -> dict | None:
        """The unused, unexpired link `token` of this purpose ({purpose, user_id, expires_at}), or None."""
        if not isinstance(token, str) or not 0 < len(token) <= 200:
            return None
        query = sa.select(links.c.purpose, links.c.user_id, links.c.expires_at).where(
            links.c.token_hash == _token_hash(token), links.c.purpose == purpose, links.c.used_at.is_(None),
            links.c.expires_at > _now())
        with self._transaction(write=False) as conn:
            row = conn.execute(query).first()
        return None if row is None else dict(row._mapping)

    def reset_password(self, token: str, password_hash: str) -> str:
        """Use a password reset link: new hash, every session ended, link spent — one transaction; the user id."""
        with self._transaction() as conn:
            user_id = self._use_link(conn, token, "reset", _now())
            conn.execute(sa.update(users).where(users.c.id == user_id).values(
                password_hash=password_hash, session_version=users.c.session_version + 1))
        return user_id

    def delete_old_links(self, older_than: timedelta = timedelta(days=30)) -> int:
        """Forget links that expired long ago; return how many."""
        with self._transaction() as conn:
            return conn.execute(sa.delete(links).where(links.c.expires_at < _now() - older_than)).rowcount

    # anonymous sessions

    def adopt_conversations(self, owner_id: str, anonymous_owner_id: str) -> int:
        """Move an anonymous session's conversations into an account's space and delete that session.

        Only an owner that belongs to no account is taken from; its active conversation becomes the account's.
        Returns how many conversations moved.
        """
        if not (_valid_id(owner_id) and _valid_id(anonymous_owner_id)) or owner_id == anonymous_owner_id:
            return 0
        with self._transaction() as conn:
            anonymous = conn.execute(sa.select(owners.c.active_conversation_id).where(
                owners.c.id == anonymous_owner_id, owners.c.user_id.is_(None))).first()
            if anonymous is None:
                return 0
            moved = conn.execute(sa.update(conversations).where(conversations.c.owner_id == anonymous_owner_id)
                                 .values(owner_id=owner_id)).rowcount
            if moved and anonymous.active_conversation_id:
                conn.execute(sa.update(owners).where(owners.c.id == owner_id)
                             .values(active_conversation_id=anonymous.active_conversation_id))
            conn.execute(sa.delete(owners).where(owners.c.id == anonymous_owner_id))
        return moved

    # internals

    def _one_user(self, condition) -> dict | None:
        """The one account matching `condition`, joined with its owner, or None."""
        query = sa.select(*_USER_COLUMNS).join(owners, owners.c.user_id == users.c.id).where(condition)
        with self._transaction(write=False) as conn:
            row = conn.execute(query).first()
        return None if row is None else _user(row)

    def _update_user(self, user_id: str, values: dict) -> None:
        """Change one account; LookupError if it does not exist."""
        if not _valid_id(user_id):
            raise LookupError(user_id)
        with self._transaction() as conn:
            if conn.execute(sa.update(users).where(users.c.id == user_id).values(**values)).rowcount == 0:
                raise LookupError(user_id)

    @staticmethod
    def _use_link(conn: Connection, token: str, purpose: str, now) -> str | None:
        """Spend a one-time link inside the caller's transaction and return its user id; LinkInvalid otherwise."""
        if not isinstance(token, str) or not 0 < len(token) <= 200:
            raise LinkInvalid()
        condition = sa.and_(links.c.token_hash == _token_hash(token), links.c.purpose == purpose,
                            links.c.used_at.is_(None), links.c.expires_at > now)
        user_id = conn.scalar(sa.select(links.c.user_id).where(condition))
        if conn.execute(sa.update(links).where(condition).values(used_at=now)).rowcount != 1:
            raise LinkInvalid()
        return user_id
