package runtime

import (
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"

	"github.com/storagegen/storagegen/runtime/lua"
)

// scriptNames lists the scripts in lua/, the prelude aside.
func scriptNames(t *testing.T) []string {
	t.Helper()
	files, err := fs.Glob(lua.Files, "*.lua")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		if name := strings.TrimSuffix(strings.TrimPrefix(f, "lua/"), ".lua"); name != "prelude" {
			names = append(names, name)
		}
	}
	if len(names) < 12 {
		t.Fatalf("only %d scripts in lua/: %v", len(names), names)
	}
	return names
}

// TestScriptsParse parses every script, as it is sent without its #!lua
// line, with gopher-lua's parser, so a syntax error fails here without a
// server; and checks its first line.
func TestScriptsParse(t *testing.T) {
	for _, name := range scriptNames(t) {
		shebang, noFlags := scriptSource(name)
		if first, _, _ := strings.Cut(shebang, "\n"); first != "#!lua" && !strings.HasPrefix(first, "#!lua flags=") {
			t.Errorf("%s: first line %q; want #!lua, with flags or not", name, first)
		}
		if _, err := parse.Parse(strings.NewReader(noFlags), name+".lua"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The parser does fail on a broken script.
	if _, err := parse.Parse(strings.NewReader("local x = = 1"), "broken.lua"); err == nil {
		t.Error("gopher-lua parsed a broken script")
	}
}

// preludeKeys returns the names the prelude binds to KEYS[1], KEYS[2], …,
// read from its AST: name → index in KEYS (from 1).
func preludeKeys(t *testing.T) map[string]int {
	t.Helper()
	src, err := lua.Files.ReadFile("prelude.lua")
	if err != nil {
		t.Fatal(err)
	}
	chunk, err := parse.Parse(strings.NewReader(string(src)), "prelude.lua")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range chunk {
		la, ok := st.(*ast.LocalAssignStmt)
		if !ok || len(la.Exprs) == 0 {
			continue
		}
		if g, ok := la.Exprs[0].(*ast.AttrGetExpr); !ok || g.Object.(*ast.IdentExpr).Value != "KEYS" {
			continue
		}
		if len(la.Names) != len(la.Exprs) {
			t.Fatalf("prelude binds %d names to %d expressions", len(la.Names), len(la.Exprs))
		}
		names := map[string]int{}
		for i, e := range la.Exprs {
			g, ok := e.(*ast.AttrGetExpr)
			if !ok || g.Object.(*ast.IdentExpr).Value != "KEYS" {
				t.Fatalf("prelude binds %s to something other than KEYS[n]", la.Names[i])
			}
			n, err := strconv.Atoi(g.Key.(*ast.NumberExpr).Value)
			if err != nil {
				t.Fatal(err)
			}
			names[la.Names[i]] = n
		}
		return names
	}
	t.Fatal("the prelude binds no names to KEYS")
	return nil
}

// TestScriptKeyNames ties the prelude's key names to the Go key order: the
// name the scripts use for KEYS[i+1] is the key that reliableKeys puts at i.
func TestScriptKeyNames(t *testing.T) {
	goOrder := map[string]int{
		"READY": keyReady, "PROCESSING": keyProcessing, "LEASES": keyLeases, "DELAYED": keyDelayed,
		"DEAD": keyDead, "ITEMS": keyItems, "ATTEMPTS": keyAttempts, "ERRORS": keyErrors,
		"READY_AT": keyReadyAt,
	}
	got := preludeKeys(t)
	want := map[string]int{}
	for name, i := range goOrder {
		want[name] = i + 1
	}
	if !maps.Equal(got, want) {
		t.Errorf("prelude binds %v; the Go key order says %v", got, want)
	}
	if len(got) != numReliableKeys || len(reliableKeys("q")) != numReliableKeys {
		t.Errorf("prelude names %d keys, reliableKeys builds %d; want %d", len(got), len(reliableKeys("q")), numReliableKeys)
	}
	keys := reliableKeys("Q")
	suffix := map[int]string{keyReady: "Q", keyProcessing: "Q:processing", keyLeases: "Q:leases", keyDelayed: "Q:delayed",
		keyDead: "Q:dead", keyItems: "Q:items", keyAttempts: "Q:attempts", keyErrors: "Q:errors", keyReadyAt: "Q:ready_at"}
	for i, k := range keys {
		if suffix[i] != k {
			t.Errorf("reliableKeys(Q)[%d] = %q, want %q", i, k, suffix[i])
		}
	}
}

var (
	keyDocLine  = regexp.MustCompile(`^-- KEYS\[(\d+)\] ([A-Z_]+) +-> `)
	argvDocLine = regexp.MustCompile(`^-- ARGV\[(\d+)\]`)
	argvUse     = regexp.MustCompile(`ARGV\[(\d+)\]`)
	keysUse     = regexp.MustCompile(`KEYS\[[^\]]*\]`)
)

// helperKeys returns, for each function of the prelude, the key names it
// uses, itself or through the prelude functions it calls.
func helperKeys(t *testing.T, nameRE *regexp.Regexp) map[string]map[string]bool {
	t.Helper()
	src, err := lua.Files.ReadFile("prelude.lua")
	if err != nil {
		t.Fatal(err)
	}
	helpers := map[string]map[string]bool{}
	funcRE := regexp.MustCompile(`(?m)^local function (\w+)\(`)
	var order []string
	for _, m := range funcRE.FindAllStringSubmatchIndex(string(src), -1) {
		name := string(src[m[2]:m[3]])
		body := string(src[m[1]:])
		body = body[:strings.Index(body, "\nend\n")]
		used := map[string]bool{}
		for _, k := range nameRE.FindAllString(body, -1) {
			used[k] = true
		}
		for _, h := range order { // helpers are defined before use
			if strings.Contains(body, h+"(") {
				maps.Copy(used, helpers[h])
			}
		}
		helpers[name] = used
		order = append(order, name)
	}
	if len(helpers) < 4 {
		t.Fatalf("found %d functions in the prelude", len(helpers))
	}
	return helpers
}

// TestScriptHeaders checks each script's contract against its code: the
// KEYS lines name exactly the keys the code uses (itself or through the
// prelude's functions), at the prelude's index, or, for a key of the call
// beyond the queue's (receive's, ack's and nack's RECEIPT), at an index
// after them that the script binds once, as local NAME = KEYS[n];
// every ARGV[n] the code reads has its line; and no script but ack's
// loop over the receipts of its batch says KEYS[…] otherwise.
func TestScriptHeaders(t *testing.T) {
	keyNames := preludeKeys(t)
	nameRE := regexp.MustCompile(`\b(` + strings.Join(slices.Sorted(maps.Keys(keyNames)), "|") + `)\b`)
	helpers := helperKeys(t, nameRE)
	for _, name := range scriptNames(t) {
		src, err := lua.Files.ReadFile(name + ".lua")
		if err != nil {
			t.Fatal(err)
		}
		documented, used := map[string]bool{}, map[string]bool{}
		argvDoc, argvRead := map[string]bool{}, map[string]bool{}
		returns := false
		// Keys of the call beyond the queue's: documented with an index
		// after the prelude's, bound by name. A script may also take keys
		// of its own instead of the queue's (deadletter's one key, the
		// dead-letter list): documented under names the prelude does not
		// bind, bound by name, and then it may use none of the prelude's
		// names, which would stand for its own keys.
		extra := map[string]int{}
		own := false
		for line := range strings.Lines(string(src)) {
			if m := keyDocLine.FindStringSubmatch(line); m != nil {
				if n, _ := strconv.Atoi(m[1]); n > numReliableKeys || keyNames[m[2]] == 0 {
					extra[m[2]] = n
					own = own || n <= numReliableKeys
				}
			}
		}
		scriptRE := nameRE
		for name := range extra {
			scriptRE = regexp.MustCompile(scriptRE.String() + `|\b` + name + `\b`)
		}
		for line := range strings.Lines(string(src)) {
			line = strings.TrimRight(line, "\n")
			if strings.HasPrefix(line, "--") {
				if m := keyDocLine.FindStringSubmatch(line); m != nil {
					documented[m[2]] = true
					if n, _ := strconv.Atoi(m[1]); keyNames[m[2]] != n && extra[m[2]] != n {
						t.Errorf("%s: header says KEYS[%s] is %s; the prelude binds it to KEYS[%d]", name, m[1], m[2], keyNames[m[2]])
					}
				}
				if m := argvDocLine.FindStringSubmatch(line); m != nil {
					argvDoc[m[1]] = true
				}
				returns = returns || strings.HasPrefix(line, "-- Returns")
				continue
			}
			code, _, _ := strings.Cut(line, "--")
			for _, m := range scriptRE.FindAllString(code, -1) {
				used[m] = true
			}
			for h, keys := range helpers {
				if regexp.MustCompile(`\b` + h + `\(`).MatchString(code) {
					maps.Copy(used, keys)
				}
			}
			for _, m := range argvUse.FindAllStringSubmatch(code, -1) {
				argvRead[m[1]] = true
			}
			for _, m := range keysUse.FindAllString(code, -1) {
				bound := false
				for key, n := range extra {
					bound = bound || strings.TrimSpace(code) == "local "+key+" = KEYS["+strconv.Itoa(n)+"]"
				}
				if !bound && (name != "ack" || m != "KEYS[i]") {
					t.Errorf("%s: says %s; use the prelude's names", name, m)
				}
			}
		}
		if own {
			for key := range used {
				if keyNames[key] != 0 {
					t.Errorf("%s: takes keys of its own, and uses the prelude's %s, which is not one of them", name, key)
				}
			}
		}
		if !maps.Equal(documented, used) {
			t.Errorf("%s: header documents keys %v; the code uses %v", name, slices.Sorted(maps.Keys(documented)), slices.Sorted(maps.Keys(used)))
		}
		for n := range argvRead {
			if !argvDoc[n] {
				t.Errorf("%s: reads ARGV[%s], which its header does not document", name, n)
			}
		}
		if !returns {
			t.Errorf("%s: header has no Returns", name)
		}
	}
}
