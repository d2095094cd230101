"""Other people's clusters, made here: our local Kafka with SASL/SCRAM over TLS (a CA made for the test) or
with SASL/OAUTHBEARER (unsecured JWTs from a local OAuth 2 token endpoint, client-credentials flow)."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs


def make_tls(directory: Path) -> str:
    """A CA and a certificate for 127.0.0.1/localhost signed by it; writes the broker's PEM keystore
    (key, certificate, CA) to ``directory/keystore.pem``; returns the CA certificate (PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    valid = dict(not_valid_before=now - datetime.timedelta(days=1), not_valid_after=now + datetime.timedelta(days=7))

    def build(subject, issuer, public_key):
        b = x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
        return (b.serial_number(x509.random_serial_number()).not_valid_before(valid["not_valid_before"])
                .not_valid_after(valid["not_valid_after"]))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "skybroker test CA")])
    ca = (build(ca_name, ca_name, ca_key.public_key())
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]), ca_name, key.public_key())
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "keystore.pem").write_bytes(key_pem + cert.public_bytes(pem) + ca.public_bytes(pem))
    return ca.public_bytes(pem).decode()


def _b64(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


class TokenEndpoint:
    """An OAuth 2 token endpoint (client-credentials grant, client authenticated by HTTP Basic, as
    librdkafka sends it) that issues unsecured JWTs (``alg: none``) for one client; counts what it served."""

    def __init__(self, client_id: str, client_secret: str):
        self.client_id, self.client_secret = client_id, client_secret
        self.issued = 0
        self.refused = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
                expected = "Basic " + base64.b64encode(f"{endpoint.client_id}:{endpoint.client_secret}".encode()).decode()
                if form.get("grant_type") != ["client_credentials"] or self.headers.get("Authorization") != expected:
                    endpoint.refused += 1
                    return self._answer(401, {"error": "invalid_client"})
                endpoint.issued += 1
                now = int(time.time())
                token = _b64({"alg": "none"}) + "." + _b64({"sub": endpoint.client_id, "iat": now,
                                                            "exp": now + 3600}) + "."
                self._answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

            def _answer(self, status, doc):
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/oauth2/token"

    def __enter__(self) -> "TokenEndpoint":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
