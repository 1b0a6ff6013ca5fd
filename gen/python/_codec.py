"""The JSON codec of the payload types: what the generated types.py calls.

It reads what the Go runtime's codec reads, and writes JSON that Go reads
back as the same value (encoding/json/v2 with its default, strict
settings):

- object member names match case-sensitively; unknown members are
  ignored; a duplicate member name anywhere is a decode error, as are
  invalid UTF-8, a lone surrogate (raw or escaped), NaN and Infinity, and
  a number outside the range of float64;
- a member that is missing or null reads as the zero value of its Go type
  ("" , 0, False, [], {}, b"", None for any, the zero time, a struct of
  zero values); a whole payload of null is a decode error;
- integers are range-checked by their Go type (int and int64, int32,
  uint32, uint64) on write and on read, and an integer field refuses a
  number written with a fraction or an exponent (1.0, 1e2), as Go does;
  Python ints are exact, so an int64 beyond 2**53 survives unchanged;
- float32 values are range-checked (Go rounds them to float32);
- a float is written as Python spells it (1.0, 1e-07, -0.0 where Go
  writes 1, 1e-7, -0): the same number in other bytes;
- []byte is standard base64 with padding;
- time.Time is RFC 3339 with a zone, written like Go's RFC3339Nano (the
  fraction trimmed of trailing zeros, Z for a zero offset, UTC when the
  offset has seconds); a naive datetime is refused on write. Go times
  carry nanoseconds, datetimes only microseconds: a time read with digits
  below the microsecond is a NanoDatetime, which keeps them and writes them
  back, so a Go time survives a trip through Python unchanged.

Errors name the field path (NodeMessage.sent_at, Flow.steps[2].name; a
map entry is [*], since its key is payload) and never contain the payload.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as _dt
import json
import math
import re
import struct
from typing import Any, Callable, Dict, List, NoReturn, Optional, TypeVar, Union

from ._errors import DecodeError, EncodeError

T = TypeVar("T")

Encoder = Callable[[Any, str], object]
Decoder = Callable[[object, str], T]


class NanoDatetime(_dt.datetime):
    """A datetime that also carries the nanoseconds below its microsecond.

    Payloads read from Go may hold times with nanoseconds; they decode to a
    NanoDatetime whose ``nanosecond`` (0-999) holds the digits a datetime
    cannot, and which writes them back. Comparison, hashing, arithmetic and
    replace() are datetime's: they ignore (and their results drop) the
    extra nanoseconds.
    """

    nanosecond: int = 0

    def __repr__(self) -> str:
        plain = repr(_plain(self))  # datetime.datetime(2020, 1, 2, 3, 4, 5, 123456, tzinfo=...)
        return "%s%s, nanosecond=%d)" % (type(self).__name__, plain[plain.index("(") : -1], self.nanosecond)

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (_nano, (_plain(self), self.nanosecond))


def _plain(t: _dt.datetime) -> _dt.datetime:
    return _dt.datetime(t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond, t.tzinfo, fold=t.fold)


def _nano(t: _dt.datetime, nanosecond: int) -> NanoDatetime:
    n = NanoDatetime(t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond, t.tzinfo, fold=t.fold)
    n.nanosecond = nanosecond
    return n


def with_nanosecond(t: _dt.datetime, nanosecond: int) -> NanoDatetime:
    """Returns t with nanosecond (0-999) below its microsecond."""
    if not 0 <= nanosecond <= 999:
        raise ValueError("nanosecond must be in 0..999")
    return _nano(t, nanosecond)


#: Go's zero time.Time, January 1, year 1, 00:00:00 UTC: what a missing or
#: null time reads as, and what an optional time is omitted at.
ZERO_TIME = _dt.datetime(1, 1, 1, tzinfo=_dt.timezone.utc)

_INT_RANGES = {
    "int": (-(1 << 63), (1 << 63) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    "int32": (-(1 << 31), (1 << 31) - 1),
    "uint32": (0, (1 << 32) - 1),
    "uint64": (0, (1 << 64) - 1),
}


def _kind(obj: object) -> str:
    """The JSON kind of a decoded value, for messages (never the value)."""
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "a JSON boolean"
    if isinstance(obj, (int, float, _OutOfRange)):
        return "a JSON number"
    if isinstance(obj, str):
        return "a JSON string"
    if isinstance(obj, list):
        return "a JSON array"
    return "a JSON object"


def _pytype(v: object) -> str:
    return type(v).__name__


def wrong_type(path: str, want: str, v: object) -> NoReturn:
    """Raises the EncodeError of a value of the wrong Python type."""
    raise EncodeError("%s: want %s, got %s" % (path, want, _pytype(v)))


def _check_str(v: str, path: str) -> None:
    if not v.isascii():
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise EncodeError("%s: string has a lone surrogate, which is not valid UTF-8" % path) from None


# --- encoders: (value, path) -> a value json.dumps writes as Go does ---


def enc_bool(v: object, path: str) -> object:
    if not isinstance(v, bool):
        wrong_type(path, "bool", v)
    return v


def enc_str(v: object, path: str) -> object:
    if not isinstance(v, str):
        wrong_type(path, "str", v)
    _check_str(v, path)
    return v


def _enc_int(v: object, path: str, go: str) -> object:
    if isinstance(v, bool) or not isinstance(v, int):
        wrong_type(path, "int", v)
    lo, hi = _INT_RANGES[go]
    if not lo <= v <= hi:
        raise EncodeError("%s: value out of range for Go %s" % (path, go))
    return int(v)


def enc_int(v: object, path: str) -> object:
    return _enc_int(v, path, "int")


def enc_int32(v: object, path: str) -> object:
    return _enc_int(v, path, "int32")


def enc_int64(v: object, path: str) -> object:
    return _enc_int(v, path, "int64")


def enc_uint32(v: object, path: str) -> object:
    return _enc_int(v, path, "uint32")


def enc_uint64(v: object, path: str) -> object:
    return _enc_int(v, path, "uint64")


def enc_float64(v: object, path: str) -> object:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        wrong_type(path, "float", v)
    try:
        f = float(v)
    except OverflowError:
        raise EncodeError("%s: value out of range for Go float64" % path) from None
    if not math.isfinite(f):
        raise EncodeError("%s: NaN and infinities have no JSON form" % path)
    return f


def enc_float32(v: object, path: str) -> object:
    f = enc_float64(v, path)
    try:
        struct.pack("<f", f)
    except OverflowError:
        raise EncodeError("%s: value out of range for Go float32" % path) from None
    return f


def enc_bytes(v: object, path: str) -> object:
    if not isinstance(v, (bytes, bytearray)):
        wrong_type(path, "bytes", v)
    return base64.b64encode(bytes(v)).decode("ascii")


def format_time(t: _dt.datetime, path: str) -> str:
    """Writes t as Go's RFC3339Nano does; refuses a naive t."""
    offset = t.utcoffset()
    if offset is None:
        raise EncodeError(
            "%s: naive datetime (no tzinfo); a Go time.Time has a zone: "
            "use an aware datetime such as datetime.now(timezone.utc)" % path
        )
    nanos = t.microsecond * 1000 + (t.nanosecond if isinstance(t, NanoDatetime) else 0)
    if offset % _dt.timedelta(minutes=1):
        # RFC 3339 offsets have no seconds: write the instant in UTC, as Go does.
        try:
            t = _plain(t).astimezone(_dt.timezone.utc)
        except OverflowError:
            raise EncodeError("%s: time out of range in UTC" % path) from None
        offset = _dt.timedelta(0)
    s = "%04d-%02d-%02dT%02d:%02d:%02d" % (t.year, t.month, t.day, t.hour, t.minute, t.second)
    if nanos:
        s += ("." + "%09d" % nanos).rstrip("0")
    if not offset:
        return s + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return s + "%s%02d:%02d" % (sign, minutes // 60, minutes % 60)


def enc_time(v: object, path: str) -> object:
    if not isinstance(v, _dt.datetime):
        wrong_type(path, "datetime", v)
    return format_time(v, path)


def enc_any(v: object, path: str) -> object:
    """Checks a JSON value (None, bool, int, float, str, list, dict with str
    keys) and returns it as json.dumps writes it."""
    try:
        return _enc_any(v, path)
    except RecursionError:
        raise EncodeError("%s: value nested too deeply" % path) from None


def _enc_any(v: object, path: str) -> object:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        try:
            float(v)
        except OverflowError:
            raise EncodeError("%s: integer out of range for a JSON number Go reads (float64)" % path) from None
        return int(v)
    if isinstance(v, float):
        return enc_float64(v, path)
    if isinstance(v, str):
        return enc_str(v, path)
    if isinstance(v, (list, tuple)):
        return [_enc_any(e, "%s[%d]" % (path, i)) for i, e in enumerate(v)]
    if isinstance(v, dict):
        out: Dict[str, object] = {}
        for k, e in v.items():
            if not isinstance(k, str):
                raise EncodeError("%s: object key is %s, want str" % (path, _pytype(k)))
            _check_str(k, path)
            out[k] = _enc_any(e, path + "[*]")
        return out
    wrong_type(path, "a JSON value (None, bool, int, float, str, list, dict)", v)


def enc_list(v: object, path: str, elem: Encoder) -> object:
    if not isinstance(v, (list, tuple)):
        wrong_type(path, "list", v)
    return [elem(e, "%s[%d]" % (path, i)) for i, e in enumerate(v)]


def enc_map(v: object, path: str, elem: Encoder) -> object:
    if not isinstance(v, dict):
        wrong_type(path, "dict", v)
    out: Dict[str, object] = {}
    for k, e in v.items():
        if not isinstance(k, str):
            raise EncodeError("%s: key is %s, want str" % (path, _pytype(k)))
        _check_str(k, path)
        out[k] = elem(e, path + "[*]")
    return out


def omitted(v: object) -> bool:
    """Reports whether an optional scalar or struct field is left out of
    the JSON: None, or the zero value of its Go type (Go's omitzero), so
    that Python writes the bytes Go writes. A struct is zero when each of
    its fields is: None, a zero scalar or a zero struct; a list, a dict or
    bytes, which Python writes as [], {} or "" and Go reads as non-nil, make
    it non-zero. (Optional bytes, lists, maps and any values are left out
    only when None.)"""
    if v is None or v is False or isinstance(v, str) and v == "":
        return True
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v == 0
    if isinstance(v, _dt.datetime):
        return v.utcoffset() is not None and v == ZERO_TIME and not (isinstance(v, NanoDatetime) and v.nanosecond)
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return all(omitted(getattr(v, f.name)) for f in dataclasses.fields(v))
    return False


def dumps(obj: Dict[str, object], type_name: str) -> bytes:
    """Writes an encoded payload compactly, as Go does."""
    try:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        raise EncodeError("%s: value cannot be written as JSON" % type_name) from None
    return text.encode("utf-8")


# --- decoders: (JSON value, path) -> the Python value ---


class _Refused(Exception):
    pass


def _object(pairs: List[Any]) -> Dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        raise _Refused("an object has a duplicate member name")
    return d


class _OutOfRange:
    """A JSON number beyond float64's range (or too long for Python's int
    parser). Go refuses it where a field or an any value holds it and skips
    it in a member it does not know; so does loads: the decoders of fields
    refuse it, and unknown members are never looked at."""

    __slots__ = ()


_OUT_OF_RANGE = _OutOfRange()


class _NegativeZero(int):
    """The JSON number -0 written without a fraction: 0 to Python's int,
    but Go refuses it for an unsigned field and reads it as -0.0 into a
    float64 (or an any value)."""


def _parse_float(s: str) -> object:
    f = float(s)
    if not math.isfinite(f):
        return _OUT_OF_RANGE
    return f


def _parse_int(s: str) -> object:
    if s == "-0":
        return _NegativeZero(0)
    try:
        n = int(s)
        float(n)
    except (ValueError, OverflowError):  # ValueError: beyond sys.get_int_max_str_digits()
        return _OUT_OF_RANGE
    return n


def _parse_constant(s: str) -> NoReturn:
    raise _Refused("NaN and Infinity are not JSON")


_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _has_surrogate(v: object) -> bool:
    if isinstance(v, str):
        return _SURROGATE.search(v) is not None
    if isinstance(v, list):
        return any(_has_surrogate(e) for e in v)
    if isinstance(v, dict):
        return any(_has_surrogate(k) or _has_surrogate(e) for k, e in v.items())
    return False


def loads(data: Union[bytes, bytearray, memoryview, str], type_name: str) -> Dict[str, object]:
    """Reads a whole payload, which must be a JSON object."""
    if isinstance(data, str):
        text = data
    elif isinstance(data, (bytes, bytearray, memoryview)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError("%s: not valid UTF-8 at byte %d" % (type_name, e.start)) from None
    else:
        raise DecodeError("%s: want bytes or str, got %s" % (type_name, _pytype(data)))
    try:
        obj = json.loads(
            text,
            object_pairs_hook=_object,
            parse_float=_parse_float,
            parse_int=_parse_int,
            parse_constant=_parse_constant,
        )
    except _Refused as e:
        raise DecodeError("%s: %s" % (type_name, e)) from None
    except json.JSONDecodeError as e:
        raise DecodeError("%s: not valid JSON: %s at line %d, column %d" % (type_name, e.msg, e.lineno, e.colno)) from None
    except (ValueError, RecursionError):
        raise DecodeError("%s: not valid JSON (a number too long, or nested too deeply)" % type_name) from None
    if (_SURROGATE.search(text) or _ESCAPED_SURROGATE.search(text)) and _has_surrogate(obj):
        raise DecodeError("%s: a string has a lone surrogate, which is not valid UTF-8" % type_name)
    if obj is None:
        raise DecodeError("%s: null is not a value of this type" % type_name)
    if not isinstance(obj, dict):
        raise DecodeError("%s: want a JSON object, got %s" % (type_name, _kind(obj)))
    return obj


def dec_object(obj: object, path: str) -> Dict[str, object]:
    """A struct's members; null (or a missing member) is a struct of zero
    values."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise DecodeError("%s: want a JSON object, got %s" % (path, _kind(obj)))
    return obj


def dec_bool(obj: object, path: str) -> bool:
    if obj is None:
        return False
    if not isinstance(obj, bool):
        raise DecodeError("%s: want a JSON boolean, got %s" % (path, _kind(obj)))
    return obj


def dec_str(obj: object, path: str) -> str:
    if obj is None:
        return ""
    if not isinstance(obj, str):
        raise DecodeError("%s: want a JSON string, got %s" % (path, _kind(obj)))
    return obj


def _dec_int(obj: object, path: str, go: str) -> int:
    if obj is None:
        return 0
    if isinstance(obj, _OutOfRange) or isinstance(obj, _NegativeZero) and go.startswith("uint"):
        raise DecodeError("%s: number out of range for Go %s" % (path, go))
    if isinstance(obj, float):
        raise DecodeError("%s: want an integer for Go %s, got a number with a fraction or exponent" % (path, go))
    if isinstance(obj, bool) or not isinstance(obj, int):
        raise DecodeError("%s: want a JSON number, got %s" % (path, _kind(obj)))
    lo, hi = _INT_RANGES[go]
    if not lo <= obj <= hi:
        raise DecodeError("%s: number out of range for Go %s" % (path, go))
    return int(obj)


def dec_int(obj: object, path: str) -> int:
    return _dec_int(obj, path, "int")


def dec_int32(obj: object, path: str) -> int:
    return _dec_int(obj, path, "int32")


def dec_int64(obj: object, path: str) -> int:
    return _dec_int(obj, path, "int64")


def dec_uint32(obj: object, path: str) -> int:
    return _dec_int(obj, path, "uint32")


def dec_uint64(obj: object, path: str) -> int:
    return _dec_int(obj, path, "uint64")


def dec_float64(obj: object, path: str) -> float:
    if obj is None:
        return 0.0
    if isinstance(obj, _OutOfRange):
        raise DecodeError("%s: number out of range for Go float64" % path)
    if isinstance(obj, _NegativeZero):
        return -0.0
    if isinstance(obj, bool) or not isinstance(obj, (int, float)):
        raise DecodeError("%s: want a JSON number, got %s" % (path, _kind(obj)))
    return float(obj)


def dec_float32(obj: object, path: str) -> float:
    f = dec_float64(obj, path)
    try:
        struct.pack("<f", f)
    except OverflowError:
        raise DecodeError("%s: number out of range for Go float32" % path) from None
    return f


def dec_bytes(obj: object, path: str) -> bytes:
    if obj is None:
        return b""
    if not isinstance(obj, str):
        raise DecodeError("%s: want a base64 JSON string, got %s" % (path, _kind(obj)))
    try:
        return base64.b64decode(obj.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise DecodeError("%s: not standard base64 with padding" % path) from None


_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(Z|([+-])([0-9]{2}):([0-9]{2}))\Z"
)


def parse_time(s: str, path: str) -> _dt.datetime:
    """Reads an RFC 3339 time as Go's codec does (strictly: T and Z upper
    case, a zone required, seconds below 60)."""
    m = _TIME.match(s)
    if m is None:
        raise DecodeError("%s: not an RFC 3339 time with a zone" % path)
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    frac = (m.group(7) or "")[:9].ljust(9, "0")
    if m.group(8) == "Z":
        tz: _dt.tzinfo = _dt.timezone.utc
    else:
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            raise DecodeError("%s: zone offset out of range" % path)
        off = _dt.timedelta(hours=oh, minutes=om)
        tz = _dt.timezone(-off if m.group(9) == "-" else off) if off else _dt.timezone.utc
    if year == 0:
        raise DecodeError("%s: year 0 is outside the range of Python's datetime (years 1 to 9999)" % path)
    if hour > 23 or minute > 59 or second > 59:
        raise DecodeError("%s: time of day out of range" % path)
    try:
        t = _dt.datetime(year, month, day, hour, minute, second, int(frac[:6]), tz)
    except ValueError:
        raise DecodeError("%s: date out of range" % path) from None
    nanosecond = int(frac[6:])
    return _nano(t, nanosecond) if nanosecond else t


def dec_time(obj: object, path: str) -> _dt.datetime:
    if obj is None:
        return ZERO_TIME
    if not isinstance(obj, str):
        raise DecodeError("%s: want an RFC 3339 JSON string, got %s" % (path, _kind(obj)))
    return parse_time(obj, path)


def dec_any(obj: object, path: str) -> Any:
    # loads has refused what Go refuses anywhere (duplicate names, lone
    # surrogates); Go reads every number of an any value as a float64, and
    # refuses one beyond its range, while Python keeps an integer an int.
    # The walk is iterative, so a deep value costs no recursion.
    if isinstance(obj, _OutOfRange):
        raise DecodeError("%s: number out of range for Go float64" % path)
    if isinstance(obj, _NegativeZero):
        return -0.0
    stack: List[object] = [obj]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            for i, e in enumerate(v):
                if isinstance(e, _OutOfRange):
                    raise DecodeError("%s: number out of range for Go float64" % path)
                if isinstance(e, _NegativeZero):
                    v[i] = -0.0
                elif isinstance(e, (list, dict)):
                    stack.append(e)
        elif isinstance(v, dict):
            for k, e in v.items():
                if isinstance(e, _OutOfRange):
                    raise DecodeError("%s: number out of range for Go float64" % path)
                if isinstance(e, _NegativeZero):
                    v[k] = -0.0
                elif isinstance(e, (list, dict)):
                    stack.append(e)
    return obj


def dec_list(obj: object, path: str, elem: Decoder[T]) -> List[T]:
    if obj is None:
        return []
    if not isinstance(obj, list):
        raise DecodeError("%s: want a JSON array, got %s" % (path, _kind(obj)))
    return [elem(e, "%s[%d]" % (path, i)) for i, e in enumerate(obj)]


def dec_map(obj: object, path: str, elem: Decoder[T]) -> Dict[str, T]:
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise DecodeError("%s: want a JSON object, got %s" % (path, _kind(obj)))
    return {k: elem(e, path + "[*]") for k, e in obj.items()}


def dec_optional(obj: object, path: str, dec: Decoder[T]) -> Optional[T]:
    """An optional field: None when missing or null (Go leaves it zero and
    omits it)."""
    if obj is None:
        return None
    return dec(obj, path)
