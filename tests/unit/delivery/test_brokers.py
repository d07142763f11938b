"""Broker destinations without a broker: reading them from the config file, and what one
attempt records for each answer a publisher can give (a fake publisher, at the unit level)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from standardwebhooks import Webhook

from receiver.config.settings import Settings
from receiver.delivery.brokers import event_headers, scrub
from receiver.delivery.message import Message
from receiver.delivery.senders import BrokerSender
from receiver.destinations import BrokerDestination, render_name, shown_url
from receiver.errors import BrokerRefused, ConfigError
from receiver.events import Event
from receiver.secrets import Secret

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PASSWORD = "the-broker-password"


def load(tmp_path: Path, table: str, environ: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "photohook.toml"
    path.write_text("[destinations.bus]\n" + table)
    return Settings.load(config_file=path, environ=environ or {})


def event(**changes: object) -> Event:
    fields: dict[str, object] = {
        "id": "evt_1",
        "source": "fotor",
        "kind": "fotor",
        "type": "fotor.task.completed",
        "task_id": "task-1",
        "task_type": "upscale",
        "status": "completed",
        "business_id": None,
        "labels": (),
        "result_urls": (),
        "flagged": False,
        "received_at": datetime(2026, 12, 6, tzinfo=UTC),
        "payload": {},
    }
    return Event(**(fields | changes))  # type: ignore[arg-type]


def test_each_kind_reads_its_names_and_hides_its_credentials(tmp_path: Path) -> None:
    rabbit = load(
        tmp_path,
        'kind = "rabbitmq"\nurl = "env:AMQP_URL"\nexchange = "photohook"\n'
        f'secret = "{SECRET}"\nretry_schedule = ["1s"]\nmax_in_flight = 2\n',
        {"AMQP_URL": f"amqp://app:{PASSWORD}@rabbit.internal:5672/images"},
    ).destinations["bus"]
    assert isinstance(rabbit, BrokerDestination)
    assert rabbit.kind == "rabbitmq" and rabbit.topic == "photohook"
    assert rabbit.routing_key == "photohook.{source}.{status}"
    assert rabbit.target == "amqp://rabbit.internal:5672/images exchange photohook"
    assert PASSWORD not in repr(rabbit) and PASSWORD not in rabbit.target
    assert tuple(rabbit.retry.delays) == (1,) and rabbit.max_in_flight == 2
    redis = load(
        tmp_path,
        'kind = "redis"\nurl = "redis://127.0.0.1/0"\nstream = "ph:{source}"\nmax_len = 5\n',
    ).destinations["bus"]
    assert isinstance(redis, BrokerDestination) and redis.max_len == 5
    nats = load(
        tmp_path, 'kind = "nats"\nurl = "nats://127.0.0.1:4222"\nsubject = "ph.{source}.{type}"\n'
    ).destinations["bus"]
    assert isinstance(nats, BrokerDestination)
    assert render_name(nats.topic, event()) == "ph.fotor.fotor.task.completed"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('kind = "kafka"', "bus.kind: expected one of http, handler, rabbitmq, redis, nats"),
        ('kind = "redis"\nstream = "s"', "bus.url: a redis destination needs the broker's url"),
        ('kind = "redis"\nurl = "http://h"\nstream = "s"', "expected a redis:// or rediss://"),
        ('kind = "nats"\nurl = "nats://h"', "bus.subject: a nats destination names its subject"),
        ('kind = "nats"\nurl = "nats://h"\nsubject = "a.{task_id}"', "may use only {source}"),
        ('kind = "nats"\nurl = "nats://h"\nsubject = "a.{source!r}"', "may use only {source}"),
        ('kind = "redis"\nurl = "redis://h"\nstream = "s"\nexchange = "x"', "unknown key"),
        ('kind = "redis"\nurl = "redis://h"\nstream = "s"\nmax_len = 0', "bus.max_len"),
        ('kind = "http"\nhandler = "handlers.log:print_event"', "kind 'http' has no handler"),
        ('kind = "rabbitmq"\nurl = "amqp://h"\nexchange = ""\nrouting_key = ""', "cannot be empty"),
        ('kind = "redis"\nurl = ["redis://a", "redis://b"]\nstream = "s"', "give one URL"),
        ('kind = "nats"\nurl = "nats://h"\nsubject = "photo hook.>"', "is not a NATS subject"),
        (
            'kind = "rabbitmq"\nurl = "amqp://h"\nexchange = "x"\nrouting_key = "'
            + "k" * 300
            + '"',
            "too long",
        ),
    ],
)
def test_a_bad_broker_destination_names_the_key_and_the_problem(
    tmp_path: Path, table: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, table + "\n")
    assert message in str(raised.value)


def test_an_unset_url_is_fine_for_a_command_that_does_not_deliver(tmp_path: Path) -> None:
    path = tmp_path / "photohook.toml"
    path.write_text('[destinations.bus]\nkind = "redis"\nurl = "env:REDIS_URL"\nstream = "s"\n')
    settings = Settings.load(config_file=path, environ={}, resolve_secrets=False)
    assert settings.destinations["bus"].target == "env:REDIS_URL stream s"


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        (f"amqp://app-user:{PASSWORD}@rabbit.internal:5672/", ["app-user", PASSWORD]),
        ("amqp://app-user:p%40ss%2Fword@rabbit.internal:5672/", ["p@ss/word", "p%40ss%2Fword"]),
        ("nats://s3cr3t-token-value@nats.internal:4222", ["s3cr3t-token-value"]),
    ],
)
def test_scrub_takes_the_url_and_its_credentials_out_of_an_error(
    url: str, secrets: list[str]
) -> None:
    destination = destination_of(url)
    text = f"cannot connect to {url} as {' and '.join(secrets)}"
    scrubbed = scrub(text, destination)
    assert all(secret not in scrubbed for secret in secrets), scrubbed
    assert shown_url(url) in scrubbed


def destination_of(url: str = "redis://127.0.0.1/0", **changes: object) -> BrokerDestination:
    fields: dict[str, object] = {
        "name": "bus",
        "kind": "redis",
        "url": Secret(url),
        "shown_url": shown_url(url),
        "topic": "s",
        "secrets": (Secret(SECRET),),
        "timeout": 0.2,
    }
    return BrokerDestination(**(fields | changes))  # type: ignore[arg-type]


class FakePublisher:
    """Answers each publish with what the test gives: a confirmation line or an exception."""

    def __init__(self, answer: str | BaseException | None = "confirmed") -> None:
        self.answer = answer
        self.published: list[Message] = []
        self.closed = False

    async def publish(self, message: Message, event: Event) -> str:
        self.published.append(message)
        if self.answer is None:
            await asyncio.sleep(10)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return str(self.answer)

    async def connect(self) -> str:
        return "fake"

    async def aclose(self) -> None:
        self.closed = True


async def test_a_confirmed_publish_is_delivered_and_signed_as_for_http() -> None:
    publisher = FakePublisher("added to Redis stream 's' as 1-0")
    result = await BrokerSender(destination_of(), publisher).send(event())
    assert result.attempt.ok and result.attempt.response_body == b"added to Redis stream 's' as 1-0"
    [message] = publisher.published
    assert orjson.loads(message.body)["id"] == "evt_1"
    Webhook(SECRET).verify(message.body, message.headers)
    headers = event_headers(message, event())
    assert headers["photohook-task-id"] == "task-1"
    assert headers["photohook-event-type"] == "fotor.task.completed"


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (BrokerRefused("no stream"), "refused: no stream"),
        (ConnectionError(f"redis://x:{PASSWORD}@h refused"), "ConnectionError: shown:// refused"),
        (OSError(), "OSError: connection failed"),
        (None, "timed out after 0.2s"),
    ],
)
async def test_what_a_failed_publish_records(answer: BaseException | None, error: str) -> None:
    destination = destination_of(f"redis://x:{PASSWORD}@h", shown_url="shown://")
    result = await BrokerSender(destination, FakePublisher(answer)).send(event())
    assert not result.attempt.ok
    assert result.attempt.error == error
    assert PASSWORD not in (result.attempt.error or "")


async def test_a_transform_shapes_the_message_or_skips_it() -> None:
    publisher = FakePublisher()
    shaped = destination_of(transform=lambda e: {"task": e.task_id})
    assert (await BrokerSender(shaped, publisher).send(event())).attempt.ok
    assert orjson.loads(publisher.published[0].body) == {"task": "task-1"}
    skipped = await BrokerSender(destination_of(transform=lambda e: None), publisher).send(event())
    assert skipped.skipped and len(publisher.published) == 1


def test_a_broker_without_its_client_library_is_refused_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "nats" else real(name, *a)
    )
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, 'kind = "nats"\nurl = "nats://h"\nsubject = "s"\n')
    assert "pip install 'photohook[nats]'" in str(raised.value)
