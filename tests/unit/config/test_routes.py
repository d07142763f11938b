from __future__ import annotations

from pathlib import Path

import pytest

from receiver.config.settings import Settings
from receiver.destinations import HandlerDestination, HTTPDestination
from receiver.errors import ConfigError
from tests.plugins import hooks

LOG = "[destinations.a]\nhandler = 'handlers.log:print_event'\n"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

FULL = f"""
[server]
allow_private_destinations = false

[destinations.app]
url = "https://93.184.215.14/hooks/photohook"
secret = ["{SECRET}", "env:OLD_SECRET"]
timeout = "15s"
retry_schedule = ["5s", "5m", "30m"]
max_in_flight = 4
rate_limit = "50/s"
headers = {{ "X-Team" = "imaging" }}
transform = "tests.plugins.hooks:to_order_update"

[destinations.archive]
handler = "handlers.log:print_event"

[[routes]]
name = "finished-orders"
source = "fotor"
status = ["completed", "failed"]
task_type = ["upscale", "avatar"]
business_id = "order-*"
labels = ["car-*"]
flagged = false
to = ["app", "archive"]

[[routes]]
to = "archive"
"""


def load(tmp_path: Path, text: str, **kwargs: object) -> Settings:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return Settings.load(config_file=path, environ={"OLD_SECRET": "whsec_b2xk"}, **kwargs)  # type: ignore[arg-type]


def test_full_router_config(tmp_path: Path) -> None:
    settings = load(tmp_path, FULL)
    app = settings.destinations["app"]
    assert isinstance(app, HTTPDestination)
    assert app.timeout == 15
    assert tuple(app.retry.delays) == (5, 300, 1800)
    assert app.max_in_flight == 4
    assert app.rate_limit == 50
    assert app.headers == {"X-Team": "imaging"}
    assert app.transform is hooks.to_order_update
    assert len(app.signing_keys()) == 2
    archive = settings.destinations["archive"]
    assert isinstance(archive, HandlerDestination)
    assert archive.timeout == 30
    assert [r.name for r in settings.routes] == ["finished-orders", "route-2"]
    assert settings.routes[0].business_id == ("order-*",)
    assert settings.routes[1].to == ("archive",)


def test_callables_given_in_code(tmp_path: Path) -> None:
    text = '[destinations.app]\nurl = "https://93.184.215.14/x"\n[[routes]]\nto = ["app", "mine"]\n'
    settings = load(
        tmp_path, text, handlers={"mine": hooks.record}, transforms={"app": hooks.to_order_update}
    )
    mine = settings.destinations["mine"]
    assert isinstance(mine, HandlerDestination) and mine.handler is hooks.record
    app = settings.destinations["app"]
    assert isinstance(app, HTTPDestination) and app.transform is hooks.to_order_update


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[destinations.a]\n", "destinations.a.url: give either url"),
        ("[destinations.a]\nurl = 'x'\nhandler = 'y'\n", "give either url"),
        ("[destinations.a]\nurl = 'ftp://93.184.215.14/'\n", "expected an http:// or https://"),
        ("[destinations.a]\nurl = 'http://u:p@93.184.215.14/'\n", "credentials"),
        ("[destinations.a]\nurl = 'http://127.0.0.1:9/'\n", "127.0.0.1 is a loopback address"),
        ("[destinations.a]\nurl = 'http://localhost/'\n", "is a loopback address"),
        ("[destinations.a]\nurl = 'http://169.254.169.254/'\n", "link-local"),
        ("[destinations.a]\nurl = 'http://93.184.215.14/'\nsecret = 'nope!'\n", "secret[0]"),
        ("[destinations.a]\nurl = 'http://93.184.215.14/'\ntimeout = 'soon'\n", "a.timeout"),
        (
            "[destinations.a]\nurl = 'http://93.184.215.14/'\nretry_schedule = ['5s', 'x']\n",
            "a.retry_schedule[1]",
        ),
        ("[destinations.a]\nurl = 'http://93.184.215.14/'\nrate_limit = 'fast'\n", "rate_limit"),
        ("[destinations.a]\nurl = 'http://93.184.215.14/'\nmax_in_flight = 0\n", "at least 1"),
        (
            "[destinations.a]\nurl = 'http://93.184.215.14/'\nheaders = { webhook-id = 'x' }\n",
            "destinations.a.headers.webhook-id: photohook sets this header itself",
        ),
        (
            "[destinations.a]\nurl = 'http://93.184.215.14/'\nretries = 3\n",
            "a.retries: unknown key",
        ),
        (
            "[destinations.a]\nhandler = 'handlers.nope:x'\n",
            'could not import module "handlers.nope"',
        ),
        ("[destinations.a]\nhandler = 'handlers.log:nope'\n", 'attribute "nope" not found'),
        ("[destinations.a]\nhandler = 'tests.plugins.hooks:NOT_CALLABLE'\n", "is not callable"),
        (
            "[destinations.a]\nhandler = 'tests.plugins.hooks:three_arguments'\n",
            "at most a context besides",
        ),
        ("[[routes]]\nto = ['nowhere']\n", "routes[0].to: no destination named 'nowhere'"),
        ("[[routes]]\n", "routes[0].to: name at least one destination"),
        (
            LOG + "[[routes]]\nto = 'a'\nstatus = 'done'\n",
            "unknown status 'done'",
        ),
        (
            LOG + "[[routes]]\nto = 'a'\nsource = 'stripe'\n",
            "unknown source 'stripe'",
        ),
        (
            LOG + "[[routes]]\nto = 'a'\nstatus = []\n",
            "an empty list matches nothing",
        ),
        (
            LOG + "[[routes]]\nto = 'a'\nwhen = 1\n",
            "routes[0].when: unknown key",
        ),
        (
            LOG + "[[routes]]\nname = 'x'\nto = 'a'\n[[routes]]\nname = 'x'\nto = 'a'\n",
            "two routes are named 'x'",
        ),
    ],
)
def test_router_config_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(tmp_path / "c.toml"))


def test_private_destinations_can_be_allowed(tmp_path: Path) -> None:
    everywhere = load(
        tmp_path,
        "[server]\nallow_private_destinations = true\n[destinations.a]\nurl = 'http://127.0.0.1:9/'\n",
    )
    assert everywhere.destinations["a"].allow_private  # type: ignore[union-attr]
    one = load(tmp_path, "[destinations.a]\nurl = 'http://localhost:9/'\nallow_private = true\n")
    assert one.destinations["a"].allow_private  # type: ignore[union-attr]
