package runtime

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Sentinel errors, tested with errors.Is. Every error this package returns
// for an operation on a key is an *Error that wraps one of these or the
// underlying Redis or network error.
var (
	// ErrClosed is returned by every call made after DataStore.Close.
	ErrClosed = errors.New("data store is closed")
	// ErrDecode means a stored value could not be decoded into the payload
	// type. A queue item that fails to decode is moved to the queue's dead
	// letters, never dropped; a cache value stays where it is.
	ErrDecode = errors.New("decode")
	// ErrPayloadTooLarge means a payload is larger than
	// Options.MaxPayloadBytes. Nothing was written.
	ErrPayloadTooLarge = errors.New("payload too large")
	// ErrInvalidArgument means an argument was refused before anything was
	// sent: a negative timeout or TTL, an empty key value, a bad name.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrLeaseLost means a Delivery no longer holds its item: its lease ran
	// out and a reclaim put the item back (it will be, or has been,
	// delivered again), or the delivery was already acked or nacked.
	ErrLeaseLost = errors.New("lease lost")
)

// Error is the error returned by an operation. Its message starts with
// "storagegen: " (the project, not Go's runtime package), names the
// operation and the key, and never carries payload bytes or a password:
//
//	storagegen: push "flow:queue:{jobs}": …
//	storagegen: ping: …                    (a call without a key)
type Error struct {
	Op  string // "push", "pop", "len", "set", "get", "delete", "exists", "ttl", "receive", "ack", "ping", …
	Key string // the full Redis key, the pattern when no key could be built, or "" for a call without a key
	Err error
}

func (e *Error) Error() string {
	if e.Key == "" {
		return "storagegen: " + e.Op + ": " + e.Err.Error()
	}
	return "storagegen: " + e.Op + " " + strconv.Quote(e.Key) + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func opError(op, key string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Key: key, Err: err}
}

// joinErrors is errors.Join that returns a single error unwrapped.
func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// decodeError describes a JSON decoding failure without quoting the input:
// json's own messages include offending values and object member names,
// which are payload bytes. The original error stays reachable with
// errors.As for callers that want it.
type decodeError struct {
	typ string
	msg string
	err error
}

func (e *decodeError) Error() string { return "decode " + e.typ + ": " + e.msg }

func (e *decodeError) Unwrap() []error { return []error{ErrDecode, e.err} }

func newDecodeError(t reflect.Type, err error) error {
	msg := "invalid JSON"
	var syn *jsontext.SyntacticError
	var sem *json.SemanticError
	switch {
	case errors.As(err, &syn):
		what := "syntax error"
		switch {
		case errors.Is(syn.Err, jsontext.ErrDuplicateName):
			what = "duplicate object member name"
		case errors.Is(syn.Err, jsontext.ErrNonStringName):
			what = "object member name is not a string"
		case syn.Err != nil && syn.Err.Error() == "invalid UTF-8":
			what = "invalid UTF-8"
		}
		msg = fmt.Sprintf("%s at byte offset %d", what, syn.ByteOffset)
	case errors.As(err, &sem):
		msg = fmt.Sprintf("cannot decode JSON %s into %v at byte offset %d", kindName(sem.JSONKind), sem.GoType, sem.ByteOffset)
	}
	return &decodeError{typ: t.String(), msg: msg, err: err}
}

func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 'f', 't':
		return "boolean"
	case '"':
		return "string"
	case '0':
		return "number"
	case '{', '}':
		return "object"
	case '[', ']':
		return "array"
	}
	return "value"
}
