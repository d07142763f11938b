"""``photohook batches`` and ``photohook batch create|close|show``: batches of tasks, declared
and followed from the command line as ``/api/batches`` does."""

from __future__ import annotations

import argparse

from receiver.cli._common import fail, print_json, print_table, with_store
from receiver.config.settings import Settings
from receiver.errors import UsageError
from receiver.events import format_timestamp
from receiver.routing import Router
from receiver.store import Batch, BatchQuery


def batches(settings: Settings, args: argparse.Namespace) -> int:
    """List batches of tasks with their progress, newest first."""
    query = BatchQuery(state=args.state, limit=args.limit)
    found = with_store(settings, lambda store: store.list_batches(query))
    if args.json:
        from receiver.web.admin import answers

        print_json([answers.batch(b) for b in found])
        return 0
    print_table(
        ("BATCH", "STATE", "DONE", "COMPLETED", "FAILED", "DEADLINE", "EVENT"),
        [_row(b) for b in found],
        empty="no batches",
    )
    return 0


def create(settings: Settings, args: argparse.Namespace) -> int:
    """Create a batch of tasks, or add tasks, a size or a deadline to an open one."""
    from receiver.operations import declare_batch

    tasks = [_task(given) for given in args.task]
    found = with_store(
        settings,
        lambda store: declare_batch(
            store,
            Router(settings.routes),
            settings.sources,
            args.batch_id,
            tasks,
            expected=args.expected,
            deadline=args.deadline,
            closed=False if args.open else None,
        ),
    )
    _print(found)
    return 0


def close(settings: Settings, args: argparse.Namespace) -> int:
    """Close a batch: the tasks it has are all of it, and it completes once they are final."""
    found = with_store(
        settings,
        lambda store: store.close_batch(args.batch_id, Router(settings.routes).destinations),
    )
    if found is None:
        return fail(f"no batch {args.batch_id!r}")
    _print(found)
    return 0


def show(settings: Settings, args: argparse.Namespace) -> int:
    """Show a batch, its progress and each of its tasks."""
    detail = with_store(settings, lambda store: store.batch_detail(args.batch_id))
    if detail is None:
        return fail(f"no batch {args.batch_id!r}")
    found, tasks = detail
    if args.json:
        from receiver.web.admin import answers

        print_json(answers.batch_detail(found, tasks))
        return 0
    _print(found)
    print_table(
        ("SOURCE", "TASK", "STATUS", "EVENT"),
        [(t.source, t.task_id, t.status or "-", t.event_id or "-") for t in tasks],
        empty="no tasks yet",
    )
    return 0


def _task(given: str) -> tuple[str, str]:
    source, colon, task_id = given.partition(":")
    if not colon or not source or not task_id:
        raise UsageError(f"--task: expected SOURCE:TASK_ID, got {given!r}")
    return source, task_id


def _progress(found: Batch) -> str:
    done = found.completed + found.failed
    return f"{done}/{found.size if found.size is not None else '?'}"


def _row(found: Batch) -> tuple[str, ...]:
    return (
        found.id,
        found.state,
        _progress(found),
        str(found.completed),
        str(found.failed),
        format_timestamp(found.deadline)[:19] + "Z" if found.deadline is not None else "-",
        found.event_id or "-",
    )


def _print(found: Batch) -> None:
    print(
        f"batch {found.id}: {found.state}, {_progress(found)} final ({found.completed} completed,"
        f" {found.failed} failed), {found.tasks} tasks known"
        + (f", event {found.event_id}" if found.event_id else "")
    )
