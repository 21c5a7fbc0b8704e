"""Another team's agent side of the trace round trip, written for the tests: its dump
and its upload, named by import path in a profile's ``[agent]``. It imports nothing of
this project's.

It differs from this project's agent the way a real one may (its own code, its own
boto3 client from the environment, arguments in its own order) and in one defect on
purpose: it stores the trace with ``Content-Encoding: gzip``, so ordinary HTTP clients
unpack it on the way.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import boto3

MAX_BYTES = 50 * 1024 * 1024
CONTENT_ENCODING = os.environ.get("OTHER_AGENT_CONTENT_ENCODING", "gzip")

log = logging.getLogger("other_agent")


def dump(task_id: str, events: list[Mapping[str, Any]]) -> bytes | None:
    """The whole trajectory as gzipped JSON Lines, headed by its summary."""
    lines = [json.dumps(event, separators=(",", ":"), ensure_ascii=False) for event in events]
    if not lines:
        return None
    header = {
        "event": "TRAJECTORY_ARTIFACT_HEADER",
        "task_id": task_id,
        "accumulated_events": len(lines),
        "accumulated_bytes": sum(len(line.encode()) for line in lines),
        "dropped": 0,
        "max_bytes": MAX_BYTES,
    }
    text = "\n".join([json.dumps(header), *lines]) + "\n"
    return gzip.compress(text.encode(), mtime=0)


def upload_trace_to_s3(body: bytes, task_id: str, user_id: str) -> str | None:
    """Stores the trace under the owner's prefix; None (and a log line) on any failure."""
    bucket = os.environ.get("TRACE_ARTIFACTS_BUCKET_NAME", "")
    if not (bucket and task_id and user_id):
        return None
    key = f"traces/{user_id}/{task_id}.jsonl.gz"
    extra = {"ContentEncoding": CONTENT_ENCODING} if CONTENT_ENCODING else {}
    try:
        boto3.client("s3").put_object(
            Bucket=bucket, Key=key, Body=body, ContentType="application/gzip", **extra
        )
    except Exception:
        log.exception("trace upload failed for %s", task_id)
        return None
    return f"s3://{bucket}/{key}"
