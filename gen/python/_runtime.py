"""The generic runtime of the storagegen Python client: keys, at-most-once
queues, caches, and the plumbing every operation shares.

It is the Python twin of the Go runtime (package runtime and
internal/keyspace of storagegen): the same keys, escaping, limits, TTL
rules and protocol, so that Go and Python programs share queues and caches
on one Redis. The generated store.py builds Queue, Cache and ReliableQueue
objects from the declarations below; this file is hand-written and copied
verbatim into every generated package.

Talking to Redis. The runtime takes a ``redis.asyncio.Redis`` client
(redis-py 4.2 or later) and uses only its connection pool: it takes a
connection, sends its command with ``send_command``, reads the reply with
``read_response(disable_decoding=True)`` and gives the connection back. So
payloads stay bytes whatever the client's ``decode_responses``, no reply
callback rewrites a reply, and nothing is ever sent twice (redis-py's
``retry_on_timeout`` would send a push again after losing its reply).

Typing. redis-py 4.3 ships no type information (no py.typed) and later
versions do; the runtime must pass ``mypy --strict`` either way without
``type: ignore``. So it never imports redis for the type checker: the
client is described by the RedisClient protocol below (a read-only
``connection_pool``, which both an untyped and a typed Redis satisfy), the
pool and its connections by private protocols the pool is cast to, and the
few redis-py exception classes it tells apart are looked up at run time
with importlib.

Cancellation. redis-py 4.3 leaves a connection whose command was cancelled
mid-reply in the pool, and the next command on it reads the old reply. So
every command runs in a task of its own that a cancellation of the caller
does not reach: the caller's CancelledError is raised once the command has
its reply. A blocking pop is not abandoned either (an item the server
popped would be lost with the connection): it runs on a connection of its
own whose CLIENT ID is known, and a cancel ends the wait from another
connection with CLIENT UNBLOCK, as the Go runtime does; an item the server
had popped by then is put back at the tail of the queue, where it was,
before CancelledError propagates. CLIENT UNBLOCK goes on a control
connection kept outside the pool, so that ending a wait never needs a pool
connection that blocked waits may all hold. Where CLIENT ID or CLIENT
UNBLOCK is refused, waits are cut into 50 ms slices. A cancelled call
waits for a reply already asked for only so long (the pool's
socket_timeout, or 3 s): then it drops the connection (see _settle), as a
server that no longer answers would otherwise keep it forever.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import math
import os
import secrets
import weakref
from dataclasses import dataclass, field
from datetime import timedelta
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Final,
    Generic,
    List,
    Optional,
    Protocol,
    Sequence,
    Set,
    Tuple,
    TypeVar,
    Union,
    cast,
)

from ._errors import (
    DecodeError,
    EncodeError,
    InvalidArgument,
    OutOfMemory,
    PayloadTooLarge,
    PermissionDenied,
    StoragegenError,
    UnknownOutcome,
    go_quote,
)

__all__ = [
    "RedisClient",
    "Codec",
    "KeyPattern",
    "QueueDecl",
    "CacheDecl",
    "Queue",
    "Cache",
    "MAX_PAYLOAD_BYTES",
    "MAX_SHARDS",
    "NO_EXPIRY",
    "KEY_MISSING",
    "DEFAULT_LEASE",
    "DEFAULT_MAX_DELIVERIES",
    "DEFAULT_DEDUPE_WINDOW",
    "queue_key",
    "plain_queue_key",
    "cache_key",
    "dead_key",
    "shard_key",
    "shard_keys",
    "shard_of",
    "reliable_keys",
    "marker_key",
    "receipt_key",
    "check_prefix",
]

T = TypeVar("T")
R = TypeVar("R")

# The payload limit: Go's DefaultMaxPayloadBytes (16 MiB). A larger payload
# is refused before anything is written, and a larger stored one is refused
# as one that does not decode.
MAX_PAYLOAD_BYTES: Final = 16 << 20
# The most shards a queue may have (keyspace.MaxShards).
MAX_SHARDS: Final = 1024
# Cache.ttl's answers for a key without expiry and for a missing key (Go's
# runtime.NoExpiry and runtime.KeyMissing, as PTTL answers, in seconds).
NO_EXPIRY: Final = -1.0
KEY_MISSING: Final = -2.0
# The defaults of an at-least-once queue's settings, in seconds
# (keyspace.DefaultLease, DefaultMaxDeliveries, DefaultDedupeWindow).
DEFAULT_LEASE: Final = 30.0
DEFAULT_MAX_DELIVERIES: Final = 5
DEFAULT_DEDUPE_WINDOW: Final = 3600.0

_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_POLL_SLICE: Final = 0.05  # a blocking wait's slice where CLIENT UNBLOCK cannot be used
_MAX_SHARD_WAITS: Final = 8  # shards one pop or receive waits on at once
_SHARD_SWEEP_SLICE: Final = 0.1  # bounds a wait that does not cover every shard
_NS_PER_MS: Final = 1_000_000
# How long a cancelled call waits for the reply of a command already sent
# before it drops the connection, when the pool has no socket_timeout
# (go-redis's default read timeout, which bounds the same wait in Go).
_CANCEL_GRACE: Final = 3.0

Seconds = Union[float, int, timedelta]


# ---------------------------------------------------------------------------
# redis-py, as the runtime sees it


class RedisClient(Protocol):
    """What the runtime needs of a ``redis.asyncio.Redis`` client: its
    connection pool (a ``redis.asyncio.ConnectionPool``, or a Sentinel's).
    Any Redis client of redis-py 4.2 or later has one. A cluster client
    (RedisCluster) is not supported."""

    @property
    def connection_pool(self) -> Any: ...


class _Connection(Protocol):
    @property
    def is_connected(self) -> bool: ...

    async def send_command(self, *args: Any, **kwargs: Any) -> None: ...

    def pack_commands(self, commands: Any) -> Any: ...

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None: ...

    async def read_response(self, disable_decoding: bool = False) -> Any: ...

    async def disconnect(self) -> None: ...


class _Pool(Protocol):
    connection_kwargs: Dict[str, Any]

    async def get_connection(self, command_name: str, *keys: Any, **options: Any) -> _Connection: ...

    async def release(self, connection: _Connection) -> None: ...


def _exception_class(name: str) -> type[BaseException]:
    module = importlib.import_module("redis.exceptions")
    cls = getattr(module, name)
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        raise ImportError("redis.exceptions." + name + " is not an exception class")
    return cls


# Looked up at run time (see Typing above).
_ResponseError: Final = _exception_class("ResponseError")
_NoScriptError: Final = _exception_class("NoScriptError")
_NoPermissionError: Final = _exception_class("NoPermissionError")


def _server_text(err: BaseException) -> str:
    """The error reply err stands for, with the code redis-py strips."""
    text = str(err)
    if isinstance(err, _NoPermissionError) and not text.startswith("NOPERM"):
        return "NOPERM " + text
    if isinstance(err, _NoScriptError) and not text.startswith("NOSCRIPT"):
        return "NOSCRIPT " + text
    return text


def _is_server_error(err: BaseException) -> bool:
    return isinstance(err, _ResponseError)


class _LostReply(Exception):
    """A command failed after it may have been sent (Go: the reply was lost)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _wrap(op: str, key: str, err: BaseException, write: bool) -> StoragegenError:
    """The StoragegenError for err, a redis-py or network error of op on key."""
    if isinstance(err, StoragegenError):
        return err
    lost = isinstance(err, _LostReply)
    cause = err.cause if isinstance(err, _LostReply) else err
    if _is_server_error(cause):
        text = _server_text(cause)
        if text.startswith("OOM "):
            return OutOfMemory("server out of memory: " + text, op, key)
        if text.startswith("NOPERM") or "The user executing the script can't" in text:
            return PermissionDenied("permission denied: " + text, op, key)
        return StoragegenError(text, op, key)
    what = type(cause).__name__ + ": " + str(cause)
    if lost and write:
        if op == "pop":
            # As Go's: what an RPOP or BRPOP took went with its reply.
            what += " (items the server popped for this call, if any, are lost)"
        return UnknownOutcome(
            "outcome unknown: the reply was lost after sending, and the write was not sent again: " + what, op, key
        )
    return StoragegenError(what, op, key)


# ---------------------------------------------------------------------------
# Durations


def _to_ns(d: Seconds, what: str) -> int:
    """d, seconds or a timedelta, in integer nanoseconds: within Go's
    time.Duration (2**63-1 ns, about 292 years either way), or
    InvalidArgument, as a float's overflow or a huge int would otherwise
    raise OverflowError or reach the server."""
    if isinstance(d, timedelta):
        ns = (d.days * 86400 + d.seconds) * 1_000_000_000 + d.microseconds * 1000
    elif isinstance(d, bool) or not isinstance(d, (int, float)):
        raise InvalidArgument("%s must be seconds (a number) or a timedelta, got %s" % (what, type(d).__name__))
    elif isinstance(d, float) and not math.isfinite(d):
        raise InvalidArgument("%s %r is not finite" % (what, d))
    elif isinstance(d, int):
        ns = d * 1_000_000_000
    elif abs(d) >= 9.3e9:  # d * 1e9 may be infinite
        ns = _INT64_MAX + 1
    else:
        ns = round(d * 1e9)
    if not _INT64_MIN <= ns <= _INT64_MAX:
        raise InvalidArgument("%s is out of range: more than Go's time.Duration holds (about 292 years)" % what)
    return ns


def _fmt(ns: int) -> str:
    """ns as seconds, for messages."""
    return "%gs" % (ns / 1e9)


def _timeout_arg(seconds: float) -> str:
    """The timeout argument of a blocking command: decimal seconds with ms
    precision, rounded up, at least 1 ms (0 would block forever)."""
    ms = max(math.ceil(seconds * 1000), 1)
    return ("%d.%03d" % (ms // 1000, ms % 1000)).rstrip("0").rstrip(".")


# ---------------------------------------------------------------------------
# Keys (internal/keyspace)


def _always_escaped(b: int) -> bool:
    """The bytes that never appear raw in a value (keyspace.AlwaysEscaped)."""
    return b in b"%{}*?[]\\" or b < 0x20 or b == 0x7F


def _verbatim(b: int) -> bool:
    """The bytes that are never escaped: letters, digits, '-' and '.'."""
    return 0x61 <= b <= 0x7A or 0x41 <= b <= 0x5A or 0x30 <= b <= 0x39 or b == 0x2D or b == 0x2E


def _bquote(b: int) -> str:
    """A byte as Go's %q shows it."""
    if b == 0x27:
        return "'\\''"
    if b == 0x5C:
        return "'\\\\'"
    if 0x20 <= b < 0x7F:
        return "'" + chr(b) + "'"
    return "'\\x%02x'" % b if b < 0x80 else "'\\u%04x'" % b


def _encode(s: str) -> bytes:
    """A key or ID as bytes: UTF-8, with the bytes of a Go string that is
    not UTF-8 kept by surrogateescape."""
    return s.encode("utf-8", "surrogateescape")


def _decode_text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


_HEX: Final = "0123456789ABCDEF"


def _escape_to(out: bytearray, v: bytes, escape: Sequence[bool]) -> None:
    for c in v:
        if escape[c]:
            out += b"%" + _HEX[c >> 4].encode() + _HEX[c & 15].encode()
        else:
            out.append(c)


@dataclass(frozen=True)
class _Placeholder:
    name: str
    is_int: bool
    offset: int


class KeyPattern:
    """A parsed key pattern such as ``queue_{source_id}_{target_id}``: the
    grammar of Go's keyspace.ParsePattern, which it refuses what that
    refuses. ``expand`` escapes values as Go's Pattern.Expand does, byte
    for byte (the tagged layout); ``expand_plain`` inserts them as they are
    (``layout: plain``)."""

    def __init__(self, pattern: str) -> None:
        if not isinstance(pattern, str):
            raise InvalidArgument("key pattern must be a str, got %s" % type(pattern).__name__)
        self._pattern = pattern
        try:
            raw = pattern.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArgument("key pattern %s is not valid UTF-8" % go_quote(pattern)) from None
        errs: List[str] = []

        def fail(msg: str) -> None:
            errs.append("key pattern %s %s" % (go_quote(pattern), msg))

        if not raw:
            fail("is empty")
        seen: Set[str] = set()
        lit = bytearray()
        literals: List[bytes] = []
        placeholders: List[_Placeholder] = []
        i = 0
        while i < len(raw):
            c = raw[i]
            if c == 0x7B:  # {
                j = i + 1
                while j < len(raw) and raw[j] not in (0x7B, 0x7D):
                    j += 1
                if j == len(raw) or raw[j] == 0x7B:
                    fail('has unclosed "{" at offset %d' % i)
                    lit += raw[i:j]
                    i = j
                    continue
                body = raw[i + 1 : j].decode("utf-8", "surrogateescape")
                name, sep, typ = body.partition(":")
                is_int = False
                if body == "":
                    fail('has an empty placeholder "{}" at offset %d' % i)
                elif not sep or typ == "string":
                    pass
                elif typ == "int":
                    is_int = True
                else:
                    fail("has placeholder {%s} with unknown type %s (want string or int)" % (body, go_quote(typ)))
                if body != "" and name == "":
                    fail("has placeholder {%s} without a name" % body)
                if name != "" and name in seen:
                    fail("uses placeholder {%s} twice" % name)
                seen.add(name)
                if placeholders:
                    prev = placeholders[-1].name
                    if not lit:
                        fail("has placeholders {%s} and {%s} with no literal text between them" % (prev, name))
                    elif all(b < 0x80 and _verbatim(b) for b in lit):
                        fail(
                            "separates {%s} and {%s} only by %s; values may contain letters, digits, '-' and '.', "
                            "so put a separator such as ':' between them" % (prev, name, go_quote(lit.decode()))
                        )
                literals.append(bytes(lit))
                lit.clear()
                placeholders.append(_Placeholder(name, is_int, i))
                i = j + 1
            elif c == 0x7D:  # }
                fail('has "}" without a matching "{" at offset %d' % i)
                i += 1
            elif _always_escaped(c) or c == 0x20:
                fail(
                    "has %s at offset %d; literal text may not contain spaces, %% * ? [ ] \\ or control bytes"
                    % (_bquote(c), i)
                )
                i += 1
            elif c == 0x3C or c == 0x3E:
                fail(
                    "has %s at offset %d; literal text may not contain < or >, which the documentation uses to "
                    "show placeholders (<name>)" % (_bquote(c), i)
                )
                i += 1
            else:
                lit.append(c)
                i += 1
        literals.append(bytes(lit))
        if errs:
            raise InvalidArgument("\n".join(errs))
        escape = [_always_escaped(b) for b in range(256)]
        for l in literals:
            for b in l:
                if not _verbatim(b):
                    escape[b] = True
        self._literals: Tuple[bytes, ...] = tuple(literals)
        self._placeholders: Tuple[_Placeholder, ...] = tuple(placeholders)
        self._escape: Tuple[bool, ...] = tuple(escape)

    @property
    def pattern(self) -> str:
        """The pattern as written."""
        return self._pattern

    @property
    def placeholders(self) -> List[Tuple[str, str]]:
        """The placeholders in order, as (name, "string" or "int")."""
        return [(p.name, "int" if p.is_int else "string") for p in self._placeholders]

    def __repr__(self) -> str:
        return "KeyPattern(%r)" % self._pattern

    def __str__(self) -> str:
        return self._pattern

    def _check(self, args: Sequence[Union[str, int]]) -> None:
        if len(args) != len(self._placeholders):
            raise InvalidArgument(
                "invalid argument: key pattern %s takes %d arguments, got %d"
                % (go_quote(self._pattern), len(self._placeholders), len(args))
            )

    def _value(self, ph: _Placeholder, v: Union[str, int]) -> Union[bytes, int]:
        if isinstance(v, str):
            if ph.is_int:
                raise InvalidArgument("invalid argument: placeholder {%s} takes an int, got a string" % ph.name)
            if v == "":
                raise InvalidArgument("invalid argument: placeholder {%s} is empty" % ph.name)
            try:
                return v.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidArgument("invalid argument: placeholder {%s} is not valid UTF-8" % ph.name) from None
        if isinstance(v, int) and not isinstance(v, bool):
            if not ph.is_int:
                raise InvalidArgument("invalid argument: placeholder {%s} takes a string, got an int" % ph.name)
            if not _INT64_MIN <= v <= _INT64_MAX:
                raise InvalidArgument("invalid argument: placeholder {%s} is out of the range of int64" % ph.name)
            return v
        raise InvalidArgument(
            "invalid argument: placeholder {%s} takes a %s, got %s"
            % (ph.name, "int" if ph.is_int else "string", type(v).__name__)
        )

    def expand(self, *args: Union[str, int]) -> str:
        """The tagged layout's expansion: each string value escaped so that
        two argument tuples never give one key (Go's Pattern.Expand)."""
        self._check(args)
        out = bytearray()
        for i, ph in enumerate(self._placeholders):
            out += self._literals[i]
            v = self._value(ph, args[i])
            if isinstance(v, bytes):
                _escape_to(out, v, self._escape)
            else:
                out += str(v).encode()
        out += self._literals[-1]
        return _decode_text(bytes(out))

    def expand_plain(self, *args: Union[str, int]) -> str:
        """The plain layout's expansion: the values inserted as they are, as
        the Python storage system writes its keys. A value that is empty or
        has a control byte (0x00-0x1f, 0x7f) is refused."""
        self._check(args)
        out = bytearray()
        for i, ph in enumerate(self._placeholders):
            out += self._literals[i]
            v = self._value(ph, args[i])
            if isinstance(v, bytes):
                for b in v:
                    if b < 0x20 or b == 0x7F:
                        raise InvalidArgument(
                            "invalid argument: placeholder {%s} has control byte %s; a plain key may not contain "
                            "control bytes" % (ph.name, _bquote(b))
                        )
                out += v
            else:
                out += str(v).encode()
        out += self._literals[-1]
        return _decode_text(bytes(out))


def queue_key(prefix: str, name: str) -> str:
    """<prefix>queue:{<name>}: the braces are a Redis Cluster hash tag."""
    return prefix + "queue:{" + name + "}"


def plain_queue_key(prefix: str, expansion: str) -> str:
    """<prefix>queue:<expansion>, the key of a ``layout: plain`` queue."""
    return prefix + "queue:" + expansion


def cache_key(prefix: str, name: str) -> str:
    """<prefix>cache:<name>, in both layouts."""
    return prefix + "cache:" + name


def dead_key(queue_key: str) -> str:
    """The dead letters of the queue at queue_key, of either kind."""
    return queue_key + ":dead"


_RELIABLE_SUFFIXES: Final = (
    "",
    ":processing",
    ":leases",
    ":delayed",
    ":dead",
    ":items",
    ":attempts",
    ":errors",
    ":ready_at",
)


def reliable_keys(queue_key: str) -> List[str]:
    """The nine keys of the at-least-once queue at queue_key, in the order
    every script takes them as KEYS (keyspace.ReliableParts)."""
    return [queue_key + s for s in _RELIABLE_SUFFIXES]


def _suffix_key(queue_key: str, infix: str, s: str) -> str:
    out = bytearray(_encode(queue_key + infix))
    for c in _encode(s):
        if _always_escaped(c):
            out += b"%" + _HEX[c >> 4].encode() + _HEX[c & 15].encode()
        else:
            out.append(c)
    return _decode_text(bytes(out))


def paused_key(queue_key: str) -> str:
    """<Q>:paused, which exists while the at-least-once queue (or shard) at
    queue_key is paused (keyspace.PausedKey)."""
    return queue_key + ":paused"


def meta_key(queue_key: str) -> str:
    """<Q>:meta, ID -> push time and trace context, which Go pushers with an
    OpenTelemetry provider write beside the items of the at-least-once
    queue (or shard) at queue_key (keyspace.MetaKey). Python writes none,
    and deletes a field with its item (the ack and purge scripts)."""
    return queue_key + ":meta"


def marker_key(queue_key: str, id: str) -> str:
    """<Q>:id:<ID>, the marker of a push call, the ID escaped."""
    return _suffix_key(queue_key, ":id:", id)


def receipt_key(queue_key: str, token: str) -> str:
    """<Q>:rx:<token>, the receipt of one take, the token escaped."""
    return _suffix_key(queue_key, ":rx:", token)


def shard_key(prefix: str, name: str, i: int) -> str:
    """The key of shard i of the queue called name: shard 0 is the queue's
    own key, shard i > 0 is <prefix>queue:<i>:{<name>#<i>}."""
    if i == 0:
        return queue_key(prefix, name)
    return prefix + "queue:" + str(i) + ":{" + name + "#" + str(i) + "}"


def shard_keys(prefix: str, name: str, n: int) -> List[str]:
    """The keys of the n shards of the queue called name, shard 0 first."""
    return [shard_key(prefix, name, i) for i in range(max(n, 1))]


def shard_of(id: str, n: int) -> int:
    """The shard, of n, of the at-least-once item with id: FNV-1a (32
    bits) of the ID's bytes modulo n, as Go's keyspace.ShardOf."""
    if n <= 1:
        return 0
    h = 0x811C9DC5
    for b in _encode(id):
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h % n


def check_prefix(prefix: str) -> None:
    """Refuses a prefix that could not start every key (keyspace.CheckPrefix)."""
    for i, b in enumerate(_encode(prefix)):
        if _always_escaped(b) or b == 0x20:
            raise InvalidArgument(
                "prefix %s has %s at offset %d; a prefix may not contain spaces, %% { } * ? [ ] \\ or control bytes"
                % (go_quote(prefix), _bquote(b), i)
            )


def _new_token() -> str:
    """A random ID as Go's crypto/rand.Text makes one: 26 characters of the
    base32 alphabet, 128 bits and more."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return "".join(alphabet[b % 32] for b in secrets.token_bytes(26))


# ---------------------------------------------------------------------------
# Declarations


class Codec(Generic[T]):
    """How the payload type T is written and read: encode returns the JSON
    bytes (raising EncodeError), decode reads them (raising DecodeError).
    The runtime adds the operation and the key to their errors."""

    def __init__(self, type_name: str, encode: Callable[[T], bytes], decode: Callable[[bytes], T]) -> None:
        self.type_name = type_name
        self.encode = encode
        self.decode = decode


@dataclass(frozen=True)
class QueueDecl:
    """One queue of a schema. Times are seconds. ``shards`` 0 and 1 mean one
    list; ``lease``, ``max_deliveries`` and ``dedupe_window`` concern
    at-least-once queues (``reliable``), 0 taking the default."""

    name: str
    prefix: str
    key: KeyPattern
    layout: str = "tagged"
    shards: int = 1
    reliable: bool = False
    lease: float = DEFAULT_LEASE
    max_deliveries: int = DEFAULT_MAX_DELIVERIES
    dedupe_window: float = DEFAULT_DEDUPE_WINDOW

    def __post_init__(self) -> None:
        what = "queue %s: invalid argument: " % self.name
        check_prefix(self.prefix)
        if self.layout not in ("tagged", "plain"):
            raise InvalidArgument(what + "layout %s; want tagged or plain" % go_quote(self.layout))
        if not 0 <= self.shards <= MAX_SHARDS:
            raise InvalidArgument(what + "%d shards; want 1 to %d" % (self.shards, MAX_SHARDS))
        if self.layout == "plain" and self.reliable:
            raise InvalidArgument(what + "an at-least-once queue cannot have layout plain: its keys must share a hash tag")
        if self.layout == "plain" and self.shards > 1:
            raise InvalidArgument(what + "a queue with layout plain cannot have shards: shard keys are tagged")
        for name, v in (("lease", self.lease), ("dedupe window", self.dedupe_window)):
            ns = _to_ns(v, name)
            if ns < 0 or ns % _NS_PER_MS:
                raise InvalidArgument(what + "%s %s is not a positive number of milliseconds" % (name, _fmt(ns)))
        if self.max_deliveries < 0:
            raise InvalidArgument(what + "max deliveries %d < 1" % self.max_deliveries)


_DEFAULT_TTL: Final = 0.0


@dataclass(frozen=True)
class CacheDecl:
    """One cache of a schema. ``ttl`` is the schema's TTL in seconds, or
    None for ``ttl: none`` (no expiry); a TTL below 1 ms (0, the default,
    included) makes ``set`` fail, as Go's zero CacheDecl.TTL does."""

    name: str
    prefix: str
    key: KeyPattern
    layout: str = "tagged"
    ttl: Optional[float] = _DEFAULT_TTL

    def __post_init__(self) -> None:
        check_prefix(self.prefix)
        if self.layout not in ("tagged", "plain"):
            raise InvalidArgument(
                "cache %s: invalid argument: layout %s; want tagged or plain" % (self.name, go_quote(self.layout))
            )
        if self.ttl is not None:
            _to_ns(self.ttl, "ttl")


def _queue_key_of(decl: QueueDecl, args: Sequence[Union[str, int]]) -> Tuple[str, str]:
    """The queue's key and its name (the expansion), or InvalidArgument."""
    try:
        if decl.layout == "plain":
            name = decl.key.expand_plain(*args)
            return plain_queue_key(decl.prefix, name), name
        name = decl.key.expand(*args)
    except StoragegenError as e:
        raise InvalidArgument("queue %s: %s" % (decl.name, e.what), "", "") from None
    return queue_key(decl.prefix, name), name


# ---------------------------------------------------------------------------
# Running commands


def _load_scripts() -> Dict[str, Tuple[bytes, bytes]]:
    """lua/*.lua next to this file, composed as Go's scriptSource does:
    the #!lua line, the prelude, the script; and without the #!lua line."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lua")
    with open(os.path.join(here, "prelude.lua"), "rb") as f:
        prelude = f.read()
    out: Dict[str, Tuple[bytes, bytes]] = {}
    for name in os.listdir(here):
        if not name.endswith(".lua") or name == "prelude.lua":
            continue
        with open(os.path.join(here, name), "rb") as f:
            body = f.read()
        first, _, rest = body.partition(b"\n")
        if not first.startswith(b"#!lua"):
            raise ImportError("storagegen: lua/" + name + " does not start with #!lua")
        no_flags = prelude + rest
        out[name[: -len(".lua")]] = (first + b"\n" + no_flags, no_flags)
    return out


_scripts: Optional[Dict[str, Tuple[bytes, bytes]]] = None


def _script(name: str) -> Tuple[bytes, bytes]:
    global _scripts
    if _scripts is None:
        _scripts = _load_scripts()
    return _scripts[name]


class _State:
    """What the runtime keeps per connection pool (Go keeps it per
    DataStore): whether the server refused #!lua, whether CLIENT UNBLOCK
    works, the counters of sharded queues, when each at-least-once queue
    was last reclaimed, the promoters of delayed items."""

    def __init__(self) -> None:
        self.shebang_refused = False
        self.unblock = 0  # 0 unknown, 1 usable, 2 refused
        self.counters: Dict[str, List[int]] = {}  # shard 0's key -> [push, sweep start]
        self.reclaimed: Dict[str, float] = {}  # queue key -> loop time of the last reclaim
        self.promote_at: Dict[str, Tuple[float, asyncio.TimerHandle]] = {}
        self.tasks: Set["asyncio.Task[Any]"] = set()
        self.grace = _CANCEL_GRACE  # see _settle: the pool's socket_timeout, if it has one
        self.control: Optional[_Connection] = None  # for CLIENT UNBLOCK, outside the pool
        self.control_lock: Optional[asyncio.Lock] = None

    def next(self, key: str, which: int, step: int = 1) -> int:
        c = self.counters.setdefault(key, [0, 0])
        v = c[which]
        c[which] = v + step
        return v


_states: "weakref.WeakKeyDictionary[Any, _State]" = weakref.WeakKeyDictionary()
_strong_states: Dict[int, Tuple[Any, _State]] = {}


def _state_of(pool: Any) -> _State:
    try:
        st = _states.get(pool)
        if st is None:
            st = _State()
            _states[pool] = st
        return st
    except TypeError:  # a pool that takes no weak reference
        got = _strong_states.get(id(pool))
        if got is None or got[0] is not pool:
            got = (pool, _State())
            _strong_states[id(pool)] = got
        return got[1]


async def _settle(
    aw: Awaitable[R],
    on_cancel: Optional[Callable[[], None]] = None,
    grace: float = _CANCEL_GRACE,
    deadline: Optional[float] = None,
) -> Tuple["asyncio.Future[R]", bool]:
    """Runs aw to the end in a task of its own, whatever cancellations of
    the caller arrive meanwhile, and returns the task (done) and whether
    the caller was cancelled. on_cancel is called at the first cancel.

    A cancelled caller waits for aw's reply for grace seconds at most (or
    until deadline, a loop time, when given: the caller was cancelled
    earlier): then the task is cancelled, which drops the connection its
    command is on, and the returned task is a cancelled one. Without this
    bound a command on a silent connection (a server that no longer
    answers, and a pool without socket_timeout) would keep a cancelled
    caller waiting forever."""
    task = asyncio.ensure_future(aw)
    loop = asyncio.get_running_loop()
    cancelled = False
    abandoned = False
    while not task.done():
        timeout = None if deadline is None or abandoned else max(deadline - loop.time(), 0.0)
        try:
            await asyncio.wait({task}, timeout=timeout)
        except asyncio.CancelledError:
            if not cancelled:
                if on_cancel is not None:
                    on_cancel()
                if deadline is None:
                    deadline = loop.time() + grace
            cancelled = True
            continue
        if not task.done() and not abandoned and deadline is not None and loop.time() >= deadline:
            abandoned = True
            task.cancel()
    return task, cancelled


class _Redis:
    """The client of one Queue, Cache or ReliableQueue: commands on the
    pool's connections (see the module's doc), scripts, blocking waits."""

    def __init__(self, r: RedisClient) -> None:
        try:
            pool = r.connection_pool
        except AttributeError:
            raise InvalidArgument(
                "invalid argument: the client has no connection_pool; pass a redis.asyncio.Redis"
            ) from None
        if pool is None or not hasattr(pool, "get_connection"):
            raise InvalidArgument("invalid argument: the client's connection_pool cannot hand out connections")
        self.pool = cast(_Pool, pool)
        self.state = _state_of(pool)
        timeout = self.pool.connection_kwargs.get("socket_timeout") if hasattr(pool, "connection_kwargs") else None
        # A blocking command must return before the socket times out.
        self.max_block = max(float(timeout) / 2, 0.01) if isinstance(timeout, (int, float)) and timeout > 0 else 3600.0
        if isinstance(timeout, (int, float)) and timeout > 0:
            self.state.grace = float(timeout)

    # -- one round trip -----------------------------------------------------

    async def _exec(self, cmds: Sequence[Sequence[Any]]) -> List[Any]:
        """Sends cmds on one connection (pipelined) and returns their replies;
        an error reply is returned as the exception, not raised. A failure
        after sending began raises _LostReply."""
        conn = await self.pool.get_connection(str(cmds[0][0]))
        sent = False
        try:
            sent = True
            if len(cmds) == 1:
                await conn.send_command(*cmds[0])
            else:
                await conn.send_packed_command(conn.pack_commands(cmds))
            replies: List[Any] = []
            for _ in cmds:
                try:
                    replies.append(await conn.read_response(disable_decoding=True))
                except _ResponseError as e:
                    replies.append(e)
            return replies
        except BaseException as e:
            # The connection may hold a part of a reply: never reuse it.
            await conn.disconnect()
            if sent and isinstance(e, Exception) and not isinstance(e, _ResponseError):
                raise _LostReply(e) from e
            raise
        finally:
            await self.pool.release(conn)

    async def _one(self, args: Sequence[Any]) -> Any:
        reply = (await self._exec([args]))[0]
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def _script_inner(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        shebang, no_flags = _script(name)
        head: List[Any] = [len(keys)] + [_encode(k) for k in keys] + list(args)
        if not self.state.shebang_refused:
            try:
                return await self._eval(shebang, head)
            except _ResponseError as e:
                text = str(e)
                if not ("compiling script" in text and "'#'" in text):
                    raise
                self.state.shebang_refused = True
        return await self._eval(no_flags, head)

    async def _eval(self, text: bytes, head: List[Any]) -> Any:
        sha = hashlib.sha1(text).hexdigest()
        try:
            return await self._one(["EVALSHA", sha] + head)
        except _NoScriptError:
            return await self._one(["EVAL", text] + head)

    # -- what operations call -------------------------------------------------

    async def settled(
        self, op: str, key: str, aw: Awaitable[R], write: bool, deadline: Optional[float] = None
    ) -> Tuple[R, bool]:
        """aw's result, with its errors wrapped for op and key, and whether
        the caller was cancelled while it ran. An error when cancelled
        raises CancelledError, and so does aw given up (see _settle)."""
        task, cancelled = await _settle(aw, grace=self.state.grace, deadline=deadline)
        try:
            return task.result(), cancelled
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if cancelled:
                raise asyncio.CancelledError() from None
            raise _wrap(op, key, e, write) from (e.cause if isinstance(e, _LostReply) else e)

    async def call(self, op: str, key: str, *args: Any, write: bool = False) -> Any:
        """One command; a cancel of the caller takes effect after its reply."""
        reply, cancelled = await self.settled(op, key, self._one(args), write)
        if cancelled:
            raise asyncio.CancelledError()
        return reply

    async def pipeline(self, op: str, key: str, cmds: Sequence[Sequence[Any]]) -> List[Any]:
        """Read-only commands in one round trip; the first error reply raises."""
        replies, cancelled = await self.settled(op, key, self._exec(cmds), False)
        if cancelled:
            raise asyncio.CancelledError()
        for r in replies:
            if isinstance(r, BaseException):
                raise _wrap(op, key, r, False) from r
        return replies

    def script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Awaitable[Any]:
        """The script lua/<name>.lua with keys and args (EVALSHA, loading it
        when the server lacks it; without the #!lua line once the server
        refused it), for settled or call_script."""
        return self._script_inner(name, keys, args)

    async def call_script(
        self, op: str, key: str, name: str, keys: Sequence[str], args: Sequence[Any], write: bool = True
    ) -> Any:
        reply, cancelled = await self.settled(op, key, self.script(name, keys, args), write)
        if cancelled:
            raise asyncio.CancelledError()
        return reply

    # -- blocking waits -------------------------------------------------------

    async def _control(self, args: Sequence[Any]) -> Any:
        """One command (CLIENT UNBLOCK) on the pool's control connection: one
        connection of its own, made like the pool's but outside it, so that
        ending a blocking wait never needs a connection of the pool, which
        the blocked waits may hold every one of (redis-py's max_connections)."""
        st = self.state
        if st.control_lock is None:
            st.control_lock = asyncio.Lock()
        async with st.control_lock:
            conn = st.control
            if conn is None:
                pool = cast(Any, self.pool)
                conn = cast(_Connection, pool.connection_class(**pool.connection_kwargs))
                st.control = conn
            try:
                await conn.send_command(*args)
                return await conn.read_response(disable_decoding=True)
            except _ResponseError:
                raise
            except BaseException:
                # It may hold a part of a reply: never reuse it.
                st.control = None
                await _settle(conn.disconnect(), deadline=asyncio.get_running_loop().time())
                raise

    async def _blocking_conn(self) -> Tuple[_Connection, int]:
        """A connection for one blocking wait, and its CLIENT ID (0 when
        CLIENT UNBLOCK cannot be used)."""
        conn = await self.pool.get_connection("BLOCK")
        try:
            if self.state.unblock == 2:
                return conn, 0
            await conn.send_command("CLIENT", "ID")
            try:
                cid = int(await conn.read_response(disable_decoding=True))
            except _ResponseError:
                self.state.unblock = 2
                return conn, 0
            if self.state.unblock == 0:
                # A user may run CLIENT ID and not CLIENT UNBLOCK: one try,
                # on this connection's own ID (not blocked: a no-op), tells.
                try:
                    await self._control(["CLIENT", "UNBLOCK", cid])
                    self.state.unblock = 1
                except _ResponseError:
                    self.state.unblock = 2
                    return conn, 0
            return conn, cid
        except BaseException:
            await conn.disconnect()
            await self.pool.release(conn)
            raise

    async def _blocking_cmd(self, conn: _Connection, args: Sequence[Any], seconds: float) -> Any:
        try:
            await conn.send_command(*args, _timeout_arg(seconds))
            return await conn.read_response(disable_decoding=True)
        except _ResponseError:
            raise
        except BaseException as e:
            await conn.disconnect()
            if isinstance(e, Exception):
                raise _LostReply(e) from e
            raise

    async def _unblock_until(self, cid: int, inner: "asyncio.Future[Any]") -> None:
        """CLIENT UNBLOCK cid until it unblocks the client or inner ends. A
        zero reply means the command has not reached the server yet (or has
        returned): it is tried again shortly."""
        while not inner.done():
            try:
                if await self._control(["CLIENT", "UNBLOCK", cid]) == 1:
                    return
            except _ResponseError as e:
                text = _server_text(e)
                if text.startswith("NOPERM") or "unknown" in text.lower():
                    self.state.unblock = 2
                    return
            except Exception:
                return  # the server is away: inner ends with its read
            await asyncio.wait({inner}, timeout=0.002)

    async def block(
        self, op: str, key: str, args: Sequence[Any], wait: float, stop: Optional[asyncio.Event] = None
    ) -> Tuple[Any, bool]:
        """Runs the blocking command args (BRPOP, BLMOVE, without its
        timeout) for up to wait seconds, or until stop is set or the caller
        is cancelled, and returns its reply (None when nothing came) and
        whether the caller was cancelled. A reply that arrived is always
        returned: the caller puts back what a cancelled call took."""
        got, cancelled = await self.settled(op, key, self._blocking_conn(), False)
        conn, cid = got
        if cancelled:
            await _settle(self.pool.release(conn))
            return None, True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        give_up: Optional[float] = None  # after a cancel: see _settle
        try:
            while True:
                left = deadline - loop.time()
                if cancelled or left <= 0 or (stop is not None and stop.is_set()):
                    return None, cancelled
                use_unblock = cid != 0 and self.state.unblock != 2
                piece = min(left if use_unblock else min(left, _POLL_SLICE), self.max_block)
                inner = asyncio.ensure_future(self._blocking_cmd(conn, args, piece))
                if use_unblock:
                    waiters: Set["asyncio.Future[Any]"] = {inner}
                    stopper: Optional["asyncio.Task[bool]"] = None
                    if stop is not None:
                        stopper = asyncio.ensure_future(stop.wait())
                        waiters.add(stopper)
                    try:
                        # The server would end the wait on its next cron
                        # tick after piece (up to 1000/hz ms late): it is
                        # ended on time with CLIENT UNBLOCK instead.
                        await asyncio.wait(waiters, timeout=piece, return_when=asyncio.FIRST_COMPLETED)
                    except asyncio.CancelledError:
                        cancelled = True
                        give_up = loop.time() + self.state.grace
                    finally:
                        if stopper is not None:
                            stopper.cancel()
                    if not inner.done():
                        _, c = await _settle(self._unblock_until(cid, inner), grace=self.state.grace, deadline=give_up)
                        cancelled = cancelled or c
                # A BRPOP whose reply is lost took an item, or nothing: its
                # outcome is unknown. (A BLMOVE's ID stays in processing,
                # where a reclaim finds it.)
                reply, c = await self.settled(op, key, inner, args[0] == "BRPOP", give_up)
                cancelled = cancelled or c
                if reply is not None:
                    return reply, cancelled
        finally:
            await _settle(self.pool.release(conn))

    async def wait_shards(
        self, op: str, key: str, keys: Sequence[str], start: int, wait: float, limit: float
    ) -> Tuple[int, bool]:
        """Waits, taking nothing, until one of the shards keys has an item:
        a BLMOVE of each list onto its own tail (a wake-up, not a pop), on
        up to _MAX_SHARD_WAITS of them at once from start on, for up to
        wait seconds (at most _SHARD_SWEEP_SLICE when that is not all of
        them, and at most limit when positive). Returns the shard that
        woke first, or -1, and whether the caller was cancelled."""
        n = min(len(keys), _MAX_SHARD_WAITS)
        if n < len(keys):
            limit = min(limit, _SHARD_SWEEP_SLICE) if limit > 0 else _SHARD_SWEEP_SLICE
        if limit > 0:
            wait = min(wait, limit)
        stop = asyncio.Event()
        woke: List[int] = []

        async def one(i: int) -> None:
            k = _encode(keys[i])
            reply, _ = await self.block(op, key, ["BLMOVE", k, k, "RIGHT", "RIGHT"], wait, stop)
            if reply is not None:
                woke.append(i)
                stop.set()

        tasks = [asyncio.ensure_future(one((start + j) % len(keys))) for j in range(n)]
        done, cancelled = await _settle(asyncio.gather(*tasks, return_exceptions=True), stop.set)
        errors = [r for r in done.result() if isinstance(r, BaseException)]
        if woke:
            return woke[0], cancelled
        if errors and not cancelled:
            e = errors[0]
            raise _wrap(op, key, e, False) from e
        return -1, cancelled


# ---------------------------------------------------------------------------
# Encoding


def _encode_value(codec: Codec[T], v: T, op: str, key: str, index: Optional[int] = None) -> bytes:
    where = "" if index is None else "item %d: " % index
    try:
        data = codec.encode(v)
    except StoragegenError as e:
        raise EncodeError(where + e.what, op, key) from None
    except Exception as e:
        # The caller's own value, but its text stays out of the message.
        raise EncodeError(where + "encode %s: %s" % (codec.type_name, type(e).__name__), op, key) from None
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, (bytes, bytearray)):
        raise EncodeError(where + "encode %s: the codec returned %s, not bytes" % (codec.type_name, type(data).__name__), op, key)
    if len(data) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(where + "payload too large: %d bytes encoded, limit %d" % (len(data), MAX_PAYLOAD_BYTES), op, key)
    return bytes(data)


def _decode_value(codec: Codec[T], data: bytes) -> T:
    """data decoded, or a DecodeError / PayloadTooLarge without op and key
    (the caller adds them) whose text has no payload bytes."""
    if len(data) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge("payload too large: %d bytes stored, limit %d" % (len(data), MAX_PAYLOAD_BYTES))
    try:
        return codec.decode(data)
    except StoragegenError as e:
        raise DecodeError(e.what) from None
    except Exception as e:
        raise DecodeError("decode %s: %s" % (codec.type_name, type(e).__name__)) from None


def _refusal(e: StoragegenError, op: str, key: str, what: str, taken: Optional[List[Any]] = None) -> StoragegenError:
    """e (a decode refusal) again, for op and key, with what appended."""
    cls = PayloadTooLarge if isinstance(e, PayloadTooLarge) else DecodeError
    return cls(e.what + what, op, key, taken)


# ---------------------------------------------------------------------------
# At-most-once queues


class Queue(Generic[T]):
    """A typed at-most-once queue: a Redis list, LPUSH at the head, popped
    at the tail, shared with Go's runtime.Queue on the same key. An item
    lives only in the consumer's memory between pop and the end of its
    work. A bad placeholder value raises InvalidArgument here."""

    def __init__(self, r: RedisClient, decl: QueueDecl, codec: Codec[T], *args: Union[str, int]) -> None:
        if decl.reliable:
            raise InvalidArgument("queue %s: invalid argument: an at-least-once queue is a ReliableQueue" % decl.name)
        self._decl = decl
        self._codec = codec
        self._key, name = _queue_key_of(decl, args)
        self._r = _Redis(r)
        self._shards: Optional[List[str]] = None
        if decl.shards > 1:
            self._shards = shard_keys(decl.prefix, name, decl.shards)

    @property
    def key(self) -> str:
        """The queue's Redis key; for a sharded queue, shard 0's."""
        return self._key

    @property
    def dead_key(self) -> str:
        """Where items that cannot be decoded go (shard 0's, for a sharded queue)."""
        return dead_key(self._key)

    def shard_keys(self) -> List[str]:
        """The key of every shard, shard 0 (key) first; one for an unsharded queue."""
        return list(self._shards) if self._shards is not None else [self._key]

    async def push(self, value: T) -> None:
        """Appends value. It returns once value is stored, once. UnknownOutcome
        means the reply was lost: stored once or not at all, never twice.
        A cancel while the LPUSH is on its way takes effect after its reply."""
        await self.push_many([value])

    async def push_many(self, values: Sequence[T]) -> None:
        """Appends values with one LPUSH (per shard); they are popped in the
        order given. If any cannot be encoded or is too large, nothing is
        written."""
        items = [_encode_value(self._codec, v, "push", self._key, i) for i, v in enumerate(values)]
        if not items:
            return
        if self._shards is None:
            await self._r.call("push", self._key, "LPUSH", _encode(self._key), *items, write=True)
            return
        # Round-robin over the shards, one LPUSH per shard, concurrently.
        keys = self._shards
        start = self._r.state.next(self._key, 0, len(items))
        groups: Dict[int, List[bytes]] = {}
        for j, it in enumerate(items):
            groups.setdefault((start + j) % len(keys), []).append(it)
        order = sorted(groups)
        results = await asyncio.gather(
            *(self._r.call("push", keys[i], "LPUSH", _encode(keys[i]), *groups[i], write=True) for i in order),
            return_exceptions=True,
        )
        errs = [(order[k], e) for k, e in enumerate(results) if isinstance(e, BaseException)]
        for _, e in errs:
            if not isinstance(e, Exception):
                raise e
        if errs:
            first = errs[0][1]
            what = "; ".join(
                "%d of %d items: %s" % (len(groups[i]), len(items), e) for i, e in errs
            )
            cls = type(first) if isinstance(first, StoragegenError) else StoragegenError
            raise cls(what, "push", self._key)

    async def pop(self, timeout: Seconds = 0) -> Optional[T]:
        """Removes and returns the oldest item, waiting up to timeout
        seconds for one (0 returns at once); None when nothing came in
        time. An item that cannot be decoded is moved to the dead letters
        (dead_key) and DecodeError (or PayloadTooLarge) is raised. A
        cancel never loses an item: one the server had popped for this call
        is put back at the tail, where it was, before CancelledError."""
        got = await self._pop(1, timeout)
        return got[0] if got else None

    async def pop_many(self, n: int, timeout: Seconds = 0) -> List[T]:
        """Removes and returns up to n items, oldest first, waiting up to
        timeout for the first as pop does and taking the rest that are there.
        Items that cannot be decoded go to the dead letters; then the error
        is raised with the decoded items in its ``taken``."""
        return await self._pop(n, timeout)

    async def len(self) -> int:
        """The number of items in the queue (all shards)."""
        if self._shards is None:
            return int(await self._r.call("len", self._key, "LLEN", _encode(self._key)))
        replies = await self._r.pipeline("len", self._key, [["LLEN", _encode(k)] for k in self._shards])
        return sum(int(x) for x in replies)

    # -- popping ----------------------------------------------------------------

    async def _pop(self, n: int, timeout: Seconds) -> List[T]:
        ns = _to_ns(timeout, "timeout")
        if ns < 0:
            raise InvalidArgument("invalid argument: negative timeout %s" % _fmt(ns), "pop", self._key)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidArgument("invalid argument: count %r < 1" % (n,), "pop", self._key)
        if self._shards is None:
            raw = await self._take(self._key, n, ns / 1e9)
            return await self._accept(self._key, raw)
        return await self._pop_sharded(n, ns / 1e9)

    async def _take(self, key: str, n: int, wait: float) -> List[bytes]:
        """Up to n raw items off key, oldest first, waiting up to wait for the
        first; a cancelled call puts back what it took and raises."""
        k = _encode(key)
        reply, cancelled = await self._r.settled("pop", key, self._r._one(["RPOP", k, n]), True)
        items = [bytes(x) for x in reply] if reply else []
        if cancelled:
            await self._put_back(key, items)
        if items or wait <= 0:
            return items
        reply, cancelled = await self._r.block("pop", key, ["BRPOP", k], wait)
        if reply is not None:
            items = [bytes(reply[1])]
        if cancelled:
            await self._put_back(key, items)
        if not items or n == 1:
            return items
        # The rest that are there, sent once: a lost reply loses what it took.
        try:
            more, cancelled = await self._r.settled("pop", key, self._r._one(["RPOP", k, n - 1]), True)
        except StoragegenError as e:
            # The first item is taken: it is handed over with the error.
            err = await self._accept(key, items, keep_going=True)
            raise type(e)(e.what + "; the items that RPOP took are lost", "pop", key, err) from e
        items += [bytes(x) for x in more] if more else []
        if cancelled:
            await self._put_back(key, items)
        return items

    async def _put_back(self, key: str, items: List[bytes]) -> None:
        """Puts items, taken for a cancelled call, back at the tail where
        they were (the oldest last), and raises CancelledError."""
        if items:
            task, _ = await _settle(
                self._r._one(["RPUSH", _encode(key)] + list(reversed(items))),
                deadline=asyncio.get_running_loop().time() + self._r.state.grace,
            )
            if task.cancelled() or task.exception() is not None:
                raise asyncio.CancelledError(
                    "storagegen: pop %s: %d item(s) taken for a cancelled pop are lost: putting them back failed"
                    % (go_quote(key), len(items))
                )
        raise asyncio.CancelledError()

    async def _accept(self, key: str, items: List[bytes], keep_going: bool = False) -> List[T]:
        """Decodes items; those that do not decode go to the dead letters,
        and the error names them. keep_going returns the decoded values
        instead of raising (for an error of its own the caller raises)."""
        values: List[T] = []
        bad: List[bytes] = []
        refusal: Optional[StoragegenError] = None
        for it in items:
            try:
                values.append(_decode_value(self._codec, it))
            except StoragegenError as e:
                bad.append(it)
                refusal = e
        if refusal is None:
            return values
        what, cancelled = await self._dead_letter(key, bad)
        err = _refusal(refusal, "pop", key, what, values)
        if cancelled:
            good = [it for it in items if it not in bad]
            await self._put_back(key, good)
        if keep_going:
            return values
        raise err

    async def _dead_letter(self, key: str, bad: List[bytes]) -> Tuple[str, bool]:
        """Moves bad, popped from key, to its dead letters with the
        deadletter script (KEYS[1] the dead list, ARGV the items oldest
        first); if that fails, back to the tail of the queue. Returns what
        the error says about them."""
        dead = dead_key(key)
        task, cancelled = await _settle(self._r.script("deadletter", [dead], bad))
        derr = task.exception()
        if derr is None:
            return " (%d item(s) moved to %s)" % (len(bad), go_quote(dead)), cancelled
        dtext = str(_wrap("pop", key, derr, True).what)
        back, c2 = await _settle(self._r._one(["RPUSH", _encode(key)] + list(reversed(bad))))
        rerr = back.exception()
        cancelled = cancelled or c2
        if rerr is not None:
            return (
                "; %d item(s) are lost: moving them to %s failed (%s), and so did putting them back (%s)"
                % (len(bad), go_quote(dead), dtext, _wrap("pop", key, rerr, True).what),
                cancelled,
            )
        return (
            "; %d item(s) put back at the tail of the queue: moving them to %s failed (%s)"
            % (len(bad), go_quote(dead), dtext),
            cancelled,
        )

    async def _pop_sharded(self, n: int, wait: float) -> List[T]:
        keys = self._shards
        assert keys is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        first = -1
        while True:
            got = await self._sweep(n, first)
            if got or wait <= 0:
                return got
            left = deadline - loop.time()
            if left <= 0:
                return []
            start = self._r.state.next(self._key, 1) % len(keys)
            first, cancelled = await self._r.wait_shards("pop", self._key, keys, start, left, 0)
            if cancelled:
                raise asyncio.CancelledError()

    async def _sweep(self, n: int, first: int) -> List[T]:
        """Up to n items that are there: from the first shard, then from every
        other shard that has items, in turn."""
        keys = self._shards
        assert keys is not None
        start = first if first >= 0 else self._r.state.next(self._key, 1) % len(keys)
        out: List[T] = await self._accept(keys[start], await self._take(keys[start], n, 0))
        if len(out) >= n:
            return out
        try:
            lens = await self._r.pipeline("pop", self._key, [["LLEN", _encode(k)] for k in keys])
        except StoragegenError:
            if out:
                return out
            raise
        for j in range(1, len(keys)):
            if len(out) >= n:
                break
            i = (start + j) % len(keys)
            if not int(lens[i]):
                continue
            try:
                out += await self._accept(keys[i], await self._take(keys[i], n - len(out), 0))
            except (DecodeError, PayloadTooLarge) as e:
                raise type(e)(e.what, e.op, e.key, out + e.taken) from e
            except StoragegenError:
                if out:
                    return out
                raise
        return out


# ---------------------------------------------------------------------------
# Caches


class Cache(Generic[T]):
    """One typed cache entry: a Redis string written with SET ... PX, shared
    with Go's runtime.Cache on the same key. A bad placeholder value raises
    InvalidArgument here."""

    def __init__(self, r: RedisClient, decl: CacheDecl, codec: Codec[T], *args: Union[str, int]) -> None:
        self._decl = decl
        self._codec = codec
        try:
            name = decl.key.expand_plain(*args) if decl.layout == "plain" else decl.key.expand(*args)
        except StoragegenError as e:
            raise InvalidArgument("cache %s: %s" % (decl.name, e.what)) from None
        self._key = cache_key(decl.prefix, name)
        self._r = _Redis(r)

    @property
    def key(self) -> str:
        """The entry's Redis key."""
        return self._key

    async def get(self) -> Optional[T]:
        """The stored value, decoded into a fresh value; None on a miss (a
        miss is not an error). A value that cannot be decoded stays where
        it is and DecodeError is raised."""
        data = await self._r.call("get", self._key, "GET", _encode(self._key))
        if data is None:
            return None
        try:
            return _decode_value(self._codec, bytes(data))
        except StoragegenError as e:
            raise _refusal(e, "get", self._key, "") from None

    async def set(self, value: T) -> None:
        """Stores value with the schema's TTL (none for ``ttl: none``).
        UnknownOutcome means the reply was lost (the SET is not sent twice)."""
        ttl = self._decl.ttl
        await self._set(value, None if ttl is None else _to_ns(ttl, "ttl"))

    async def set_ttl(self, value: T, ttl: Seconds) -> None:
        """Stores value with ttl (seconds or a timedelta), at least 1 ms,
        truncated to whole milliseconds. Only the schema's ``ttl: none``
        stores without expiry."""
        ns = _to_ns(ttl, "ttl")
        if ns < _NS_PER_MS:
            raise InvalidArgument("invalid argument: ttl %s is below 1ms" % _fmt(ns), "set", self._key)
        await self._set(value, ns)

    async def _set(self, value: T, ns: Optional[int]) -> None:
        if ns is not None and ns < _NS_PER_MS:
            raise InvalidArgument("invalid argument: ttl %s is below 1ms" % _fmt(ns), "set", self._key)
        data = _encode_value(self._codec, value, "set", self._key)
        args: List[Any] = ["SET", _encode(self._key), data]
        if ns is not None:
            args += ["PX", ns // _NS_PER_MS]
        await self._r.call("set", self._key, *args, write=True)

    async def delete(self) -> bool:
        """Removes the entry and reports whether it existed."""
        return int(await self._r.call("delete", self._key, "DEL", _encode(self._key), write=True)) > 0

    async def exists(self) -> bool:
        """Whether the entry exists."""
        return int(await self._r.call("exists", self._key, "EXISTS", _encode(self._key))) > 0

    async def ttl(self) -> float:
        """The time the entry has left in seconds, to the millisecond:
        NO_EXPIRY (-1.0) if it never expires, KEY_MISSING (-2.0) if it does
        not exist."""
        ms = int(await self._r.call("ttl", self._key, "PTTL", _encode(self._key)))
        if ms == -2:
            return KEY_MISSING
        if ms == -1:
            return NO_EXPIRY
        return ms / 1000
