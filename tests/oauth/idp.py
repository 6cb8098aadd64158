"""A fake OAuth2 identity provider on loopback, standing in for Microsoft Entra ID.

It mints access tokens with an expiry and answers, for the same tokens:
  - over HTTPS (msal insists on https authorities), under `authority`:
      GET  /<tenant>/v2.0/.well-known/openid-configuration   (msal's tenant discovery)
      POST /<tenant>/oauth2/v2.0/token                       (client-credentials grant)
  - over plain HTTP on loopback, for the mail servers and token commands:
      POST /introspect   token=...  ->  {"active": true, "username": ...}   (RFC 7662)
      POST /mint                      ->  {"access_token": ..., "expires_in": ...}

The HTTPS certificate is issued by a throw-away CA (`ca_file`), which clients
are given through REQUESTS_CA_BUNDLE, as an operator behind a private CA would.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import secrets
import shutil
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TENANT = "contoso.onmicrosoft.com"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "app-secret-value"
SCOPE = "https://outlook.office365.com/.default"


@dataclass
class Issued:
    token: str
    subject: str
    expires_at: float  # time.time()
    revoked: bool = False


class FakeIdentityProvider:
    def __init__(self, user: str, lifetime: float = 3600.0) -> None:
        self.user = user
        self.lifetime = lifetime  # seconds each new token is valid for
        self.issued: list[Issued] = []
        self.token_requests = 0  # client-credentials requests answered with a token
        self.refused_requests = 0
        self.introspections: list[bool] = []  # each answer: active or not
        self._revoke_next = 0
        self._lock = threading.Lock()
        self._dir = Path(tempfile.mkdtemp(prefix="intake-idp-"))
        self.ca_file = self._dir / "ca.pem"
        self._tls = _tls_context(self._dir)
        self._https = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, secure=True))
        self._https.socket = self._tls.wrap_socket(self._https.socket, server_side=True)
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, secure=False))
        self._threads: list[threading.Thread] = []

    # --- life cycle -------------------------------------------------------------------------
    def start(self) -> FakeIdentityProvider:
        for server in (self._https, self._http):
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in (self._https, self._http):
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(5)

    def remove_files(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    # --- addresses ----------------------------------------------------------------------------
    @property
    def authority(self) -> str:
        return f"https://127.0.0.1:{self._https.server_address[1]}/"

    @property
    def introspection_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/introspect"

    @property
    def mint_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/mint"

    # --- tokens --------------------------------------------------------------------------------
    def mint(self) -> Issued:
        with self._lock:
            issued = Issued(
                "at-" + secrets.token_urlsafe(24),
                self.user,
                time.time() + self.lifetime,
                self._revoke_next > 0,
            )
            self._revoke_next = max(self._revoke_next - 1, 0)
            self.issued.append(issued)
            return issued

    def revoke_next(self, count: int = 1) -> None:
        """The next `count` tokens are revoked as soon as they are issued."""
        with self._lock:
            self._revoke_next = count

    def revoke_all(self) -> None:
        with self._lock:
            for issued in self.issued:
                issued.revoked = True

    def check(self, token: str) -> Issued | None:
        """The live (unexpired, unrevoked) token, or None; recorded as an introspection."""
        with self._lock:
            found = next((i for i in self.issued if i.token == token), None)
            if found is not None and (found.revoked or time.time() >= found.expires_at):
                found = None
            self.introspections.append(found is not None)
            return found

    @property
    def refused_introspections(self) -> int:
        return self.introspections.count(False)


def _handler(idp: FakeIdentityProvider, secure: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            return {key: values[0] for key, values in parse_qs(raw).items()}

        def do_GET(self) -> None:
            base = idp.authority.rstrip("/")
            if secure and self.path.split("?")[0] == f"/{TENANT}/v2.0/.well-known/openid-configuration":
                self._send(
                    200,
                    {
                        "issuer": f"{base}/{TENANT}/v2.0",
                        "authorization_endpoint": f"{base}/{TENANT}/oauth2/v2.0/authorize",
                        "token_endpoint": f"{base}/{TENANT}/oauth2/v2.0/token",
                    },
                )
                return
            self._send(404, {"error": "not_found"})

        def do_POST(self) -> None:
            path = self.path.split("?")[0]
            form = self._form()
            if secure and path == f"/{TENANT}/oauth2/v2.0/token":
                self._token(form)
            elif not secure and path == "/mint":
                issued = idp.mint()
                self._send(200, _token_body(issued, idp.lifetime))
            elif not secure and path == "/introspect":
                found = idp.check(form.get("token", ""))
                if found is None:
                    self._send(200, {"active": False})
                else:
                    self._send(200, {"active": True, "username": found.subject, "exp": int(found.expires_at)})
            else:
                self._send(404, {"error": "not_found"})

        def _token(self, form: dict[str, str]) -> None:
            problem = None
            if form.get("grant_type") != "client_credentials":
                problem = ("unsupported_grant_type", "AADSTS70003: unsupported grant type")
            elif form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                problem = ("invalid_client", "AADSTS7000215: Invalid client secret provided.")
            elif form.get("scope") != SCOPE:
                problem = (
                    "invalid_scope",
                    f"AADSTS70011: The provided scope {form.get('scope')!r} is not valid.",
                )
            if problem is not None:
                with idp._lock:
                    idp.refused_requests += 1
                self._send(
                    401 if problem[0] == "invalid_client" else 400,
                    {"error": problem[0], "error_description": problem[1]},
                )
                return
            issued = idp.mint()
            with idp._lock:
                idp.token_requests += 1
            self._send(200, _token_body(issued, idp.lifetime))

    return Handler


def _token_body(issued: Issued, lifetime: float) -> dict[str, Any]:
    return {
        "token_type": "Bearer",
        "expires_in": int(lifetime),
        "ext_expires_in": int(lifetime),
        "access_token": issued.token,
    }


def _tls_context(directory: Path) -> ssl.SSLContext:
    """A CA and a certificate for 127.0.0.1 signed by it; the CA goes to ca.pem."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intake test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "server.pem").write_bytes(cert.public_bytes(pem))
    (directory / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "server.pem", directory / "server.key")
    return context
