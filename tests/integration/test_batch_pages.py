"""The dashboard's batch pages in a real headless Chromium, on both engines: a batch's progress
as its tasks finish, its tasks, the link to its batch.completed event; and the list's filter."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, expect

from tests.helpers import fixture

from .servers import Sink
from .test_dashboard import ADMIN, browser, log_in, photohook_database

__all__ = ["browser", "photohook_database"]  # the fixtures this module uses

Start = Callable[..., Any]
DONE = fixture("fotor/upscale-completed")


async def test_a_batch_shows_its_progress_its_tasks_and_its_event(
    photohook: Start, sink_url: Callable[[Sink], str], browser: Browser, tmp_path: Path
) -> None:
    app = await photohook(
        '[sources.fotor]\nbatch_key = "^(order-\\\\d+)-"\nbatch_expected = 3\n',
        environ={"PHOTOHOOK_ADMIN_TOKEN": ADMIN},
    )
    await app.send(DONE | {"taskId": "t1", "businessId": "order-5-a"})
    await app.send(DONE | {"taskId": "t2", "businessId": "order-5-b", "status": 2})
    async with httpx.AsyncClient(base_url=app.base_url) as client:
        declared = await client.post(
            "/api/batches",
            json={"id": "manual", "expected": 4},
            headers={"authorization": f"Bearer {ADMIN}"},
        )
    assert declared.status_code == 200, declared.text

    page = await browser.new_page()
    await log_in(page, app.base_url, "/ui/batches")
    row = page.locator("tr#batch-order-5")
    await expect(row.locator(".state")).to_have_text("open")
    await expect(row).to_contain_text("2/3")
    await expect(page.locator("tr#batch-manual")).to_contain_text("0/4")
    await row.locator("a", has_text="order-5").click()
    await page.wait_for_url(f"{app.base_url}/ui/batches/order-5")
    await expect(page.locator("#progress")).to_have_text("2/3")
    await expect(page.locator("tr#task-fotor-t2 .state")).to_have_text("failed")

    await app.send(DONE | {"taskId": "t3", "businessId": "order-5-c"})
    await page.reload()
    await expect(page.locator("h1 .state")).to_have_text("completed")
    await expect(page.locator("#progress")).to_have_text("3/3")
    widths = await page.locator(".progress span").evaluate_all("els => els.map(e => e.style.width)")
    assert widths == ["66.7%", "33.3%"]
    await page.screenshot(path=str(tmp_path / "batch.png"), full_page=True)
    await page.locator("a", has_text="evt_").first.click()
    await expect(page.locator("pre#payload")).to_contain_text('"batch_id": "order-5"')

    await page.goto(f"{app.base_url}/ui/batches")
    await page.select_option("select[name=state]", "completed")
    await page.click("text=Filter")
    await expect(page.locator("tbody tr")).to_have_count(1)
    await expect(page.locator("tbody tr")).to_contain_text("order-5")
    await page.goto(f"{app.base_url}/ui/batches/nope")
    await expect(page.locator("body")).to_contain_text("no batch with that id")


async def test_batches_whose_ids_hold_slashes_and_reserved_characters_are_linked_and_shown(
    photohook: Start, browser: Browser
) -> None:
    app = await photohook(
        '[sources.fotor]\nbatch_key = "^(shop/order-\\\\d+)-"\n',
        environ={"PHOTOHOOK_ADMIN_TOKEN": ADMIN},
    )
    await app.send(DONE | {"taskId": "t1", "businessId": "shop/order-7-a"})
    links = {
        "shop/order-7": "/ui/batches/shop/order-7",
        "a b?c#d%e/f": "/ui/batches/a%20b%3Fc%23d%25e/f",
        "x/../y": "/ui/batches/x%2F..%2Fy",  # a browser would make x/../y of it /ui/batches/y
        "y": "/ui/batches/y",
    }
    async with httpx.AsyncClient(base_url=app.base_url) as client:
        for batch_id in list(links)[1:]:
            declared = await client.post(
                "/api/batches",
                json={"id": batch_id, "expected": 2},
                headers={"authorization": f"Bearer {ADMIN}"},
            )
            assert declared.status_code == 200, declared.text

    page = await browser.new_page()
    await log_in(page, app.base_url, links["a b?c#d%e/f"])  # the login form's way back too
    await expect(page.locator("h1 .mono")).to_have_text("a b?c#d%e/f")
    for batch_id, path in links.items():
        await page.goto(f"{app.base_url}/ui/batches")
        link = page.get_by_role("link", name=batch_id, exact=True)
        assert await link.get_attribute("href") == path
        await link.click()
        await page.wait_for_url(f"{app.base_url}{path}")
        await expect(page.locator("h1 .mono")).to_have_text(batch_id)
    await page.goto(f"{app.base_url}/ui/batches/shop/nope")
    await expect(page.locator("body")).to_contain_text("no batch with that id")
