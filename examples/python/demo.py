"""The Python side of the workflow demo, through the generated flowstore package.

A QueueWriter pushes three NodeMessages on the node_edge queue, a
QueueReader pops them and caches its NodeOutput, and a job goes through the
at-least-once jobs queue: the same keys, JSON and scripts as the Go demo
(examples/workflow), so either side can read what the other wrote.

It needs Debian's python3 (3.10 or later) with python3-redis (redis-py 4.2
or later) and a server at REDIS_URL, such as the one

    go run ./examples/workflow -serve

keeps up and prints. Then, from the repository's root:

    REDIS_URL=redis://127.0.0.1:PORT/0 /usr/bin/python3 examples/python/demo.py
"""

from __future__ import annotations

import asyncio
import datetime
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import redis.asyncio  # type: ignore[import]  # redis-py 4.3 ships no type information

from flowstore import DecodeError, JobRequest, NodeMessage, NodeOutput, Store


async def main(url: str) -> None:
    client = redis.asyncio.from_url(url)
    store = Store(client)

    edge = store.queues.node_edge("node_5", "node_8")
    for row in (1, 2, 3):
        now = datetime.datetime.now(datetime.timezone.utc)
        await edge.push(NodeMessage(run_id="run-1", source_id="node_5", port="out", data={"row": row}, sent_at=now))
        print("writer node_5 -> pushed row %d" % row)
    last = None
    for _ in range(3):
        msg = await edge.pop(5.0)
        if msg is None:
            raise SystemExit("reader: nothing came within 5s")
        print("reader node_8 <- popped row %s from %s (run %s)" % (msg.data["row"], msg.source_id, msg.run_id))
        last = msg

    cache = store.caches.node_output("node_8")
    age = datetime.datetime.now(datetime.timezone.utc) - last.sent_at if last else datetime.timedelta(0)
    await cache.set(NodeOutput(node_id="node_8", status="succeeded", data={"last_row": 3}, duration_ms=age / datetime.timedelta(milliseconds=1)))
    got = await cache.get()
    print("cache node_8 = %s" % (got.status if got else "missing"))

    jobs = store.queues.jobs()
    # An ID of this run: push_id drops a second push of one ID within the
    # queue's dedupe window (an hour), so a fixed ID would go through once.
    await jobs.push_id("python-demo-%d-%d" % (os.getpid(), time.time_ns()), JobRequest(flow_id="flow_7", inputs={"rows": 3}, priority=1))
    delivery = await jobs.receive(5.0)
    if delivery is None:
        raise SystemExit("executor: no job came within 5s")
    print("executor <- job %s, delivery %d" % (delivery.value.flow_id, delivery.attempt))
    await delivery.ack()
    await client.close()
    print("done")


if __name__ == "__main__":
    url = os.environ.get("REDIS_URL")
    if not url:
        raise SystemExit("set REDIS_URL, for example to what `go run ./examples/workflow -serve` prints")
    try:
        asyncio.run(main(url))
    except DecodeError as e:
        raise SystemExit("demo: %s" % e)
