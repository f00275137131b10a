"""A fake OpenID Connect provider on loopback: discovery document, JWKS with an RSA key made at test time, an
authorize endpoint that redirects straight back with a code, and a token endpoint that checks the client's
secret and PKCE verifier and issues a signed id_token carrying the nonce. Faults on request: another nonce,
another signing key, another issuer or audience."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey


def _rsa_key(kid: str) -> RSAKey:
    """A fresh 2048-bit RSA key (made by `cryptography`) as a JWK."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return RSAKey.import_key(pem, {"kid": kid, "use": "sig", "alg": "RS256"})


class FakeOIDC:
    """The provider; `user` is who signs in next, the fault fields change the next id_tokens."""

    CLIENT_ID, CLIENT_SECRET = "chatbotws-test", "test-client-secret-0123456789"

    def __init__(self):
        """Make the keys and start serving on a free loopback port."""
        self.key, self.other_key = _rsa_key("good"), _rsa_key("good")  # same kid: only the signature tells
        self.user = {"sub": "subject-1", "email": "sso@example.org", "email_verified": True}
        self.nonce_override: str | None = None
        self.sign_with_other_key = False
        self.claims_override: dict = {}
        self.authorize_requests: list[dict] = []
        self.token_requests: list[dict] = []
        self._codes: dict[str, dict] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeOIDC:
        """Use as a context manager."""
        return self

    def __exit__(self, *exc) -> None:
        """Stop on exit."""
        self.close()

    def settings(self) -> dict:
        """The app settings that point at this provider."""
        return {"OIDC_ISSUER": self.issuer, "OIDC_CLIENT_ID": self.CLIENT_ID, "OIDC_CLIENT_SECRET": self.CLIENT_SECRET}

    # ---- the endpoints ----------------------------------------------------------------------------------------

    def discovery(self) -> dict:
        """/.well-known/openid-configuration."""
        return {"issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"]}

    def authorize(self, query: dict) -> str:
        """Sign `user` in at once and send the browser back with a code: returns the redirect URL."""
        self.authorize_requests.append(query)
        code = secrets.token_urlsafe(16)
        self._codes[code] = {**query, "user": dict(self.user)}
        return f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"

    def token(self, form: dict, authorization: str | None) -> tuple[int, dict]:
        """Exchange a code: the client's secret, the redirect URI and the PKCE verifier must match."""
        self.token_requests.append(form)
        grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or form.get("grant_type") != "authorization_code":
            return 400, {"error": "invalid_grant"}
        if not self._client_ok(form, authorization) or form.get("redirect_uri") != grant["redirect_uri"]:
            return 401, {"error": "invalid_client"}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if grant.get("code_challenge_method") != "S256" or challenge != grant.get("code_challenge"):
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.CLIENT_ID, "iat": now, "exp": now + 300,
                  "nonce": self.nonce_override or grant.get("nonce"), **grant["user"], **self.claims_override}
        key = self.other_key if self.sign_with_other_key else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
        return 200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                     "id_token": id_token}

    def _client_ok(self, form: dict, authorization: str | None) -> bool:
        """client_secret_basic or client_secret_post with our client's credentials."""
        if authorization and authorization.startswith("Basic "):
            pair = base64.b64decode(authorization[6:]).decode()
            return pair == f"{self.CLIENT_ID}:{self.CLIENT_SECRET}"
        return (form.get("client_id"), form.get("client_secret")) == (self.CLIENT_ID, self.CLIENT_SECRET)

    def _handler(self):
        """The request handler class bound to this provider."""
        provider = self

        class Handler(BaseHTTPRequestHandler):
            """Serves the provider's endpoints."""

            def log_message(self, *args) -> None:
                """Quiet."""

            def _send(self, status: int, body: dict | None = None, location: str | None = None) -> None:
                data = json.dumps(body or {}).encode()
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                """Discovery, JWKS, authorize."""
                url = urlsplit(self.path)
                query = {key: values[0] for key, values in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self._send(200, provider.discovery())
                elif url.path == "/jwks":
                    self._send(200, {"keys": [provider.key.as_dict(private=False)]})
                elif url.path == "/authorize":
                    self._send(302, location=provider.authorize(query))
                else:
                    self._send(404)

            def do_POST(self) -> None:
                """The token endpoint."""
                length = int(self.headers.get("Content-Length") or 0)
                form = {key: values[0] for key, values in parse_qs(self.rfile.read(length).decode()).items()}
                if urlsplit(self.path).path != "/token":
                    self._send(404)
                    return
                self._send(*provider.token(form, self.headers.get("Authorization")))

        return Handler
