"""What a store records about itself (`store_meta`): the check value of the secret its API keys
and webhook secrets are encrypted with (`team_secret.py` says how it is used).

An *encrypted value* is an endpoint's `api_key_encrypted` or a webhook's `secret_encrypted`.
Where a write replaces an endpoint's key, `besides` names that endpoint: its old key does not
count, as it is about to go.
"""

from __future__ import annotations

from dataclasses import dataclass

from .database import Database, Statement

#: The row of `store_meta` that holds the check value.
SECRET_CHECK = "secret_check"

_OTHER_ENCRYPTED = (
    "SELECT api_key_encrypted AS token FROM endpoints "
    "WHERE api_key_encrypted IS NOT NULL AND name <> ? "
    "UNION ALL SELECT secret_encrypted AS token FROM webhooks WHERE secret_encrypted IS NOT NULL"
)
READ_CHECK = (
    "SELECT value, EXISTS (SELECT 1 FROM endpoints WHERE api_key_encrypted IS NOT NULL) "
    "OR EXISTS (SELECT 1 FROM webhooks WHERE secret_encrypted IS NOT NULL) AS encrypted "
    f"FROM store_meta WHERE key = '{SECRET_CHECK}'"
)
ONE_OTHER_ENCRYPTED = f"SELECT token FROM ({_OTHER_ENCRYPTED}) AS other LIMIT 1"
#: Record the check value where there is none, or where no other encrypted value is left to
#: vouch for the old one (the secret they were under is then nobody's concern).
CLAIM = (
    f"INSERT INTO store_meta (key, value) VALUES ('{SECRET_CHECK}', ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value "
    "WHERE NOT EXISTS (SELECT 1 FROM endpoints "
    "WHERE api_key_encrypted IS NOT NULL AND name <> ?) "
    "AND NOT EXISTS (SELECT 1 FROM webhooks WHERE secret_encrypted IS NOT NULL)"
)
#: Fails its transaction when the check value is another secret's: a NOT NULL violation is the
#: one error both backends raise from plain SQL, and the write it guards is then not made.
GUARD = (
    "INSERT INTO store_meta (key, value) SELECT 'secret_check_failed', NULL WHERE EXISTS "
    f"(SELECT 1 FROM store_meta WHERE key = '{SECRET_CHECK}' AND value <> ?)"
)
REPLACE = (
    f"INSERT INTO store_meta (key, value) VALUES ('{SECRET_CHECK}', ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


@dataclass(frozen=True)
class SecretCheck:
    value: str
    #: Whether the store holds any encrypted value (the check vouches for something).
    encrypted: bool


async def secret_check(db: Database) -> SecretCheck | None:
    """The store's check value, or None where it has none."""
    row = await db.fetchone(READ_CHECK)
    return None if row is None else SecretCheck(row["value"], bool(row["encrypted"]))


async def other_encrypted_value(db: Database, besides: str = "") -> bytes | None:
    """One encrypted value of the store besides endpoint `besides`'s key, or None."""
    row = await db.fetchone(ONE_OTHER_ENCRYPTED, (besides,))
    return None if row is None else bytes(row["token"])


def claim_check_statements(value: str, besides: str = "") -> list[Statement]:
    """Statements to put before a write of a value encrypted under the secret whose check is
    `value`: they record `value` if the store has no check value (or only a stale one), and
    fail the transaction if the store's is another secret's."""
    return [(CLAIM, (value, besides)), (GUARD, (value,))]


def replace_check_statement(value: str) -> Statement:
    """Make `value` the check value, whatever was there (a copy's target)."""
    return REPLACE, (value,)
