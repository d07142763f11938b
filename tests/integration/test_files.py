"""The dashboard's thumbnails come from the kept copies (``/files/{token}``, or a presigned
URL), so they still show once the provider's links stop working: in a real headless Chromium,
on both database engines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.async_api import Browser, Page, expect

from .origin import Origin, png
from .servers import Sink, eventually
from .test_dashboard import ADMIN, browser, log_in, photohook_database
from .test_keeping import S3_KEY, S3_SECRET, bucket, config, origin, s3_results

Start = Callable[..., Any]
__all__ = ["browser", "bucket", "origin", "photohook_database"]  # fixtures


async def drawn(page: Page, selector: str) -> list[tuple[str, int]]:
    """Each image's source and drawn width (0: it did not load)."""
    found: list[tuple[str, int]] = await page.eval_on_selector_all(
        selector, "images => images.map(i => [i.getAttribute('src'), i.naturalWidth])"
    )
    return found


async def thumbnails_after_expiry(
    app: Any, served: Origin, sink: Sink, browser: Browser, event_id: str
) -> list[tuple[str, int]]:
    await eventually(lambda: len(sink.received) == 1)
    served.serving = False  # the provider's link has expired
    page = await browser.new_page()
    await log_in(page, app.base_url, "/ui/events")
    await expect(page.locator("img.thumb")).to_have_count(1)
    await page.wait_for_function("document.querySelector('img.thumb').complete")
    listed = await drawn(page, "img.thumb")
    await page.goto(f"{app.base_url}/ui/events/{event_id}")
    await page.wait_for_function(
        "[...document.querySelectorAll('.thumbs img')].every(i => i.complete)"
    )
    await expect(page.locator(".thumbs figcaption")).to_contain_text("kept copy")
    return listed + await drawn(page, ".thumbs img")


async def test_thumbnails_load_from_the_local_store_after_the_link_expired(
    photohook: Start,
    sink_url: Callable[[Sink], str],
    origin: tuple[Origin, str],
    browser: Browser,
) -> None:
    served, base = origin
    served.files["out.png"] = png(width=8, height=6)
    sink = Sink()
    app = await photohook(config(sink_url(sink)), {"PHOTOHOOK_ADMIN_TOKEN": ADMIN})
    [event_id] = await app.send(resultUrl=f"{base}/r/out.png")
    found = await thumbnails_after_expiry(app, served, sink, browser, event_id)
    assert [width for _, width in found] == [8, 8]
    assert all(src.startswith("/files/") for src, _ in found)


async def test_thumbnails_load_from_the_s3_store_after_the_link_expired(
    photohook: Start,
    sink_url: Callable[[Sink], str],
    origin: tuple[Origin, str],
    bucket: tuple[str, Any, str],
    browser: Browser,
) -> None:
    endpoint, _, name = bucket
    served, base = origin
    served.files["out.png"] = png(width=5, height=5)
    sink = Sink()
    environ = {"PHOTOHOOK_ADMIN_TOKEN": ADMIN, "S3_KEY": S3_KEY, "S3_SECRET": S3_SECRET}
    app = await photohook(config(sink_url(sink), s3_results(endpoint, name)), environ)
    [event_id] = await app.send(resultUrl=f"{base}/r/out.png")
    found = await thumbnails_after_expiry(app, served, sink, browser, event_id)
    assert [width for _, width in found] == [5, 5]
    assert all(src.startswith(f"{endpoint}/{name}/photohook/") for src, _ in found)
