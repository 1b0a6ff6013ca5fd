"""Edge values of the generated to_json/from_json (package pyinterop, from
internal/pyinterop/schema.yaml). Run by gen's TestPythonCodec."""

import copy
import datetime as dt
import json
import pickle
import unittest

from pyinterop import DecodeError, EncodeError, NanoDatetime
from pyinterop.types import Inner, Nested, Optionals, Scalars
from pyinterop._codec import ZERO_TIME, with_nanosecond

UTC = dt.timezone.utc


def scalars(**kw):
    base = dict(flag=False, text="", i=0, i32=0, i64=0, u32=0, u64=0, f32=0.0, f64=0.0, raw=b"", at=ZERO_TIME, value=None)
    base.update(kw)
    return Scalars(**base)


class Encode(unittest.TestCase):
    def test_naive_datetime_is_refused_naming_the_field(self):
        with self.assertRaises(EncodeError) as c:
            scalars(at=dt.datetime(2020, 1, 2, 3, 4, 5)).to_json()
        self.assertIn("Scalars.at", str(c.exception))
        self.assertIn("naive", str(c.exception))
        with self.assertRaises(EncodeError) as c:
            Nested(inner=Inner(name="x", at=ZERO_TIME), list_=[], by_name={"k": Inner(name="y", at=dt.datetime(2020, 1, 1))},
                   matrix=[], deep={}, class_="", to_json_="", type_=0).to_json()
        self.assertIn("Nested.by_name[*].at", str(c.exception))

    def test_int_edges_are_exact(self):
        v = scalars(i=-(1 << 63), i64=(1 << 63) - 1, u64=(1 << 64) - 1, i32=-(1 << 31), u32=(1 << 32) - 1)
        b = v.to_json()
        self.assertIn(b'"i64":9223372036854775807', b)
        self.assertIn(b'"u64":18446744073709551615', b)
        self.assertEqual(Scalars.from_json(b), v)

    def test_int_out_of_range_is_refused(self):
        for field, value in [("i64", 1 << 63), ("i", -(1 << 63) - 1), ("i32", 1 << 31), ("u32", -1), ("u64", 1 << 64)]:
            with self.assertRaises(EncodeError) as c:
                scalars(**{field: value}).to_json()
            self.assertIn("Scalars." + field, str(c.exception))
            self.assertNotIn(str(value), str(c.exception))

    def test_wrong_python_types_are_refused(self):
        for field, value in [("i", True), ("i", 1.0), ("text", b"x"), ("f64", "1"), ("raw", "x"), ("flag", 1), ("at", "2020-01-01T00:00:00Z")]:
            with self.assertRaises(EncodeError, msg=field) as c:
                scalars(**{field: value}).to_json()
            self.assertIn("Scalars." + field, str(c.exception))

    def test_a_value_of_another_type_is_refused(self):
        # The store's codecs call Type.to_json unbound: a value of another
        # payload type (a typo an untyped caller makes) must not be written
        # as if it were one, where a Go reader would take it for a zero value.
        other = Inner(name="x", at=ZERO_TIME)
        for bad in (other, {"flag": True}, None):
            with self.assertRaises(EncodeError, msg=repr(bad)) as c:
                Scalars.to_json(bad)
            self.assertIn("Scalars", str(c.exception))
        with self.assertRaises(EncodeError):
            Optionals.to_json(scalars())

    def test_floats(self):
        for bad in [float("nan"), float("inf")]:
            with self.assertRaises(EncodeError):
                scalars(f64=bad).to_json()
        with self.assertRaises(EncodeError) as c:
            scalars(f32=1e39).to_json()
        self.assertIn("Scalars.f32", str(c.exception))
        with self.assertRaises(EncodeError):
            scalars(value={"x": [float("nan")]}).to_json()
        with self.assertRaises(EncodeError):
            scalars(value=10 ** 400).to_json()

    def test_optional_fields_are_omitted_when_none_or_zero(self):
        self.assertEqual(Optionals().to_json(), b"{}")
        zero = Optionals(flag=False, text="", i64=0, u64=0, f64=-0.0, at=dt.datetime(1, 1, 1, tzinfo=UTC))
        self.assertEqual(zero.to_json(), b"{}")
        # A struct of zero values is omitted, as Go's omitzero omits it.
        self.assertEqual(Optionals(inner=Inner(name="", at=ZERO_TIME)).to_json(), b"{}")
        # Collections and any values are omitted only when None.
        kept = Optionals(raw=b"", tags=[], meta={}, value=0, inner=Inner(name="x", at=ZERO_TIME))
        self.assertEqual(json.loads(kept.to_json()), {"raw": "", "tags": [], "meta": {}, "value": 0, "inner": {"name": "x", "at": "0001-01-01T00:00:00Z"}})
        self.assertEqual(Optionals.from_json(b"{}"), Optionals())
        self.assertEqual(Optionals.from_json(b'{"text":null,"inner":null}'), Optionals())

    def test_times_like_go(self):
        at = with_nanosecond(dt.datetime(2020, 1, 2, 3, 4, 5, 120000, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))), 0)
        self.assertIn(b'"at":"2020-01-02T03:04:05.12+05:30"', scalars(at=at).to_json())
        self.assertIn(b'"at":"2020-01-02T03:04:05Z"', scalars(at=dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)).to_json())
        # An offset with seconds is written in UTC, as Go does.
        odd = dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(minutes=19, seconds=32)))
        self.assertIn(b'"at":"2020-01-02T02:44:33Z"', scalars(at=odd).to_json())
        self.assertIn(b'"at":"2020-01-02T03:04:05-01:00"', scalars(at=dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.timezone(-dt.timedelta(hours=1)))).to_json())

    def test_nanoseconds_survive_a_trip(self):
        for text in ["2020-01-02T03:04:05.123456789+05:30", "2020-01-02T03:04:05.000000001Z", "9999-12-31T23:59:59.999999999-23:59"]:
            b = ('{"name":"n","at":"%s"}' % text).encode()
            v = Inner.from_json(b)
            self.assertEqual(v.to_json(), b)
            self.assertIsInstance(v.at, NanoDatetime)
            self.assertEqual(pickle.loads(pickle.dumps(v)).to_json(), b)
            self.assertEqual(copy.deepcopy(v).to_json(), b)
        # Go truncates a longer fraction to nanoseconds.
        self.assertEqual(Inner.from_json(b'{"at":"2020-01-02T03:04:05.1234567899Z"}').to_json(), b'{"name":"","at":"2020-01-02T03:04:05.123456789Z"}')
        self.assertEqual(Inner.from_json(b'{"at":"2020-01-02T03:04:05-00:00"}').at.tzinfo, UTC)

    def test_bytes_are_standard_base64(self):
        v = scalars(raw=bytes(range(256)))
        self.assertEqual(Scalars.from_json(v.to_json()).raw, bytes(range(256)))
        self.assertIn(b'"raw":"aGk="', scalars(raw=b"hi").to_json())

    def test_keyword_fields_keep_their_json_names(self):
        n = Nested(inner=Inner(name="i", at=ZERO_TIME), list_=[Inner(name="a", at=ZERO_TIME)], by_name={},
                   matrix=[[1, -(1 << 63)], []], deep={"k": [{"t": ZERO_TIME}]}, class_="c", to_json_="j", type_=7)
        obj = json.loads(n.to_json())
        self.assertEqual((obj["class"], obj["to_json"], obj["type"], obj["list"][0]["name"]), ("c", "j", 7, "a"))
        self.assertEqual(Nested.from_json(n.to_json()), n)
        self.assertEqual(Nested.from_json(n.to_json().decode()), n)


class Decode(unittest.TestCase):
    def refused(self, data, *, path):
        with self.assertRaises(DecodeError) as c:
            (Nested if path.startswith("Nested") else Scalars).from_json(data)
        msg = str(c.exception)
        # A payload's own errors concern no key: "storagegen: <path>: ...".
        self.assertTrue(msg.startswith("storagegen: " + path), msg)
        self.assertNotIn("SECRET", msg)
        return msg

    def test_errors_name_the_field_and_never_the_payload(self):
        self.refused(b'{"i":"SECRET"}', path="Scalars.i")
        self.refused(b'{"text":["SECRET"]}', path="Scalars.text")
        self.refused(b'{"list":[{"name":"SECRET"},{"at":"SECRET"}]}', path="Nested.list[1].at")
        self.refused(b'{"by_name":{"SECRET":{"name":5}}}', path="Nested.by_name[*].name")
        self.refused(b'{"matrix":[[1],[2,"SECRET"]]}', path="Nested.matrix[1][1]")
        self.refused(b'{"deep":{"SECRET":[{"t":"2020-01-01T00:00:00"}]}}', path="Nested.deep[*][0][*]")
        self.refused(b'{"text":"SECRET", "i":1, "i":2}', path="Scalars")
        self.refused(b'{"text":"SECRET\xff"}', path="Scalars")

    def test_what_go_refuses(self):
        for data, path in [
            (b"null", "Scalars"), (b"[]", "Scalars"), (b'"x"', "Scalars"),
            (b'{"i":1.0}', "Scalars.i"), (b'{"i":1e2}', "Scalars.i"), (b'{"i":true}', "Scalars.i"),
            (b'{"i64":9223372036854775808}', "Scalars.i64"), (b'{"u64":-1}', "Scalars.u64"),
            (b'{"u64":18446744073709551616}', "Scalars.u64"), (b'{"i32":2147483648}', "Scalars.i32"),
            (b'{"f64":1e400}', "Scalars.f64"), (b'{"i64":1%s}' % (b"0" * 5000), "Scalars.i64"),
            (b'{"value":[1e400]}', "Scalars.value"), (b'{"value":{"a":-1e999}}', "Scalars.value"), (b'{"u64":-0}', "Scalars.u64"), (b'{"f64":NaN}', "Scalars"), (b'{"f32":3.4028236e38}', "Scalars.f32"),
            (b'{"value":{"a":1,"a":2}}', "Scalars"), (b'{"text":"\\ud800"}', "Scalars"), (b'{"value":["\\udc00"]}', "Scalars"),
            (b'{"raw":"aGk"}', "Scalars.raw"), (b'{"raw":"aG k="}', "Scalars.raw"), (b'{"raw":"aGk=\\n"}', "Scalars.raw"),
            (b'{"at":"2020-01-02T03:04:05"}', "Scalars.at"), (b'{"at":"2020-01-02t03:04:05z"}', "Scalars.at"),
            (b'{"at":"2020-01-02T24:00:00Z"}', "Scalars.at"), (b'{"at":"2020-01-02T23:59:60Z"}', "Scalars.at"),
            (b'{"at":"2020-02-30T00:00:00Z"}', "Scalars.at"), (b'{"at":"2020-01-02T03:04:05+24:00"}', "Scalars.at"),
            (b'{"at":"2020-01-02T03:04:05+0100"}', "Scalars.at"), (b'{"at":"0000-01-01T00:00:00Z"}', "Scalars.at"),
            (b'{"text":"a"} x', "Scalars"), (b"\xef\xbb\xbf{}", "Scalars"),
        ]:
            with self.subTest(data=data):
                self.refused(data, path=path)

    def test_what_go_accepts(self):
        v = Scalars.from_json(b' {"I":5, "unknown":[1,{"x":null}], "i":-0, "text":null, "f64":5, "f32":3.4028235e38, "u64":18446744073709551615, "raw":null, "value":12345678901234567890} ')
        self.assertEqual((v.i, v.text, v.f64, v.u64, v.raw, v.value, v.at), (0, "", 5.0, (1 << 64) - 1, b"", 12345678901234567890, ZERO_TIME))
        self.assertIsInstance(v.f64, float)
        n = Nested.from_json(b'{"list":null,"matrix":[[1],null],"inner":null}')
        self.assertEqual((n.list_, n.matrix, n.inner), ([], [[1], []], Inner(name="", at=ZERO_TIME)))
        self.assertEqual(Scalars.from_json('{"text":"\\ud83d\\ude00"}').text, "\U0001F600")
        # Members it does not know are skipped, whatever numbers they hold.
        big = b'{"unknown":[1e400, -1%s], "i":3}' % (b"0" * 5000)
        self.assertEqual(Scalars.from_json(big).i, 3)
        # -0 is -0.0 in a float64 and in an any value, as Go reads it.
        v = Scalars.from_json(b'{"f64":-0, "value":[-0, {"z":-0}]}')
        self.assertEqual(str(v.f64), "-0.0")
        self.assertEqual(json.dumps(v.value), "[-0.0, {\"z\": -0.0}]")


if __name__ == "__main__":
    unittest.main()
