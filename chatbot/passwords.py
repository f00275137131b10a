"""Password hashing with argon2id: hash, verify (the same work for an unknown user), rehash when the parameters
change. Framework-free: no Flask.

Hashing takes tens of milliseconds in C on purpose. Under eventlet or gevent that would hold every socket of the
process, so each call runs in a native thread (offload.run_native) while the loop goes on.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .offload import run_native

PASSWORD_MIN = 8
PASSWORD_MAX = 256  # argon2 takes any length; a cap keeps a megabyte "password" from being hashed at all


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
        return run_native(self._hasher.hash, password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether `password` matches `stored_hash`; with no hash, the same verification runs against a dummy."""
        if stored_hash is None:
            if self._dummy is None:
                self._dummy = self.hash("chatbotws-dummy-password")
            self.dummy_verifications += 1
            run_native(self._check, self._dummy, password)
            return False
        return run_native(self._check, stored_hash, password)

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
