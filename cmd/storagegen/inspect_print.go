package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/storagegen/storagegen/internal/inspect"
)

// The inspect command's tables.

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// count writes n, with a + when it is a lower bound.
func count[N int | int64](n N, atLeast bool) string {
	s := strconv.FormatInt(int64(n), 10)
	if atLeast {
		s += "+"
	}
	return s
}

func age(d *inspect.Duration) string {
	if d == nil {
		return "-"
	}
	return d.String()
}

func bytesText(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 10<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func printOverview(w io.Writer, ov *inspect.Overview, listUnknown bool) {
	fmt.Fprintf(w, "prefix %q, %s\n\n", ov.Prefix, ov.Time.Format("2006-01-02 15:04:05"))
	t := table(w)
	fmt.Fprintln(t, "QUEUE\tDELIVERY\tINSTANCES\tREADY\tIN FLIGHT\tEXPIRED\tDELAYED\tDEAD\tOLDEST READY\tPAUSED\t")
	var bounded []string
	for _, s := range ov.Decls {
		if s.AtLeast {
			bounded = append(bounded, fmt.Sprintf("%s %s: at least %d instances", s.Decl.Kind, s.Decl.Name, s.Instances))
		}
		q := s.Queue
		if q == nil {
			continue
		}
		a := s.AtLeast
		paused := "-"
		if s.Decl.Reliable() {
			paused = count(q.Paused, a)
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Decl.Name, delivery(s.Decl), count(s.Instances, a),
			count(q.Ready, a), count(q.InFlight, a), count(q.Expired, a), count(q.Delayed, a), count(q.Dead, a), age(q.OldestReady), paused)
	}
	t.Flush()
	fmt.Fprintln(w)
	t = table(w)
	fmt.Fprintln(t, "CACHE\tTTL\tINSTANCES\tENTRIES\tNO TTL\tMEMORY\t")
	for _, s := range ov.Decls {
		c := s.Cache
		if c == nil {
			continue
		}
		a := s.AtLeast
		ttl := "none"
		if !s.Decl.NoExpiry {
			ttl = s.Decl.TTL.String()
		}
		mem := bytesText(c.MemoryBytes)
		if c.MemoryUnknown > 0 {
			mem += fmt.Sprintf(" (%d not measured)", c.MemoryUnknown)
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Decl.Name, ttl, count(s.Instances, a), count(c.Entries, a), count(c.NoExpiry, a), mem)
	}
	t.Flush()
	fmt.Fprintf(w, "\nunknown keys under the prefix: %s", count(ov.Unknown.Count, ov.Unknown.AtLeast))
	if !listUnknown && ov.Unknown.Count > 0 {
		fmt.Fprint(w, " (list them with -unknown)")
	}
	fmt.Fprintln(w)
	for _, k := range ov.Unknown.Keys {
		fmt.Fprintf(w, "  %s\n", keyText(k))
	}
	if listUnknown && ov.Unknown.Count > len(ov.Unknown.Keys) {
		fmt.Fprintf(w, "  … and %d more (-limit)\n", ov.Unknown.Count-len(ov.Unknown.Keys))
	}
	for _, b := range bounded {
		fmt.Fprintf(w, "%s (the cap); counts marked + cover those and are lower bounds\n", b)
	}
	if ov.Unknown.AtLeast {
		fmt.Fprintln(w, "the walk stopped at -max-keys: counts marked + are lower bounds")
	}
}

func delivery(d *inspect.Decl) string {
	s := d.Delivery
	if d.Shards > 1 {
		s += fmt.Sprintf(" ×%d", d.Shards)
	}
	if d.Layout == "plain" {
		s += " plain"
	}
	return s
}

func argsText(args []inspect.Arg) string {
	if len(args) == 0 {
		return "-"
	}
	parts := make([]string, len(args))
	for i, a := range args {
		v := fmt.Sprint(a.Value)
		if s, ok := a.Value.(string); ok && (strconv.Quote(s) != `"`+s+`"` || strings.ContainsAny(s, " =")) {
			v = strconv.Quote(s)
		}
		parts[i] = a.Name + "=" + v
	}
	return strings.Join(parts, " ")
}

func printInstances(w io.Writer, l *inspect.Instances, limit int) {
	d := l.Decl
	fmt.Fprintf(w, "%s %s: key %s, payload %s, %s\n", d.Kind, d.Name, d.Key, d.Payload, orText(delivery(d), "layout "+d.Layout))
	t := table(w)
	if d.Kind == inspect.KindQueue {
		fmt.Fprintln(t, "ARGS\tREADY\tIN FLIGHT\tEXPIRED\tDELAYED\tDEAD\tOLDEST READY\tPAUSED\tKEY\t")
	} else {
		fmt.Fprintln(t, "ARGS\tEXISTS\tTTL\tMEMORY\tKEY\t")
	}
	for i, x := range l.List {
		if i >= limit {
			fmt.Fprintf(t, "… and %d more (-limit)\n", len(l.List)-limit)
			break
		}
		args := argsText(x.Args)
		if x.Ambiguous {
			args += " (ambiguous: other values give this key too)"
		}
		if q := x.Queue; q != nil {
			paused := "-"
			if d.Reliable() {
				paused = map[bool]string{true: "yes", false: "no"}[q.Paused > 0]
			}
			fmt.Fprintf(t, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t\n", args, q.Ready, q.InFlight, q.Expired, q.Delayed, q.Dead, age(q.OldestReady), paused, keyText(x.Key))
		} else if c := x.Cache; c != nil {
			ttl := "none"
			if c.TTL != nil {
				ttl = c.TTL.String()
			}
			if c.Entries == 0 {
				ttl = "-"
			}
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t\n", args, map[bool]string{true: "yes", false: "no"}[c.Entries > 0], ttl, bytesText(c.MemoryBytes), keyText(x.Key))
		}
	}
	t.Flush()
	if l.AtLeast {
		fmt.Fprintf(w, "at least %d instances: the walk stopped at its cap (-max-instances, -max-keys)\n", len(l.List))
	}
}

func printItems(w io.Writer, items *inspect.Items) {
	fmt.Fprintf(w, "\n%s %s %s: %d item(s)\n", items.Decl.Kind, items.Decl.Name, argsText(items.Args), len(items.List))
	for _, it := range items.List {
		printItem(w, it, items.Decl.Shards > 1)
	}
}

func printItem(w io.Writer, it inspect.Item, sharded bool) {
	var head []string
	head = append(head, it.State)
	if it.ID != "" {
		head = append(head, "id "+keyText(it.ID))
	}
	if sharded {
		head = append(head, fmt.Sprintf("shard %d", it.Shard))
	}
	if it.Attempts > 0 {
		head = append(head, fmt.Sprintf("attempts %d", it.Attempts))
	}
	if it.Age != nil {
		head = append(head, "age "+it.Age.String())
	}
	if it.LeaseLeft != nil {
		if *it.LeaseLeft < 0 {
			head = append(head, "lease expired "+(-*it.LeaseLeft).String()+" ago")
		} else {
			head = append(head, "lease left "+it.LeaseLeft.String())
		}
	}
	head = append(head, fmt.Sprintf("%d bytes", it.Size))
	fmt.Fprintf(w, "- %s\n", strings.Join(head, ", "))
	if it.LastError != "" {
		fmt.Fprintf(w, "  last error: %s\n", strconv.Quote(it.LastError))
	}
	if it.Value != nil {
		fmt.Fprintf(w, "  %s\n", jsonText(it.Value))
	} else {
		fmt.Fprintf(w, "  raw: %s\n", strconv.Quote(string(it.Raw)))
	}
	if it.DecodeError != "" {
		fmt.Fprintf(w, "  does not decode: %s\n", it.DecodeError)
	}
}

func printEntry(w io.Writer, e *inspect.Entry) {
	fmt.Fprintf(w, "cache %s %s: key %s\n", e.Decl.Name, argsText(e.Args), keyText(e.Key))
	if e.Item == nil {
		fmt.Fprintln(w, "no such entry")
		return
	}
	ttl := "none"
	if e.Stats.TTL != nil {
		ttl = e.Stats.TTL.String()
	}
	fmt.Fprintf(w, "ttl %s, memory %s\n", ttl, bytesText(e.Stats.MemoryBytes))
	printItem(w, *e.Item, false)
}

// jsonText returns valid JSON with every rune a terminal may act on or
// that reorders or hides text (DEL, the C1 controls such as U+009B CSI,
// bidi overrides, line separators: whatever strconv.IsPrint refuses)
// written as a \u escape. Valid JSON holds such runes only inside
// strings, where the escape means the same text, so the result is the
// same JSON value; the payload is an attacker's text and must not drive
// the operator's terminal.
func jsonText(v []byte) string {
	s := string(v)
	var b strings.Builder
	for _, r := range s {
		if r == '\n' || r == '\t' || r == '\r' || strconv.IsPrint(r) {
			b.WriteRune(r)
			continue
		}
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			fmt.Fprintf(&b, "\\u%04x\\u%04x", r1, r2)
		} else {
			fmt.Fprintf(&b, "\\u%04x", r)
		}
	}
	return b.String()
}

// writeInspectJSON writes v as writeJSON does, with the runes jsonText
// escapes escaped: the same JSON value, but nothing in a payload or a key
// acts on a terminal that -json is written to.
func writeInspectJSON(w io.Writer, v any) {
	var b strings.Builder
	writeJSON(&b, v)
	io.WriteString(w, jsonText([]byte(b.String())))
}
