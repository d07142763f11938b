"""The dashboard in a real headless Chromium, driven by Playwright."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from starlette.applications import Starlette
from starlette.routing import Mount

from receiver import Settings, create_app
from receiver.store import Attempt, DeliveryQuery, Outcome, Store, open_store
from receiver.tokens import URLTokens
from receiver.web.admin.dashboard import when
from tests.helpers import fixture
from tests.store.factories import receipt

from .conftest import KEY
from .servers import PrefixProxy, Reply, Sink, eventually, running

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


PREFIX = "/photohook"


@pytest.fixture
def settings_for(tmp_path: Path, photohook_database: str) -> Callable[[str], Settings]:
    def load(config: str) -> Settings:
        path = tmp_path / "photohook.toml"
        path.write_text("[server]\nallow_private_destinations = true\n" + config)
        return Settings.load(
            config_file=path,
            database_url=photohook_database,
            environ={"PHOTOHOOK_SECRET_KEYS": KEY, "PHOTOHOOK_ADMIN_TOKEN": ADMIN},
        )

    return load


def mounted(app: Starlette) -> Starlette:
    """A host application with photohook mounted below PREFIX, as the README shows."""

    @asynccontextmanager
    async def lifespan(host: Starlette) -> AsyncIterator[None]:
        async with app.router.lifespan_context(app):
            yield

    return Starlette(routes=[Mount(PREFIX, app=app)], lifespan=lifespan)


async def click_through(browser: Browser, base_url: str, store: Store) -> None:
    """Log in and use every page and form of the dashboard served at ``base_url + PREFIX``:
    each link, form and redirect must stay below the prefix, and nothing may answer 404."""
    hook = f"{base_url}{PREFIX}/hooks/fotor/{URLTokens([KEY]).token('fotor')}"
    async with httpx.AsyncClient() as client:
        answer = await client.post(hook, json=fixture("fotor/avatar-completed"))
        assert answer.status_code == 200, answer.text
    [event_id] = answer.json()["event_ids"]
    await eventually(lambda: _all_dead(store, 1))

    page = await browser.new_page()
    failures: list[str] = []
    page.on(
        "response",
        lambda response: (
            failures.append(f"{response.status} {response.url}")
            if response.url.startswith(base_url) and response.status >= 400
            else None
        ),
    )
    root = f"{base_url}{PREFIX}"
    await page.goto(f"{root}/ui")
    await page.wait_for_url(f"{root}/ui/login?next=/ui/overview")
    await page.fill("input[name=token]", ADMIN)
    await page.click("button:has-text('Log in')")
    await page.wait_for_url(f"{root}/ui/overview")

    async def links_stay_below_the_prefix() -> list[str]:
        """The page's links to this server (its forms' targets are checked, not followed)."""
        links: list[str] = await page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        forms: list[str] = await page.eval_on_selector_all("form", "els => els.map(e => e.action)")
        ours = [url for url in [*links, *forms] if url.startswith(base_url)]
        assert ours and all(url.startswith(f"{root}/ui") for url in ours), ours
        return [url for url in links if url.startswith(base_url)]

    seen = set(await links_stay_below_the_prefix())
    for name, path in [
        ("Events", "/ui/events"),
        ("Deliveries", "/ui/deliveries"),
        ("Destinations", "/ui/destinations"),
        ("Overview", "/ui/overview"),
    ]:
        await page.click(f"header nav >> text={name}")
        await page.wait_for_url(f"{root}{path}")
        seen |= set(await links_stay_below_the_prefix())

    await page.click("header nav >> text=Events")
    await page.click(f"text={event_id}")
    await page.wait_for_url(f"{root}/ui/events/{event_id}")
    seen |= set(await links_stay_below_the_prefix())
    await page.click("button:has-text('Replay')")
    await page.wait_for_url(f"{root}/ui/events/{event_id}")
    await expect(page.locator("ol.timeline")).to_have_count(2)

    await eventually(lambda: _all_dead(store, 2))
    await page.goto(f"{root}/ui/deliveries?state=dead")
    await page.click("#retry-all")
    await page.wait_for_url(f"{root}/ui/deliveries")
    await eventually(lambda: _all_dead(store, 2))
    delivery = (await store.list_deliveries(DeliveryQuery()))[0]
    await page.reload()
    await page.locator(f"tr#{delivery.id}").locator("text=Retry").click()
    await page.wait_for_url(f"{root}/ui/deliveries")
    await eventually(lambda: _all_dead(store, 2))
    assert (await store.list_deliveries(DeliveryQuery(delivery_id=delivery.id)))[0].attempts == 3

    await page.click("header nav >> text=Destinations")
    row = page.locator("tr#destination-app")
    await row.locator("text=Pause").click()
    await page.wait_for_url(f"{root}/ui/destinations")
    await expect(row.locator(".state")).to_have_text("paused")
    await row.locator("text=Resume").click()
    await expect(row.locator(".state")).to_have_text("active")

    for url in sorted(seen):
        response = await page.goto(url)
        assert response is not None and response.status == 200, url
        html = await page.content()
        assert ADMIN not in html and KEY not in html and hook.rsplit("/", 1)[1] not in html

    await page.click("button:has-text('Log out')")
    await page.wait_for_url(f"{root}/ui/login")
    await page.goto(f"{root}/ui/events")
    await page.wait_for_url(f"{root}/ui/login?next=/ui/events")
    assert failures == []


async def _all_dead(store: Store, count: int) -> bool:
    found = await store.list_deliveries(DeliveryQuery())
    return len(found) == count and all(d.state == "dead" for d in found)


DEAD_CONFIG = (
    '[destinations.app]\nurl = "{url}/hook"\nretry_schedule = []\n[[routes]]\nto = ["app"]\n'
)


async def test_every_page_works_mounted_below_a_prefix(
    settings_for: Callable[[str], Settings],
    sink_url: Callable[[Sink], str],
    stack: ExitStack,
    browser: Browser,
) -> None:
    sink = Sink(script=lambda n: Reply(500))
    settings = settings_for(DEAD_CONFIG.format(url=sink_url(sink)))
    base_url = stack.enter_context(running(mounted(create_app(settings))))
    store = open_store(settings.database_url)
    await store.open()
    try:
        await click_through(browser, base_url, store)
    finally:
        await store.close()


async def test_every_page_works_behind_a_proxy_that_serves_it_below_a_root_path(
    settings_for: Callable[[str], Settings],
    sink_url: Callable[[Sink], str],
    stack: ExitStack,
    browser: Browser,
) -> None:
    sink = Sink(script=lambda n: Reply(500))
    settings = settings_for(DEAD_CONFIG.format(url=sink_url(sink)))
    backend = stack.enter_context(running(create_app(settings), root_path=PREFIX))
    base_url = stack.enter_context(running(PrefixProxy(PREFIX, backend).app, lifespan="off"))
    store = open_store(settings.database_url)
    await store.open()
    try:
        await click_through(browser, base_url, store)
    finally:
        await store.close()


TIME = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$"


async def test_events_show_delivery_states_and_thumbnails_and_deliveries_their_task(
    photohook: Start, sink_url: Callable[[Sink], str], browser: Browser
) -> None:
    sink = Sink(
        script=lambda n: Reply(503, body=b"upstream is down for maintenance") if n == 0 else Reply()
    )
    images = Sink()
    app = await photohook(
        f'[destinations.app]\nurl = "{sink_url(sink)}/hook"\nretry_schedule = []\n'
        '[[routes]]\nto = ["app"]\n',
        environ={"PHOTOHOOK_ADMIN_TOKEN": ADMIN},
    )
    [dead] = await app.send(taskId="first", businessId="order-dead", resultUrl=None)
    await eventually(lambda: app.all_in("dead", 1))
    result = f"{sink_url(images)}/result.png"
    [delivered] = await app.send(taskId="second", businessId="order-ok", resultUrl=result)
    await eventually(lambda: app.settled(2))
    [failing] = await app.deliveries(state="dead")

    page = await browser.new_page()
    await log_in(page, app.base_url, "/ui/events")
    await expect(page.locator(f"#event-{dead} .state-dead")).to_have_text("app: dead")
    await expect(page.locator(f"#event-{delivered} .state-delivered")).to_have_text(
        "app: delivered"
    )
    await expect(page.locator(f"#event-{dead} img")).to_have_count(0)
    thumbnail = page.locator(f"#event-{delivered} img.thumb")
    await expect(thumbnail).to_have_attribute("src", result)
    await expect(thumbnail).to_have_attribute("loading", "lazy")
    await expect(thumbnail).to_have_attribute("referrerpolicy", "no-referrer")
    await eventually(lambda: len(images.received) == 1)
    assert "referer" not in images.received[0].headers
    await expect(page.locator("#rows td.mono").first).to_have_text(re.compile(TIME))

    await page.check("input[name=delivery]")
    await page.click("text=Filter")
    await expect(page.locator("#rows tr")).to_have_count(1)
    await expect(page.locator(f"#event-{dead}")).to_have_count(1)

    await page.goto(f"{app.base_url}/ui/deliveries")
    row = page.locator(f"tr#{failing.id}")
    await expect(row.locator(".task")).to_have_text("first")
    await expect(row.locator(".business")).to_have_text("order-dead")
    await expect(row.locator(".created")).to_have_text(re.compile(TIME))

    await page.goto(f"{app.base_url}/ui/events/{dead}")
    attempt = page.locator("li.attempt")
    await expect(attempt).to_contain_text("HTTP 503")
    await expect(attempt.locator("pre.response")).to_have_text("upstream is down for maintenance")
    await expect(attempt).to_contain_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"))
    await expect(page.locator(".grid span.mono").nth(2)).to_have_text(re.compile(TIME))
    assert ADMIN not in await page.content()


async def _bars(page: Page, chart: str) -> Counter[tuple[str, str]]:
    """(bucket start, outcome) -> count, as the chart's SVG bars say."""
    found = await page.eval_on_selector_all(
        f"svg#{chart} g.bar rect",
        "els => els.map(e => [e.parentElement.dataset.start, e.dataset.outcome, +e.dataset.count])",
    )
    return Counter({(start, outcome): count for start, outcome, count in found})


def _buckets(counts: dict[float, int], seconds: int, outcome: str) -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    for at, count in counts.items():
        found[(when(at - at % seconds), outcome)] += count
    return found


async def test_the_overview_charts_the_last_hour_and_day_of_callbacks_and_deliveries(
    photohook: Start,
    photohook_database: str,
    sink_url: Callable[[Sink], str],
    browser: Browser,
    tmp_path: Path,
) -> None:
    now = time.time()
    ago = {"five": now - 300, "ten": now - 600, "thirty": now - 1800, "three_hours": now - 10800}
    seed = open_store(photohook_database)
    await seed.open()
    await seed.sync_destinations(["app", "later"])
    await seed.set_destination_state("later", "paused", "by the test")
    stored: dict[float, int] = {}
    for name, count in (("five", 3), ("thirty", 2), ("three_hours", 4)):
        for n in range(count):
            moment = datetime.fromtimestamp(ago[name], UTC)
            await seed.store(receipt(f"{name}-{n}", received_at=moment))
        stored[ago[name]] = count
    moment = datetime.fromtimestamp(ago["ten"], UTC)
    for task in ("one", "two", "three"):
        await seed.store(receipt(task, received_at=moment, destinations=("app",)))
    await seed.store(receipt("waits", received_at=moment, destinations=("later",)))
    stored[ago["ten"]] = 4
    # Two attempts deliver, one fails, and the next attempt of that delivery is its last.
    claims, _ = await seed.claim({"app": 10}, "seed", 60, time.time())
    assert len(claims) == 3
    for n, claim in enumerate(claims):
        ok = n < 2
        attempt = Attempt(ago["ten"], 5.0, ok, 200 if ok else 500)
        state = "delivered" if ok else "retrying"
        await seed.finish(Outcome(claim.delivery.id, "seed", attempt, state, now - 1))
    [again], _ = await seed.claim({"app": 10}, "seed", 60, time.time())
    last = Attempt(ago["ten"] + 1, 5.0, False, 500)
    await seed.finish(Outcome(again.delivery.id, "seed", last, "dead"))
    await seed.close()

    sink = Sink()
    app = await photohook(
        f'[destinations.app]\nurl = "{sink_url(sink)}/hook"\n'
        f'[destinations.later]\nurl = "{sink_url(sink)}/later"\n',
        environ={"PHOTOHOOK_ADMIN_TOKEN": ADMIN},
    )
    [live_id] = await app.send(taskId="live")
    await app.send(taskId="live")  # a duplicate
    async with httpx.AsyncClient() as client:
        answer = await client.post(app.hook[:-4] + "nope", json=fixture("fotor/upscale-completed"))
        assert answer.status_code in (401, 403)
    live_event = await app.store.get_event(live_id)
    assert live_event is not None
    stored[live_event.received_at.timestamp()] = 1

    page = await browser.new_page()
    await log_in(page, app.base_url, "/ui/overview")
    hour = await _bars(page, "callbacks-hour-fotor")
    accepted = Counter({key: n for key, n in hour.items() if key[1] == "accepted"})
    assert accepted == _buckets(stored, 60, "accepted") - _buckets(
        {ago["three_hours"]: 4}, 60, "accepted"
    )
    others = {key[1]: n for key, n in hour.items() if key[1] != "accepted"}
    assert others == {"duplicate": 1, "rejected": 1}
    day = await _bars(page, "callbacks-day-fotor")
    assert Counter({k: n for k, n in day.items() if k[1] == "accepted"}) == _buckets(
        stored, 3600, "accepted"
    )
    svg = page.locator("svg#callbacks-day-fotor")
    await expect(svg).to_have_attribute("data-accepted", "14")
    await expect(page.locator("svg#callbacks-hour-fotor")).to_have_attribute("data-accepted", "10")

    attempts = await _bars(page, "attempts-hour-app")
    expected = _buckets({ago["ten"]: 2}, 60, "delivered") + _buckets({ago["ten"]: 1}, 60, "failed")
    assert attempts == expected + _buckets({ago["ten"] + 1: 1}, 60, "dead")
    assert await _bars(page, "attempts-day-app") == _buckets(
        {ago["ten"]: 2}, 3600, "delivered"
    ) + _buckets({ago["ten"]: 1}, 3600, "failed") + _buckets({ago["ten"] + 1: 1}, 3600, "dead")
    assert await _bars(page, "attempts-hour-later") == Counter()
    await expect(page.locator("#overview-app .rate")).to_contain_text("50%")
    await expect(page.locator("#overview-later .queue")).to_have_text("1")
    # Taller bars for larger counts: the scale is the chart's peak.
    heights = await page.eval_on_selector_all(
        "svg#callbacks-hour-fotor g.bar",
        "els => els.map(e => [+e.dataset.total, e.getBBox().height])",
    )
    assert sorted(heights) == sorted(heights, key=lambda pair: pair[1])
    await page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
