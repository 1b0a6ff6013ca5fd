"""Tests of the Python runtime against a real redis-server.

The Go test internal/pytest assembles the package (the runtime's .py files,
runtime/lua/*.lua, teststore.py) as ``pyrt`` beside this file, starts a
redis-server on a free loopback port, and runs ``python3 -m unittest`` with
STORAGEGEN_TEST_REDIS=127.0.0.1:<port> and STORAGEGEN_KEY_CORPUS naming the
golden corpus of keys that Go's internal/keyspace builds
(internal/pyclient/testdata/keys.json).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import random
import unittest
from datetime import timedelta
from typing import Any, Dict, List, Set, Tuple, Union

from pyrt import _errors, _reliable, _runtime, teststore
from pyrt._errors import DecodeError, InvalidArgument, LeaseLost, PayloadTooLarge, StoragegenError
from pyrt._runtime import KeyPattern, Queue

Msg = Dict[str, Any]

ADDR = os.environ.get("STORAGEGEN_TEST_REDIS", "")
if ADDR and not ADDR.startswith("127.") and not ADDR.startswith("localhost:"):
    raise SystemExit("STORAGEGEN_TEST_REDIS must be a loopback address, got " + ADDR)


def _redis(**kwargs: Any) -> Any:
    """A redis.asyncio.Redis for the test server (redis-py is looked up at
    run time, as the runtime does: it may be untyped)."""
    host, _, port = ADDR.rpartition(":")
    return importlib.import_module("redis.asyncio").Redis(host=host, port=int(port), **kwargs)


@unittest.skipUnless(ADDR, "STORAGEGEN_TEST_REDIS is not set (the Go test internal/pytest runs these)")
class RedisCase(unittest.IsolatedAsyncioTestCase):
    r: Any
    store: teststore.Store

    async def asyncSetUp(self) -> None:
        self.r = _redis()
        await self.r.flushdb()
        self.store = teststore.Store(self.r)

    async def asyncTearDown(self) -> None:
        await self.r.close()
        await self.r.connection_pool.disconnect()

    async def raw(self, *args: Any) -> Any:
        return await self.r.execute_command(*args)


class KeyTests(unittest.TestCase):
    def test_corpus_from_go(self) -> None:
        path = os.environ.get("STORAGEGEN_KEY_CORPUS", "")
        if not path:
            self.skipTest("STORAGEGEN_KEY_CORPUS is not set")
        with open(path, encoding="utf-8") as f:
            corpus = json.load(f)
        cases = plains = 0
        for p in corpus["patterns"]:
            kp = KeyPattern(p["pattern"])
            for c in p["cases"]:
                args = c["args"]
                name = kp.expand(*args)
                self.assertEqual(name, c["expand"], (p["pattern"], args))
                self.assertEqual(_runtime.queue_key(corpus["prefix"], name), c["queue_key"])
                self.assertEqual(_runtime.cache_key(corpus["prefix"], name), c["cache_key"])
                self.assertEqual(_runtime.dead_key(c["queue_key"]), c["dead_key"])
                self.assertEqual(_runtime.shard_keys(corpus["prefix"], name, len(c["shard_keys"])), c["shard_keys"])
                self.assertEqual(_runtime.marker_key(c["queue_key"], args[0] if args and isinstance(args[0], str) else "x{}%"), c["marker"])
                self.assertEqual(_runtime.receipt_key(c["queue_key"], c["token"]), c["receipt"])
                self.assertEqual(_runtime.paused_key(c["queue_key"]), c["paused"])
                self.assertEqual(_runtime.meta_key(c["queue_key"]), c["meta"])
                if "reliable_keys" in c:
                    self.assertEqual(_runtime.reliable_keys(c["queue_key"]), c["reliable_keys"])
                if "plain" in c:
                    pl = c["plain"]
                    plain = kp.expand_plain(*args)
                    self.assertEqual(plain, pl["expand"], (p["pattern"], args))
                    self.assertEqual(_runtime.plain_queue_key(corpus["prefix"], plain), pl["queue_key"])
                    self.assertEqual(_runtime.dead_key(pl["queue_key"]), pl["dead_key"])
                    self.assertEqual(_runtime.cache_key(corpus["prefix"], plain), pl["cache_key"])
                    plains += 1
                else:
                    self.assertEqual(c["plain_error"], "InvalidArgument")
                    with self.assertRaises(InvalidArgument, msg=(p["pattern"], args)):
                        kp.expand_plain(*args)
                cases += 1
        self.assertGreater(cases, 300)
        self.assertGreater(plains, 100)
        for r in corpus["refused"]:
            self.assertEqual(r["error"], "InvalidArgument")
            kp = KeyPattern(r["pattern"])
            with self.assertRaises(InvalidArgument, msg=r):
                (kp.expand_plain if r["layout"] == "plain" else kp.expand)(*r["args"])
        for bad in corpus["invalid"]:
            with self.assertRaises(InvalidArgument, msg=bad):
                KeyPattern(bad)
        for s in corpus["shard_of"]:
            self.assertEqual(_runtime.shard_of(s["id"], s["n"]), s["shard"], s)

    def test_readme_examples(self) -> None:
        p = KeyPattern("queue_{source_id}_{target_id}")
        self.assertEqual(_runtime.queue_key("flow:", p.expand("node_5", "node_8")), "flow:queue:{queue_node%5F5_node%5F8}")
        self.assertEqual(p.expand("a_b", "c"), "queue_a%5Fb_c")
        self.assertEqual(p.expand("a", "b_c"), "queue_a_b%5Fc")
        self.assertEqual(KeyPattern("{node_id}_output").expand("node_1"), "node%5F1_output")
        self.assertEqual(KeyPattern("attempt:{run_id}:{attempt:int}").expand("run-1", 3), "attempt:run-1:3")
        self.assertEqual(KeyPattern("k:{a}").expand("{x}*"), "k:%7Bx%7D%2A")

    def test_plain(self) -> None:
        p = KeyPattern("queue_{source_id}_{target_id}")
        self.assertEqual(p.expand_plain("node_5", "node_8"), "queue_node_5_node_8")
        self.assertEqual(p.expand_plain("a_b", "c"), p.expand_plain("a", "b_c"))  # the Python system's own ambiguity
        self.assertEqual(KeyPattern("n:{a}:{i:int}").expand_plain("%{x}*?[]\\ é", -7), "n:%{x}*?[]\\ é:-7")
        for bad in ["", "a\x00", "a\x1fb", "\x7f", "\ud800"]:
            with self.assertRaises(InvalidArgument, msg=repr(bad)):
                p.expand_plain(bad, "x")
        with self.assertRaises(InvalidArgument):
            p.expand_plain("a")
        with self.assertRaises(InvalidArgument):
            KeyPattern("n:{i:int}").expand_plain("1")
        with self.assertRaises(InvalidArgument):
            KeyPattern("n:{i:int}").expand_plain(True)

    def test_bad_values(self) -> None:
        p = KeyPattern("a:{s}:{i:int}")
        cases: List[Tuple[Union[str, int], ...]] = [("", 1), ("x",), ("x", "1"), (1, 1), ("x", 1 << 63), ("\udcff", 1)]
        for args in cases:
            with self.assertRaises(InvalidArgument, msg=repr(args)):
                p.expand(*args)
        self.assertEqual(p.expand("x", -(1 << 63)), "a:x:-9223372036854775808")

    def test_errors_have_no_payload(self) -> None:
        e = _errors.DecodeError("decode Msg: syntax error", "pop", 'k"\x00{é}')
        self.assertEqual(str(e), 'storagegen: pop "k\\"\\x00{é}": decode Msg: syntax error')
        self.assertEqual(str(_errors.StoragegenError("x")), "storagegen: x")
        self.assertTrue(issubclass(InvalidArgument, ValueError))

    def test_script_sources(self) -> None:
        shebang, no_flags = _runtime._script("receive")
        self.assertTrue(shebang.startswith(b"#!lua flags=allow-oom\n-- The prelude"))
        self.assertTrue(no_flags.startswith(b"-- The prelude"))
        self.assertEqual(shebang.split(b"\n", 1)[1], no_flags)

    def test_timeout_arg(self) -> None:
        self.assertEqual(_runtime._timeout_arg(0.2), "0.2")
        self.assertEqual(_runtime._timeout_arg(1.0), "1")
        self.assertEqual(_runtime._timeout_arg(0.0001), "0.001")
        self.assertEqual(_runtime._timeout_arg(2.05), "2.05")

    def test_durations_beyond_go_are_refused(self) -> None:
        # Go's time.Duration ends at 2**63-1 ns (about 292 years); beyond it
        # a duration is InvalidArgument, never an OverflowError from float
        # arithmetic or a command the server refuses.
        self.assertEqual(_runtime._to_ns(9223372036, "t"), 9223372036 * 10**9)
        self.assertEqual(_runtime._to_ns(timedelta(days=1), "t"), 86400 * 10**9)
        huge: List[Union[float, int, timedelta]] = [1e300, 1e10, -1e300, 10**400, -(10**30), timedelta.max, timedelta.min]
        for bad in huge:
            with self.assertRaises(InvalidArgument, msg=repr(bad)):
                _runtime._to_ns(bad, "timeout")

    def test_decls(self) -> None:
        k = KeyPattern("a:{b}")
        for kw in [
            dict(layout="plain", reliable=True),
            dict(layout="plain", shards=2),
            dict(layout="other"),
            dict(shards=1025),
            dict(reliable=True, lease=0.0005),
            dict(reliable=True, max_deliveries=-1),
        ]:
            with self.assertRaises(InvalidArgument, msg=repr(kw)):
                _runtime.QueueDecl("q", "p:", k, **kw)  # type: ignore[arg-type]
        with self.assertRaises(InvalidArgument):
            _runtime.QueueDecl("q", "p {", k)


class QueueTests(RedisCase):
    async def test_pop_timeouts_beyond_go_are_refused(self) -> None:
        q = self.store.queues.edge("t", "huge")
        huge: List[Union[float, int, timedelta]] = [1e300, 10**400, timedelta.max]
        for bad in huge:
            with self.assertRaises(InvalidArgument, msg=repr(bad)):
                await q.pop(bad)

    async def test_fifo(self) -> None:
        q = self.store.queues.edge("node_5", "node_8")
        self.assertEqual(q.key, "pyt:queue:{queue_node%5F5_node%5F8}")
        await q.push({"n": 1})
        await q.push_many([{"n": 2}, {"n": 3}, {"n": 4}])
        self.assertEqual(await q.len(), 4)
        self.assertEqual(await q.pop(1), {"n": 1})
        self.assertEqual(await q.pop_many(2), [{"n": 2}, {"n": 3}])
        self.assertEqual(await q.pop_many(10, timedelta(seconds=1)), [{"n": 4}])
        self.assertIsNone(await q.pop(0))
        self.assertIsNone(await q.pop(0.05))
        with self.assertRaises(InvalidArgument):
            await q.pop(-1)
        with self.assertRaises(InvalidArgument):
            await q.pop_many(0)

    async def test_blocking_pop_gets_a_later_push(self) -> None:
        q = self.store.queues.edge("a", "b")
        waiter = asyncio.ensure_future(q.pop(5))
        await asyncio.sleep(0.1)
        await q.push({"late": True})
        self.assertEqual(await waiter, {"late": True})

    async def test_plain_layout(self) -> None:
        q = self.store.queues.plain_edge("node_5", "node_8")
        self.assertEqual(q.key, "pyt:queue:plain_node_5_node_8")
        # The Python storage system's QueueStore: LPUSH of JSON.
        await self.raw("LPUSH", q.key, json.dumps({"from": "python"}))
        self.assertEqual(await q.pop(1), {"from": "python"})
        await q.push({"n": 1})
        self.assertEqual(json.loads(await self.raw("RPOP", q.key)), {"n": 1})

    async def test_dead_letters(self) -> None:
        q = self.store.queues.edge("d", "l")
        await q.push({"ok": 1})
        await self.raw("LPUSH", q.key, b'{"secret":1,"secret":2}', b"\xff-secret")
        await q.push({"ok": 2})
        self.assertEqual(await q.pop(1), {"ok": 1})
        with self.assertRaises(DecodeError) as cm:
            await q.pop_many(10, 1)
        e = cm.exception
        self.assertEqual(e.taken, [{"ok": 2}])
        self.assertIn(q.key, str(e))
        self.assertIn("moved to " + _errors.go_quote(q.dead_key), str(e))
        self.assertNotIn("secret", str(e))
        self.assertEqual(await self.raw("LRANGE", q.dead_key, 0, -1), [b"\xff-secret", b'{"secret":1,"secret":2}'])
        await self.raw("LPUSH", q.key, b"[1]")
        with self.assertRaises(DecodeError):
            await q.pop(0)
        self.assertEqual(await self.raw("LLEN", q.dead_key), 3)
        self.assertEqual(await q.len(), 0)

    async def test_payload_limit(self) -> None:
        q = self.store.queues.edge("big", "x")
        with self.assertRaises(PayloadTooLarge):
            await q.push({"s": "x" * (_runtime.MAX_PAYLOAD_BYTES)})
        self.assertEqual(await q.len(), 0)

    async def test_cancelled_pop_keeps_the_queue(self) -> None:
        q = self.store.queues.edge("c", "p")
        waiter = asyncio.ensure_future(q.pop(10))
        await asyncio.sleep(0.1)
        waiter.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await waiter
        await q.push({"n": 1})
        self.assertEqual(await q.len(), 1)
        self.assertEqual(await q.pop(1), {"n": 1})
        # The client works as before: no reply was left on a connection.
        self.assertEqual(await self.r.ping(), True)

    async def test_cancels_never_lose_items(self) -> None:
        q = self.store.queues.edge("many", "cancels")
        rng = random.Random(7)
        total = 400
        got: List[int] = []

        async def producer() -> None:
            for i in range(total):
                await q.push({"i": i})
                if i % 10 == 0:
                    await asyncio.sleep(0.002)

        async def consumer() -> None:
            for _ in range(5000):
                if len(got) >= total:
                    return
                t = asyncio.ensure_future(q.pop_many(rng.choice([1, 3]), rng.choice([0.001, 0.02, 0.5])))
                await asyncio.sleep(rng.choice([0, 0.001, 0.003]))
                if rng.random() < 0.5:
                    t.cancel()
                try:
                    got.extend(m["i"] for m in await t)
                except asyncio.CancelledError:
                    pass

        await asyncio.wait_for(asyncio.gather(producer(), consumer(), consumer(), consumer()), 60)
        if await q.len():
            got.extend(m["i"] for m in await q.pop_many(total, 0))
        self.assertEqual(sorted(got), list(range(total)))

    async def test_cancelled_commands_leave_no_reply_behind(self) -> None:
        caches = [self.store.caches.output("n%d" % i) for i in range(20)]
        for i, c in enumerate(caches):
            await c.set({"i": i})
        rng = random.Random(3)
        for _ in range(300):
            i = rng.randrange(len(caches))
            t = asyncio.ensure_future(caches[i].get())
            await asyncio.sleep(0)
            if rng.random() < 0.5:
                t.cancel()
            try:
                v = await t
                self.assertEqual(v, {"i": i})
            except asyncio.CancelledError:
                pass

    async def test_sharded(self) -> None:
        q = self.store.queues.sharded("s")
        self.assertEqual(
            q.shard_keys(),
            ["pyt:queue:{sh:s}", "pyt:queue:1:{sh:s#1}", "pyt:queue:2:{sh:s#2}", "pyt:queue:3:{sh:s#3}"],
        )
        await q.push_many([{"i": i} for i in range(8)])
        for k in q.shard_keys():
            self.assertEqual(await self.raw("LLEN", k), 2)
        self.assertEqual(await q.len(), 8)
        got = await q.pop_many(8, 1)
        self.assertEqual(sorted(m["i"] for m in got), list(range(8)))
        # A wait on every shard wakes for a push to any of them.
        waiter = asyncio.ensure_future(q.pop(5))
        await asyncio.sleep(0.1)
        await self.raw("LPUSH", q.shard_keys()[3], b'{"w":3}')
        self.assertEqual(await waiter, {"w": 3})
        self.assertIsNone(await q.pop(0.05))

    async def test_decode_responses_client(self) -> None:
        r = _redis(decode_responses=True)
        try:
            q = teststore.Store(r).queues.edge("dr", "x")
            await q.push({"é": "\u2603"})
            await self.raw("LPUSH", q.key, b"\xff")
            self.assertEqual(await q.pop(1), {"é": "\u2603"})
            with self.assertRaises(DecodeError):
                await q.pop(1)
        finally:
            await r.close()
            await r.connection_pool.disconnect()


class CacheTests(RedisCase):
    async def test_ttl_rules(self) -> None:
        c = self.store.caches.output("node_1")
        self.assertEqual(c.key, "pyt:cache:node%5F1_output")
        self.assertIsNone(await c.get())
        self.assertEqual(await c.ttl(), _runtime.KEY_MISSING)
        self.assertFalse(await c.exists())
        await c.set({"v": 1})
        self.assertEqual(await c.get(), {"v": 1})
        left = await c.ttl()
        self.assertTrue(3500 < left <= 3600, left)
        await c.set_ttl({"v": 2}, 1.5)
        pttl = await self.raw("PTTL", c.key)
        self.assertTrue(1400 < pttl <= 1500, pttl)
        await c.set_ttl({"v": 2}, timedelta(milliseconds=1999, microseconds=999))
        self.assertTrue(await self.raw("PTTL", c.key) <= 1999)
        bads: List[Union[float, timedelta]] = [0, -1, 0.0009, timedelta(0), 1e300, 10**30, timedelta.max]
        for bad in bads:
            with self.assertRaises(InvalidArgument, msg=repr(bad)):
                await c.set_ttl({"v": 3}, bad)
        self.assertEqual(await c.get(), {"v": 2})
        s = self.store.caches.settings("x")
        await s.set({"forever": True})
        self.assertEqual(await s.ttl(), _runtime.NO_EXPIRY)
        with self.assertRaises(InvalidArgument):
            await self.store.caches.unset("x").set({})
        self.assertTrue(await c.delete())
        self.assertFalse(await c.delete())
        a = self.store.caches.attempt("run-1", 3)
        self.assertEqual(a.key, "pyt:cache:attempt:run-1:3")

    async def test_plain_and_decode_errors(self) -> None:
        c = self.store.caches.plain_output("node_1")
        self.assertEqual(c.key, "pyt:cache:node_1_output")
        await self.raw("SET", c.key, b'{"secret": [1,')
        with self.assertRaises(DecodeError) as cm:
            await c.get()
        self.assertNotIn("secret", str(cm.exception))
        self.assertIn('get "pyt:cache:node_1_output"', str(cm.exception))
        self.assertEqual(await self.raw("GET", c.key), b'{"secret": [1,')  # left in place
        with self.assertRaises(InvalidArgument):
            self.store.caches.output("")


class ReliableTests(RedisCase):
    async def test_push_receive_ack(self) -> None:
        q = self.store.queues.jobs("t1")
        self.assertEqual(q.key, "pyt:queue:{jobs:t1}")
        await q.push({"n": 1})
        await q.push_many([{"n": 2}, {"n": 3}])
        self.assertEqual(await q.len(), 3)
        d = await q.receive(1)
        assert d is not None
        self.assertEqual((d.value, d.attempt, len(d.id)), ({"n": 1}, 1, 26))
        ds = await q.receive_many(5, 0)
        self.assertEqual([x.value for x in ds], [{"n": 2}, {"n": 3}])
        st = await q.stats()
        self.assertEqual((st.ready, st.in_flight, st.dead), (0, 3, 0))
        await d.ack()
        with self.assertRaises(LeaseLost):
            await d.ack()
        await ds[0].nack()
        with self.assertRaises(LeaseLost):
            await ds[0].extend(5)
        await ds[1].extend(timedelta(seconds=60))
        again = await q.receive(1)
        assert again is not None
        self.assertEqual((again.value, again.attempt, again.id), ({"n": 2}, 2, ds[0].id))
        await again.ack()
        await ds[1].ack()
        self.assertIsNone(await q.receive(0.05))
        st = await q.stats()
        self.assertEqual(st, _reliable.Stats(0, 0, 0, 0, 0, 0.0))
        self.assertEqual(await self.raw("KEYS", "pyt:queue:{jobs:t1}:rx:*"), [])
        # An entry an older writer LPUSHed carries no time: its age is unknown.
        await self.raw("LPUSH", q.key, "junk")
        st = await q.stats()
        self.assertEqual((st.ready, st.oldest_ready, st.oldest_ready_unknown), (1, 0.0, True))

    async def test_push_id_dedupes(self) -> None:
        q = self.store.queues.jobs("t2")
        await q.push_id("job-{1}", {"n": 1})
        await q.push_id("job-{1}", {"n": 2})
        self.assertEqual(await q.len(), 1)
        self.assertEqual(await self.raw("EXISTS", "pyt:queue:{jobs:t2}:id:job-%7B1%7D"), 1)
        for bad in ["", "x" * 513, "\ud800"]:
            with self.assertRaises(InvalidArgument):
                await q.push_id(bad, {})
        d = await q.receive(1)
        assert d is not None
        self.assertEqual((d.id, d.value), ("job-{1}", {"n": 1}))
        await d.ack()
        await q.push_id("job-{1}", {"n": 3})  # within the dedupe window
        self.assertEqual(await q.len(), 0)

    async def test_nack_delay_and_dead_letters(self) -> None:
        q = self.store.queues.jobs("t3")
        await q.push({"n": 1})
        for attempt in (1, 2):
            d = await q.receive(2)
            assert d is not None
            self.assertEqual(d.attempt, attempt)
            await d.nack(0.05 if attempt == 1 else 0)
        d = await q.receive(2)
        assert d is not None and d.attempt == 3
        await d.nack()
        self.assertIsNone(await q.receive(0))
        dead = q.dead()
        self.assertEqual(await dead.len(), 1)
        (dl,) = await dead.peek(10)
        self.assertEqual((dl.id, dl.value, dl.attempts, dl.last_error), (d.id, {"n": 1}, 3, "nacked by the consumer"))
        self.assertEqual(await dead.requeue(10), 1)
        d = await q.receive(1)
        assert d is not None and d.attempt == 1
        with self.assertRaises(InvalidArgument):
            await d.nack(-1)
        for _ in range(2):
            await d.nack()
            d = await q.receive(1)
            assert d is not None
        await d.nack()
        self.assertEqual(await dead.purge(), 1)
        self.assertEqual(await dead.len(), 0)

    async def test_lease_runs_out(self) -> None:
        q = self.store.queues.short("t4")
        await q.push({"n": 1})
        d = await q.receive(1)
        assert d is not None
        # The receive waits past the lease and reclaims by itself.
        d2 = await q.receive(3)
        assert d2 is not None
        self.assertEqual((d2.id, d2.attempt), (d.id, 2))
        with self.assertRaises(LeaseLost):
            await d.ack()
        await d2.extend(5)
        await d2.ack()

    async def test_undecodable_and_foreign(self) -> None:
        q = self.store.queues.short("t5")
        # A payload that is not a JSON object, pushed with the push script.
        raw_codec: _runtime.Codec[bytes] = _runtime.Codec("Raw", lambda b: b, lambda b: b)
        rq = _reliable.ReliableQueue(self.r, teststore.SHORT, raw_codec, "t5")
        await rq.push(b"[1, \"secret\"]")
        with self.assertRaises(DecodeError) as cm:
            await q.receive(1)
        self.assertIn("it will be delivered again", str(cm.exception))
        self.assertNotIn("secret", str(cm.exception))
        with self.assertRaises(DecodeError) as cm:
            await q.receive(1)
        self.assertIn("it is now a dead letter", str(cm.exception))
        (dl,) = await q.dead().peek(1)
        self.assertIsNone(dl.value)
        self.assertIsInstance(dl.decode_error, DecodeError)
        # An LPUSH by something else: a dead letter at once.
        await self.raw("LPUSH", q.key, b"plain-lpush")
        await q.push({"ok": True})
        with self.assertRaises(DecodeError) as cm:
            await q.receive_many(10, 1)
        self.assertIn("not pushed by a reliable queue", str(cm.exception))
        self.assertEqual([d.value for d in cm.exception.taken], [{"ok": True}])
        self.assertEqual(await q.dead().len(), 2)

    async def test_cancelled_receive_gives_back(self) -> None:
        q = self.store.queues.jobs("t6")
        rng = random.Random(11)
        total = 200
        seen: Set[str] = set()
        done: List[str] = []

        async def producer() -> None:
            for i in range(total):
                await q.push({"i": i})
                if i % 5 == 0:
                    await asyncio.sleep(0.003)

        async def consumer() -> None:
            for _ in range(5000):
                if len(done) >= total:
                    return
                t = asyncio.ensure_future(q.receive_many(rng.choice([1, 4]), rng.choice([0.001, 0.05, 0.5])))
                await asyncio.sleep(rng.choice([0, 0.001, 0.004]))
                if rng.random() < 0.5:
                    t.cancel()
                try:
                    ds = await t
                except asyncio.CancelledError:
                    continue
                for d in ds:
                    # A cancel gives the item back uncounted: every delivery is the first.
                    self.assertEqual(d.attempt, 1, d)
                    self.assertNotIn(d.id, seen)
                    seen.add(d.id)
                    await d.ack()
                    done.append(d.id)

        await asyncio.wait_for(asyncio.gather(producer(), consumer(), consumer()), 90)
        self.assertEqual(len(done), total)
        st = await q.stats()
        self.assertEqual((st.ready, st.in_flight, st.delayed, st.dead), (0, 0, 0, 0))

    async def test_sharded(self) -> None:
        q = self.store.queues.sjobs("t7")
        keys = q.shard_keys()
        self.assertEqual(len(keys), 3)
        ids = ["id-%d" % i for i in range(30)]
        for i, id in enumerate(ids):
            await q.push_id(id, {"i": i})
        for id in ids:
            k = keys[_runtime.shard_of(id, 3)]
            self.assertEqual(await self.raw("HEXISTS", k + ":items", id), 1)
        self.assertEqual(await q.len(), 30)
        got: List[int] = []
        for _ in range(100):
            ds = await q.receive_many(7, 0.2)
            if not ds:
                break
            for d in ds:
                got.append(d.value["i"])
                await d.ack()
        self.assertEqual(sorted(got), list(range(30)))
        waiter = asyncio.ensure_future(q.receive(5))
        await asyncio.sleep(0.1)
        await q.push_id("late", {"late": True})
        late = await waiter
        assert late is not None
        self.assertEqual(late.value, {"late": True})
        await late.nack()
        st = await q.stats()
        self.assertEqual(st.ready, 1)
        self.assertEqual(await q.reclaim(), 0)

    async def test_pause(self) -> None:
        """A paused queue takes pushes and leases nothing: a receive waits
        (and one already blocked in BLMOVE gives the item it moved back,
        uncounted); stats says paused; resume lets every item through on
        its first delivery. On a sharded queue every shard is paused."""
        for q in (self.store.queues.jobs("p1"), self.store.queues.sjobs("p2")):
            early = asyncio.ensure_future(q.receive(10))
            await asyncio.sleep(0.2)
            await q.pause()
            for k in q.shard_keys():
                self.assertEqual(await self.raw("EXISTS", k + ":paused"), 1)
            await q.push_many([{"i": 1}, {"i": 2}])
            self.assertIsNone(await q.receive(0))
            self.assertEqual(await q.receive_many(5, 0.3), [])
            self.assertFalse(early.done())
            st = await q.stats()
            self.assertEqual((st.ready, st.in_flight, st.paused), (2, 0, True))
            for k in q.shard_keys():
                self.assertEqual(await self.raw("LLEN", k + ":processing"), 0)
            await q.resume()
            self.assertFalse((await q.stats()).paused)
            first = await early
            assert first is not None
            got = [first]
            more = await q.receive(5)
            assert more is not None
            got.append(more)
            self.assertEqual(sorted(d.value["i"] for d in got), [1, 2])
            self.assertEqual([d.attempt for d in got], [1, 1])
            for d in got:
                await d.ack()


class AclTests(RedisCase):
    async def test_without_client_unblock(self) -> None:
        """A user that may not run CLIENT: waits in slices, cancels still lose nothing."""
        await self.raw("ACL", "SETUSER", "nounblock", "on", ">pw", "~*", "+@all", "-client")
        r = _redis(username="nounblock", password="pw")
        try:
            q = teststore.Store(r).queues.edge("acl", "x")
            self.assertIsNone(await q.pop(0.12))
            waiter = asyncio.ensure_future(q.pop(5))
            await asyncio.sleep(0.1)
            waiter.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await waiter
            await q.push({"n": 1})
            self.assertEqual(await q.pop(1), {"n": 1})
            j = teststore.Store(r).queues.jobs("acl")
            await j.push({"n": 2})
            d = await j.receive(1)
            assert d is not None
            await d.ack()
            # A user without CLIENT UNBLOCK at all: refused commands are
            # reported with the key, never a password.
            await self.raw("ACL", "SETUSER", "nounblock", "-@all")
            with self.assertRaises(_errors.PermissionDenied) as cm:
                await q.push({"n": 3})
            self.assertNotIn("pw", str(cm.exception).replace("pyt", ""))
        finally:
            await r.close()
            await r.connection_pool.disconnect()
            await self.raw("ACL", "DELUSER", "nounblock")


if __name__ == "__main__":
    unittest.main()
