"""API keys at rest: Fernet-encrypted with a key from $PROMPTLOOPER_SECRET or a 0600 key file."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from .domain.errors import BadInput


class SecretBox:
    """Encrypts and decrypts small secrets. Never logs or returns them in clear elsewhere."""

    def __init__(self, key_path: Path) -> None:
        self._key_path = key_path
        self._fernet: object | None = None

    def _box(self):  # type: ignore[no-untyped-def]
        if self._fernet is None:
            from cryptography.fernet import Fernet

            self._fernet = Fernet(self._key())
        return self._fernet

    def _key(self) -> bytes:
        passphrase = os.environ.get("PROMPTLOOPER_SECRET")
        if passphrase:
            # Any passphrase works: derive a valid 32-byte Fernet key from it.
            return base64.urlsafe_b64encode(hashlib.sha256(passphrase.encode()).digest())
        if self._key_path.exists():
            return self._key_path.read_bytes().strip()
        from cryptography.fernet import Fernet

        key = Fernet.generate_key()
        self._key_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(key)
        return key

    def encrypt(self, secret: str) -> bytes:
        return self._box().encrypt(secret.encode())  # type: ignore[attr-defined,no-any-return]

    def decrypt(self, token: bytes) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._box().decrypt(token).decode()  # type: ignore[attr-defined,no-any-return]
        except InvalidToken:
            raise BadInput(
                "a stored API key cannot be decrypted: the secret ($PROMPTLOOPER_SECRET or "
                f"{self._key_path}) changed since it was stored; add the endpoint again"
            ) from None
