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



async def load_scripts(direct: Any) -> None:
    """Loads the runtime's scripts on the server, so that a blackholed
    EVALSHA runs the script rather than meeting NOSCRIPT."""
    for name in ("push", "receive", "release", "ack", "nack", "reclaim"):
        await direct.script_load(_runtime._script(name)[0])


class Blackhole(FaultCase):
    """The proxy keeps every connection open and drops the server's bytes
    ("blackhole on"): a silent network. The client has no socket_timeout
    (redis-py's default), so only the caller's timeout ends a call."""

    async def test_calls_return_and_lose_nothing(self) -> None:
        loop = asyncio.get_running_loop()
        await load_scripts(self.direct)
        edge, dedge = self.store.queues.edge("a", "b"), self.dstore.queues.edge("a", "b")
        waitq, dwaitq = self.store.queues.edge("w", "x"), self.dstore.queues.edge("w", "x")
        jobs, djobs = self.store.queues.jobs("t"), self.dstore.queues.jobs("t")
        taken, dtaken = self.store.queues.jobs("r"), self.dstore.queues.jobs("r")
        acked, dacked = self.store.queues.jobs("k"), self.dstore.queues.jobs("k")
        waitj, dwaitj = self.store.queues.jobs("w"), self.dstore.queues.jobs("w")
        cache, other = self.store.caches.output("n1"), self.store.caches.output("n2")
        await dtaken.push({"i": 1})
        await dacked.push({"i": 2})
        d = await acked.receive(1)
        assert d is not None
        await self.direct.set(other.key, b'{"old":1}')
        for q in (jobs, taken, waitj):
            await q._cores[0].maybe_reclaim(force=True)  # the receives below reclaim no more
        await ctl("blackhole on")
        calls: Dict[str, Awaitable[Any]] = {
            "push": edge.push({"i": 1}),
            "reliable push": jobs.push_id("id-1", {"i": 1}),
            "blocking pop": waitq.pop(30),
            "blocking receive": waitj.receive(30),
            "receive": taken.receive(0),
            "ack": d.ack(),
            "cache set": cache.set({"v": 1}),
            "cache get": other.get(),
        }
        start = loop.time()

        async def run(name: str, aw: Awaitable[Any]) -> str:
            try:
                got = await asyncio.wait_for(aw, 0.3)
            except asyncio.TimeoutError:
                return "%s: TimeoutError after %.2fs" % (name, loop.time() - start)
            return "%s: returned %r" % (name, got)

        outs = await self.bounded(asyncio.gather(*(run(k, v) for k, v in calls.items())), 20)
        print("\n".join(outs))
        for o in outs:
            self.assertIn("TimeoutError", o)
        await ctl("blackhole off")
        # What the server applied is there once; what waited lost nothing.
        self.assertEqual(await self.direct.llen(edge.key), 1)
        self.assertEqual((await djobs.stats()).ready, 1)
        self.assertEqual(await self.direct.get(cache.key), b'{"v":1}')
        self.assertEqual(await self.direct.get(other.key), b'{"old":1}')
        st = await dtaken.stats()
        self.assertEqual((st.ready, st.in_flight), (1, 0), "the blackholed take was given back: %r" % (st,))
        got = await taken.receive(1)
        assert got is not None
        self.assertEqual(got.attempt, 1, "given back uncounted")
        st = await dacked.stats()
        self.assertEqual((st.ready, st.in_flight), (0, 0), "the ack was applied: %r" % (st,))
        await dwaitq.push({"w": 1})
        self.assertEqual(await self.bounded(waitq.pop(5)), {"w": 1})
        await dwaitj.push({"w": 2})
        dw = await self.bounded(waitj.receive(5))
        assert dw is not None
        self.assertEqual((dw.value, dw.attempt), ({"w": 2}, 1))
        st = await dwaitj.stats()
        self.assertEqual((st.ready, st.in_flight), (0, 1), st)


class ServerRestart(FaultCase):
    """SIGKILL of the server and a restart on the same port (appendonly,
    appendfsync always) under Python producers and consumers of one
    at-least-once queue."""

    async def test_nothing_lost(self) -> None:
        loop = asyncio.get_running_loop()
        r = _redis(DIRECT)  # the clients under test: one for the whole run
        decl = _runtime.QueueDecl(
            name="restart", prefix=teststore.PREFIX, key=_runtime.KeyPattern("restart:{t}"),
            reliable=True, lease=1.0, max_deliveries=100,
        )
        from pyrt._reliable import ReliableQueue

        q = ReliableQueue(r, decl, teststore.MSG, "t")
        items, producers, consumers = 1000, 2, 4
        pushed: Set[str] = set()
        handled: Dict[str, int] = {}
        errors = {"push": 0, "receive": 0, "ack": 0}
        deadline = loop.time() + 30
        done_pushing = asyncio.Event()

        async def produce(p: int) -> None:
            for i in range(p, items, producers):
                id = "item-%d" % i
                for attempt in range(600):
                    try:
                        await q.push_id(id, {"i": i})
                        pushed.add(id)
                        break
                    except StoragegenError:
                        errors["push"] += 1
                        await asyncio.sleep(0.05)
                await asyncio.sleep(0.001)

        async def consume() -> None:
            while loop.time() < deadline:
                if done_pushing.is_set() and pushed <= handled.keys():
                    return
                try:
                    d = await q.receive(0.2)
                except StoragegenError:
                    errors["receive"] += 1
                    await asyncio.sleep(0.05)
                    continue
                if d is None:
                    continue
                handled[d.id] = handled.get(d.id, 0) + 1
                try:
                    await d.ack()
                except StoragegenError:
                    errors["ack"] += 1  # delivered again after the lease
                    await asyncio.sleep(0.05)

        async def crash() -> None:
            for _ in range(3000):
                if len(pushed) >= items // 3:
                    break
                await asyncio.sleep(0.01)
            await ctl("kill")
            await asyncio.sleep(0.5)
            await ctl("restart")

        cs = [asyncio.ensure_future(consume()) for _ in range(consumers)]
        await self.bounded(asyncio.gather(crash(), *(produce(p) for p in range(producers))), 40)
        done_pushing.set()
        await self.bounded(asyncio.gather(*cs), 40)
        lost = sorted(pushed - handled.keys())
        dups = sum(n - 1 for n in handled.values())
        st = await q.stats()
        print(
            "FIGURES items=%d pushed=%d handled=%d lost=%d duplicated=%d push_errors=%d receive_errors=%d "
            "ack_errors=%d after: %r" % (items, len(pushed), len(handled), len(lost), dups, errors["push"],
                                         errors["receive"], errors["ack"], st)
        )
        self.assertEqual(len(pushed), items, "every push succeeded in the end")
        self.assertEqual(lost, [], "pushed and never handled")
        self.assertGreater(errors["push"] + errors["receive"], 0, "the restart was not noticed: it was not tested")
        self.assertEqual((st.ready, st.in_flight, st.delayed, st.dead), (0, 0, 0, 0))
        await r.close()
        await r.connection_pool.disconnect()


class NoClientCommand(FaultCase):
    """An ACL user of the README's least-privilege line without CLIENT ID
    and CLIENT UNBLOCK (STORAGEGEN_TEST_USER, STORAGEGEN_TEST_PASSWORD):
    blocking waits run in 50 ms slices."""

    def client_kwargs(self) -> Dict[str, Any]:
        return {}

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        await self.r.close()
        self.password = os.environ["STORAGEGEN_TEST_PASSWORD"]
        self.r = _redis(ADDR, username=os.environ["STORAGEGEN_TEST_USER"], password=self.password)
        self.store = teststore.Store(self.r)

    async def test_blocking_waits_and_cancels(self) -> None:
        q, dq = self.store.queues.edge("a", "b"), self.dstore.queues.edge("a", "b")
        j, dj = self.store.queues.jobs("t"), self.dstore.queues.jobs("t")
        self.assertIsNone(await self.bounded(q.pop(0.2)))
        self.assertEqual(_runtime._state_of(self.r.connection_pool).unblock, 2, "CLIENT UNBLOCK taken as usable")
        later = asyncio.get_running_loop().call_later(0.15, lambda: asyncio.ensure_future(dq.push({"i": -1})))
        self.assertEqual(await self.bounded(q.pop(5)), {"i": -1})
        later.cancel()
        self.assertIsNone(await self.bounded(j.receive(0.2)))
        # Cancels at random moments while items arrive: each item once.
        n = 150
        rng = random.Random(10)

        async def produce() -> None:
            for i in range(n):
                await dq.push({"i": i})
                await dj.push({"i": i})
                await asyncio.sleep(rng.uniform(0, 0.025))

        got_q: List[int] = []
        got_j: List[int] = []
        cancels = 0

        async def take() -> None:
            nonlocal cancels
            for _ in range(20 * n):
                if len(got_q) >= n and len(got_j) >= n:
                    return
                try:
                    v = await asyncio.wait_for(q.pop(1), rng.uniform(0.001, 0.04))
                    if v is not None:
                        got_q.append(v["i"])
                except asyncio.TimeoutError:
                    cancels += 1
                try:
                    d = await asyncio.wait_for(j.receive(1), rng.uniform(0.001, 0.04))
                    if d is not None:
                        self.assertEqual(d.attempt, 1, "a cancelled receive counted a delivery")
                        got_j.append(d.value["i"])
                        await d.ack()
                except asyncio.TimeoutError:
                    cancels += 1

        await self.bounded(asyncio.gather(produce(), take()), 30)
        print("no CLIENT: %d pops, %d receives, %d cancels" % (len(got_q), len(got_j), cancels))
        self.assertGreater(cancels, 10)
        self.assertEqual(sorted(got_q), list(range(n)), "each item popped once")
        self.assertEqual(sorted(got_j), list(range(n)), "each item received once")
        self.assertEqual(await self.direct.llen(q.key), 0)
        # A refused key: PermissionDenied, without the password.
        nope = _runtime.Cache(self.r, _runtime.CacheDecl(name="nope", prefix="nope:", key=_runtime.KeyPattern("{k}"), ttl=1.0),
                              teststore.MSG, "x")
        with self.assertRaises(StoragegenError) as cm:
            await nope.set({"s": SECRET})
        self.check_error(cm.exception, "set", nope.key, self.password)


class PoolExhausted(FaultCase):
    """Clients whose pool has one connection (redis-py's max_connections),
    under blocking waits: a blocked wait holds it, ending the wait (a
    cancel, the timeout) needs none of the pool's, and other calls fail
    (ConnectionPool) or wait for it (BlockingConnectionPool): no deadlock."""

    async def pool(self, kind: str, **kwargs: Any) -> Any:
        redis_asyncio = importlib.import_module("redis.asyncio")
        host, _, port = ADDR.rpartition(":")
        pool = getattr(redis_asyncio, kind)(host=host, port=int(port), max_connections=1, **kwargs)
        r = redis_asyncio.Redis(connection_pool=pool)
        self.addAsyncCleanup(pool.disconnect)
        self.addAsyncCleanup(r.close)
        return r

    async def test_connection_pool(self) -> None:
        loop = asyncio.get_running_loop()
        store = teststore.Store(await self.pool("ConnectionPool"))
        q, dq = store.queues.edge("p", "1"), self.dstore.queues.edge("p", "1")
        self.assertIsNone(await self.bounded(q.pop(0.2)), "a blocking pop on the pool's only connection")
        j = store.queues.jobs("t")
        self.assertIsNone(await self.bounded(j.receive(0.2)))
        pop = asyncio.ensure_future(q.pop(30))
        await self.wait_blocked("brpop")
        # Every other call finds no connection: an error, nothing sent.
        for call, op in ((q.push({"i": 1}), "push"), (q.pop(5), "pop"), (j.receive(5), "receive")):
            with self.assertRaises(StoragegenError) as cm:
                await self.bounded(call)
            self.assertNotIsInstance(cm.exception, UnknownOutcome)
            self.check_error(cm.exception, op, q.key if op != "receive" else j.key)
            self.assertIn("Too many connections", str(cm.exception))
        self.assertEqual(await self.direct.llen(q.key), 0)
        # A cancel ends the wait at once (CLIENT UNBLOCK on a connection of
        # its own), not after the pop's 30 s.
        t0 = loop.time()
        pop.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await self.bounded(pop, 10)
        print("ConnectionPool(max_connections=1): a cancelled blocked pop returned after %.3fs" % (loop.time() - t0))
        await dq.push({"i": 2})
        self.assertEqual(await self.bounded(q.pop(1)), {"i": 2})

    async def test_blocking_connection_pool(self) -> None:
        store = teststore.Store(await self.pool("BlockingConnectionPool", timeout=5))
        q, dq = store.queues.edge("p", "2"), self.dstore.queues.edge("p", "2")
        pop = asyncio.ensure_future(q.pop(30))
        await self.wait_blocked("brpop")
        # A push waits for the pool's only connection; the pop's cancel gives it back.
        push = asyncio.ensure_future(q.push({"i": 1}))
        await asyncio.sleep(0.1)
        self.assertFalse(push.done())
        pop.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await self.bounded(pop, 10)
        await self.bounded(push, 10)
        self.assertEqual(await self.bounded(q.pop(1)), {"i": 1})
        self.assertEqual(await self.direct.llen(q.key), 0)
        await dq.push({"i": 3})
        self.assertEqual(await self.bounded(q.pop(1)), {"i": 3})


if __name__ == "__main__":
    unittest.main()
