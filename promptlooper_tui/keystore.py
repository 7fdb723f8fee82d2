"""API keys at rest: Fernet-encrypted with a key from $PROMPTLOOPER_SECRET or a 0600 key file."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from .domain.errors import BadInput
from .settings import ensure_home, restrict_to_owner

#: Bytes in a Fernet key, which the key file holds in URL-safe base64.
_KEY_BYTES = 32
#: What a store's check value authenticates (see `check_value`).
_CHECK_LABEL = b"promptlooper: the secret this store's keys and webhook secrets are under"


class SecretBox:
    """Encrypts and decrypts small secrets. Never logs or returns them in clear elsewhere."""

    def __init__(self, key_path: Path) -> None:
        self._key_path = key_path
        self._fernet: object | None = None

    def _box(self, *, create: bool):  # type: ignore[no-untyped-def]
        """The Fernet of this process's key; without `create`, BadInput where it has none (a
        key made now could decrypt nothing stored)."""
        if self._fernet is None:
            from cryptography.fernet import Fernet

            key = self.key() if create else self.existing_key()
            if key is None:
                raise self.wrong_secret()
            self._fernet = Fernet(key)
        return self._fernet

    def key(self) -> bytes:
        """This process's key; the key file is created if there is no key yet."""
        return self.existing_key() or self._create_key()

    def existing_key(self) -> bytes | None:
        """This process's key ($PROMPTLOOPER_SECRET, else its home's key file), or None where
        it has neither. Never creates the key file."""
        passphrase = os.environ.get("PROMPTLOOPER_SECRET")
        if passphrase:
            # Any passphrase works: derive a valid 32-byte Fernet key from it.
            return base64.urlsafe_b64encode(hashlib.sha256(passphrase.encode()).digest())
        if self._key_path.exists():
            return self._read_key()
        return None

    def wrong_secret(self) -> BadInput:
        """The error for a store whose keys this process's secret does not open. It names
        where the secret came from, never the secret."""
        if os.environ.get("PROMPTLOOPER_SECRET"):
            used = "with this process's secret ($PROMPTLOOPER_SECRET)"
        elif self._key_path.exists():
            used = (
                "with this process's secret ($PROMPTLOOPER_SECRET is unset, so it used its "
                f"home's key file {self._key_path})"
            )
        else:
            used = (
                "by this process: it has no secret ($PROMPTLOOPER_SECRET is unset and its home "
                f"has no key file {self._key_path})"
            )
        return BadInput(
            f"this store's API keys and webhook secrets cannot be decrypted {used}: they are "
            "encrypted with another secret. Every process on a shared store needs the same "
            "PROMPTLOOPER_SECRET: set it to the one they were stored with. If that one is lost, "
            "so are they: with PROMPTLOOPER_SECRET unset and no key file in the home, the store "
            "opens; remove the endpoints and webhooks that hold keys, then add them again"
        )

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
        return self._box(create=True).encrypt(secret.encode())  # type: ignore[attr-defined,no-any-return]

    def decrypt(self, token: bytes) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._box(create=False).decrypt(token).decode()  # type: ignore[attr-defined,no-any-return]
        except InvalidToken:
            raise BadInput(
                "a stored API key cannot be decrypted: the secret ($PROMPTLOOPER_SECRET or "
                f"{self._key_path}) changed since it was stored; add the endpoint again"
            ) from None

    def opens(self, token: bytes) -> bool:
        """Whether this process's existing key decrypts `token` (creating no key)."""
        from cryptography.fernet import InvalidToken

        key = self.existing_key()
        if key is None:
            return False
        try:
            self._box(create=False).decrypt(token)
        except InvalidToken:
            return False
        return True


def check_value(key: bytes) -> str:
    """What a store keeps to tell whether a process's key is the one its encrypted values are
    under: HMAC-SHA256 of a fixed label, keyed with the Fernet key.

    An HMAC rather than a Fernet token of a fixed text: it is the same for every process with
    the key, so the store itself can compare it inside the write it guards (store/meta.py), and
    computing it loads no cryptography library (a read-only command stays quick). It reveals no
    more than any stored Fernet token does: a guess at the secret can be tested against either,
    and nothing else."""
    raw = base64.urlsafe_b64decode(key)
    return "hmac-sha256:" + hmac.new(raw, _CHECK_LABEL, hashlib.sha256).hexdigest()


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
