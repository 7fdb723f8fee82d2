"""API keys at rest: Fernet-encrypted with a key from $PROMPTLOOPER_SECRET or a 0600 key file."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets
from pathlib import Path

from .domain.errors import BadInput
from .settings import ensure_home, restrict_to_owner

#: Bytes in a Fernet key, which the key file holds in URL-safe base64.
_KEY_BYTES = 32


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
            return self._read_key()
        return self._create_key()

    def _create_key(self) -> bytes:
        """A new key file, or the one another process created first.

        The key is written to a private temporary file that is then linked to its final name:
        the name appears only with a whole key behind it, and when two processes race, the
        link of the second fails and it reads the winner's key, so both use the same one.
        """
        from cryptography.fernet import Fernet

        key = Fernet.generate_key()
        path = self._key_path
        try:
            ensure_home(path.parent)
            temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(key)
                    file.flush()
                    os.fsync(file.fileno())
                os.link(temp, path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()
        except FileExistsError:
            return self._read_key()
        except OSError as exc:
            raise BadInput(
                f"cannot create the key file {path}: {exc.strerror or exc}; make its folder "
                "writable or set $PROMPTLOOPER_SECRET"
            ) from None
        return key

    def _read_key(self) -> bytes:
        path = self._key_path
        try:
            restrict_to_owner(path)
            key = path.read_bytes().strip()
        except OSError as exc:
            raise BadInput(f"cannot read the key file {path}: {exc.strerror or exc}") from None
        problem = _key_problem(key)
        if problem:
            raise BadInput(
                f"the key file {path} is {problem}, so stored API keys cannot be decrypted: "
                "restore it from a backup, or delete it and add your endpoints' keys again"
            )
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


def _key_problem(key: bytes) -> str:
    """What is wrong with the key file's contents, or "" for a usable Fernet key."""
    if not key:
        return "empty"
    try:
        raw = base64.b64decode(key, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return "not a base64 key"
    if len(raw) != _KEY_BYTES:
        return f"not a key ({len(raw)} bytes where a key has {_KEY_BYTES})"
    return ""
