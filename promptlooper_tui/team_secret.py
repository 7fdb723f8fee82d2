"""One secret per store (DESIGN §10): every process on a shared store encrypts and decrypts
API keys and webhook secrets with the same secret, so a teammate never stores a key that the
others cannot decrypt.

The store keeps a check value of that secret (`keystore.check_value`, in `store_meta`). The
rule a user can expect:

- Writing an encrypted value: the check value is recorded with it, in one transaction, if the
  store has none; a process whose secret does not match the store's gets a clear error
  (BadInput) and nothing is written. A store whose encrypted values are all gone takes the
  new secret: nothing is left that the old one could decrypt.
- Opening a Workbench on a store that holds encrypted values under a check value: a process
  whose secret ($PROMPTLOOPER_SECRET, else its home's key file) does not match stops at once,
  whatever its command, so a worker with the wrong secret fails at start, not an hour in. A
  process with no secret at all (no variable, no key file: a home whose key file was deleted)
  opens, and can list, read and remove; it meets the same error when it needs a key, and no key
  file is made for it, since a new key could decrypt nothing stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .domain.errors import StorageError
from .keystore import SecretBox, check_value
from .store import meta
from .store.database import Database, Statement


class StoreSecret:
    """The secret check of one store, for one process's `SecretBox`."""

    def __init__(self, db: Database, box: SecretBox) -> None:
        self._db = db
        self._box = box

    async def check_on_open(self) -> None:
        """BadInput when this process has a secret and the store's encrypted values are under
        another one; one small read otherwise."""
        stored = await meta.secret_check(self._db)
        if stored is None or not stored.encrypted:
            return
        key = self._box.existing_key()
        if key is not None and check_value(key) != stored.value:
            raise self._box.wrong_secret()

    async def write_encrypted(
        self, secret: str, statement: Callable[[bytes], Statement], *, replaces_endpoint: str = ""
    ) -> None:
        """Encrypt `secret` and write `statement(encrypted)`, with the store's check value
        recorded or checked in the same transaction. `replaces_endpoint`: the endpoint whose
        key the statement replaces (its old key does not hold the store to its secret).

        BadInput, nothing written, when the store's encrypted values are under another secret
        than this process's."""
        value = await self._check_before_writing(replaces_endpoint)
        unit = [
            *meta.claim_check_statements(value, replaces_endpoint),
            statement(self._box.encrypt(secret)),
        ]
        try:
            await self._db.write(unit)
        except StorageError:
            # The guard failed the transaction: another process stored its check value since.
            stored = await meta.secret_check(self._db)
            if stored is not None and stored.value != value:
                raise self._box.wrong_secret() from None
            raise

    async def check_for_copy(self) -> str | None:
        """For `db copy` from this store: the check value the target must carry, None where
        this store holds no encrypted value. BadInput when this process's secret does not open
        the values that would be copied (they would be useless on the target)."""
        if await meta.other_encrypted_value(self._db) is None:
            return None
        return await self._check_before_writing("")

    async def _check_before_writing(self, besides: str) -> str:
        """The check value of this process's key, once it is known to match the encrypted
        values the store holds besides endpoint `besides`'s key. Makes the key file only for a
        store with none of them."""
        other = await meta.other_encrypted_value(self._db, besides)
        if other is None:
            return check_value(self._box.key())
        key = self._box.existing_key()
        if key is None:
            raise self._box.wrong_secret()
        value = check_value(key)
        stored = await meta.secret_check(self._db)
        # A store without a check value (keys from before there was one): a stored value that
        # decrypts is the proof.
        matches = stored.value == value if stored is not None else self._box.opens(other)
        if not matches:
            raise self._box.wrong_secret()
        return value


def copier_check(box: SecretBox) -> Callable[[Database], Awaitable[str | None]]:
    """`store.copy.copy_database`'s `secret_check` for a copier whose secret is `box`'s."""

    async def check(source: Database) -> str | None:
        return await StoreSecret(source, box).check_for_copy()

    return check
