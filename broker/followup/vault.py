"""Encryption of facility credentials at rest (Fernet: AES-128-CBC + HMAC-SHA256)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from broker.errors import BrokerError
from broker.runtime.config import Config


class CredentialsUnreadable(BrokerError):
    """Stored credentials that this server's key cannot decrypt (the key changed, or the row is corrupt)."""

    status = 400


class Vault:
    """Encrypts and decrypts JSON documents with a key derived from the configured secret."""

    def __init__(self, secret: str):
        key = base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())
        self._fernet = Fernet(key)
        self._derive_key = hashlib.sha256(b"skybroker derived keys\0" + secret.encode()).digest()

    def derive(self, purpose: str) -> str:
        """A key for ``purpose`` (e.g. signing the web pages' cookies), derived from the same secret
        (HMAC-SHA256): every process with the key derives the same one, and none reveals the secret."""
        return hmac.new(self._derive_key, purpose.encode(), hashlib.sha256).hexdigest()

    def encrypt(self, data: dict) -> str:
        return self._fernet.encrypt(json.dumps(data).encode()).decode()

    def decrypt(self, token: str | None) -> dict:
        if not token:
            return {}
        try:
            data = json.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, ValueError, UnicodeError):
            raise CredentialsUnreadable("stored credentials cannot be decrypted: was secrets.encryption_key "
                                        "changed?", field="altdata") from None
        if not isinstance(data, dict):
            raise CredentialsUnreadable("stored credentials are not a JSON object", field="altdata")
        return data

    def __repr__(self) -> str:
        return "Vault(<key hidden>)"


def vault_from_config(cfg: Config) -> Vault:
    """The configured key, or one generated on first start into ``data_dir/secret.key`` (mode 0600)."""
    if cfg.secrets.encryption_key is not None:
        return Vault(cfg.secrets.encryption_key.get())
    path = Path(cfg.paths.data_dir) / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32))
    return Vault(path.read_text().strip())
