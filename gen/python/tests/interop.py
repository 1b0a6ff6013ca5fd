"""One side of the Go/Python interop tests (internal/pytest): run by the Go
test with the test server's address, it pushes or takes items on the test
store's queues and prints what it did as one JSON object.

    interop.py ADDR push QUEUE TENANT N [ids]   push N items {"i": i, "from": "py"}
    interop.py ADDR receive QUEUE TENANT N      receive N deliveries; ack each, or nack
                                                 it while its attempt < value["nack"]
    interop.py ADDR pop N                       pop N items of edge("node_5", "node_8")
    interop.py ADDR pause QUEUE TENANT          pause the queue; print its stats
    interop.py ADDR resume QUEUE TENANT         resume the queue; print its stats
    interop.py ADDR wait QUEUE TENANT N         receive N deliveries (acking each); after
                                                 the first receive that got nothing, print
                                                 one line {"waiting": stats} first
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import sys
from typing import Any, Dict, List

from pyrt import teststore
from pyrt._reliable import ReliableQueue


async def main(argv: List[str]) -> Dict[str, Any]:
    addr, mode = argv[0], argv[1]
    host, _, port = addr.rpartition(":")
    if not host.startswith("127."):
        raise SystemExit("interop.py: the address must be on loopback")
    r: Any = importlib.import_module("redis.asyncio").Redis(host=host, port=int(port))
    store = teststore.Store(r)
    try:
        if mode == "pop":
            q = store.queues.edge("node_5", "node_8")
            got: List[Any] = []
            for _ in range(200):
                if len(got) >= int(argv[2]):
                    break
                got += await q.pop_many(int(argv[2]) - len(got), 0.5)
            return {"key": q.key, "values": got}
        queues = {"jobs": store.queues.jobs, "sjobs": store.queues.sjobs}
        rq: ReliableQueue[teststore.Msg] = queues[argv[2]](argv[3])
        if mode in ("pause", "resume"):
            await (rq.pause() if mode == "pause" else rq.resume())
            return {"key": rq.key, "stats": dataclasses.asdict(await rq.stats())}
        n = int(argv[4])
        if mode == "wait":
            taken: List[Any] = []
            waiting = False
            for _ in range(10 * n + 100):
                if len(taken) >= n:
                    break
                d = await rq.receive(0.5)
                if d is None:
                    if not waiting:
                        waiting = True
                        print(json.dumps({"waiting": dataclasses.asdict(await rq.stats())}), flush=True)
                    continue
                taken.append({"value": d.value, "attempt": d.attempt, "id": d.id})
                await d.ack()
            return {"key": rq.key, "got": taken}
        if mode == "push":
            for i in range(n):
                if argv[5:] == ["ids"]:
                    await rq.push_id("id-%d" % i, {"i": i, "from": "py"})
                else:
                    await rq.push({"i": i, "from": "py"})
            return {"key": rq.key, "shard_keys": rq.shard_keys()}
        deliveries: List[Dict[str, Any]] = []
        for _ in range(10 * n + 100):
            if len(deliveries) >= n:
                break
            d = await rq.receive(0.5)
            if d is None:
                continue
            deliveries.append({"value": d.value, "attempt": d.attempt, "id": d.id})
            if d.attempt < int(d.value.get("nack", 0)):
                await d.nack()
            else:
                await d.ack()
        return {"key": rq.key, "shard_keys": rq.shard_keys(), "got": deliveries}
    finally:
        await r.close()
        await r.connection_pool.disconnect()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1:]))))
