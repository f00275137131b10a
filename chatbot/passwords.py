"""Password hashing with argon2id: hash, verify (the same work for an unknown user), rehash when the parameters
change. Framework-free: no Flask.

Hashing takes tens of milliseconds in C on purpose. Under eventlet or gevent that would hold every socket of the
process, so each call runs in a native thread of the async framework's pool while the loop goes on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

T = TypeVar("T")
PASSWORD_MIN = 8
PASSWORD_MAX = 256  # argon2 takes any length; a cap keeps a megabyte "password" from being hashed at all


def _native(function: Callable[..., T], *args) -> T:
    """Run `function(*args)` in a native thread when eventlet or gevent has patched threading, else inline."""
    if "eventlet" in sys.modules:
        from eventlet import patcher, tpool

        if patcher.is_monkey_patched("thread"):
            return tpool.execute(function, *args)
    if "gevent" in sys.modules:
        import gevent
        from gevent import monkey

        if monkey.is_module_patched("threading"):
            return gevent.get_hub().threadpool.apply(function, args)
    return function(*args)


class Passwords:
    """argon2id hashing with configurable cost; `verify` does one full verification whether or not a hash exists."""

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int):
        """Use these argon2id parameters for new hashes (older hashes are rehashed on their next sign-in)."""
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism,
                                      type=Type.ID)
        # Verified against when the user is unknown or has no password, so that answer costs the same work
        # (made on first need: an app in open mode never hashes anything).
        self._dummy: str | None = None
        self.dummy_verifications = 0  # how often the dummy hash stood in (tests prove the same path ran)

    def hash(self, password: str) -> str:
        """An argon2id hash of `password` (a fresh salt each time)."""
        return _native(self._hasher.hash, password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether `password` matches `stored_hash`; with no hash, the same verification runs against a dummy."""
        if stored_hash is None:
            if self._dummy is None:
                self._dummy = self.hash("chatbotws-dummy-password")
            self.dummy_verifications += 1
            _native(self._check, self._dummy, password)
            return False
        return _native(self._check, stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether a hash was made with other parameters than today's."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True

    def _check(self, stored_hash: str, password: str) -> bool:
        """argon2's verify as a boolean (mismatch and malformed hashes are both False)."""
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
