package runtime

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/go-json-experiment/json"
)

// The codec is encoding/json/v2 (github.com/go-json-experiment/json) with its
// default, strict settings, chosen once here:
//
//   - object member names match case-sensitively; unknown members are
//     ignored, so a consumer on an older build reads a newer producer's items;
//   - duplicate member names and invalid UTF-8 are decode errors;
//   - time.Time is RFC 3339 with nanoseconds; []byte is base64;
//   - nil slices and maps encode as null, so nil and empty both round-trip;
//   - numbers inside `any` decode as float64, exact up to 2^53: declare an
//     int64 field for larger integers;
//   - values decode into a fresh zero value, so no stale field survives.

// DefaultMaxPayloadBytes is the default Options.MaxPayloadBytes: 16 MiB.
const DefaultMaxPayloadBytes = 16 << 20

var encodeOptions = json.JoinOptions(json.FormatNilSliceAsNull(true), json.FormatNilMapAsNull(true))

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
	fresh := reflect.New(rv.Type().Elem())
	if err := json.Unmarshal(data, fresh.Interface()); err != nil {
		return newDecodeError(rv.Type().Elem(), err)
	}
	rv.Elem().Set(fresh.Elem())
	return nil
}

// checkTarget reports whether dst can receive a decoded value. The untyped
// API checks it before taking anything off a queue.
func checkTarget(dst any) error {
	if rv := reflect.ValueOf(dst); rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("%w: decode target must be a non-nil pointer, got %T", ErrInvalidArgument, dst)
	}
	return nil
}
