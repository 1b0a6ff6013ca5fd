"""Fault tests of the Python runtime against real processes.

The Go tests in internal/pyclient/fault_test.go assemble the package as
``pyrt`` beside this file, start a redis-server on a free loopback port and
a TCP proxy in front of it (redistest.Proxy), and run one class of these
tests with:

- STORAGEGEN_TEST_REDIS: the proxy's address, which the clients under test use;
- STORAGEGEN_DIRECT_REDIS: the server's own address, for checking what it holds;
- STORAGEGEN_FAULT_CTL: a control port of the Go test, which takes one
  command a line ("drop": drop the next reply the server sends and close
  its connection; "dropped": how many were dropped; "cut": close every
  connection; "blackhole on" / "blackhole off"; "kill": SIGKILL the server;
  "restart": start it again on the same port) and answers "ok" or "err ...".

Every loop is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import random
import unittest
from typing import Any, Awaitable, Dict, List, Optional, Set, TypeVar

from pyrt import _runtime, teststore
from pyrt._errors import StoragegenError, UnknownOutcome, go_quote

Msg = Dict[str, Any]
R = TypeVar("R")

ADDR = os.environ.get("STORAGEGEN_TEST_REDIS", "")
DIRECT = os.environ.get("STORAGEGEN_DIRECT_REDIS", "")
CTL = os.environ.get("STORAGEGEN_FAULT_CTL", "")
for _a in (ADDR, DIRECT, CTL):
    if _a and not _a.startswith("127."):
        raise SystemExit("fault tests run on loopback addresses only, got " + _a)

# A payload marker that must never appear in an error.
SECRET = "payload-secret-7f3a"


def _redis(addr: str, **kwargs: Any) -> Any:
    host, _, port = addr.rpartition(":")
    return importlib.import_module("redis.asyncio").Redis(host=host, port=int(port), **kwargs)


async def ctl(cmd: str) -> str:
    """Runs one command on the Go test's control port."""
    host, _, port = CTL.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(cmd.encode() + b"\n")
        await writer.drain()
        answer = (await asyncio.wait_for(reader.readline(), 20)).decode().strip()
    finally:
        writer.close()
        await writer.wait_closed()
    if not answer.startswith("ok"):
        raise AssertionError("control %r: %s" % (cmd, answer))
    return answer[2:].strip()


@unittest.skipUnless(ADDR and DIRECT and CTL, "run by the Go tests in internal/pyclient (fault_test.go)")
class FaultCase(unittest.IsolatedAsyncioTestCase):
    """A client through the proxy (r, store) and one straight to the server
    (direct, dstore)."""

    r: Any
    direct: Any
    store: teststore.Store
    dstore: teststore.Store

    def client_kwargs(self) -> Dict[str, Any]:
        return {}

    async def asyncSetUp(self) -> None:
        await ctl("blackhole off")
        self.direct = _redis(DIRECT, **self.client_kwargs())
        await self.direct.flushdb()
        self.r = _redis(ADDR, **self.client_kwargs())
        self.store = teststore.Store(self.r)
        self.dstore = teststore.Store(self.direct)

    async def asyncTearDown(self) -> None:
        await ctl("blackhole off")
        for c in (self.r, self.direct):
            await c.close()
            await c.connection_pool.disconnect()

    async def bounded(self, aw: Awaitable[R], seconds: float = 20) -> R:
        """aw, failing the test if it has not returned in seconds (a hang,
        not a measurement)."""
        try:
            return await asyncio.wait_for(aw, seconds)
        except asyncio.TimeoutError:
            self.fail("did not return within %gs" % seconds)

    def check_error(self, e: BaseException, op: str, key: str, *secrets: str) -> None:
        """e is a StoragegenError of op on key, and neither it nor its
        causes hold the payload or the secrets."""
        self.assertIsInstance(e, StoragegenError)
        assert isinstance(e, StoragegenError)
        self.assertEqual(e.op, op, str(e))
        self.assertEqual(e.key, key, str(e))
        self.assertTrue(str(e).startswith("storagegen: %s %s: " % (op, go_quote(key))), str(e))
        cur: Optional[BaseException] = e
        for _ in range(10):
            if cur is None:
                break
            for s in (SECRET,) + secrets:
                self.assertNotIn(s, str(cur))
                self.assertNotIn(s, repr(cur))
            cur = cur.__cause__ or cur.__context__

    async def wait_blocked(self, cmd: str, n: int = 1) -> None:
        """Waits until n clients of the server are blocked in cmd."""
        for _ in range(400):
            info = await self.direct.execute_command("CLIENT", "LIST")
            text = info.decode() if isinstance(info, bytes) else str(info)
            if text.count("cmd=" + cmd) >= n:
                return
            await asyncio.sleep(0.005)
        self.fail("no client blocked in %s" % cmd)

    async def dropped(self) -> int:
        return int(await ctl("dropped"))


class RepliesLost(FaultCase):
    """The proxy drops one reply and closes its connection ("drop"), or
    closes every connection ("cut")."""

    async def test_push(self) -> None:
        q = self.store.queues.edge("a", "b")
        before = await self.dropped()
        await ctl("drop")
        with self.assertRaises(UnknownOutcome) as cm:
            await self.bounded(q.push({"secret": SECRET}))
        self.check_error(cm.exception, "push", q.key)
        self.assertEqual(await self.dropped(), before + 1)
        self.assertEqual(await self.direct.llen(q.key), 1, "stored once, not sent again")
        # push_many: all of the items or none, once.
        await ctl("drop")
        with self.assertRaises(UnknownOutcome) as cm:
            await self.bounded(q.push_many([{"i": i, "s": SECRET} for i in range(3)]))
        self.check_error(cm.exception, "push", q.key)
        self.assertEqual(await self.direct.llen(q.key), 4)
        # The same client goes on.
        await q.push({"i": 9})
        got = await q.pop_many(10)
        self.assertEqual([m.get("i") for m in got], [None, 0, 1, 2, 9])

    async def test_reliable_push(self) -> None:
        q = self.store.queues.jobs("t")
        before = await self.dropped()
        await ctl("drop")
        await self.bounded(q.push({"secret": SECRET}))  # sent again: the marker dedupes it
        await ctl("drop")
        await self.bounded(q.push_many([{"i": i} for i in range(3)]))
        await ctl("drop")
        await self.bounded(q.push_id("id-1", {"i": 7}))
        self.assertEqual(await self.dropped(), before + 3)
        st = await q.stats()
        self.assertEqual(st.ready, 5, "each push stored once: %r" % (st,))
        seen = []
        for _ in range(5):
            d = await q.receive(1)
            assert d is not None
            self.assertEqual(d.attempt, 1)
            seen.append(d.value.get("i"))
            await d.ack()
        self.assertEqual(seen, [None, 0, 1, 2, 7])

    async def test_pop(self) -> None:
        q = self.store.queues.edge("a", "b")
        dq = self.dstore.queues.edge("a", "b")
        await dq.push_many([{"i": 0}, {"i": 1}])
        await ctl("drop")
        with self.assertRaises(UnknownOutcome) as cm:
            await self.bounded(q.pop())
        self.check_error(cm.exception, "pop", q.key)
        self.assertIn("are lost", str(cm.exception))
        # At-most-once: the item the RPOP took is gone with its reply (the
        # README says so); the other one is still there, once.
        self.assertEqual(await self.direct.llen(q.key), 1)
        self.assertEqual(await q.pop(), {"i": 1})

    async def test_blocking_pop(self) -> None:
        q = self.store.queues.edge("a", "b")
        dq = self.dstore.queues.edge("a", "b")
        # A lost BRPOP reply: the item is gone (at-most-once), the error says so.
        task = asyncio.ensure_future(q.pop(10))
        await self.wait_blocked("brpop")
        await ctl("drop")
        await dq.push({"i": 0, "s": SECRET})
        with self.assertRaises(UnknownOutcome) as cm:
            await self.bounded(task)
        self.check_error(cm.exception, "pop", q.key)
        self.assertIn("are lost", str(cm.exception))
        # Every connection cut under a blocked pop: nothing was taken.
        task = asyncio.ensure_future(q.pop(10))
        await self.wait_blocked("brpop")
        await ctl("cut")
        with self.assertRaises(StoragegenError) as cm2:
            await self.bounded(task)
        self.check_error(cm2.exception, "pop", q.key)
        await dq.push({"i": 1})
        self.assertEqual(await self.bounded(q.pop(5)), {"i": 1})

    async def test_receive(self) -> None:
        q = self.store.queues.jobs("t")
        dq = self.dstore.queues.jobs("t")
        # A reclaim (the first thing a receive does, about once a second)
        # whose reply is lost: the receive's error, nothing taken.
        await dq.push({"i": 0, "s": SECRET})
        await ctl("drop")
        with self.assertRaises(StoragegenError) as cm:
            await self.bounded(q.receive())
        self.assertNotIsInstance(cm.exception, UnknownOutcome)
        self.check_error(cm.exception, "receive", q.key)
        self.assertIn("reclaim", str(cm.exception))
        # A take whose reply is lost is undone by its receipt, uncounted
        # (the reclaim above ran just now: the take's is the next reply).
        await q._cores[0].reclaim_once()
        await ctl("drop")
        with self.assertRaises(StoragegenError) as cm:
            await self.bounded(q.receive())
        self.check_error(cm.exception, "receive", q.key)
        st = await dq.stats()
        self.assertEqual((st.ready, st.in_flight), (1, 0), st)
        d = await self.bounded(q.receive(1))
        assert d is not None
        self.assertEqual((d.value, d.attempt), ({"i": 0, "s": SECRET}, 1))
        await d.ack()

    async def test_blocking_receive(self) -> None:
        q = self.store.queues.short("t")
        dq = self.dstore.queues.short("t")
        # A lost BLMOVE reply leaves the ID in processing without a lease;
        # a reclaim leases it and it comes back after the lease.
        task = asyncio.ensure_future(q.receive(10))
        await self.wait_blocked("blmove")
        await ctl("drop")
        await dq.push({"i": 0})
        with self.assertRaises(StoragegenError) as cm:
            await self.bounded(task)
        self.check_error(cm.exception, "receive", q.key)
        d = await self.bounded(q.receive(5))
        assert d is not None
        self.assertEqual(d.value, {"i": 0})
        await d.ack()
        # Every connection cut under a blocked receive.
        task = asyncio.ensure_future(q.receive(10))
        await self.wait_blocked("blmove")
        await ctl("cut")
        with self.assertRaises(StoragegenError) as cm:
            await self.bounded(task)
        self.check_error(cm.exception, "receive", q.key)
        await dq.push({"i": 1})
        d = await self.bounded(q.receive(5))
        assert d is not None
        self.assertEqual((d.value, d.attempt), ({"i": 1}, 1))
        await d.ack()
        st = await dq.stats()
        self.assertEqual((st.ready, st.in_flight, st.dead), (0, 0, 0), st)

    async def test_ack(self) -> None:
        q = self.store.queues.jobs("t")
        dq = self.dstore.queues.jobs("t")
        await dq.push({"i": 0})
        d = await q.receive(1)
        assert d is not None
        await ctl("drop")
        await self.bounded(d.ack())  # sent again: an ack of an item that is gone succeeds
        st = await dq.stats()
        self.assertEqual((st.ready, st.in_flight, st.dead), (0, 0, 0), st)
        self.assertEqual(await self.direct.keys("pyt:queue:{jobs:t}:rx:*"), [], "the receipt is deleted")

    async def test_nack(self) -> None:
        q = self.store.queues.jobs("t")
        dq = self.dstore.queues.jobs("t")
        await dq.push_many([{"i": 0}, {"i": 1}])
        d = await q.receive(1)
        assert d is not None
        await d.nack(3600)  # loads the nack script: the next reply dropped is the nack's own
        d = await q.receive(1)
        assert d is not None
        await ctl("drop")
        with self.assertRaises(UnknownOutcome) as cm:
            await self.bounded(d.nack())
        self.check_error(cm.exception, "nack", q.key)
        st = await dq.stats()
        self.assertEqual((st.ready, st.in_flight, st.delayed), (1, 0, 1), "the nack was applied once: %r" % (st,))
        d2 = await q.receive(1)
        assert d2 is not None
        self.assertEqual((d2.id, d2.attempt), (d.id, 2))
        await d2.ack()

    async def test_cache(self) -> None:
        c = self.store.caches.output("n1")
        await ctl("drop")
        with self.assertRaises(UnknownOutcome) as cm:
            await self.bounded(c.set({"s": SECRET}))
        self.check_error(cm.exception, "set", c.key)
        self.assertEqual(await c.get(), {"s": SECRET}, "stored once")
        await ctl("drop")
        with self.assertRaises(StoragegenError) as cm2:
            await self.bounded(c.get())
        self.assertNotIsInstance(cm2.exception, UnknownOutcome)
        self.check_error(cm2.exception, "get", c.key)
        await ctl("cut")
        self.assertEqual(await c.get(), {"s": SECRET})


if __name__ == "__main__":
    unittest.main()
