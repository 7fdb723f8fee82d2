"""The endpoints screen: add and edit with a masked key that never shows again, test a
connection inline, remove after a question."""

from __future__ import annotations

from textual.widgets import DataTable, Input, Static

from promptlooper_tui.tui.screens.confirm import ConfirmScreen
from promptlooper_tui.tui.screens.endpoint_form import EndpointForm
from promptlooper_tui.tui.screens.endpoints import EndpointsScreen
from promptlooper_tui.workbench import Workbench

from .conftest import SIZE, AppMaker, open_home, screen_text, wait_for_screen, wait_until

API_KEY = "sk-test-4f1c9a7e2b"


async def test_added_key_is_masked_and_never_shown_again(
    workbench: Workbench, make_test_app: AppMaker
) -> None:
    app = make_test_app()
    seen: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await open_home(pilot, experiments=0)
        await pilot.press("f3")
        endpoints = await wait_for_screen(pilot, EndpointsScreen)
        await pilot.press("a")
        form = await wait_for_screen(pilot, EndpointForm)
        assert form.query_one("#api-key", Input).password
        await pilot.press(*"local")
        await pilot.press("tab", *"http://127.0.0.1:9/v1", "tab", *API_KEY)
        seen.append(screen_text(app))
        await pilot.press("ctrl+s")

        await wait_for_screen(pilot, EndpointsScreen)
        table = endpoints.query_one("#endpoints", DataTable)
        await wait_until(pilot, lambda: "local" in table.rows, "the new endpoint's row")
        assert [str(c) for c in table.get_row("local")][:3] == [
            "local",
            "http://127.0.0.1:9/v1",
            "stored ••••",
        ]
        seen.append(screen_text(app))

        table.move_cursor(row=table.get_row_index("local"))
        await pilot.press("enter")
        form = await wait_for_screen(pilot, EndpointForm)
        assert form.query_one("#api-key", Input).value == ""
        seen.append(screen_text(app))
        # Edit only the URL: the stored key stays.
        form.query_one("#base-url", Input).value = "http://127.0.0.1:10/v1"
        await pilot.press("ctrl+s")
        await wait_for_screen(pilot, EndpointsScreen)
        await wait_until(
            pilot, lambda: str(table.get_row("local")[1]).endswith(":10/v1"), "the edited row"
        )

    edited = await workbench.get_endpoint("local")
    assert edited.has_api_key and edited.base_url == "http://127.0.0.1:10/v1"
    assert (await workbench._resolve_stored_endpoint("local")).api_key == API_KEY
    assert all(API_KEY not in text for text in seen)
    assert all(API_KEY[:8] not in text for text in seen[1:])


async def test_testing_the_simulated_endpoint_shows_its_models(make_test_app: AppMaker) -> None:
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_home(pilot, experiments=0)
        await pilot.press("f3")
        endpoints = await wait_for_screen(pilot, EndpointsScreen)
        table = endpoints.query_one("#endpoints", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1, "the built-in endpoint")
        await pilot.press("t")

        result = endpoints.query_one("#test-result", Static)
        await wait_until(pilot, lambda: "connected" in str(result.render()), "the test result")
        assert "small-model" in str(result.render())


async def test_remove_asks_first(workbench: Workbench, make_test_app: AppMaker) -> None:
    await workbench.add_endpoint("local", "http://127.0.0.1:9/v1")

    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_home(pilot, experiments=0)
        await pilot.press("f3")
        endpoints = await wait_for_screen(pilot, EndpointsScreen)
        table = endpoints.query_one("#endpoints", DataTable)
        await wait_until(pilot, lambda: "local" in table.rows, "the stored endpoint")
        table.move_cursor(row=table.get_row_index("local"))
        await pilot.press("x")
        await wait_for_screen(pilot, ConfirmScreen)
        await pilot.press("y")
        await wait_until(pilot, lambda: "local" not in table.rows, "the row to go")

    assert await workbench.list_endpoints() == []


async def test_pricing_reads_as_in_the_cli_and_a_removal_clears_its_test_result(
    workbench: Workbench, make_test_app: AppMaker
) -> None:
    await workbench.add_endpoint("gone", "http://127.0.0.1:9/v1", pricing={"big": (0.5, 1.5)})
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_home(pilot, experiments=0)
        await pilot.press("f3")
        endpoints = await wait_for_screen(pilot, EndpointsScreen)
        table = endpoints.query_one("#endpoints", DataTable)
        await wait_until(pilot, lambda: "gone" in table.rows, "the endpoint")
        assert str(table.get_row("gone")[3]) == "big=0.5/1.5"

        table.move_cursor(row=table.get_row_index("gone"))
        result = endpoints.query_one("#test-result", Static)
        await pilot.press("t")
        await wait_until(pilot, lambda: "✗ gone" in str(result.render()), "the failed test")
        await pilot.press("x")
        await wait_for_screen(pilot, ConfirmScreen)
        await pilot.press("y")
        await wait_until(pilot, lambda: "gone" not in table.rows, "the removal")
        assert "gone" not in str(result.render())


async def test_an_edit_keeps_the_stored_limits_and_creation_time(
    workbench: Workbench, make_test_app: AppMaker
) -> None:
    await workbench.add_endpoint(
        "slow",
        "http://127.0.0.1:9/v1",
        max_response_mb=2.0,
        deadline_s=30.0,
        idle_timeout_s=5.0,
        rate_limit_wait_s=60.0,
    )
    before = await workbench.get_endpoint("slow")
    app = make_test_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_home(pilot, experiments=0)
        await pilot.press("f3")
        endpoints = await wait_for_screen(pilot, EndpointsScreen)
        table = endpoints.query_one("#endpoints", DataTable)
        await wait_until(pilot, lambda: "slow" in table.rows, "the endpoint")
        table.move_cursor(row=table.get_row_index("slow"))
        await pilot.press("enter")
        form = await wait_for_screen(pilot, EndpointForm)
        form.query_one("#base-url", Input).value = "http://127.0.0.1:10/v1"
        await pilot.press("ctrl+s")
        await wait_for_screen(pilot, EndpointsScreen)
        await wait_until(
            pilot, lambda: str(table.get_row("slow")[1]).endswith(":10/v1"), "the edited row"
        )

    after = await workbench.get_endpoint("slow")
    assert after.base_url == "http://127.0.0.1:10/v1"
    assert after.model_dump(exclude={"base_url"}) == before.model_dump(exclude={"base_url"})
