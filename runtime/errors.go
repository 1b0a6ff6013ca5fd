package runtime

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/storagegen/storagegen/internal/keyspace"
)

// Sentinel errors, tested with errors.Is. Every error this package returns
// for an operation on a key is an *Error that wraps one of these or the
// underlying Redis or network error.
var (
	// ErrClosed is returned by every call made after DataStore.Close.
	ErrClosed = errors.New("data store is closed")
	// ErrDecode means a stored value could not be decoded into the payload
	// type. A queue item that fails to decode is moved to the queue's dead
	// letters, or put back where it was when the server refuses that
	// write; a cache value stays where it is. (Only a server that refuses
	// both writes, a full one before Redis 7, can lose it, and the error
	// then says so.)
	ErrDecode = errors.New("decode")
	// ErrPayloadTooLarge means a payload is larger than
	// Options.MaxPayloadBytes. Nothing was written.
	ErrPayloadTooLarge = errors.New("payload too large")
	// ErrInvalidArgument means an argument was refused before anything was
	// sent: a negative timeout or TTL, an empty key value, a bad name.
	ErrInvalidArgument = keyspace.ErrInvalidArgument
	// ErrLeaseLost means a Delivery no longer holds its item: its lease ran
	// out and a reclaim put the item back (it will be, or has been,
	// delivered again), or the delivery was already acked or nacked.
	ErrLeaseLost = errors.New("lease lost")
	// ErrPoolExhausted means a blocking pop (Pop or Receive with a
	// timeout) found all Options.BlockingPoolSize blocking connections in
	// use for its whole timeout, so it never waited on the queue. Nothing
	// was taken.
	ErrPoolExhausted = errors.New("blocking pool exhausted")
	// ErrUnknownOutcome means a write (a push, a cache set, a non-blocking
	// pop) was sent and its reply was lost: the connection failed or timed
	// out after the command may have reached the server. It was applied
	// once or not at all, never twice: such writes are not sent again.
	// For a pop, items the server took are lost.
	ErrUnknownOutcome = errors.New("outcome unknown: the reply was lost after sending, and the write was not sent again")
	// ErrOutOfMemory means the server refused a write because its memory
	// is full (maxmemory reached with the noeviction policy: Redis's
	// "OOM command not allowed" reply, which the error also wraps).
	// Nothing was written; reads, acks and receives go on working.
	ErrOutOfMemory = errors.New("server out of memory")
	// ErrPermission means the server refused a command because the ACL
	// user lacks the permission: a key outside its key patterns, or a
	// command outside its rules (Redis's NOPERM reply, or inside a script
	// "The user executing the script can't ...", which the error also
	// wraps). Nothing was done; the same call fails the same way until the
	// user's rules change (see the README's "Least privilege").
	ErrPermission = errors.New("permission denied")
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

// decodeError describes a JSON decoding failure without quoting the input:
// json's own messages include offending values and object member names,
// which are payload bytes. It names the failing field and its JSON pointer
// instead, built only from names the Go type declares (see safePointer).
// The original error stays reachable with errors.As for callers that want
// it.
type decodeError struct {
	typ string
	msg string
	err error
}

func (e *decodeError) Error() string { return "decode " + e.typ + ": " + e.msg }

func (e *decodeError) Unwrap() []error { return []error{ErrDecode, e.err} }

// newDecodeError reports err, from decoding into t, as
//
//	field sent_at (/sent_at): cannot decode JSON string into time.Time
//	field a (/a): duplicate object member name at byte offset 7
//	invalid UTF-8 at byte offset 1
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
		msg = where(t, syn.JSONPointer) + fmt.Sprintf("%s at byte offset %d", what, syn.ByteOffset)
	case errors.As(err, &sem):
		msg = where(t, sem.JSONPointer) + "cannot decode JSON " + kindName(sem.JSONKind)
		if sem.GoType != nil {
			msg += " into " + sem.GoType.String()
		}
		if noZone(err) {
			msg += ": the time has no zone offset (RFC 3339 needs Z or ±hh:mm; write an aware datetime from Python)"
		}
	}
	return &decodeError{typ: t.String(), msg: msg, err: err}
}

// noZone reports a time that ends where RFC 3339 wants its zone offset,
// such as "2026-01-02T03:04:05.123456" (what Python's isoformat() writes
// for a naive datetime). It looks only at the layout element that failed
// and at whether any input was left, never at the input's text.
func noZone(err error) bool {
	var pe *time.ParseError
	return errors.As(err, &pe) && pe.LayoutElem == "Z07:00" && pe.ValueElem == ""
}

// where returns "field NAME (POINTER): " for the JSON pointer p into a
// value of type t, "at POINTER: " when no struct field is on the way, or
// "" for the whole value.
func where(t reflect.Type, p jsontext.Pointer) string {
	safe, field := safePointer(t, p)
	safe = shortPointer(safe)
	switch {
	case field != "":
		return "field " + field + " (" + string(safe) + "): "
	case safe != "":
		return "at " + string(safe) + ": "
	}
	return ""
}

// maxPointerTokens bounds the JSON pointer an error shows: a hostile
// payload nested 20,000 arrays deep would otherwise make a 20 KB error.
const maxPointerTokens = 16

// shortPointer keeps the first and last tokens of a pointer longer than
// maxPointerTokens, with "…" for the levels between them.
func shortPointer(p jsontext.Pointer) jsontext.Pointer {
	toks := slices.Collect(p.Tokens())
	if len(toks) <= maxPointerTokens {
		return p
	}
	var short jsontext.Pointer
	for _, tok := range toks[:maxPointerTokens/2] {
		short = short.AppendToken(tok)
	}
	short = short.AppendToken(fmt.Sprintf("…%d more…", len(toks)-maxPointerTokens*3/4))
	for _, tok := range toks[len(toks)-maxPointerTokens/4:] {
		short = short.AppendToken(tok)
	}
	return short
}

// safePointer rewrites the JSON pointer p into a value of type t so that
// it carries no payload text: a token is kept only when it is the JSON
// name of a field of the struct type at that point (a name of the Go type,
// not of the payload) or an array index; any other token, such as a map
// key or an unknown member, becomes "*". field is the last struct field
// on the way.
func safePointer(t reflect.Type, p jsontext.Pointer) (safe jsontext.Pointer, field string) {
	for tok := range p.Tokens() {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		next := reflect.Type(nil)
		shown := "*"
		switch {
		case t == nil:
		case t.Kind() == reflect.Struct:
			if f, ok := jsonField(t, tok); ok {
				shown, field, next = tok, tok, f.Type
			}
		case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
			next = t.Elem()
			if isIndex(tok) {
				shown = tok
			}
		case t.Kind() == reflect.Map:
			next = t.Elem()
		case t.Kind() == reflect.Interface:
			next = t // inside an any, only indexes are kept
			if isIndex(tok) {
				shown = tok
			}
		}
		safe = safe.AppendToken(shown)
		t = next
	}
	return safe, field
}

// jsonField finds the field of struct t whose JSON name is name: its
// json tag's name, or its Go name, case-sensitively as the codec matches;
// fields of embedded structs without a name of their own count as t's.
func jsonField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" && !strings.HasPrefix(f.Tag.Get("json"), "-,") || !f.IsExported() && !f.Anonymous {
			continue
		}
		if f.Anonymous && tag == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if g, ok := jsonField(ft, name); ok {
					return g, true
				}
				continue
			}
		}
		if tag == "" {
			tag = f.Name
		}
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func isIndex(tok string) bool {
	if tok == "" || len(tok) > 19 {
		return false
	}
	for i := range len(tok) {
		if tok[i] < '0' || tok[i] > '9' {
			return false
		}
	}
	return true
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

// callerEnded returns ctx.Err() in place of err when ctx has ended and err
// is that end as a library reported it: wrapped, or flattened into a new
// error of the same text (go-redis's Sentinel lookup reports a dial cut
// short by the caller's deadline as "context canceled"), so that callers
// can test for their own context's error.
func callerEnded(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if err == nil || cerr == nil || errors.Is(err, ErrUnknownOutcome) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return cerr
	}
	if msg := err.Error(); strings.HasSuffix(msg, context.Canceled.Error()) || strings.HasSuffix(msg, context.DeadlineExceeded.Error()) {
		return cerr
	}
	return err
}
