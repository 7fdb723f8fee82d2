"""Outbound requests and endpoint fields (DESIGN §9): link-local and cloud-metadata addresses are
refused after DNS resolution unless the operator allows them; endpoint fields are validated once,
in Workbench.add_endpoint, for every front-end; passwords in URLs are never shown."""

from __future__ import annotations

import math
import time
from pathlib import Path

import httpx
import pytest

from promptlooper_tui.domain.errors import BadInput
from promptlooper_tui.domain.trust import CallerPolicy
from promptlooper_tui.engine.adapters.openai import OpenAIClient, ResponseLimits, RetryPolicy
from promptlooper_tui.engine.netguard import (
    ALLOW_LINK_LOCAL_ENV,
    BlockedDestination,
    LinkLocalGuard,
    blocked_reason,
    redact_url,
)
from promptlooper_tui.engine.webhooks import WebhookDispatcher
from promptlooper_tui.settings import Settings
from promptlooper_tui.workbench import Workbench, open_workbench

from ..fixtures.hostile_llm import HostileLLM, hostile_fixture, ok, page  # noqa: F401
from ..helpers import cli
from ..server.conftest import running_api

FAST = RetryPolicy(base_delay=0.001, max_delay=0.01, rate_limit_floor=0.001)


@pytest.fixture(autouse=True)
def _not_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_LINK_LOCAL_ENV, raising=False)


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "169.254.0.1",
        "fe80::1",
        "fe80::1%eth0",
        "fd00:ec2::254",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
    ],
)
def test_link_local_and_metadata_addresses_are_refused(address: str) -> None:
    assert blocked_reason(address) is not None


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "::1", "10.0.0.7", "192.168.1.20", "fd00::1", "8.8.8.8", "host"]
)
def test_loopback_lan_and_public_addresses_are_allowed(address: str) -> None:
    assert blocked_reason(address) is None


@pytest.mark.parametrize(
    "base_url",
    [
        "http://169.254.169.254/latest/v1",
        "http://[fe80::1]:8080/v1",
        "http://[fd00:ec2::254]/v1",
        "http://[::ffff:169.254.169.254]/v1",
    ],
)
async def test_an_endpoint_test_never_reaches_a_metadata_address(base_url: str) -> None:
    started = time.perf_counter()
    async with OpenAIClient(base_url, retry=FAST, limits=ResponseLimits(idle_timeout=5)) as c:
        report = await c.test_connection()
    assert not report.ok and report.error is not None
    assert report.error.startswith("refused to connect to ")
    assert f"{ALLOW_LINK_LOCAL_ENV}=1" in report.error
    # Refused before connecting: no connect timeout was waited.
    assert time.perf_counter() - started < 5


async def test_a_host_that_resolves_to_a_metadata_address_is_refused(hostile: HostileLLM) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return {"metadata.test": ["10.1.1.1", "169.254.169.254"]}.get(host, ["127.0.0.1"])

    async with httpx.AsyncClient(event_hooks={"request": [LinkLocalGuard(resolve)]}) as http:
        with pytest.raises(
            BlockedDestination, match=r"it resolves to 169\.254\.169\.254 is a cloud"
        ):
            await http.get("http://metadata.test/latest/meta-data/")
        # localhost really resolves (no fake) and 127.0.0.1 stays allowed.
        url = hostile.base_url(ok()).replace("127.0.0.1", "localhost")
        answer = await http.post(f"{url}/chat/completions", json={"messages": []})
        assert answer.status_code == 200


async def test_the_operator_may_allow_link_local(monkeypatch: pytest.MonkeyPatch) -> None:
    guard = LinkLocalGuard()
    request = httpx.Request("GET", "http://169.254.169.254/latest/meta-data/")
    with pytest.raises(BlockedDestination):
        await guard(request)
    monkeypatch.setenv(ALLOW_LINK_LOCAL_ENV, "1")
    assert await guard(request) is None


async def test_a_webhook_delivery_to_a_metadata_address_is_refused_and_logged(
    workbench: Workbench, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "http://169.254.169.254/latest/meta-data/iam"
    with pytest.raises(BadInput, match=ALLOW_LINK_LOCAL_ENV):
        await workbench.add_webhook(url)
    monkeypatch.setenv(ALLOW_LINK_LOCAL_ENV, "1")
    hook = await workbench.add_webhook(url)
    monkeypatch.delenv(ALLOW_LINK_LOCAL_ENV)  # the operator changed their mind

    await workbench.webhooks.aclose()
    workbench.webhooks = WebhookDispatcher(workbench.db, workbench.bus, workbench.secrets)
    await workbench.webhooks.start()
    workbench.bus.publish("run.completed", "exp_1", sweep_id="sw_1", run_id="run_1")
    await workbench.webhooks.aclose(grace=5.0)

    [delivery] = await workbench.webhook_deliveries(hook.id)
    assert not delivery.delivered and delivery.attempt == 1, "a refusal is not retried"
    assert delivery.error is not None and "refused to connect to 169.254.169.254" in delivery.error


async def test_the_api_endpoint_test_shows_status_and_type_not_the_body(
    workbench: Workbench, hostile: HostileLLM
) -> None:
    url = hostile.base_url(page(200, "text/html", b"<html>internal SECRET-PAGE</html>"))
    async with running_api(workbench) as api:
        added = await api.client.post("/api/endpoints", json={"name": "intranet", "base_url": url})
        assert added.status_code == 201, added.text
        answer = await api.client.post("/api/endpoints/intranet/test")
    assert answer.status_code == 200
    error = answer.json()["error"]
    assert "(HTTP 200, text/html)" in error and "SECRET-PAGE" not in error


# --- endpoint fields ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "base_url", "extra", "field"),
    [
        ("a b", "http://127.0.0.1:1/v1", {}, "name"),
        ("", "http://127.0.0.1:1/v1", {}, "name"),
        ("a/b", "http://127.0.0.1:1/v1", {}, "name"),
        ("a\\b", "http://127.0.0.1:1/v1", {}, "name"),
        ("a\x00b", "http://127.0.0.1:1/v1", {}, "name"),
        ("x" * 65, "http://127.0.0.1:1/v1", {}, "name"),
        ("simulated", "http://127.0.0.1:1/v1", {}, "name"),
        ("ok", "http://127.0.0.1:1/v1?key=1", {}, "base_url"),
        ("ok", "http://127.0.0.1:1/v1#x", {}, "base_url"),
        ("ok", "ftp://127.0.0.1/v1", {}, "base_url"),
        ("ok", "http:///v1", {}, "base_url"),
        ("ok", "http://127.0.0.1:1/my v1", {}, "base_url"),
        ("ok", "http://127.0.0.1:99999/v1", {}, "base_url"),
        ("ok", "http://169.254.169.254/v1", {}, "base_url"),
        ("ok", "http://127.0.0.1:1/v1", {"pricing": {"m": (-1.0, 1.0)}}, "pricing"),
        ("ok", "http://127.0.0.1:1/v1", {"pricing": {"m": (math.inf, 1.0)}}, "pricing"),
        ("ok", "http://127.0.0.1:1/v1", {"pricing": {"m": (1.0, math.nan)}}, "pricing"),
        ("ok", "http://127.0.0.1:1/v1", {"api_key_env": "NOT A NAME"}, "api_key_env"),
        ("ok", "http://127.0.0.1:1/v1", {"max_response_mb": 0}, "max_response_mb"),
        ("ok", "http://127.0.0.1:1/v1", {"max_response_mb": math.nan}, "max_response_mb"),
        ("ok", "http://127.0.0.1:1/v1", {"deadline_s": -1}, "deadline_s"),
        ("ok", "http://127.0.0.1:1/v1", {"idle_timeout_s": math.inf}, "idle_timeout_s"),
        ("ok", "http://127.0.0.1:1/v1", {"rate_limit_wait_s": -0.5}, "rate_limit_wait_s"),
    ],
)
async def test_bad_endpoint_fields_are_bad_input_naming_the_field(
    workbench: Workbench, name: str, base_url: str, extra: dict[str, object], field: str
) -> None:
    with pytest.raises(BadInput) as caught:
        await workbench.add_endpoint(name, base_url, **extra)  # type: ignore[arg-type]
    assert str(caught.value).startswith(f"{field}:"), str(caught.value)
    assert await workbench.list_endpoints() == []


async def test_a_remote_caller_may_name_only_allowed_key_variables(tmp_path: Path) -> None:
    policy = CallerPolicy.for_remote(tmp_path / "data", allowed_key_env=["LLM_KEY"])
    async with open_workbench(Settings(tmp_path / "home")) as wb:
        wb.policy = policy
        with pytest.raises(BadInput) as caught:
            await wb.add_endpoint("cloud", "https://llm.example/v1", api_key_env="AWS_SECRET")
        assert "'AWS_SECRET' is not allowed for remote callers" in str(caught.value)
        assert "serve --allow-key-env AWS_SECRET" in str(caught.value)
        added = await wb.add_endpoint("cloud", "https://llm.example/v1", api_key_env="LLM_KEY")
    assert added.api_key_env == "LLM_KEY"


async def test_limits_are_stored_shown_and_used(workbench: Workbench) -> None:
    record = await workbench.add_endpoint(
        "small", "http://127.0.0.1:1/v1", max_response_mb=0.5, deadline_s=9, idle_timeout_s=3
    )
    assert (record.max_response_mb, record.deadline_s, record.idle_timeout_s) == (0.5, 9, 3)
    assert record.rate_limit_wait_s == 600
    resolved = await workbench.endpoints.resolve("small")
    assert resolved.limits == ResponseLimits(max_bytes=512 * 1024, deadline=9, idle_timeout=3)
    default = await workbench.add_endpoint("plain", "http://127.0.0.1:1/v1")
    assert (default.max_response_mb, default.deadline_s, default.idle_timeout_s) == (8, 300, 60)


async def test_a_password_in_a_url_is_shown_as_stars_and_kept(workbench: Workbench) -> None:
    secret_url = "http://alice:hunter2-secret@127.0.0.1:1/v1"
    record = await workbench.add_endpoint("basic", secret_url)
    assert record.base_url == "http://alice:***@127.0.0.1:1/v1"
    # Saving the shown form back (as an edit form does) keeps the stored password.
    await workbench.add_endpoint("basic", record.base_url)
    assert (await workbench.endpoints.resolve("basic")).base_url == secret_url
    hook = await workbench.add_webhook("https://bob:tok-99999@hooks.example/x")
    assert hook.url == "https://bob:***@hooks.example/x"
    assert [w.url for w in await workbench.list_webhooks()] == [hook.url]
    assert redact_url("https://only-a-token@h.example/") == "https://***@h.example/"


def test_the_cli_rejects_bad_fields_with_exit_2_and_shows_limits(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = cli(home, "endpoints", "add", "q", "--base-url", "http://127.0.0.1:1/v1?x=1")
    assert done.returncode == 2 and "base_url:" in done.stderr, done.stderr
    done = cli(home, "endpoints", "add", "q", "--base-url", "http://h:1/v1", "--price", "m=-1,1")
    assert done.returncode == 2 and "pricing:" in done.stderr, done.stderr
    url = "http://alice:hunter2-secret@127.0.0.1:1/v1"
    args = ("--max-response-mb", "2", "--deadline", "30", "--rate-limit-wait", "45")
    done = cli(home, "endpoints", "add", "q", "--base-url", url, *args)
    assert done.returncode == 0, done.stderr
    listed = cli(home, "endpoints", "list")
    assert listed.returncode == 0
    row = next(line for line in listed.stdout.splitlines() if line.startswith("q "))
    assert "http://alice:***@127.0.0.1:1/v1" in row and row.split()[-2:] == ["2", "30"]
    for out in (done.stdout, listed.stdout, cli(home, "endpoints", "list", "--json").stdout):
        assert "hunter2" not in out
    refused = cli(home, "endpoints", "test", "q")
    assert refused.returncode != 0 and "hunter2" not in refused.stdout + refused.stderr
