"""Filling a photohook database with old events, to measure ingest on a large one."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
from pathlib import Path

BATCH = 50_000


def fill(workdir: Path, events: int, photohook: list[str]) -> None:
    """Create ``workdir/photohook.db`` through photohook's migrations, then add ``events`` old
    completed events (each with its stored request) in one transaction."""
    subprocess.run(
        [*photohook, "events", "--limit", "1"], cwd=workdir, check=True, capture_output=True
    )
    db = sqlite3.connect(workdir / "photohook.db", isolation_level=None)
    body = (
        b'{"taskId":"old","status":1,"type":"upscale","businessId":"order-1",'
        b'"resultUrl":"https://cdn.example.com/results/old.png"}'
    )
    digest = hashlib.sha256(body).digest()
    when = "2026-01-01T00:00:00.000000Z"
    db.execute("PRAGMA synchronous = OFF")
    db.execute("BEGIN")
    for start in range(0, events, BATCH):
        receipts, rows = [], []
        for index in range(start, min(start + BATCH, events)):
            receipt_id, event_id = f"rcv_0{index:025d}", f"evt_0{index:025d}"
            receipts.append(
                (
                    receipt_id,
                    "fotor",
                    "callback",
                    when,
                    None,
                    None,
                    "[]",
                    body,
                    digest,
                    f'["{event_id}"]',
                    0,
                )
            )
            rows.append(
                (
                    event_id,
                    "fotor",
                    "fotor",
                    "fotor.task.completed",
                    f"old-{index}",
                    "upscale",
                    "completed",
                    "order-1",
                    "[]",
                    "[]",
                    0,
                    when,
                    "callback",
                    receipt_id,
                    1,
                )
            )
        db.executemany(
            "INSERT INTO receipts (id, source, via, received_at, peer, client, headers, body,"
            " body_sha256, event_ids, duplicate) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            receipts,
        )
        db.executemany(
            "INSERT INTO events (id, source, kind, type, task_id, task_type, status, business_id,"
            " labels, result_urls, flagged, received_at, via, receipt_id, status_rank)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    # The fill leaves its gigabyte or so dirty in the page cache, and the kernel would write it
    # back during the first measured runs, beside their fsyncs: write it now.
    os.sync()
