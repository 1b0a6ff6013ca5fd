package gen

// TEMPORARY, until the hand-written Python runtime (gen/python/_errors.py,
// _runtime.py, _reliable.py) is merged: minimal stand-ins with the names
// and signatures the generated store.py and _codec.py use, written ONLY
// into the tests' temporary package directories, and only for a module
// that gen/python does not have. Delete this file when the runtime lands.

var pyPlaceholders = map[string]string{
	"_errors.py": `"""TEMPORARY test stand-in for the runtime's errors."""


class StoragegenError(Exception):
    pass


class InvalidArgument(StoragegenError, ValueError):
    pass


class EncodeError(StoragegenError, ValueError):
    pass


class DecodeError(StoragegenError, ValueError):
    pass
`,
	"_runtime.py": `"""TEMPORARY test stand-in for the runtime: the signatures store.py uses."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Callable, Generic, Optional, Sequence, TypeVar

T = TypeVar("T")


class Codec(Generic[T]):
    def __init__(self, type_name: str, encode: Callable[[T], bytes], decode: Callable[[bytes], T]) -> None:
        self.type_name = type_name
        self.encode = encode
        self.decode = decode


class KeyPattern:
    def __init__(self, pattern: str) -> None:
        self.pattern = pattern


@dataclasses.dataclass(frozen=True)
class QueueDecl:
    name: str
    prefix: str
    key: KeyPattern
    layout: str = "tagged"
    shards: int = 1
    reliable: bool = False
    lease: float = 30.0
    max_deliveries: int = 5
    dedupe_window: float = 3600.0


@dataclasses.dataclass(frozen=True)
class CacheDecl:
    name: str
    prefix: str
    key: KeyPattern
    layout: str = "tagged"
    ttl: Optional[float] = None


class Queue(Generic[T]):
    def __init__(self, r: Any, decl: QueueDecl, codec: Codec[T], *args: str | int) -> None:
        self.codec = codec
        self.key = ""

    async def push(self, value: T) -> None:
        self.codec.encode(value)

    async def push_many(self, values: Sequence[T]) -> None:
        pass

    async def pop(self, timeout: float) -> Optional[T]:
        return None

    async def len(self) -> int:
        return 0


class Cache(Generic[T]):
    def __init__(self, r: Any, decl: CacheDecl, codec: Codec[T], *args: str | int) -> None:
        self.codec = codec

    async def get(self) -> Optional[T]:
        return None

    async def set(self, value: T) -> None:
        pass

    async def set_ttl(self, value: T, ttl: float | datetime.timedelta) -> None:
        pass

    async def delete(self) -> bool:
        return False
`,
	"_reliable.py": `"""TEMPORARY test stand-in for the at-least-once runtime."""

from __future__ import annotations

from typing import Any, Generic, Optional, TypeVar

from ._runtime import Codec, QueueDecl

T = TypeVar("T")


class Delivery(Generic[T]):
    value: T
    id: str
    attempt: int

    async def ack(self) -> None:
        pass


class ReliableQueue(Generic[T]):
    def __init__(self, r: Any, decl: QueueDecl, codec: Codec[T], *args: str | int) -> None:
        self.codec = codec

    async def push(self, value: T) -> str:
        return ""

    async def push_id(self, id: str, value: T) -> bool:
        return False

    async def receive(self, timeout: float) -> Optional[Delivery[T]]:
        return None
`,
}
