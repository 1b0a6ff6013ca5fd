# Typical use of the generated package, which mypy --strict must accept.
from __future__ import annotations

import datetime

import flowstore
from flowstore import NodeMessage, NodeOutput, Store


async def produce(client: object) -> None:
    store = Store(client)
    edge = store.queues.node_edge("node_5", "node_8")
    await edge.push(NodeMessage(run_id="r", source_id="node_5", port="out", data={"n": 1},
                                sent_at=datetime.datetime.now(datetime.timezone.utc)))
    msg = await edge.pop(1.0)
    if msg is not None:
        print(msg.run_id.upper(), msg.sent_at.isoformat())
    out = store.caches.attempt_log("run-1", 2)
    await out.set(NodeOutput(node_id="n", status="failed", data={}, error="boom", duration_ms=1.5))
    got = await out.get()
    if got is not None and got.error is not None:
        print(got.error.upper())
    job = store.queues.jobs()
    await job.push(flowstore.JobRequest(flow_id="f", inputs={}, priority=1))
    raw: bytes = NodeOutput.from_json(b"{}").to_json()
    print(raw)
