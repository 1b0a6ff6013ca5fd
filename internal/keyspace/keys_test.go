package keyspace

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKeys(t *testing.T) {
	q := QueueKey("flow:", "jobs")
	for _, tc := range []struct{ got, want string }{
		{q, "flow:queue:{jobs}"},
		{DeadKey(q), "flow:queue:{jobs}:dead"},
		{CacheKey("flow:", "node%5F1_output"), "flow:cache:node%5F1_output"},
		{MarkerKey(q, "job-42"), "flow:queue:{jobs}:id:job-42"},
		{MarkerKey(q, "a{b}*%\n"), "flow:queue:{jobs}:id:a%7Bb%7D%2A%25%0A"},
		{ReceiptKey(q, "ABC234"), "flow:queue:{jobs}:rx:ABC234"},
		{ReceiptKey(q, "a}"), "flow:queue:{jobs}:rx:a%7D"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	want := []string{q, q + ":processing", q + ":leases", q + ":delayed", q + ":dead", q + ":items", q + ":attempts", q + ":errors", q + ":ready_at"}
	if diff := cmp.Diff(want, ReliableKeys(q)); diff != "" {
		t.Errorf("ReliableKeys (-want +got):\n%s", diff)
	}
	if got := ReliableKeys(q)[Dead]; got != DeadKey(q) {
		t.Errorf("the dead letters of an at-least-once queue are at %q, DeadKey says %q", got, DeadKey(q))
	}
	// The scripts' locals are the parts' names in upper case, in this order.
	var names []string
	for _, p := range ReliableParts {
		names = append(names, p.Name)
	}
	if diff := cmp.Diff([]string{"ready", "processing", "leases", "delayed", "dead", "items", "attempts", "errors", "ready_at"}, names); diff != "" {
		t.Errorf("ReliableParts order (-want +got):\n%s", diff)
	}
}

func TestTemplate(t *testing.T) {
	for pattern, want := range map[string]string{
		"queue_{source_id}_{target_id}":  "queue_<source_id>_<target_id>",
		"attempt:{run_id}:{attempt:int}": "attempt:<run_id>:<attempt:int>",
		"s:{name:string}":                "s:<name>",
		"jobs":                           "jobs",
	} {
		if got := MustParsePattern(pattern).Template(); got != want {
			t.Errorf("%s: Template() = %q, want %q", pattern, got, want)
		}
	}
	if got := QueueKey("flow:", MustParsePattern("queue_{source_id}_{target_id}").Template()); got != "flow:queue:{queue_<source_id>_<target_id>}" {
		t.Errorf("queue key template = %q", got)
	}
}

func TestCheckPrefixAndName(t *testing.T) {
	for _, ok := range []string{"", "flow:", "app-1.v2/"} {
		if err := CheckPrefix(ok); err != nil {
			t.Errorf("CheckPrefix(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"flow{", "a b", "50%", "x*", "\n"} {
		if err := CheckPrefix(bad); err == nil {
			t.Errorf("CheckPrefix(%q) = nil", bad)
		}
	}
	for _, ok := range []string{"my_queue", "queue_node%5F5_node%5F8", "é"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("CheckName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a{b", "a}", "*", "a?", "[x]", `a\b`, "a\x00"} {
		if err := CheckName(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("CheckName(%q) = %v; want ErrInvalidArgument", bad, err)
		}
	}
}

// TestREADMEKeyTables keeps the README's tables of keys ("Keys and
// escaping") in step with the parts declared here: every key, with its
// Redis type, has its row.
func TestREADMEKeyTables(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	row := func(key, typ string) {
		t.Helper()
		want := "| `" + key + "` | " + typ + " |"
		rows[want] = true
		if !strings.Contains(string(readme), want) {
			t.Errorf("README.md has no row starting %s", want)
		}
	}
	for _, l := range []Layout{Tagged, Plain} {
		q := QueueKeyOf(l, "<prefix>", "<expanded pattern>")
		for _, p := range QueueParts {
			row(q+p.Suffix, p.Type)
		}
	}
	for _, p := range CacheParts {
		row(CacheKey("<prefix>", "<expanded pattern>")+p.Suffix, p.Type)
	}
	for _, p := range append(ReliableParts[:], PausedPart, MetaPart, MarkerPart, ReceiptPart) {
		row("Q"+p.Suffix, p.Type)
	}
	// And the other way: every key row of the README is a key of the table.
	keyRow := regexp.MustCompile("(?m)^\\| `(<prefix>|Q)[^`]*` \\| (LIST|ZSET|HASH|STRING|SET|STREAM) \\|")
	for _, m := range keyRow.FindAllString(string(readme), -1) {
		if !rows[m] {
			t.Errorf("README.md has a key row that no part of the key space has: %s", m)
		}
	}
}
