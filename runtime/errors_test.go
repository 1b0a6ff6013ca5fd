package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
)

type decodeInner struct {
	E int `json:"e"`
}

type decodeTarget struct {
	SentAt time.Time         `json:"sent_at"`
	Deep   map[string][]item `json:"deep"`
	List   []int             `json:"list"`
	Any    any               `json:"any"`
	Nested *item             `json:"nested"`
	Slash  int               `json:"a/b"`
	Plain  bool
	decodeInner
}

// TestDecodeErrors: a decode error names the field and the JSON pointer
// where decoding failed, built from the Go type's own names only: map
// keys, unknown members and values from the payload never appear.
func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{`{"sent_at":"secret yesterday"}`, `field sent_at (/sent_at): cannot decode JSON string into time.Time`},
		{`{"deep":{"secret-key":[{"n":1},{"n":"secret"}]}}`, `field n (/deep/*/1/n): cannot decode JSON string into int64`},
		{`{"list":[1,"secret"]}`, `field list (/list/1): cannot decode JSON string into int`},
		{`{"nested":{"n":true}}`, `field n (/nested/n): cannot decode JSON boolean into int64`},
		{`{"a/b":"secret"}`, `field a/b (/a~1b): cannot decode JSON string into int`},
		{`{"Plain":1}`, `field Plain (/Plain): cannot decode JSON number into bool`},
		{`{"e":"secret"}`, `field e (/e): cannot decode JSON string into int`},
		{`{"secret":1,"secret":2}`, `at /*: duplicate object member name at byte offset 12`},
		{`{"list":[1],"list":[2]}`, `field list (/list): duplicate object member name at byte offset 12`},
		{`{"any":{"secret":[1,{"x":1,"x":2}]}}`, `field any (/any/*/1/*): duplicate object member name at byte offset 27`},
		{`[1]`, `cannot decode JSON array into runtime.decodeTarget`},
		{"\"\xff\"", `invalid UTF-8 at byte offset 1`},
		{`{"list":[1,}`, `field list (/list): syntax error at byte offset 10`},
	} {
		_, err := decode[decodeTarget]([]byte(tc.in), 1<<20)
		if !errors.Is(err, ErrDecode) {
			t.Errorf("decode %s = %v; want ErrDecode", tc.in, err)
			continue
		}
		if got, want := err.Error(), "decode runtime.decodeTarget: "+tc.want; got != want {
			t.Errorf("decode %s:\n got %s\nwant %s", tc.in, got, want)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("decode %s: error carries payload text: %v", tc.in, err)
		}
		var sem *json.SemanticError
		if strings.Contains(tc.want, "cannot decode") && !errors.As(err, &sem) {
			t.Errorf("decode %s: the json error is not reachable with errors.As", tc.in)
		}
	}

	// A map at the top: its keys are payload text.
	_, err := decode[map[string]int]([]byte(`{"secret~/key":"x"}`), 1<<20)
	if want := `decode map[string]int: at /*: cannot decode JSON string into int`; err == nil || err.Error() != want {
		t.Errorf("decode into a map = %v; want %s", err, want)
	}
}

// TestDecodeErrorDepth: a payload nested 20,000 arrays deep gives an error
// of bounded length, its pointer cut in the middle.
func TestDecodeErrorDepth(t *testing.T) {
	in := `{"any":` + strings.Repeat("[", 20000) + `"x` + strings.Repeat("]", 20000) + `}`
	var into struct {
		Any [][][][][][][][][][][][][][][][][][][][][][][][][][]int `json:"any"`
	}
	err := decodeInto([]byte(in), &into, 1<<20)
	if err == nil {
		t.Fatal("no error")
	}
	if len(err.Error()) > 300 {
		t.Errorf("error of %d bytes: %.300s…", len(err.Error()), err)
	}
	if !strings.Contains(err.Error(), "/0/0/0/0/0/0/0/…") {
		t.Errorf("error %q does not show the cut", err)
	}
	t.Log(err)
}

// TestCallerEnded: once the caller's context has ended, an error that is
// that end, wrapped or flattened into text by a library, reads as the
// caller's own ctx.Err(); other errors, and any error while ctx lives, are
// kept, and an unknown outcome is never hidden.
func TestCallerEnded(t *testing.T) {
	live := context.Background()
	ended, cancel := context.WithTimeout(live, -time.Second)
	defer cancel()
	flat := errors.New("context canceled") // as go-redis's Sentinel lookup reports it
	other := errors.New("connection refused")
	unknown := fmt.Errorf("%w: %w", ErrUnknownOutcome, context.Canceled)
	for _, c := range []struct {
		ctx       context.Context
		err, want error
	}{
		{live, flat, flat},
		{live, context.Canceled, context.Canceled},
		{ended, flat, context.DeadlineExceeded},
		{ended, fmt.Errorf("dial: %w", context.Canceled), context.DeadlineExceeded},
		{ended, other, other},
		{ended, unknown, unknown},
		{ended, nil, nil},
	} {
		if got := callerEnded(c.ctx, c.err); got != c.want {
			t.Errorf("callerEnded(ctx with %v, %v) = %v, want %v", c.ctx.Err(), c.err, got, c.want)
		}
	}
}
