"""A tiny hand-written store over the runtime, as the generator would emit
one, with JSON objects (dicts) as payloads: the package the runtime's tests
and the Go/Python interop tests use. The Go tests (internal/pytest) declare
the same queues and caches with the same prefix and patterns."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

from ._errors import DecodeError, EncodeError
from ._reliable import ReliableQueue
from ._runtime import Cache, CacheDecl, Codec, KeyPattern, Queue, QueueDecl, RedisClient

PREFIX = "pyt:"

Msg = Dict[str, Any]


def _encode(v: Msg) -> bytes:
    if not isinstance(v, dict):
        raise EncodeError("encode Msg: not a dict")
    try:
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise EncodeError("encode Msg: " + type(e).__name__) from None


def _no_duplicates(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise DecodeError("decode Msg: duplicate object member name")
        out[k] = v
    return out


def _decode(data: bytes) -> Msg:
    try:
        v = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise DecodeError("decode Msg: invalid UTF-8") from None
    except json.JSONDecodeError as e:
        raise DecodeError("decode Msg: syntax error at byte offset %d" % e.pos) from None
    if not isinstance(v, dict):
        raise DecodeError("decode Msg: cannot decode JSON %s into an object" % type(v).__name__)
    return v


MSG: Codec[Msg] = Codec("Msg", _encode, _decode)

EDGE = QueueDecl(name="edge", prefix=PREFIX, key=KeyPattern("queue_{source_id}_{target_id}"))
PLAIN_EDGE = QueueDecl(name="plain_edge", prefix=PREFIX, key=KeyPattern("plain_{source_id}_{target_id}"), layout="plain")
SHARDED = QueueDecl(name="sharded", prefix=PREFIX, key=KeyPattern("sh:{name}"), shards=4)
JOBS = QueueDecl(name="jobs", prefix=PREFIX, key=KeyPattern("jobs:{tenant}"), reliable=True, lease=30.0, max_deliveries=3)
SHORT = QueueDecl(name="short", prefix=PREFIX, key=KeyPattern("short:{tenant}"), reliable=True, lease=0.3, max_deliveries=2)
SJOBS = QueueDecl(name="sjobs", prefix=PREFIX, key=KeyPattern("sjobs:{tenant}"), reliable=True, shards=3)
OUTPUT = CacheDecl(name="output", prefix=PREFIX, key=KeyPattern("{node_id}_output"), ttl=3600.0)
PLAIN_OUTPUT = CacheDecl(name="plain_output", prefix=PREFIX, key=KeyPattern("{node_id}_output"), layout="plain", ttl=60.0)
SETTINGS = CacheDecl(name="settings", prefix=PREFIX, key=KeyPattern("settings:{name}"), ttl=None)
ATTEMPT = CacheDecl(name="attempt", prefix=PREFIX, key=KeyPattern("attempt:{run_id}:{n:int}"), ttl=86400.0)
UNSET = CacheDecl(name="unset", prefix=PREFIX, key=KeyPattern("unset:{k}"))


class Queues:
    def __init__(self, r: RedisClient) -> None:
        self._r = r

    def edge(self, source_id: str, target_id: str) -> Queue[Msg]:
        return Queue(self._r, EDGE, MSG, source_id, target_id)

    def plain_edge(self, source_id: str, target_id: str) -> Queue[Msg]:
        return Queue(self._r, PLAIN_EDGE, MSG, source_id, target_id)

    def sharded(self, name: str) -> Queue[Msg]:
        return Queue(self._r, SHARDED, MSG, name)

    def jobs(self, tenant: str) -> ReliableQueue[Msg]:
        return ReliableQueue(self._r, JOBS, MSG, tenant)

    def short(self, tenant: str) -> ReliableQueue[Msg]:
        return ReliableQueue(self._r, SHORT, MSG, tenant)

    def sjobs(self, tenant: str) -> ReliableQueue[Msg]:
        return ReliableQueue(self._r, SJOBS, MSG, tenant)


class Caches:
    def __init__(self, r: RedisClient) -> None:
        self._r = r

    def output(self, node_id: str) -> Cache[Msg]:
        return Cache(self._r, OUTPUT, MSG, node_id)

    def plain_output(self, node_id: str) -> Cache[Msg]:
        return Cache(self._r, PLAIN_OUTPUT, MSG, node_id)

    def settings(self, name: str) -> Cache[Msg]:
        return Cache(self._r, SETTINGS, MSG, name)

    def attempt(self, run_id: str, n: int) -> Cache[Msg]:
        return Cache(self._r, ATTEMPT, MSG, run_id, n)

    def unset(self, k: str) -> Cache[Msg]:
        return Cache(self._r, UNSET, MSG, k)


class Store:
    def __init__(self, r: RedisClient) -> None:
        self.queues = Queues(r)
        self.caches = Caches(r)
