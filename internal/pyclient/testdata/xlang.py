"""The Python side of internal/pyclient's cross-language tests.

It runs the generated, typed package of the test schema (internal/pyinterop,
py/pyinterop on PYTHONPATH) against the test's redis-server and prints one
JSON object. Nothing here is a mock: every value goes through Redis.

    xlang.py ADDR trip                 read and check what Go wrote with the
                                       "go" tuples; write the same values with
                                       the "py" tuples; check that naive
                                       datetimes and out-of-range ints are
                                       refused before anything is sent
    xlang.py ADDR produce Q FIRST N    push_id ids FIRST..FIRST+N-1 on the
                                       at-least-once queue Q (tasks or jobs)
    xlang.py ADDR consume Q LOG SLOW   receive, append "<id> <attempt>" to LOG
                                       (flushed), SLOW seconds of "work", ack;
                                       until killed (or for 60 s at most)
    xlang.py ADDR seed-write PREFIX    the Python storage system's own writes:
                                       LPUSH json.dumps(dict), SET/SETEX
    xlang.py ADDR seed-read PREFIX N   its reads: BRPOP and GET, json.loads

The values (values()) are the very values the Go test builds (goValues in
xlang_test.go); each side compares what it reads with its own copy, field
by field (same_value), so a value that changes on the trip, or a copy that
differs, fails the test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import importlib
import json
import math
import os
import sys
import time
from typing import Any, Callable, Dict, List, Tuple

from pyinterop import EncodeError, Envelope, Inner, Nested, Optionals, Scalars, Store
from pyinterop._codec import ZERO_TIME, with_nanosecond

UTC = dt.timezone.utc
INDIA = dt.timezone(dt.timedelta(hours=5, minutes=30))
WEST = dt.timezone(-dt.timedelta(hours=23, minutes=59))
AMS1936 = dt.timezone(dt.timedelta(minutes=19, seconds=32))  # an offset with seconds: written in UTC
I64_MAX, I64_MIN, U64_MAX = (1 << 63) - 1, -(1 << 63), (1 << 64) - 1
I32_MAX, I32_MIN, U32_MAX = (1 << 31) - 1, -(1 << 31), (1 << 32) - 1
BEYOND53 = (1 << 53) + 1

NANO_INDIA = with_nanosecond(dt.datetime(2026, 3, 4, 5, 6, 7, 123456, INDIA), 789)
NANO_UTC = with_nanosecond(dt.datetime(2026, 3, 4, 23, 59, 59, 999999, UTC), 999)
WEST_END = with_nanosecond(dt.datetime(9999, 12, 31, 23, 59, 59, 999999, WEST), 999)
AMS = with_nanosecond(dt.datetime(1936, 5, 1, 12, 0, 0, 0, AMS1936), 1)
TEXT = "h\u00e9 \u2028 <&> \x7f \x00 \U0001F600 \"\\ \u00a0\ufeff"


def values() -> Dict[str, Dict[str, Any]]:
    """The values of the trip, by payload type and name, as goValues."""
    scalars = {
        "max": Scalars(flag=True, text=TEXT, i=I64_MAX, i32=I32_MAX, i64=I64_MAX, u32=U32_MAX, u64=U64_MAX,
                       f32=-0.1, f64=5e-324, raw=bytes(range(256)), at=NANO_INDIA,
                       value={"n": 1.5, "big": 1e300, "int": 3, "list": ["x", True, None, {}]}),
        "min": Scalars(flag=False, text="", i=I64_MIN, i32=I32_MIN, i64=I64_MIN, u32=0, u64=0,
                       f32=16777216.0, f64=-1e21, raw=b"\x00", at=WEST_END, value="s"),
        "beyond53": Scalars(flag=True, text="\U0010FFFF", i=-BEYOND53, i32=-1, i64=BEYOND53, u32=1, u64=(1 << 63) + 1,
                            f32=0.5, f64=0.1, raw=b"", at=AMS, value=[]),
        "zero": Scalars(flag=False, text="", i=0, i32=0, i64=0, u32=0, u64=0, f32=0.0, f64=0.0, raw=b"", at=ZERO_TIME, value=None),
    }
    inner_nano = Inner(name="i", at=NANO_INDIA)
    optionals = {
        "empty": Optionals(),
        "set": Optionals(flag=True, text="t", i64=I64_MIN, u64=U64_MAX, f64=-0.5, at=NANO_INDIA, raw=b"", tags=[], meta={},
                         value=False, inner=inner_nano),
        "full": Optionals(flag=True, text=TEXT, i64=BEYOND53, u64=1, f64=1e300, at=AMS, raw=b"\x01\x02", tags=["a", ""],
                          meta={"k": [1, "v"], "n": None}, value={"x": None}, inner=Inner(name="", at=NANO_UTC)),
    }
    nested = {
        "full": Nested(inner=Inner(name="in", at=dt.datetime(2000, 1, 1, tzinfo=UTC)),
                       list_=[Inner(name="a", at=ZERO_TIME), Inner(name="b", at=NANO_INDIA)],
                       by_name={"x": Inner(name="x", at=ZERO_TIME), "": Inner(name="", at=ZERO_TIME), "\u00e9{}%": inner_nano},
                       matrix=[[I64_MIN, 0, I64_MAX], [], [BEYOND53]], deep={"d": [{"t": NANO_INDIA, "w": WEST_END}, {}], "": []},
                       class_="c", to_json_="j", type_=-7),
        "min": Nested(inner=Inner(name="", at=ZERO_TIME), list_=[], by_name={}, matrix=[], deep={}, class_="", to_json_="", type_=0),
    }
    envelope = {
        "full": Envelope(run_id="run-1", row=I64_MAX, sent_at=NANO_UTC,
                         data={"k": [1, "v", None, True], "nested": {"a": {}}, "f": 0.25, "big": 1e300},
                         scalars=scalars["max"], opts=[optionals["empty"], optionals["set"], optionals["full"]], nested=nested["full"],
                         times=[NANO_UTC, NANO_INDIA, WEST_END, AMS, ZERO_TIME], counts={"max": U64_MAX, "zero": 0, "\u00e9": BEYOND53},
                         blobs=[b"", b"\x00\xff", bytes(range(256))], items=[1, "x", None, False, [], {}],
                         ratios={"a": 0.5, "b": -0.1}, note="n", extra=nested["min"]),
        "sparse": Envelope(run_id="\u00e9", row=I64_MIN, sent_at=WEST_END, data={}, scalars=scalars["zero"], opts=[],
                           nested=nested["min"], times=[], counts={}, blobs=[], items=[], ratios={}),
        "naive_free": Envelope(run_id="r", row=-BEYOND53, sent_at=AMS, data={"t": "2026-01-02T03:04:05"}, scalars=scalars["beyond53"],
                               opts=[optionals["full"]], nested=nested["min"], times=[ZERO_TIME], counts={"": 1}, blobs=[b""],
                               items=[{"deep": [[[]]]}], ratios={"max": 3.4028235e38}, extra=nested["full"]),
    }
    return {"Scalars": scalars, "Optionals": optionals, "Nested": nested, "Envelope": envelope}


# What Go writes for a value Python cannot build: goValues' "nil_required"
# Envelope has nil slices and maps in its required fields, which Go writes
# as null and Python reads as [] and {} (the codec's one documented change).
def nil_required() -> Envelope:
    v = values()["Envelope"]["sparse"]
    return dataclasses.replace(v, run_id="nil")


def wire_offset(t: dt.datetime) -> dt.timedelta:
    """The offset a time has on the wire: its own, or UTC when it has seconds."""
    off = t.utcoffset()
    assert off is not None
    return off if off.total_seconds() % 60 == 0 else dt.timedelta(0)


def same_value(want: Any, got: Any, path: str, errs: List[str]) -> None:
    """Appends to errs where got differs from want: types exactly (bool is not
    int, int is not float), floats bit for bit, times as instant, offset on
    the wire and nanosecond, dataclasses field by field."""
    if isinstance(want, dt.datetime):
        if not isinstance(got, dt.datetime) or got.tzinfo is None:
            errs.append(f"{path}: want an aware datetime, got {type(got).__name__}")
        elif got != want or got.utcoffset() != wire_offset(want) or \
                getattr(got, "nanosecond", 0) != getattr(want, "nanosecond", 0):
            errs.append(f"{path}: want {want!r} (offset {wire_offset(want)}), got {got!r}")
        return
    if type(want) is not type(got):
        errs.append(f"{path}: want a {type(want).__name__}, got a {type(got).__name__} ({got!r:.80})")
        return
    if dataclasses.is_dataclass(want):
        for f in dataclasses.fields(want):
            same_value(getattr(want, f.name), getattr(got, f.name), f"{path}.{f.name}", errs)
    elif isinstance(want, list):
        if len(want) != len(got):
            errs.append(f"{path}: want {len(want)} elements, got {len(got)}")
        for i, (w, g) in enumerate(zip(want, got)):
            same_value(w, g, f"{path}[{i}]", errs)
    elif isinstance(want, dict):
        if set(want) != set(got):
            errs.append(f"{path}: want keys {sorted(want)!r}, got {sorted(got)!r}")
        for k in want:
            if k in got:
                same_value(want[k], got[k], f"{path}[{k!r}]", errs)
    elif isinstance(want, float):
        if not (want == got and math.copysign(1, want) == math.copysign(1, got)):
            errs.append(f"{path}: want {want!r}, got {got!r}")
    elif want != got:
        errs.append(f"{path}: want {want!r:.80}, got {got!r:.80}")


def redis_client(addr: str) -> Any:
    host, _, port = addr.rpartition(":")
    if not host.startswith("127."):
        raise SystemExit("xlang.py: the address must be on loopback")
    return importlib.import_module("redis.asyncio").Redis(host=host, port=int(port))


# The tuples of each side: Go writes with "go", Python with "py"; plain
# values hold what the plain layout inserts as is.
def tuples(side: str) -> Dict[str, Tuple[Any, ...]]:
    return {
        "mixed": (side + "_{src}%", "t:1"),
        "edge": (side + "_node_5", "node_8{x}%*é"),
        "tasks": (side + "-tenant",),
        "jobs": (side + "-tenant",),
        "events": (side, I64_MAX),
    }


def queue_keys(store: Store, side: str) -> Dict[str, Any]:
    t = tuples(side)
    return {
        "mixed": store.queues.mixed(*t["mixed"]).key,
        "edge": store.queues.edge(*t["edge"]).key,
        "tasks": store.queues.tasks(*t["tasks"]).key,
        "jobs": store.queues.jobs(*t["jobs"]).shard_keys(),
        "events": store.queues.events(*t["events"]).key,
        "output": store.caches.output(side + "-full").key,
        "latest": store.caches.latest(side + "-set").key,
    }


async def trip(r: Any) -> Dict[str, Any]:
    store = Store(r)
    vals = values()
    errs: List[str] = []
    checked = 0
    go = tuples("go")

    def check(want: Any, got: Any, path: str) -> None:
        nonlocal checked
        checked += 1
        same_value(want, got, path, errs)

    # 1. What Go wrote (names in sorted order; Go adds nil_required).
    envs = dict(vals["Envelope"], nil_required=nil_required())
    for qname in ("mixed", "edge"):
        q = store.queues.mixed(*go["mixed"]) if qname == "mixed" else store.queues.edge(*go["edge"])
        names = sorted(envs)
        got = await q.pop_many(len(names) + 1, 2)
        if len(got) != len(names):
            errs.append(f"{qname}: popped {len(got)} of Go's {len(names)} values")
        for name, g in zip(names, got):
            check(envs[name], g, f"go->py {qname}[{name}]")
    ev = store.queues.events(*go["events"])
    got_n = await ev.pop_many(10, 2)
    for name, g in zip(sorted(vals["Nested"]), got_n):
        check(vals["Nested"][name], g, f"go->py events[{name}]")
    if len(got_n) != len(vals["Nested"]):
        errs.append(f"events: popped {len(got_n)} of {len(vals['Nested'])}")
    for qname, want_vals in (("tasks", envs), ("jobs", vals["Scalars"])):
        rq: Any = store.queues.tasks(*go["tasks"]) if qname == "tasks" else store.queues.jobs(*go["jobs"])
        seen = set()
        for _ in range(50):
            if len(seen) >= len(want_vals):
                break
            for d in await rq.receive_many(10, 1):
                if d.attempt != 1 or d.id not in want_vals:
                    errs.append(f"{qname}: delivery {d.id!r} attempt {d.attempt}")
                else:
                    check(want_vals[d.id], d.value, f"go->py {qname}[{d.id}]")
                seen.add(d.id)
                await d.ack()
        if seen != set(want_vals):
            errs.append(f"{qname}: received {sorted(seen)} of {sorted(want_vals)}")
    for name, want in envs.items():
        check(want, await store.caches.output("go-" + name).get(), f"go->py output[{name}]")
    for name, want_o in vals["Optionals"].items():
        check(want_o, await store.caches.latest("go-" + name).get(), f"go->py latest[{name}]")
    check(Inner(name="forever", at=NANO_INDIA), await store.caches.forever().get(), "go->py forever")

    # 2. Python writes the same values with the "py" tuples.
    py = tuples("py")
    for name in sorted(vals["Envelope"]):
        await store.queues.mixed(*py["mixed"]).push(vals["Envelope"][name])
    await store.queues.edge(*py["edge"]).push_many([vals["Envelope"][n] for n in sorted(vals["Envelope"])])
    await store.queues.events(*py["events"]).push_many([vals["Nested"][n] for n in sorted(vals["Nested"])])
    for name, v in vals["Envelope"].items():
        await store.queues.tasks(*py["tasks"]).push_id(name, v)
        await store.caches.output("py-" + name).set(v)
    for name, s in vals["Scalars"].items():
        await store.queues.jobs(*py["jobs"]).push_id(name, s)
    for name, o in vals["Optionals"].items():
        await store.caches.latest("py-" + name).set(o)
    await store.caches.forever().set(Inner(name="forever-py", at=AMS))

    # 3. Refused before anything is sent: a naive datetime (top level and
    # nested) and ints out of their Go type's range, each naming the field.
    refused: Dict[str, str] = {}
    full = vals["Envelope"]["full"]
    naive = dt.datetime(2026, 1, 2, 3, 4, 5)
    bad: Dict[str, Callable[[], Envelope]] = {
        "sent_at": lambda: dataclasses.replace(full, sent_at=naive),
        "nested": lambda: dataclasses.replace(full, scalars=dataclasses.replace(full.scalars, at=naive)),
        "times": lambda: dataclasses.replace(full, times=[NANO_UTC, naive]),
        "u64": lambda: dataclasses.replace(full, scalars=dataclasses.replace(full.scalars, u64=1 << 64)),
        "i32": lambda: dataclasses.replace(full, scalars=dataclasses.replace(full.scalars, i32=I32_MAX + 1)),
        "row": lambda: dataclasses.replace(full, row=I64_MAX + 1),
    }
    before = await store.queues.mixed(*py["mixed"]).len()
    for what, make in bad.items():
        try:
            await store.queues.mixed(*py["mixed"]).push(make())
            refused[what] = "pushed"
        except EncodeError as e:
            refused[what] = str(e)
    if await store.queues.mixed(*py["mixed"]).len() != before:
        errs.append("a refused push reached the queue")
    return {"errors": errs, "checked": checked, "keys": queue_keys(store, "py"), "go_keys": queue_keys(store, "go"),
            "refused": refused}


async def produce(r: Any, qname: str, first: int, n: int) -> Dict[str, Any]:
    store = Store(r)
    rq: Any = store.queues.tasks("crash") if qname == "tasks" else store.queues.jobs("crash")
    v = values()
    for i in range(first, first + n):
        if qname == "tasks":
            await rq.push_id(f"id-{i}", dataclasses.replace(v["Envelope"]["sparse"], row=i, run_id="py"))
        else:
            await rq.push_id(f"id-{i}", dataclasses.replace(v["Scalars"]["zero"], i64=i, text="py"))
    return {"pushed": n}


async def consume(r: Any, qname: str, log: str, slow: float) -> Dict[str, Any]:
    store = Store(r)
    rq: Any = store.queues.tasks("crash") if qname == "tasks" else store.queues.jobs("crash")
    handled = 0
    deadline = time.monotonic() + 60  # the test kills it long before
    with open(log, "a", encoding="utf-8") as f:
        while time.monotonic() < deadline:
            d = await rq.receive(0.5)
            if d is None:
                continue
            f.write(f"{d.id} {d.attempt}\n")
            f.flush()
            os.fsync(f.fileno())
            if slow:
                await asyncio.sleep(slow)
            await d.ack()
            handled += 1
    return {"handled": handled}


# The Python storage system, as it is: no storagegen, json.dumps of dicts,
# datetimes written with isoformat().
SEED_SENT = dt.datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))


async def seed_write(r: Any, prefix: str) -> Dict[str, Any]:
    queue = f"{prefix}queue:queue_node_5_node_8{{x}}%*é"   # QueueMapper: queue_{source_id}_{target_id}
    msgs = [
        {"run_id": "run-1", "row": 1, "sent_at": SEED_SENT.isoformat(), "data": {"a": 1, "b": [True, None]}, "note": "ok"},
        {"run_id": "run-1", "row": 2, "sent_at": SEED_SENT.replace(tzinfo=None).isoformat(), "data": {}},  # naive: no zone
        {"run_id": "run-1", "row": I64_MAX, "sent_at": SEED_SENT.astimezone(UTC).isoformat(), "data": {"big": 1e300},
         "counts": {"u": U64_MAX}},
    ]
    for m in msgs:
        await r.lpush(queue, json.dumps(m))
    await r.set(f"{prefix}cache:node_node_1_output", json.dumps(msgs[0]))
    await r.setex(f"{prefix}cache:node_node_2_output", 3600, json.dumps(msgs[2]))
    return {"queue": queue, "pushed": len(msgs)}


async def seed_read(r: Any, prefix: str, n: int) -> Dict[str, Any]:
    queue = f"{prefix}queue:queue_go_5_go_8%{{y}}"
    got = []
    for _ in range(n):
        item = await r.brpop(queue, timeout=2)
        if item is None:
            break
        got.append(json.loads(item[1]))
    raw = await r.get(f"{prefix}cache:node_go_1_output")
    cache = json.loads(raw) if raw is not None else None
    # What the Python system does with a Go time: datetime.fromisoformat
    # (Python 3.11 reads RFC 3339 with Z and any fraction up to 6 digits).
    times = [dt.datetime.fromisoformat(m["sent_at"]).isoformat() for m in got]
    return {"got": got, "cache": cache, "times": times}


async def main(argv: List[str]) -> Dict[str, Any]:
    r = redis_client(argv[0])
    try:
        mode = argv[1]
        if mode == "trip":
            return await trip(r)
        if mode == "produce":
            return await produce(r, argv[2], int(argv[3]), int(argv[4]))
        if mode == "consume":
            return await consume(r, argv[2], argv[3], float(argv[4]))
        if mode == "seed-write":
            return await seed_write(r, argv[2])
        if mode == "seed-read":
            return await seed_read(r, argv[2], int(argv[3]))
        raise SystemExit(f"xlang.py: unknown mode {mode!r}")
    finally:
        await r.close()
        await r.connection_pool.disconnect()


if __name__ == "__main__":
    json.dump(asyncio.run(main(sys.argv[1:])), sys.stdout)
