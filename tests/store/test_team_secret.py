"""One secret per store (team_secret.py, DESIGN §10): processes sharing a store with one secret
work together; a process with another secret is told so clearly (exit 2 from the CLI) and
writes nothing; one with no secret at all still opens the store to read and tidy it; the
secret itself never shows in output, logs or the database."""

from __future__ import annotations

import base64
import hashlib
import logging
import shutil
from pathlib import Path

import pytest

from promptlooper_tui.domain.errors import BadInput, StorageError
from promptlooper_tui.keystore import SecretBox, check_value
from promptlooper_tui.settings import Settings
from promptlooper_tui.store import endpoints as stored_endpoints
from promptlooper_tui.store import meta
from promptlooper_tui.store.connect import open_database
from promptlooper_tui.store.copy import copy_database
from promptlooper_tui.store.location import DatabaseLocation
from promptlooper_tui.team_secret import copier_check
from promptlooper_tui.workbench import open_workbench

from ..helpers import cli

URL = "http://127.0.0.1:9/v1"
HOOK = "http://127.0.0.1:9/hook"
KEY = "sk-team-" + "5e6f7a8b" * 4
TEAM_SECRET = "the team's passphrase"
WRONG_SECRET = "a teammate's typo"
OTHER_SECRET = "another team's passphrase"
#: The tables a secret or key could reach.
TABLES = ("endpoints", "webhooks", "webhook_deliveries", "store_meta", "events")


@pytest.fixture(autouse=True)
def no_secret_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each process's secret is its home's key file unless a test sets the variable."""
    monkeypatch.delenv("PROMPTLOOPER_SECRET", raising=False)


def teammate(settings: Settings, home: Path, secret_of: Settings | None = None) -> Settings:
    """Another home on the same store; with `secret_of`, holding a copy of that one's key file
    (the same secret), else no key file yet."""
    other = Settings(home=home, db=settings.database)
    if secret_of is not None:
        home.mkdir(mode=0o700)
        shutil.copy(secret_of.secret_key_path, other.secret_key_path)
    return other


def with_own_key(settings: Settings, home: Path) -> Settings:
    """Another home on the same store with a key file of its own (another secret)."""
    other = teammate(settings, home)
    SecretBox(other.secret_key_path).key()
    return other


async def stored(settings: Settings) -> dict[str, list[tuple[object, ...]]]:
    """Every row of TABLES, as the store holds them."""
    db = await open_database(settings.database)
    try:
        return {table: [tuple(row) for row in await db.fetchall(f"SELECT * FROM {table}")]
                for table in TABLES}  # fmt: skip
    finally:
        await db.close()


async def test_processes_with_one_secret_share_the_stores_keys(
    settings: Settings, tmp_path: Path
) -> None:
    async with open_workbench(settings) as mine:
        await mine.add_endpoint("keyed", URL, api_key=KEY)
    theirs = teammate(settings, tmp_path / "theirs", secret_of=settings)
    async with open_workbench(settings) as mine, open_workbench(theirs) as wb:
        resolved = await wb.endpoints.resolve("keyed")
        assert resolved.api_key == KEY
        await wb.add_webhook(HOOK, secret="s3cret-signing")
        await mine.add_endpoint("second", URL, api_key="sk-second")
        assert (await mine.endpoints.resolve("second")).api_key == "sk-second"
    key = SecretBox(settings.secret_key_path).key()
    assert (await stored(settings))["store_meta"] == [(meta.SECRET_CHECK, check_value(key))]


async def test_another_secret_is_refused_at_open_and_nothing_is_written(
    settings: Settings, tmp_path: Path
) -> None:
    async with open_workbench(settings) as mine:
        await mine.add_endpoint("keyed", URL, api_key=KEY)
    other = with_own_key(settings, tmp_path / "other")
    before = await stored(settings)
    with pytest.raises(BadInput) as refused:
        async with open_workbench(other):
            pytest.fail("opened with another secret")
    message = str(refused.value)
    assert "encrypted with another secret" in message
    assert "Every process on a shared store needs the same PROMPTLOOPER_SECRET" in message
    assert "$PROMPTLOOPER_SECRET is unset, so it used its home's key file " in message
    assert str(other.secret_key_path) in message
    assert await stored(settings) == before


async def test_a_key_under_another_secret_is_refused_when_written(
    settings: Settings, tmp_path: Path
) -> None:
    """A teammate who opened the store before it held keys is stopped when writing one."""
    other = with_own_key(settings, tmp_path / "other")
    async with open_workbench(settings) as mine, open_workbench(other) as theirs:
        await mine.add_endpoint("keyed", URL, api_key=KEY)
        before = await stored(settings)
        with pytest.raises(BadInput, match="encrypted with another secret"):
            await theirs.add_endpoint("theirs", URL, api_key="sk-theirs")
        with pytest.raises(BadInput, match="encrypted with another secret"):
            await theirs.add_webhook(HOOK, secret="their-signing")
        # A key kept from the variable holds no encrypted value: nothing to check.
        await theirs.add_endpoint("by-variable", URL, api_key_env="THEIR_KEY")
        after = await stored(settings)
    assert after["store_meta"] == before["store_meta"] and after["webhooks"] == []
    assert sorted(row[0] for row in after["endpoints"]) == ["by-variable", "keyed"]


async def test_the_store_refuses_a_write_under_another_check_value(settings: Settings) -> None:
    """Two processes racing to store the first keys: the transaction of the second fails."""

    def save(name: str, token: bytes) -> tuple[str, object]:
        return stored_endpoints.save_statement(
            name, URL, api_key_env=None, api_key_encrypted=token, pricing_json="{}",
            created_at="2026-01-01T00:00:00Z", limits=[None] * 4, keep_stored_key=False,
        )  # fmt: skip

    db = await open_database(settings.database)
    try:
        await db.write([*meta.claim_check_statements("ours", "first"), save("first", b"t1")])
        with pytest.raises(StorageError):
            await db.write(
                [*meta.claim_check_statements("theirs", "second"), save("second", b"t2")]
            )
        assert (await meta.secret_check(db)) == meta.SecretCheck("ours", encrypted=True)
        assert [row["name"] for row in await stored_endpoints.list_endpoints(db)] == ["first"]
        # Replacing the only key takes the store to the new secret: nothing else was under it.
        await db.write([*meta.claim_check_statements("theirs", "first"), save("first", b"t3")])
        assert (await meta.secret_check(db)) == meta.SecretCheck("theirs", encrypted=True)
    finally:
        await db.close()


async def test_a_process_without_a_secret_reads_and_tidies_but_makes_no_key(
    settings: Settings, tmp_path: Path
) -> None:
    """A home whose key file was deleted: the store still opens."""
    async with open_workbench(settings) as mine:
        await mine.add_endpoint("keyed", URL, api_key=KEY)
        await mine.add_webhook(HOOK, secret="signing")
    bare = teammate(settings, tmp_path / "bare")
    async with open_workbench(bare) as wb:
        assert (await wb.list_runs()).total == 0
        assert [e.name for e in await wb.list_endpoints()] == ["keyed"]
        with pytest.raises(BadInput, match="it has no secret") as refused:
            await wb.endpoints.resolve("keyed")
        assert str(bare.secret_key_path) in str(refused.value)
        with pytest.raises(BadInput, match="it has no secret"):
            await wb.add_endpoint("new", URL, api_key="sk-new")
        assert not bare.secret_key_path.exists()
        # The way out when the secret is lost: remove what holds keys, add them again.
        [hook] = await wb.list_webhooks()
        await wb.remove_webhook(hook.id)
        await wb.remove_endpoint("keyed")
        await wb.add_endpoint("keyed", URL, api_key="sk-replaced")
        assert (await wb.endpoints.resolve("keyed")).api_key == "sk-replaced"
    assert bare.secret_key_path.exists()
    # The store's keys are now under the new secret: the old home is the odd one out.
    with pytest.raises(BadInput, match="encrypted with another secret"):
        async with open_workbench(settings):
            pytest.fail("opened with the store's old secret")


async def test_a_store_whose_keys_are_gone_opens_with_any_secret(
    settings: Settings, tmp_path: Path
) -> None:
    async with open_workbench(settings) as mine:
        await mine.add_endpoint("keyed", URL, api_key=KEY)
        await mine.remove_endpoint("keyed")
    other = with_own_key(settings, tmp_path / "other")
    async with open_workbench(other) as wb:
        await wb.add_webhook(HOOK, secret="their-signing")
    key = SecretBox(other.secret_key_path).key()
    assert (await stored(settings))["store_meta"] == [(meta.SECRET_CHECK, check_value(key))]


async def test_a_copy_carries_the_check_value_of_the_copiers_secret(
    settings: Settings, tmp_path: Path
) -> None:
    async with open_workbench(settings) as mine:
        await mine.add_endpoint("keyed", URL, api_key=KEY)
    # Keys stored before stores had a check value: the copier's secret must open them.
    db = await open_database(settings.database)
    await db.execute("DELETE FROM store_meta")
    await db.close()
    other = with_own_key(settings, tmp_path / "other")
    refused_target = DatabaseLocation.sqlite(tmp_path / "refused.db")
    with pytest.raises(BadInput, match="encrypted with another secret"):
        await copy_database(
            settings.database, refused_target, copier_check(SecretBox(other.secret_key_path))
        )
    assert not (tmp_path / "refused.db").exists()

    target = Settings(home=tmp_path / "copy", db=DatabaseLocation.sqlite(tmp_path / "copy.db"))
    await copy_database(
        settings.database, target.database, copier_check(SecretBox(settings.secret_key_path))
    )
    key = SecretBox(settings.secret_key_path).key()
    assert (await stored(target))["store_meta"] == [(meta.SECRET_CHECK, check_value(key))]
    # A teammate with another secret is told at once on the copy too.
    with pytest.raises(BadInput, match="encrypted with another secret"):
        async with open_workbench(Settings(home=other.home, db=target.database)):
            pytest.fail("opened the copy with another secret")


def test_the_cli_names_the_variable_exits_2_and_never_shows_the_secret(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = settings.home
    store = ("--db", settings.database.url)
    monkeypatch.setenv("PROMPTLOOPER_SECRET", TEAM_SECRET)
    added = cli(home, *store, "endpoints", "add", "keyed", "--base-url", URL, "--api-key-stdin",
                stdin=KEY + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    listed = cli(tmp_path / "teammate", *store, "endpoints", "list")
    assert listed.returncode == 0 and "keyed" in listed.stdout
    for secret in (WRONG_SECRET, OTHER_SECRET):
        monkeypatch.setenv("PROMPTLOOPER_SECRET", secret)
        done = [
            cli(home, *store, "runs", "list"),
            cli(home, *store, "webhooks", "add", HOOK, "--secret-stdin", stdin="signing\n"),
            cli(home, *store, "endpoints", "add", "more", "--base-url", URL, "--api-key-stdin",
                stdin="sk-more\n"),
        ]  # fmt: skip
        for refused in done:
            assert refused.returncode == 2, refused.stderr
            assert "cannot be decrypted with this process's secret ($PROMPTLOOPER_SECRET)" in (
                refused.stderr
            )
            shown = refused.stdout + refused.stderr
            assert secret not in shown and TEAM_SECRET not in shown and KEY not in shown
    assert not (home / "secret.key").exists()


async def test_the_secret_never_reaches_the_database_or_the_logs(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("PROMPTLOOPER_SECRET", TEAM_SECRET)
    async with open_workbench(settings) as wb:
        await wb.add_endpoint("keyed", URL, api_key=KEY)
        await wb.add_webhook(HOOK, secret="signing")
    monkeypatch.setenv("PROMPTLOOPER_SECRET", WRONG_SECRET)
    with pytest.raises(BadInput):
        async with open_workbench(settings):
            pytest.fail("opened with another secret")
    fernet_key = base64.urlsafe_b64encode(hashlib.sha256(TEAM_SECRET.encode()).digest())
    forbidden = [TEAM_SECRET, WRONG_SECRET, KEY, fernet_key.decode()]
    text = repr(await stored(settings)) + caplog.text
    assert not [secret for secret in forbidden if secret in text]
    if settings.db is None:
        raw = b"".join(p.read_bytes() for p in settings.home.glob("promptlooper.db*"))
        raw_key = hashlib.sha256(TEAM_SECRET.encode()).digest()
        assert raw_key not in raw
        assert not [secret for secret in forbidden if secret.encode() in raw]
