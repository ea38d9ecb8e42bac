#!/usr/bin/env python3
"""Publishes GAD jobs to JetStream with nats-py, written from the README's
"Wire format: publishing jobs directly" section alone (JSON bodies).

Reads one job per line on stdin, {"kind": "import.efectivos", "payload": {...}},
and prints one line per job once JetStream acknowledged it:
{"job_id": "...", "subject": "...", "seq": 7, "duplicate": false}.

    publish_jobs.py --url nats://127.0.0.1:4223 [--subject-prefix t1] < jobs.ndjson
"""

import argparse
import asyncio
import datetime
import json
import sys
import uuid

import nats

# README: the subject is gad.jobs.<group>.<kind>, the kind's first segment
# dropped when it repeats the group.
GROUP_OF_FAMILY = {
    "geo": "geo",
    "emergency": "emergency",
    "task": "tasks",
    "user": "tasks",
    "efectivo": "tasks",
    "telegram": "tasks",
    "import": "import",
}


def subject_of(kind, prefix):
    family, _, tail = kind.partition(".")
    group = GROUP_OF_FAMILY[family]
    rest = f"{group}.{tail}" if family == group else f"{group}.{kind}"
    subject = f"gad.jobs.{rest}"
    # README configuration: nats.subject_prefix is prepended to every subject.
    return f"{prefix}.{subject}" if prefix else subject


def envelope(kind, payload):
    now = datetime.datetime.now(datetime.timezone.utc)
    return {
        "v": 1,
        "job_id": str(uuid.uuid4()),
        "kind": kind,
        "submitted_by": None,
        "submitted_at": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "payload": payload,
    }


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--subject-prefix", default="")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()

    nc = await nats.connect(args.url, connect_timeout=args.timeout, max_reconnect_attempts=1)
    js = nc.jetstream(timeout=args.timeout)
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            job = json.loads(line)
            body = envelope(job["kind"], job["payload"])
            subject = subject_of(job["kind"], args.subject_prefix)
            headers = {"Nats-Msg-Id": body["job_id"], "Content-Type": "application/json"}
            ack = await js.publish(subject, json.dumps(body).encode(), headers=headers)
            print(json.dumps({"job_id": body["job_id"], "subject": subject, "seq": ack.seq, "duplicate": bool(ack.duplicate)}))
    finally:
        await nc.close()


if __name__ == "__main__":
    asyncio.run(main())
