"""Helpers for the account tests: fill in the server-rendered forms (with their CSRF token) through Flask's test
client or a requests.Session against the real server."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

PASSWORD = "correct horse battery staple"
# Cheap argon2id for tests (the production defaults cost ~64 MiB and tens of milliseconds per hash).
CHEAP_ARGON2 = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "64", "ARGON2_PARALLELISM": "1"}
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class Browser:
    """A client that keeps cookies: Flask's test client (paths) or requests.Session (with a base URL)."""

    def __init__(self, client, base: str = ""):
        """Wrap `client`; `base` is prefixed to every path (the real server's URL)."""
        self.client, self.base = client, base

    def get(self, path: str, **kwargs):
        """GET without following redirects."""
        return self.client.get(self.base + path, **self._options(kwargs))

    def post(self, path: str, data: dict, **kwargs):
        """POST a form without following redirects."""
        return self.client.post(self.base + path, data=data, **self._options(kwargs))

    def _options(self, kwargs: dict) -> dict:
        """Never follow redirects (tests look at them)."""
        key = "allow_redirects" if self.base else "follow_redirects"
        return {key: False, **kwargs}

    def csrf(self, path: str) -> str:
        """The CSRF token of the form on the page at `path`."""
        match = _CSRF.search(text(self.get(path)))
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def submit(self, path: str, fields: dict, *, form_page: str | None = None, **kwargs):
        """Post `fields` to `path` with the CSRF token of the form on `form_page` (default: `path`)."""
        return self.post(path, {"csrf_token": self.csrf(form_page or path), **fields}, **kwargs)

    def signup(self, username: str, password: str = PASSWORD, invite: str | None = None):
        """Fill in and send the sign-up form."""
        fields = {"username": username, "password": password, "confirm": password}
        if invite:
            fields["invite"] = invite
        # Any page's token is the session's: the sign-in page always has a form (sign-up may be closed).
        return self.submit("/signup", fields, form_page="/signin")

    def signin(self, username: str, password: str = PASSWORD):
        """Fill in and send the sign-in form."""
        return self.submit("/signin", {"username": username, "password": password})

    def cookie(self, name: str = "chatbot_token") -> str | None:
        """The value of one of this browser's cookies."""
        if self.base:
            return self.client.cookies.get(name)
        found = self.client.get_cookie(name)
        return found.value if found else None


def text(response) -> str:
    """A response's body as text (requests or Flask)."""
    return response.text if hasattr(response, "text") and isinstance(response.text, str) else \
        response.get_data(as_text=True)


def location(response) -> str:
    """Where a redirect points: its path (and query)."""
    parts = urlsplit(response.headers.get("Location", ""))
    return parts.path + (f"?{parts.query}" if parts.query else "")
