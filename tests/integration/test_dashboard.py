"""The dashboard in a real headless Chromium, driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.helpers import fixture

from .servers import Reply, Sink, eventually

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ADMIN = "dashboard-admin-token"
Start = Callable[..., Any]

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError("CI must have Chromium (Debian's chromium package) for these tests")
    pytest.skip("no Chromium is installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture
def photohook_database(database_url: str) -> str:
    """The dashboard is checked on both database engines."""
    return database_url


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        await browser.close()


async def log_in(page: Page, base_url: str, path: str) -> None:
    await page.goto(f"{base_url}{path}")
    assert "/ui/login" in page.url
    await page.fill("input[name=token]", ADMIN)
    await page.click("button:has-text('Log in')")
    await page.wait_for_url(f"{base_url}{path}")


async def test_a_dead_delivery_is_retried_from_the_page_and_becomes_delivered(
    photohook: Start, sink_url: Callable[[Sink], str], browser: Browser, tmp_path: Path
) -> None:
    sink = Sink(script=lambda n: Reply(500 if n == 0 else 200))
    app = await photohook(
        f'[destinations.app]\nurl = "{sink_url(sink)}/hook"\nretry_schedule = []\n'
        '[[routes]]\nto = ["app"]\n',
        environ={"PHOTOHOOK_ADMIN_TOKEN": ADMIN},
    )
    [event_id] = await app.send()
    await eventually(lambda: app.all_in("dead", 1))
    [delivery] = await app.deliveries()

    page = await browser.new_page()
    await log_in(page, app.base_url, "/ui/deliveries")
    row = page.locator(f"tr#{delivery.id}")
    await expect(row.locator(".state")).to_have_text("dead")
    await row.locator("text=Retry").click()
    await page.wait_for_url(f"{app.base_url}/ui/deliveries")
    for _ in range(50):
        if await row.locator(".state").inner_text() == "delivered":
            break
        await page.wait_for_timeout(100)
        await page.reload()
    await expect(row.locator(".state")).to_have_text("delivered")
    assert sink.ids == [event_id, event_id]
    await page.screenshot(path=str(tmp_path / "deliveries.png"), full_page=True)

    await page.goto(f"{app.base_url}/ui/events/{event_id}")
    timeline = page.locator("ol.timeline li")
    await expect(timeline).to_have_count(2)
    await expect(timeline.nth(0)).to_contain_text("HTTP 500")
    await expect(page.locator("pre#payload")).to_contain_text('"taskId"')


async def test_events_list_detail_with_blurred_flagged_images_and_destinations(
    photohook: Start, sink_url: Callable[[Sink], str], browser: Browser, tmp_path: Path
) -> None:
    sink = Sink()
    app = await photohook(
        f'[destinations.app]\nurl = "{sink_url(sink)}/hook"\n[[routes]]\nto = ["app"]\n',
        environ={"PHOTOHOOK_ADMIN_TOKEN": ADMIN},
    )
    [avatar] = await app.send(fixture("fotor/avatar-completed"))
    page = await browser.new_page()
    await log_in(page, app.base_url, "/ui/events")
    await expect(page.locator("#rows tr")).to_have_count(1)
    [later] = await app.send(taskId="arrives-later")
    await expect(page.locator("#rows tr")).to_have_count(2, timeout=10_000)  # refreshes itself
    await page.select_option("select[name=flagged]", "true")
    await page.click("text=Filter")
    await expect(page.locator("#rows tr")).to_have_count(1)
    await page.click(f"text={avatar}")
    images = page.locator(".thumbs img")
    await expect(images).to_have_count(2)
    blurred = await images.evaluate_all("els => els.map(e => getComputedStyle(e).filter)")
    assert blurred == ["none", "blur(16px)"]
    await page.screenshot(path=str(tmp_path / "event.png"), full_page=True)
    assert later

    await page.goto(f"{app.base_url}/ui/destinations")
    row = page.locator("tr#destination-app")
    await expect(row.locator(".state")).to_have_text("active")
    await row.locator("text=Pause").click()
    await expect(row.locator(".state")).to_have_text("paused")
    await row.locator("text=Resume").click()
    await expect(row.locator(".state")).to_have_text("active")
    html = await page.content()
    assert ADMIN not in html


async def test_cross_site_posts_are_refused(photohook: Start, browser: Browser) -> None:
    app = await photohook('[destinations.log]\nhandler = "handlers.log:print_event"\n')
    page = await browser.new_page()
    response = await page.request.post(
        f"{app.base_url}/ui/destinations/log/pause", headers={"origin": "https://evil.example"}
    )
    assert response.status == 403
    states = {s.name: s.state for s in await app.store.destination_statuses(0)}
    assert states["log"] == "active"
