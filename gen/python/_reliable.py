"""At-least-once queues of the storagegen Python client: pushes with IDs,
leased deliveries, acks and nacks, dead letters, shards.

It runs the very Lua scripts of the Go runtime (lua/*.lua, composed as Go
composes them) with the same KEYS and ARGV, so a Python and a Go producer
or consumer share one queue: an item pushed by either is received once by
one of them at a time, and an item whose lease runs out comes back. Lease
ends, due times and ready times come from the server's clock (the scripts
read TIME), never from this process's. This file is hand-written and copied
verbatim into every generated package.

Each take (one run of the receive script) records what it leased under a
receipt key of its own, as in Go. A take whose reply is lost, or whose
caller is cancelled before it has its deliveries, is undone by that receipt
(the release script): the items go back to the tail of the ready list,
uncounted, and a late run of the take takes nothing. An ID that BLMOVE
moved for a waiting receive that was then cancelled is given back the same
way. So a cancel never loses or double-counts an item.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Awaitable, Dict, Generic, List, Optional, Sequence, Tuple, TypeVar, Union

from ._errors import DecodeError, InvalidArgument, LeaseLost, StoragegenError, UnknownOutcome, go_quote
from ._runtime import (
    DEFAULT_DEDUPE_WINDOW,
    DEFAULT_LEASE,
    DEFAULT_MAX_DELIVERIES,
    Codec,
    QueueDecl,
    RedisClient,
    Seconds,
    _decode_text,
    _decode_value,
    _encode,
    _encode_value,
    _fmt,
    _LostReply,
    _queue_key_of,
    _Redis,
    _settle,
    _to_ns,
    _wrap,
    _new_token,
    dead_key,
    marker_key,
    meta_key,
    paused_key,
    receipt_key,
    reliable_keys,
    shard_keys,
    shard_of,
)

__all__ = [
    "ReliableQueue",
    "Delivery",
    "DeadLetters",
    "DeadLetter",
    "Stats",
    "MAX_ID_BYTES",
    "MAX_RECEIVE_BATCH",
]

T = TypeVar("T")

# The longest ID push_id accepts (Go's runtime.MaxIDBytes).
MAX_ID_BYTES = 512
# The most items one receive_many leases (Go's runtime.MaxReceiveBatch).
MAX_RECEIVE_BATCH = 100

_RECLAIM_BATCH = 1000  # items of each kind one reclaim script handles
_MAX_ERROR_BYTES = 1024  # of a last error kept with an item
_NS_PER_MS = 1_000_000
# How long a receipt outlives the lease: the time a client may take to send
# a take again after losing its reply (go-redis's retry window, 88 s with
# its defaults). Python sends nothing twice, but a receipt of its takes
# lives as long as a Go one, so both behave the same.
_RETRY_WINDOW_MS = 90_000
# Fields of <Q>:meta one reclaim looks at, deleting those whose item is gone.
_META_SWEEP = 100
_PUSH_TRIES = 3  # a push whose reply was lost is sent again; its marker dedupes it
_ACK_TRIES = 2  # an ack whose reply was lost is sent again: one of an item that is gone returns 2 (not an error)
_READY, _PROCESSING, _DEAD = 0, 1, 4
# The receive script's due for a paused queue: it leased nothing.
_DUE_PAUSED = -2


@dataclass(frozen=True)
class Stats:
    """Where a queue's items are (all shards): ready to be received, in
    flight (received, not yet acked or nacked), of those with an expired
    lease, delayed after a nack, dead; how long the oldest ready item
    has been ready, in seconds by the server's clock (0 when none); and
    whether the queue is paused (for a sharded queue: any shard).
    oldest_ready_unknown is True when items are ready but the oldest carry
    no time (an older writer's plain LPUSH): oldest_ready is then 0, which
    does not mean new (Go's Stats.OldestReadyUnknown)."""

    ready: int
    in_flight: int
    expired: int
    delayed: int
    dead: int
    oldest_ready: float
    paused: bool = False
    oldest_ready_unknown: bool = False


@dataclass(frozen=True)
class DeadLetter(Generic[T]):
    """One dead letter as peek returns it: value is None when the payload
    does not decode (decode_error says why)."""

    id: str
    value: Optional[T]
    payload: bytes
    decode_error: Optional[StoragegenError]
    attempts: int
    last_error: str
    time: datetime


def _truncate(s: str, n: int) -> str:
    """s cut to at most n bytes of UTF-8 without splitting a character, with
    an ellipsis when cut (Go's truncate)."""
    b = _encode(s)
    if len(b) <= n:
        return s
    while n > 0 and (b[n] & 0xC0) == 0x80:
        n -= 1
    return _decode_text(b[:n]) + "\u2026"


async def _reclaiming(key: str, aw: Awaitable[None]) -> None:
    """A receive's reclaim, whose error is the receive's (as in Go): the
    receive took nothing."""
    try:
        await aw
    except StoragegenError as e:
        raise type(e)("reclaim: " + e.what, "receive", key) from e


class _Receipt:
    """The receipt of one take, shared by the deliveries it leased."""

    def __init__(self, key: str, open: int) -> None:
        self.key = key
        self.open = open

    def done(self) -> str:
        """Counts one delivery as settled; the key to delete when it was the last."""
        self.open -= 1
        return self.key if self.open == 0 else ""


class _Leased:
    def __init__(self, core: "_Core", id: str, payload: bytes, attempt: int, receipt: _Receipt) -> None:
        self.core = core
        self.id = id
        self.payload = payload
        self.attempt = attempt
        self.receipt = receipt


class _Core:
    """One queue (or one shard) of an at-least-once queue: its keys and settings."""

    def __init__(self, r: _Redis, key: str, lease_ms: int, max_deliveries: int, window_ms: int) -> None:
        self.r = r
        self.key = key
        self.keys = reliable_keys(key)
        self.paused = paused_key(key)
        self.meta = meta_key(key)
        self.lease_ms = lease_ms
        self.max_deliveries = max_deliveries
        self.window_ms = window_ms

    def receipt_ttl(self) -> int:
        return self.lease_ms + _RETRY_WINDOW_MS

    def reclaim_interval(self) -> float:
        """How often receives reclaim: at most a second, at most half a lease."""
        return min(self.lease_ms / 2000, 1.0)

    def pause_recheck(self) -> float:
        """How long a receiver of a paused queue waits before it looks
        again: the reclaim interval, within 50 ms and 1 s (as Go)."""
        return max(min(self.reclaim_interval(), 1.0), 0.05)

    def lost(self, op: str, id: str, attempt: int) -> LeaseLost:
        return LeaseLost("lease lost: delivery %d of %s" % (attempt, go_quote(id)), op, self.key)

    # -- push ---------------------------------------------------------------

    async def push(self, ids: List[str], payloads: List[bytes]) -> None:
        keys = self.keys + [marker_key(self.key, ids[0]), self.meta]
        # b"": no meta (push time, trace context) beside the items; Go
        # writes it when its DataStore has an OpenTelemetry provider.
        args: List[Any] = [self.window_ms, b""]
        for id, p in zip(ids, payloads):
            args += [_encode(id), p]
        cancelled = False
        for attempt in range(_PUSH_TRIES):
            task, c = await _settle(self.r.script("push", keys, args))
            cancelled = cancelled or c
            err = task.exception()
            if err is None:
                break
            if cancelled or not isinstance(err, _LostReply) or attempt == _PUSH_TRIES - 1:
                if cancelled:
                    raise asyncio.CancelledError()
                raise _wrap("push", self.key, err, True) from err
            # The reply was lost: the script, sent again with the same first
            # ID, stores the items once (its marker).
        if cancelled:
            raise asyncio.CancelledError()

    # -- receive --------------------------------------------------------------

    async def release(self, receipt: str, id: str) -> Optional[BaseException]:
        """Gives back what the take with receipt took and never handed out
        (or the ID BLMOVE moved), whatever cancels come; returns its error."""
        # Bounded: it runs after a cancel, or a lost reply, when no other
        # cancel will come to end it (see _settle).
        task, _ = await _settle(
            self.r.script("release", self.keys + [receipt], [_encode(id), self.receipt_ttl()]),
            deadline=asyncio.get_running_loop().time() + self.r.state.grace,
        )
        if task.cancelled():
            return StoragegenError("no reply within %gs" % self.r.state.grace, "release", self.key)
        return task.exception()

    async def take(self, receipt: str, id: str, n: int) -> Tuple[List[_Leased], int, Optional[StoragegenError]]:
        """One run of the receive script under receipt: up to n of the oldest
        ready items (id ""), or the ID BLMOVE moved and up to n-1 more.
        Returns the leased items, the ms until the next delayed item is due
        (-1: none; _DUE_PAUSED: the queue is paused and the take changed
        nothing, an id is still in processing for release to give back),
        and an error for entries no reliable queue pushed. A lost reply, or
        a cancel, undoes the take by its receipt."""
        args = [self.lease_ms, _encode(id), _RECLAIM_BATCH, self.receipt_ttl(), n]
        task, cancelled = await _settle(self.r.script("receive", self.keys + [receipt, self.paused, self.meta], args), grace=self.r.state.grace)
        if task.cancelled():
            # Given up after a cancel (no reply within the grace period):
            # the take may have run, so it is undone by its receipt.
            await self.release(receipt, id)
            raise asyncio.CancelledError()
        err = task.exception()
        if err is not None:
            rerr = await self.release(receipt, id)
            if cancelled:
                raise asyncio.CancelledError()
            e = _wrap("receive", self.key, err, False)
            if rerr is not None:
                e = type(e)(e.what + "; release: " + _wrap("release", self.key, rerr, True).what, "receive", self.key)
            raise e from err
        if cancelled:
            await self.release(receipt, id)
            raise asyncio.CancelledError()
        res = task.result()
        bad = StoragegenError(
            "unexpected reply of %d elements from the receive script" % (len(res) if isinstance(res, list) else -1),
            "receive",
            self.key,
        )
        # Four elements per item: ID, payload, attempt, and the meta a Go
        # pusher wrote (b"" when none), which Python does not use.
        if not isinstance(res, list) or len(res) < 2 or (len(res) - 2) % 4 or (len(res) - 2) // 4 > n:
            raise bad
        due, dead = res[0], res[1]
        if not isinstance(due, int) or not isinstance(dead, list) or (due == _DUE_PAUSED and len(res) != 2):
            raise bad
        rc = _Receipt(receipt, (len(res) - 2) // 4)
        out: List[_Leased] = []
        for i in range(2, len(res) - 3, 4):
            lid, payload, attempt, meta = res[i], res[i + 1], res[i + 2], res[i + 3]
            if (
                not isinstance(lid, bytes)
                or not isinstance(payload, bytes)
                or not isinstance(attempt, int)
                or not isinstance(meta, bytes)
            ):
                raise bad
            out.append(_Leased(self, _decode_text(lid), payload, attempt, rc))
        foreign: Optional[StoragegenError] = None
        if dead:
            names = [_decode_text(bytes(x)) for x in dead]
            foreign = DecodeError(
                "decode: %d entries not pushed by a reliable queue are now dead letters [%s]"
                % (len(names), " ".join(go_quote(x) for x in names)),
                "receive",
                self.key,
            )
        return out, due, foreign

    async def maybe_reclaim(self, force: bool = False) -> None:
        """Reclaims unless this pool's clients did so for the queue within the
        reclaim interval."""
        st = self.r.state
        now = asyncio.get_running_loop().time()
        prev = st.reclaimed.get(self.key)
        if not force and prev is not None and now - prev < self.reclaim_interval():
            return
        st.reclaimed[self.key] = now
        try:
            await self.reclaim_once()
        except BaseException:
            if prev is None:
                st.reclaimed.pop(self.key, None)
            else:
                st.reclaimed[self.key] = prev  # the next receive tries again
            raise

    async def reclaim_once(self) -> int:
        res = await self.r.call_script(
            "reclaim",
            self.key,
            "reclaim",
            self.keys + [self.meta],
            [self.lease_ms, self.max_deliveries, _RECLAIM_BATCH, _META_SWEEP],
            # A reclaim whose reply was lost is no unknown outcome: the next
            # one does what it did not.
            write=False,
        )
        if not isinstance(res, list) or len(res) != 3:
            raise StoragegenError("unexpected reply from the reclaim script", "reclaim", self.key)
        return int(res[0]) + int(res[1])

    async def receive(self, n: int, wait: float) -> Tuple[List[_Leased], Optional[StoragegenError]]:
        """Leases up to n items, waiting up to wait seconds for the first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        ready, processing = _encode(self.keys[_READY]), _encode(self.keys[_PROCESSING])
        for _ in range(1 << 30):
            await _reclaiming(self.key, self.maybe_reclaim())
            ls, due, foreign = await self.take(receipt_key(self.key, _new_token()), "", n)
            if ls or foreign is not None:
                return ls, foreign
            left = deadline - loop.time()
            if left <= 0:
                return [], None
            if due == _DUE_PAUSED:
                # Paused: wait without BLMOVE, which would move an item,
                # and look again after a while.
                await asyncio.sleep(min(left, self.pause_recheck()))
                continue
            # Wait in slices, so that expired items are put back while a
            # receive waits and nothing else reclaims, and wake when the
            # next delayed item is due.
            piece = min(left, self.reclaim_interval())
            if due >= 0:
                piece = min(piece, due / 1000 + 0.001)
            reply, cancelled = await self.r.block(
                "receive", self.key, ["BLMOVE", ready, processing, "RIGHT", "LEFT"], piece
            )
            if reply is None:
                if cancelled:
                    raise asyncio.CancelledError()
                continue
            # The ID is in processing without a lease: lease it, or give it back.
            id = _decode_text(bytes(reply))
            receipt = receipt_key(self.key, _new_token())
            if cancelled:
                await self.release(receipt, id)
                raise asyncio.CancelledError()
            ls, due, foreign = await self.take(receipt, id, n)
            if due == _DUE_PAUSED:
                # Paused while BLMOVE waited: the item goes back to the
                # front of the queue, uncounted.
                err = await self.release(receipt, id)
                if err is not None:
                    raise _wrap("release", self.key, err, True) from err
            if ls or foreign is not None:
                return ls, foreign
            # A reclaim put the item back meanwhile, or the queue is
            # paused: look again.
        return [], None

    # -- settle -----------------------------------------------------------------

    async def nack(
        self, receipt: str, id: str, attempt: int, delay_ns: int, cause: str
    ) -> Tuple[int, bool]:
        """Runs the nack script: 1 delivered again, 2 dead, 0 not held; and
        whether the caller was cancelled meanwhile."""
        keys = self.keys + ([receipt] if receipt else [])
        args = [_encode(id), attempt, delay_ns // _NS_PER_MS, self.max_deliveries, _encode(_truncate(cause, _MAX_ERROR_BYTES))]
        res, cancelled = await self.r.settled("nack", self.key, self.r.script("nack", keys, args), True)
        n = int(res)
        if n == 1 and delay_ns >= _NS_PER_MS:
            self.promote_at(asyncio.get_running_loop().time() + delay_ns / 1e9)
        return n, cancelled

    # -- promoting delayed items ------------------------------------------------

    def promote_at(self, due: float) -> None:
        """Makes sure the promote script runs for the queue at due (loop time)
        or earlier, so that receivers already waiting (in any process) get
        the item on time: the promoter's push wakes their BLMOVE."""
        st = self.r.state
        cur = st.promote_at.get(self.key)
        if cur is not None and cur[0] <= due:
            return
        if cur is not None:
            cur[1].cancel()
        loop = asyncio.get_running_loop()
        st.promote_at[self.key] = (due, loop.call_at(due, self._fire))

    def _fire(self) -> None:
        st = self.r.state
        st.promote_at.pop(self.key, None)
        task = asyncio.ensure_future(self._promote())
        st.tasks.add(task)
        task.add_done_callback(st.tasks.discard)

    async def _promote(self) -> None:
        try:
            res = await self.r.call_script("promote", self.key, "promote", self.keys, [_RECLAIM_BATCH])
        except Exception:
            return  # receivers' reclaims make the items ready then
        if isinstance(res, list) and len(res) == 2 and int(res[1]) >= 0:
            self.promote_at(asyncio.get_running_loop().time() + max(int(res[1]) / 1000, 0.001))


class Delivery(Generic[T]):
    """One delivery of an item: value, its ID (stable across deliveries) and
    attempt (1 on the first). It holds the item's lease until ack, nack, or
    the lease running out."""

    def __init__(self, value: T, leased: _Leased) -> None:
        self.value: T = value
        self.id: str = leased.id
        self.attempt: int = leased.attempt
        self._core = leased.core
        self._receipt = leased.receipt
        self._released = False
        self._settled = False

    def __repr__(self) -> str:
        return "Delivery(id=%r, attempt=%d)" % (self.id, self.attempt)

    def _release_receipt(self) -> str:
        if self._released:
            return ""
        self._released = True
        return self._receipt.done()

    async def ack(self) -> None:
        """Marks the item done: it is removed for good. LeaseLost if the
        delivery no longer holds it (it is delivered again, or already was);
        an item that is gone already is not an error."""
        core = self._core
        if self._settled:
            raise core.lost("ack", self.id, self.attempt)
        rk = self._release_receipt()
        keys = core.keys + [core.meta] + ([rk] if rk else [])
        args = [_encode(self.id), self.attempt]
        cancelled = False
        for attempt in range(_ACK_TRIES):
            task, c = await _settle(core.r.script("ack", keys, args), grace=core.r.state.grace)
            cancelled = cancelled or c
            err = task.exception()
            if err is None:
                break
            if cancelled:
                raise asyncio.CancelledError()
            if not isinstance(err, _LostReply) or attempt == _ACK_TRIES - 1:
                raise _wrap("ack", core.key, err, True) from (err.cause if isinstance(err, _LostReply) else err)
            # The reply was lost: the ack, sent again, finds the item gone
            # (1, as Go's go-redis retry does) or removes it now.
        res = task.result()
        self._settled = True
        if cancelled:
            raise asyncio.CancelledError()
        if not isinstance(res, list) or len(res) != 1:
            raise StoragegenError("unexpected reply from the ack script for 1 delivery", "ack", core.key)
        if int(res[0]) == 0:
            raise core.lost("ack", self.id, self.attempt)

    async def nack(self, delay: Seconds = 0) -> None:
        """Gives the item back after a failed delivery: ready again after
        delay (0: at once, at the back of the queue), or a dead letter if
        this was the last of the queue's deliveries. LeaseLost if the
        delivery no longer holds the item."""
        core = self._core
        ns = _to_ns(delay, "delay")
        if ns < 0:
            raise InvalidArgument("invalid argument: negative delay %s" % _fmt(ns), "nack", core.key)
        if self._settled:
            raise core.lost("nack", self.id, self.attempt)
        n, cancelled = await core.nack(self._release_receipt(), self.id, self.attempt, ns, "nacked by the consumer")
        self._settled = True
        if cancelled:
            raise asyncio.CancelledError()
        if n == 0:
            raise core.lost("nack", self.id, self.attempt)

    async def extend(self, lease: Seconds) -> None:
        """Makes the lease end lease (seconds or a timedelta) from now, by the
        server's clock. LeaseLost if the delivery no longer holds the item."""
        core = self._core
        ns = _to_ns(lease, "lease")
        if ns <= 0:
            raise InvalidArgument("invalid argument: lease %s must be positive" % _fmt(ns), "extend", core.key)
        if self._settled:
            raise LeaseLost(
                "lease lost: delivery %d of %s was settled" % (self.attempt, go_quote(self.id)), "extend", core.key
            )
        args = [max(ns // _NS_PER_MS, 1), _encode(self.id), self.attempt]
        res = await core.r.call_script("extend", core.key, "extend", core.keys, args, write=False)
        if not isinstance(res, list) or len(res) != 1:
            raise StoragegenError("unexpected reply from the extend script for 1 delivery", "extend", core.key)
        if int(res[0]) == 0:
            raise core.lost("extend", self.id, self.attempt)


class ReliableQueue(Generic[T]):
    """A typed at-least-once queue, shared with Go's runtime.ReliableQueue
    on the same key: every item whose push returned is eventually acked or
    kept as a dead letter. Items are received as Delivery objects. A bad
    placeholder value raises InvalidArgument here."""

    def __init__(self, r: RedisClient, decl: QueueDecl, codec: Codec[T], *args: Union[str, int]) -> None:
        if not decl.reliable:
            raise InvalidArgument("queue %s: invalid argument: an at-most-once queue is a Queue" % decl.name)
        self._decl = decl
        self._codec = codec
        self._key, name = _queue_key_of(decl, args)
        self._r = _Redis(r)
        lease = _to_ns(decl.lease, "lease") // _NS_PER_MS or int(DEFAULT_LEASE * 1000)
        window = _to_ns(decl.dedupe_window, "dedupe window") // _NS_PER_MS or int(DEFAULT_DEDUPE_WINDOW * 1000)
        deliveries = decl.max_deliveries or DEFAULT_MAX_DELIVERIES
        keys = shard_keys(decl.prefix, name, decl.shards) if decl.shards > 1 else [self._key]
        self._cores = [_Core(self._r, k, lease, deliveries, window) for k in keys]

    @property
    def key(self) -> str:
        """The key of the ready list (shard 0's for a sharded queue); the
        queue's other keys share it as a prefix and hash tag."""
        return self._key

    def shard_keys(self) -> List[str]:
        """The key of every shard's ready list, shard 0 (key) first."""
        return [c.key for c in self._cores]

    # -- push -----------------------------------------------------------------

    async def push(self, value: T) -> None:
        """Appends value under a new random ID."""
        await self.push_many([value])

    async def push_many(self, values: Sequence[T]) -> None:
        """Appends values, each under a new random ID, with one script (per
        shard); they are received in the order given. If any cannot be
        encoded or is too large, nothing is written."""
        await self._push([_new_token() for _ in values], values)

    async def push_id(self, id: str, value: T) -> None:
        """Appends value under id unless an item with that ID is in the queue
        (ready, in flight, delayed or dead) or was pushed within the queue's
        dedupe window; then it does nothing. id is 1 to MAX_ID_BYTES bytes."""
        try:
            size = len(id.encode("utf-8")) if isinstance(id, str) else -1
        except UnicodeEncodeError:
            size = -1
        if not 1 <= size <= MAX_ID_BYTES:
            raise InvalidArgument(
                "invalid argument: ID of %d bytes; want 1 to %d (a str of UTF-8)" % (max(size, 0), MAX_ID_BYTES),
                "push",
                self._key,
            )
        await self._push([id], [value])

    async def _push(self, ids: List[str], values: Sequence[T]) -> None:
        payloads = [_encode_value(self._codec, v, "push", self._key, i) for i, v in enumerate(values)]
        if not payloads:
            return
        if len(self._cores) == 1:
            await self._cores[0].push(ids, payloads)
            return
        groups: Dict[int, Tuple[List[str], List[bytes]]] = {}
        for id, p in zip(ids, payloads):
            g = groups.setdefault(shard_of(id, len(self._cores)), ([], []))
            g[0].append(id)
            g[1].append(p)
        order = sorted(groups)
        results = await asyncio.gather(
            *(self._cores[i].push(groups[i][0], groups[i][1]) for i in order), return_exceptions=True
        )
        errs = [(order[k], e) for k, e in enumerate(results) if isinstance(e, BaseException)]
        for _, e in errs:
            if not isinstance(e, Exception):
                raise e
        if errs:
            first = errs[0][1]
            what = "; ".join("%d of %d items: %s" % (len(groups[i][0]), len(ids), e) for i, e in errs)
            cls = type(first) if isinstance(first, StoragegenError) else StoragegenError
            raise cls(what, "push", self._key)

    # -- counts -----------------------------------------------------------------

    async def len(self) -> int:
        """The number of items ready to be received (Stats.ready)."""
        if len(self._cores) == 1:
            return int(await self._r.call("len", self._key, "LLEN", _encode(self._key)))
        replies = await self._r.pipeline("len", self._key, [["LLEN", _encode(c.key)] for c in self._cores])
        return sum(int(x) for x in replies)

    async def stats(self) -> Stats:
        """Counts the items in each state with one read-only script per shard."""
        ready = in_flight = expired = delayed = dead = 0
        oldest = 0
        paused = unknown = False
        for c in self._cores:
            res = await self._r.call_script("stats", self._key, "stats", c.keys + [c.paused], [], write=False)
            if not isinstance(res, list) or len(res) != 7:
                raise StoragegenError("unexpected reply from the stats script", "stats", self._key)
            paused = paused or int(res[6]) == 1
            ready += int(res[0])
            in_flight += int(res[1])
            expired += int(res[2])
            delayed += int(res[3])
            dead += int(res[4])
            oldest = max(oldest, int(res[5]))
            unknown = unknown or (int(res[0]) > 0 and int(res[5]) < 0)
        return Stats(ready, in_flight, expired, delayed, dead, oldest / 1000, paused, unknown)

    # -- pause ------------------------------------------------------------------

    async def pause(self) -> None:
        """Pauses the queue, as Go's Pause: until resume, receivers (Go's or
        Python's) lease nothing and wait; pushes, acks, nacks and reclaims
        go on. The state is the key <Q>:paused (one per shard), so it
        outlives this process."""
        await self._set_paused("pause", True)

    async def resume(self) -> None:
        """Ends a pause: receivers lease again within about a second."""
        await self._set_paused("resume", False)

    async def _set_paused(self, op: str, on: bool) -> None:
        cmds = [["SET", _encode(c.paused), b"1"] if on else ["DEL", _encode(c.paused)] for c in self._cores]
        replies, cancelled = await self._r.settled(op, self._key, self._r._exec(cmds), True)
        for r in replies:
            if isinstance(r, BaseException):
                raise _wrap(op, self._key, r, True) from r
        if cancelled:
            raise asyncio.CancelledError()

    # -- receive ----------------------------------------------------------------

    async def receive(self, timeout: Seconds = 0) -> Optional[Delivery[T]]:
        """Leases the oldest ready item for the queue's lease, waiting up to
        timeout seconds for one (0 does not wait); None when nothing came
        in time. An item that cannot be decoded counts as a failed delivery
        (it comes back, or becomes a dead letter after the queue's
        max_deliveries) and DecodeError is raised; so does an entry that
        something other than a reliable queue pushed, which is kept as a
        dead letter at once. A cancel never loses an item: what the call
        took is given back, uncounted, before CancelledError."""
        got = await self._receive(1, timeout)
        return got[0] if got else None

    async def receive_many(self, n: int, timeout: Seconds = 0) -> List[Delivery[T]]:
        """Leases up to n (1 to MAX_RECEIVE_BATCH) of the oldest ready items
        with one script, waiting for the first as receive does. Items that
        cannot be decoded are handled as receive handles one; the error then
        carries the other deliveries in ``taken``."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_RECEIVE_BATCH:
            raise InvalidArgument(
                "invalid argument: count %r; want 1 to %d" % (n, MAX_RECEIVE_BATCH), "receive", self._key
            )
        return await self._receive(n, timeout)

    async def _receive(self, n: int, timeout: Seconds) -> List[Delivery[T]]:
        ns = _to_ns(timeout, "timeout")
        if ns < 0:
            raise InvalidArgument("invalid argument: negative timeout %s" % _fmt(ns), "receive", self._key)
        if len(self._cores) == 1:
            ls, foreign = await self._cores[0].receive(n, ns / 1e9)
        else:
            ls, foreign = await self._receive_sharded(n, ns / 1e9)
        return await self._deliver(ls, foreign)

    async def _deliver(self, ls: List[_Leased], foreign: Optional[StoragegenError]) -> List[Delivery[T]]:
        out: List[Delivery[T]] = []
        errs: List[str] = [foreign.what] if foreign is not None else []
        cancelled = False
        for l in ls:
            try:
                v = _decode_value(self._codec, l.payload)
            except StoragegenError as derr:
                n, c = await l.core.nack(l.receipt.done(), l.id, l.attempt, 0, derr.what)
                cancelled = cancelled or c
                nxt = "it will be delivered again"
                if n == 2:
                    nxt = "it is now a dead letter (%s)" % go_quote(dead_key(l.core.key))
                errs.append("item %s, delivery %d: %s; %s" % (go_quote(l.id), l.attempt, derr.what, nxt))
                continue
            out.append(Delivery(v, l))
        if cancelled:
            # Undo what the takes leased and the caller will never see.
            seen = set()
            for l in ls:
                if id(l.receipt) not in seen:
                    seen.add(id(l.receipt))
                    await l.core.release(l.receipt.key, "")
            raise asyncio.CancelledError()
        if errs:
            raise DecodeError("; ".join(errs), "receive", self._key, list(out))
        return out

    async def _receive_sharded(self, n: int, wait: float) -> Tuple[List[_Leased], Optional[StoragegenError]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        first = -1
        keys = self.shard_keys()
        st = self._r.state
        for _ in range(1 << 30):
            await _reclaiming(self._key, self._reclaim_shards())
            ls, paused, err = await self._sweep_take(n, first)
            if ls or err is not None:
                return ls, err
            left = deadline - loop.time()
            if left <= 0:
                return [], None
            if paused:
                # A paused shard with items would wake every wait at once:
                # wait without one, and look again after a while.
                await asyncio.sleep(min(left, self._cores[0].pause_recheck()))
                first = -1
                continue
            start = st.next(self._key, 1) % len(keys)
            first, cancelled = await self._r.wait_shards(
                "receive", self._key, keys, start, left, self._cores[0].reclaim_interval()
            )
            if cancelled:
                raise asyncio.CancelledError()
        return [], None

    async def _reclaim_shards(self) -> None:
        st = self._r.state
        mark = "shards " + self._key
        now = asyncio.get_running_loop().time()
        prev = st.reclaimed.get(mark)
        if prev is not None and now - prev < self._cores[0].reclaim_interval():
            return
        st.reclaimed[mark] = now
        try:
            for c in self._cores:
                await c.maybe_reclaim()
        except BaseException:
            st.reclaimed.pop(mark, None)
            raise

    async def _sweep_take(self, n: int, first: int) -> Tuple[List[_Leased], bool, Optional[StoragegenError]]:
        cores = self._cores
        start = first if first >= 0 else self._r.state.next(self._key, 1) % len(cores)
        ls, due, foreign = await cores[start].take(receipt_key(cores[start].key, _new_token()), "", n)
        paused = due == _DUE_PAUSED
        errs = [foreign.what] if foreign is not None else []
        if len(ls) < n:
            try:
                lens = await self._r.pipeline("receive", self._key, [["LLEN", _encode(c.key)] for c in cores])
            except StoragegenError:
                if not ls:
                    raise
                lens = [0] * len(cores)
            for j in range(1, len(cores)):
                if len(ls) >= n:
                    break
                i = (start + j) % len(cores)
                if not int(lens[i]):
                    continue
                try:
                    more, due, f = await cores[i].take(receipt_key(cores[i].key, _new_token()), "", n - len(ls))
                except StoragegenError:
                    if not ls:
                        raise
                    break
                ls += more
                paused = paused or due == _DUE_PAUSED
                if f is not None:
                    errs.append(f.what)
        err = DecodeError("; ".join(errs), "receive", self._key) if errs else None
        return ls, paused, err

    # -- maintenance ------------------------------------------------------------

    async def reclaim(self) -> int:
        """Puts back every item whose lease has run out (or makes it a dead
        letter after max_deliveries), makes due delayed items ready, and
        leases IDs a stopped consumer left in processing. Returns how many
        expired leases it handled. Receives do this by themselves about
        once a second; this is for tools and tests."""
        total = 0
        for c in self._cores:
            for _ in range(1000):  # at most a million items per call
                got = await c.reclaim_once()
                total += got
                if got < _RECLAIM_BATCH:
                    break
        return total

    def dead(self) -> DeadLetters[T]:
        """The queue's dead letters."""
        return DeadLetters(self)


class DeadLetters(Generic[T]):
    """The items of a ReliableQueue that failed max_deliveries times, could
    not be decoded, or were not pushed by a reliable queue, kept with their
    last error at <key>:dead, oldest first."""

    def __init__(self, q: ReliableQueue[T]) -> None:
        self._q = q

    async def len(self) -> int:
        """The number of dead letters."""
        q = self._q
        replies = await q._r.pipeline("dead", q.key, [["ZCARD", _encode(c.keys[_DEAD])] for c in q._cores])
        return sum(int(x) for x in replies)

    async def peek(self, n: int) -> List[DeadLetter[T]]:
        """Up to n of the oldest dead letters, unchanged."""
        q = self._q
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidArgument("invalid argument: count %r < 1" % (n,), "dead", q.key)
        out: List[DeadLetter[T]] = []
        for c in q._cores:
            res = await q._r.call_script("dead", q.key, "peek", c.keys, [n], write=False)
            if not isinstance(res, list):
                raise StoragegenError("unexpected reply from the peek script", "dead", q.key)
            for i in range(0, len(res) - 4, 5):
                payload = bytes(res[i + 2])
                value: Optional[T] = None
                derr: Optional[StoragegenError] = None
                try:
                    value = _decode_value(q._codec, payload)
                except StoragegenError as e:
                    derr = e
                ms = int(res[i + 1])
                out.append(
                    DeadLetter(
                        id=_decode_text(bytes(res[i])),
                        value=value,
                        payload=payload,
                        decode_error=derr,
                        attempts=int(res[i + 3]),
                        last_error=_decode_text(bytes(res[i + 4])),
                        time=datetime.fromtimestamp(ms / 1000, tz=timezone.utc),
                    )
                )
        out.sort(key=lambda d: d.time)
        return out[:n]

    async def requeue(self, n: int) -> int:
        """Moves up to n of the oldest dead letters back to the queue, with
        their delivery count reset; returns how many."""
        q = self._q
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidArgument("invalid argument: count %r < 1" % (n,), "requeue", q.key)
        total = 0
        for c in q._cores:
            if total >= n:
                break
            total += await self._batches(c, "requeue", n - total)
        return total

    async def purge(self) -> int:
        """Deletes the dead letters, up to ten million per shard in one call;
        returns how many."""
        total = 0
        for c in self._q._cores:
            total += await self._batches(c, "purge", -1)
        return total

    async def _batches(self, c: _Core, op: str, n: int) -> int:
        total = 0
        for _ in range(10_000):
            if 0 <= n <= total:
                break
            batch = _RECLAIM_BATCH if n < 0 else min(_RECLAIM_BATCH, n - total)
            keys = c.keys + [c.meta] if op == "purge" else c.keys
            got = int(await self._q._r.call_script(op, self._q.key, op, keys, [batch]))
            total += got
            if got < batch:
                break
        return total
