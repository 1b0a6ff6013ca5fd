package pyclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/storagegen/storagegen/internal/keyspace"
)

var update = flag.Bool("update", false, "rewrite testdata/keys.json from internal/keyspace")

// keyCorpusFile is the golden corpus of keys that Go (internal/keyspace)
// and the Python runtime must both build: TestKeyCorpus checks that Go
// builds exactly it (go test -run TestKeyCorpus -update rewrites it after
// an intended change of the key grammar), and TestPythonRuntime has the
// Python runtime check every entry of the same file.
const keyCorpusFile = "testdata/keys.json"

// The corpus: for patterns of every shape, argument tuples (random ones
// from a fixed seed, and hostile ones: separators, %, braces, glob
// characters, backslashes, UTF-8, control bytes, ints at the int64
// bounds) and, for each, every key both layouts build from it. A value
// the plain layout refuses has plain_error instead of plain keys.
type keyCase struct {
	Args         []any     `json:"args"`
	Expand       string    `json:"expand"`
	QueueKey     string    `json:"queue_key"`
	DeadKey      string    `json:"dead_key"`
	CacheKey     string    `json:"cache_key"`
	ShardKeys    []string  `json:"shard_keys"`
	Marker       string    `json:"marker"`
	Token        string    `json:"token"`
	Receipt      string    `json:"receipt"`
	Paused       string    `json:"paused"`
	Meta         string    `json:"meta"`
	ReliableKeys []string  `json:"reliable_keys,omitempty"` // for the hostile tuples
	Plain        *plainKey `json:"plain,omitempty"`
	PlainError   string    `json:"plain_error,omitempty"`
}

// plainKey is what the plain layout builds from a tuple.
type plainKey struct {
	Expand   string `json:"expand"`
	QueueKey string `json:"queue_key"`
	DeadKey  string `json:"dead_key"`
	CacheKey string `json:"cache_key"`
}

// refusal is a tuple that a layout refuses, with the error kind: Go's
// keyspace.ErrInvalidArgument is Python's InvalidArgument.
type refusal struct {
	Pattern string `json:"pattern"`
	Layout  string `json:"layout"`
	Args    []any  `json:"args"`
	Error   string `json:"error"`
}

type keyCorpus struct {
	Prefix   string `json:"prefix"`
	Patterns []struct {
		Pattern string    `json:"pattern"`
		Cases   []keyCase `json:"cases"`
	} `json:"patterns"`
	Refused []refusal `json:"refused"`
	Invalid []string  `json:"invalid"`
	ShardOf []struct {
		ID    string `json:"id"`
		N     int    `json:"n"`
		Shard int    `json:"shard"`
	} `json:"shard_of"`
}

// The corpus's shard count for shard_keys.
const corpusShards = 3

// hostile are the string values every pattern is expanded with, in turn.
var hostile = []string{
	"node_5", "a_b", "b_c", "%", "%5F", "{x}", "}{", "*?[]", "a:b", "x:dead", "\\", " sp ", "#/|~",
	"é€😀", "\u2028", "{", "}", "a.b-c", "\x00", "a\nb", "\x7f", "node", "5", "queue_", "-",
}

// hostileInts are the int values every pattern with an int placeholder is
// expanded with: the int64 bounds (Go's int is 64 bits wide where the tests
// run), 2^53 + 1 and small ones.
var hostileInts = []int{math.MaxInt, math.MinInt, 1<<53 + 1, -(1<<53 + 1), 0, -1, 7}

// buildKeyCorpus builds the corpus from internal/keyspace.
func buildKeyCorpus(t *testing.T) keyCorpus {
	t.Helper()
	const prefix = "flow:"
	rng := rand.New(rand.NewPCG(1, 10))
	pieces := []string{"a", "Z", "9", "_", "-", ".", ":", "%", "{", "}", "*", "?", "[", "]", "\\", " ", "#", "/", "é", "€", "\x00", "\x1f", "\x7f", "~", "|", "node", "5"}
	str := func() string {
		var b strings.Builder
		for range 1 + rng.IntN(8) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return b.String()
	}
	patterns := []string{
		"queue_{source_id}_{target_id}", "{node_id}_output", "attempt:{run_id}:{attempt:int}", "k:{a}",
		"edge:{a}:{b}", "é{a}€{b:string}", "x{a}#{b:int}/y", "{a}", "a.b-{c}~{d}", "plain", "{n:int}",
		"{a}|{b}|{c}", "node-5.v2:{x}",
	}
	var c keyCorpus
	c.Prefix = prefix
	for _, ps := range patterns {
		p := keyspace.MustParsePattern(ps)
		var tuples [][]any
		for i := range len(hostile) {
			args := []any{}
			for j, ph := range p.Placeholders() {
				if ph.Type == keyspace.Int {
					args = append(args, hostileInts[(i+j)%len(hostileInts)])
				} else {
					args = append(args, hostile[(i+3*j)%len(hostile)])
				}
			}
			tuples = append(tuples, args)
			if len(p.Placeholders()) == 0 {
				break
			}
		}
		hostiles := len(tuples)
		for range 8 {
			args := []any{}
			for _, ph := range p.Placeholders() {
				if ph.Type == keyspace.Int {
					args = append(args, rng.IntN(2_000_000)-1_000_000)
				} else {
					args = append(args, str())
				}
			}
			tuples = append(tuples, args)
		}
		pc := struct {
			Pattern string    `json:"pattern"`
			Cases   []keyCase `json:"cases"`
		}{Pattern: ps}
		for i, args := range tuples {
			name, err := p.Expand(args...)
			if err != nil {
				t.Fatal(err)
			}
			qk := keyspace.QueueKey(prefix, name)
			kc := keyCase{Args: args, Expand: name, QueueKey: qk, DeadKey: keyspace.DeadKey(qk), CacheKey: keyspace.CacheKey(prefix, name),
				ShardKeys: keyspace.ShardKeys(prefix, name, corpusShards), Token: str()}
			if i < hostiles {
				kc.ReliableKeys = keyspace.ReliableKeys(qk)
			}
			id := "x{}%"
			if len(args) > 0 {
				if s, ok := args[0].(string); ok {
					id = s
				}
			}
			kc.Marker = keyspace.MarkerKey(qk, id)
			kc.Receipt = keyspace.ReceiptKey(qk, kc.Token)
			kc.Paused = keyspace.PausedKey(qk)
			kc.Meta = keyspace.MetaKey(qk)
			if plain, err := p.ExpandPlain(args...); err != nil {
				kc.PlainError = errorKind(t, err)
			} else {
				pk := keyspace.PlainQueueKey(prefix, plain)
				kc.Plain = &plainKey{Expand: plain, QueueKey: pk, DeadKey: keyspace.DeadKey(pk), CacheKey: keyspace.CacheKey(prefix, plain)}
			}
			kc.escapeInvalid()
			pc.Cases = append(pc.Cases, kc)
		}
		c.Patterns = append(c.Patterns, pc)
	}
	// What each layout refuses (both: an empty value, a wrong count, a
	// string for an int and an int for a string; plain only: control bytes).
	for _, r := range []struct {
		pattern string
		args    []any
	}{
		{"queue_{source_id}_{target_id}", []any{"", "x"}},
		{"queue_{source_id}_{target_id}", []any{"x", ""}},
		{"queue_{source_id}_{target_id}", []any{"x"}},
		{"queue_{source_id}_{target_id}", []any{"x", "y", "z"}},
		{"plain", []any{"x"}},
		{"attempt:{run_id}:{attempt:int}", []any{"r", "1"}},
		{"attempt:{run_id}:{attempt:int}", []any{1, 1}},
		{"{node_id}_output", []any{"a\x00b"}},
		{"{node_id}_output", []any{"\x1f"}},
		{"{node_id}_output", []any{"del\x7f"}},
		{"{node_id}_output", []any{"line\nbreak"}},
		{"{node_id}_output", []any{"tab\t"}},
	} {
		p := keyspace.MustParsePattern(r.pattern)
		for _, l := range []keyspace.Layout{keyspace.Tagged, keyspace.Plain} {
			if _, err := p.ExpandLayout(l, r.args...); err != nil {
				c.Refused = append(c.Refused, refusal{Pattern: r.pattern, Layout: l.String(), Args: r.args, Error: errorKind(t, err)})
			}
		}
	}
	for _, bad := range []string{"", "a{", "a}", "{}", "{a}{b}", "{a}x{b}", "{a}-.{b}", "{a:float}", "{:int}",
		"{a}:{a}", "a b", "a*{b}", "<x>{a}", "a>", "a%{b}", "a\\{b}", "a\x01{b}", "a{b{c}", "{a}?", "[{a}]"} {
		if _, err := keyspace.ParsePattern(bad); err == nil {
			t.Fatalf("keyspace accepts %q", bad)
		}
		c.Invalid = append(c.Invalid, bad)
	}
	ids := append([]string{}, hostile...)
	for range 200 {
		ids = append(ids, str())
	}
	for i, id := range ids {
		n := 1 + rng.IntN(keyspace.MaxShards)
		if i%10 == 0 {
			n = []int{1, 2, keyspace.MaxShards}[i/10%3]
		}
		c.ShardOf = append(c.ShardOf, struct {
			ID    string `json:"id"`
			N     int    `json:"n"`
			Shard int    `json:"shard"`
		}{id, n, keyspace.ShardOf(id, n)})
	}
	return c
}

// A key is bytes: where an escaped byte of a multi-byte character in the
// pattern's literal text splits a value's character (\u2028 under
// é{a}€{b}: its first byte, 0xE2, is escaped, the other two are not), the
// key is not valid UTF-8. JSON strings hold text, so such a byte b is
// written as the lone surrogate \udcXX (XX = b), which is what Python's
// surrogateescape makes of it and what the Python runtime's keys hold.
// Before json.Marshal the byte becomes U+F700+b (a private-use character
// no value of the corpus holds), and marshalCorpus rewrites that.
func escapeInvalid(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(0xF700 + rune(s[i]))
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unescapedInvalid matches the stand-ins escapeInvalid writes, as
// json.Marshal leaves them (raw UTF-8: EF 9E 80 to EF 9F BF).
var unescapedInvalid = regexp.MustCompile(`[\x{F780}-\x{F7FF}]`)

func (kc *keyCase) escapeInvalid() {
	for _, p := range []*string{&kc.Expand, &kc.QueueKey, &kc.DeadKey, &kc.CacheKey, &kc.Marker, &kc.Receipt, &kc.Paused, &kc.Meta} {
		*p = escapeInvalid(*p)
	}
	for _, keys := range [][]string{kc.ShardKeys, kc.ReliableKeys} {
		for i := range keys {
			keys[i] = escapeInvalid(keys[i])
		}
	}
	if kc.Plain != nil {
		for _, p := range []*string{&kc.Plain.Expand, &kc.Plain.QueueKey, &kc.Plain.DeadKey, &kc.Plain.CacheKey} {
			*p = escapeInvalid(*p)
		}
	}
}

// errorKind names the kind of a refusal as Python's error class does.
func errorKind(t *testing.T, err error) string {
	t.Helper()
	if !errors.Is(err, keyspace.ErrInvalidArgument) {
		t.Fatalf("refusal %v is not ErrInvalidArgument", err)
	}
	return "InvalidArgument"
}

// marshalCorpus writes the corpus one case per line, so that a change of
// the key grammar shows as a readable diff.
func marshalCorpus(t *testing.T, c keyCorpus) []byte {
	t.Helper()
	var b bytes.Buffer
	line := func(prefix string, v any, suffix string) {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(prefix)
		b.Write(j)
		b.WriteString(suffix)
	}
	comma := func(i, n int) string {
		if i < n-1 {
			return ",\n"
		}
		return "\n"
	}
	line("{\n\"prefix\": ", c.Prefix, ",\n\"patterns\": [\n")
	for i, p := range c.Patterns {
		line("{\"pattern\": ", p.Pattern, ", \"cases\": [\n")
		for j, kc := range p.Cases {
			line("", kc, comma(j, len(p.Cases)))
		}
		b.WriteString("]}" + comma(i, len(c.Patterns)))
	}
	b.WriteString("],\n\"refused\": [\n")
	for i, r := range c.Refused {
		line("", r, comma(i, len(c.Refused)))
	}
	line("],\n\"invalid\": ", c.Invalid, ",\n\"shard_of\": [\n")
	for i, s := range c.ShardOf {
		line("", s, comma(i, len(c.ShardOf)))
	}
	b.WriteString("]\n}\n")
	out := unescapedInvalid.ReplaceAllFunc(b.Bytes(), func(m []byte) []byte {
		r, _ := utf8.DecodeRune(m)
		return fmt.Appendf(nil, "\\udc%02x", r-0xF700)
	})
	if !json.Valid(out) {
		t.Fatal("the corpus is not valid JSON")
	}
	return out
}

// TestKeyCorpus: internal/keyspace builds exactly the committed corpus.
func TestKeyCorpus(t *testing.T) {
	got := marshalCorpus(t, buildKeyCorpus(t))
	if *update {
		if err := os.MkdirAll(filepath.Dir(keyCorpusFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyCorpusFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(keyCorpusFile)
	if err != nil {
		t.Fatalf("%v (go test ./internal/pyclient -run TestKeyCorpus -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("internal/keyspace builds other keys than %s (line %d):\nfile: %s\nGo:   %s\n"+
					"(after an intended change of the key grammar, go test ./internal/pyclient -run TestKeyCorpus -update; "+
					"keys already in Redis change with it)", keyCorpusFile, i+1, wl[i], gl[i])
			}
		}
		t.Fatalf("internal/keyspace builds %d lines, %s has %d", len(gl), keyCorpusFile, len(wl))
	}
	// The file holds what the Python runtime is checked against: make sure
	// it covers both layouts, refusals of each, and the int64 bounds.
	var c keyCorpus
	if err := json.Unmarshal(want, &c); err != nil {
		t.Fatal(err)
	}
	var plain, plainRefused, cases int
	for _, p := range c.Patterns {
		for _, kc := range p.Cases {
			cases++
			if kc.Plain != nil {
				plain++
			} else if kc.PlainError != "" {
				plainRefused++
			}
		}
	}
	layouts := map[string]int{}
	for _, r := range c.Refused {
		layouts[r.Layout]++
	}
	s := string(want)
	if plain < 100 || plainRefused < 20 || layouts["tagged"] < 5 || layouts["plain"] < 10 ||
		!strings.Contains(s, fmt.Sprint(math.MaxInt64)) || !strings.Contains(s, fmt.Sprint(math.MinInt64)) {
		t.Fatalf("the corpus covers too little: %d cases, %d plain, %d refused by plain, refusals %v", cases, plain, plainRefused, layouts)
	}
}
