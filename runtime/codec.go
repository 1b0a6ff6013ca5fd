package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The codec is encoding/json/v2 (github.com/go-json-experiment/json) with its
// default, strict settings, chosen once here:
//
//   - object member names match case-sensitively; unknown members are
//     ignored, so a consumer on an older build reads a newer producer's items;
//   - duplicate member names and invalid UTF-8 are decode errors;
//   - time.Time is RFC 3339 with nanoseconds and keeps its offset; a time
//     whose offset has seconds (Europe/Amsterdam before 1937 was +00:19:32,
//     a time.FixedZone may have any) is written in UTC instead, because an
//     RFC 3339 offset has only hours and minutes and writing it would move
//     the instant by those seconds; []byte is base64;
//   - nil slices and maps encode as null, so nil and empty both round-trip;
//   - a whole payload of JSON null decodes only into a pointer, interface,
//     map or slice type, whose nil is what null stands for; into any other
//     type it is a decode error, never a zero value that looks real;
//   - numbers inside `any` decode as float64, exact up to 2^53: declare an
//     int64 field for larger integers;
//   - values decode into a fresh zero value, so no stale field survives.

// DefaultMaxPayloadBytes is the default Options.MaxPayloadBytes: 16 MiB.
const DefaultMaxPayloadBytes = 16 << 20

var encodeOptions = json.JoinOptions(
	json.FormatNilSliceAsNull(true),
	json.FormatNilMapAsNull(true),
	json.WithMarshalers(json.MarshalToFunc(encodeTime)),
)

// encodeTime writes a time.Time, wherever it sits in a payload (a field,
// an element, a map key or value, behind a pointer or an interface), in
// UTC when its zone offset has seconds, so that the instant read back is
// exact; other times are left to the codec's default, which keeps their
// offset.
func encodeTime(enc *jsontext.Encoder, t time.Time) error {
	if _, offset := t.Zone(); offset%60 == 0 {
		return errors.ErrUnsupported // the default encoding
	}
	return json.MarshalEncode(enc, t.UTC())
}

func encode(v any, limit int) ([]byte, error) {
	b, err := json.Marshal(v, encodeOptions)
	if err != nil {
		// Marshal errors name Go types and, for maps, keys; they come from
		// the caller's own value, but we still keep values out of the text.
		return nil, fmt.Errorf("%w: encode %T: %s", ErrInvalidArgument, v, encodeProblem(err))
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%w: %d bytes encoded, limit %d", ErrPayloadTooLarge, len(b), limit)
	}
	return b, nil
}

func encodeProblem(err error) string {
	var sem *json.SemanticError
	if errors.As(err, &sem) && sem.GoType != nil {
		return fmt.Sprintf("cannot encode Go %v", sem.GoType)
	}
	return "cannot encode value"
}

// decode decodes data into a fresh T.
func decode[T any](data []byte, limit int) (T, error) {
	var v T
	if len(data) > limit {
		return v, fmt.Errorf("%w: %d bytes stored, limit %d", ErrPayloadTooLarge, len(data), limit)
	}
	if err := checkNull(data, reflect.TypeFor[T]()); err != nil {
		return v, err
	}
	if err := json.Unmarshal(data, &v); err != nil {
		var zero T
		return zero, newDecodeError(reflect.TypeFor[T](), err)
	}
	return v, nil
}

// decodeInto decodes data into a fresh value of dst's element type and
// stores it in *dst, so that nothing of dst's old contents survives.
func decodeInto(data []byte, dst any, limit int) error {
	if err := checkTarget(dst); err != nil {
		return err
	}
	rv := reflect.ValueOf(dst)
	if len(data) > limit {
		return fmt.Errorf("%w: %d bytes stored, limit %d", ErrPayloadTooLarge, len(data), limit)
	}
	if err := checkNull(data, rv.Type().Elem()); err != nil {
		return err
	}
	fresh := reflect.New(rv.Type().Elem())
	if err := json.Unmarshal(data, fresh.Interface()); err != nil {
		return newDecodeError(rv.Type().Elem(), err)
	}
	rv.Elem().Set(fresh.Elem())
	return nil
}

// checkNull refuses a payload that is JSON null as a whole unless t has a
// nil for it to stand for (a pointer, interface, map or slice: the codec
// writes a nil one as null). json would leave a struct, string or number
// at its zero value and report success, so a raw null pushed by something
// else would pass for a real item.
func checkNull(data []byte, t reflect.Type) error {
	if !bytes.Equal(bytes.Trim(data, " \t\r\n"), []byte("null")) {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice:
		return nil
	}
	return newDecodeError(t, &json.SemanticError{JSONKind: 'n', GoType: t, Err: errNull})
}

var errNull = errors.New("null is not a value of this type")

// checkTarget reports whether dst can receive a decoded value. The untyped
// API checks it before taking anything off a queue.
func checkTarget(dst any) error {
	if rv := reflect.ValueOf(dst); rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("%w: decode target must be a non-nil pointer, got %T", ErrInvalidArgument, dst)
	}
	return nil
}
