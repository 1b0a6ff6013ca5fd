"""The errors of the storagegen Python client.

Every error the package raises is a StoragegenError. Its message reads
``storagegen: <op> "<key>": <what>`` (or ``storagegen: <what>`` for an
error that concerns no key), like the Go runtime's errors, and never
carries payload bytes or a password. The subclasses mirror the Go
runtime's sentinel errors (runtime.ErrInvalidArgument, ErrDecode, ...), so
that ``except LeaseLost`` is what ``errors.Is(err, runtime.ErrLeaseLost)``
is in Go. An error from Redis or the network (redis-py's ConnectionError,
TimeoutError, a server's error reply) reaches the caller as a
StoragegenError whose ``__cause__`` is the redis-py exception.

This file is hand-written and copied verbatim into every generated package.
"""

from __future__ import annotations

from typing import Any, List, Optional

__all__ = [
    "StoragegenError",
    "InvalidArgument",
    "EncodeError",
    "DecodeError",
    "PayloadTooLarge",
    "LeaseLost",
    "UnknownOutcome",
    "OutOfMemory",
    "PermissionDenied",
    "go_quote",
]


def go_quote(s: str) -> str:
    """Quotes s as Go's strconv.Quote does for the text of a key: in double
    quotes, with backslash escapes for quotes, backslashes and bytes that
    are not printable (a key is shown, never a payload)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif 0xDC80 <= o <= 0xDCFF:
            # A byte that is not UTF-8, kept by surrogateescape.
            out.append("\\x%02x" % (o - 0xDC00))
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif o <= 0xFFFF:
            out.append("\\u%04x" % o)
        else:
            out.append("\\U%08x" % o)
    out.append('"')
    return "".join(out)


class StoragegenError(Exception):
    """The base of every error the package raises.

    ``op`` is the operation ("push", "pop", "get", "receive", "ack", ...)
    and ``key`` the full Redis key it concerned ("" when none); ``what``
    is the message without them. ``taken`` holds what the failing call took
    from a queue and could still hand over (``pop_many``'s decoded values,
    ``receive_many``'s deliveries) when the error concerns only part of
    what it took, as Go returns items together with an error: handle them,
    they are off the queue. It is empty otherwise.
    """

    op: str
    key: str
    what: str
    taken: List[Any]

    def __init__(self, what: str, op: str = "", key: str = "", taken: Optional[List[Any]] = None) -> None:
        self.op = op
        self.key = key
        self.what = what
        self.taken = list(taken) if taken is not None else []
        super().__init__(self._text())

    def _text(self) -> str:
        if not self.op:
            return "storagegen: " + self.what
        if not self.key:
            return "storagegen: " + self.op + ": " + self.what
        return "storagegen: " + self.op + " " + go_quote(self.key) + ": " + self.what

    def __str__(self) -> str:
        return self._text()

    def __reduce__(self) -> Any:
        return (self.__class__, (self.what, self.op, self.key))


class InvalidArgument(StoragegenError, ValueError):
    """An argument was refused before anything was sent: an empty or
    unusable key value, a negative timeout or TTL, a bad count or ID
    (Go: runtime.ErrInvalidArgument)."""


class EncodeError(StoragegenError, ValueError):
    """A value cannot be written (a naive datetime, an int out of its Go
    type's range, ...); the message names the field path. Nothing was
    written."""


class DecodeError(StoragegenError, ValueError):
    """Stored bytes do not decode as the payload type (Go: runtime.ErrDecode).
    The message names the field path, never the payload bytes.

    A queue item that fails to decode is moved to the queue's dead letters
    (an at-most-once queue) or counted as a failed delivery (an
    at-least-once queue) before this is raised; a cache value stays where
    it is. ``taken`` holds what the same call took and did decode.
    """


class PayloadTooLarge(StoragegenError, ValueError):
    """A payload is larger than the limit (16 MiB, Go's
    DefaultMaxPayloadBytes): nothing was written, or a stored one is
    refused as a decode failure is (Go: runtime.ErrPayloadTooLarge)."""


class LeaseLost(StoragegenError):
    """A delivery no longer holds its item: its lease ran out and a reclaim
    put the item back, or it was already acked or nacked
    (Go: runtime.ErrLeaseLost)."""


class UnknownOutcome(StoragegenError):
    """A write was sent and its reply was lost: it was applied once or not
    at all, never twice; it is not sent again (Go: runtime.ErrUnknownOutcome).
    For a pop, the items the server took are lost."""


class OutOfMemory(StoragegenError):
    """The server refused a write because its memory is full (maxmemory
    with noeviction); nothing was written (Go: runtime.ErrOutOfMemory)."""


class PermissionDenied(StoragegenError):
    """The server refused a command for the ACL user: a key or a command
    outside its rules (Go: runtime.ErrPermission)."""
