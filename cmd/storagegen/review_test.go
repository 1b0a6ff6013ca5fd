package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/storagegen/storagegen/internal/txtar"
)

var update = flag.Bool("update", false, "rewrite the expected outputs of testdata/review")

// Each testdata/review/NAME.txtar holds the command line (args, without
// -format), its input files (old.yaml, schema.yaml), and what the command
// prints in each format (stdout.text, stdout.json, stdout.github) with its
// exit status (exit), and stderr if it prints any. go test ./cmd/storagegen
// -update rewrites the outputs.
func TestReviewScenarios(t *testing.T) {
	paths, err := filepath.Glob("testdata/review/*.txtar")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	isOutput := func(name string) bool {
		return name == "exit" || name == "stderr" || strings.HasPrefix(name, "stdout.")
	}
	for _, path := range paths {
		path, _ = filepath.Abs(path)
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			a := txtar.Parse(data)
			argLine, ok := a.Get("args")
			if !ok {
				t.Fatal("no args in the archive")
			}
			dir := t.TempDir()
			for _, f := range a.Files {
				if f.Name != "args" && !isOutput(f.Name) {
					if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			t.Chdir(dir)
			got := map[string][]byte{}
			for _, format := range []string{"text", "json", "github"} {
				code, stdout, stderr := runCmd(t, append(strings.Fields(string(argLine)), "-format", format)...)
				got["stdout."+format] = []byte(stdout)
				exit := []byte(strconv.Itoa(code) + "\n")
				if prev, ok := got["exit"]; ok && string(prev) != string(exit) {
					t.Errorf("-format %s exits %s, -format text %s", format, exit, prev)
				}
				got["exit"] = exit
				if stderr != "" {
					got["stderr"] = []byte(stderr)
				}
			}
			if *update {
				a.SetOutputs(isOutput, got)
				if err := os.WriteFile(path, a.Format(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			gotS := map[string]string{}
			for k, v := range got {
				gotS[k] = string(v)
			}
			if diff := cmp.Diff(a.Outputs(isOutput), gotS); diff != "" {
				t.Errorf("output differs from %s (-want +got); run go test ./cmd/storagegen -update if the change is intended:\n%s", path, diff)
			}
		})
	}
}

// TestDiffAgainstGit runs diff -against git:REF in a temporary repository:
// the old schema is the one committed at REF, read with git show, from the
// schema's own directory.
func TestDiffAgainstGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is needed for diff -against git:REF and for this test")
	}
	repo := t.TempDir()
	sub := filepath.Join(repo, "storage")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(sub, "schema.yaml"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("init", "-q")
	write(schema)
	git("add", ".")
	git("commit", "-q", "-m", "v1")
	write(strings.Replace(schema, `key: "inbox:{user_id}"`, `key: "inbox:{user_id}:v2"`, 1))

	schemaPath := filepath.Join(sub, "schema.yaml")
	code, stdout, stderr := runCmd(t, "diff", "-against", "git:HEAD", "-schema", schemaPath)
	want := fmt.Sprintf("%s:9:10: breaking [key-changed] queue \"inbox\": key pattern changed from \"inbox:{user_id}\" to \"inbox:{user_id}:v2\": everything stored under the old keys (t:queue:{inbox:<user_id>}) is unreachable\n"+
		"storagegen diff: 1 breaking change, 0 allowed, 0 safe against git:HEAD\n", schemaPath)
	if code != 1 || stdout != want || stderr != "" {
		t.Errorf("diff against git:HEAD: exit %d\nstdout %q\nwant   %q\nstderr %q", code, stdout, want, stderr)
	}
	// The committed schema against itself: no changes.
	git("stash", "-q")
	if code, stdout, _ := runCmd(t, "diff", "-against", "git:HEAD", "-schema", schemaPath); code != 0 || !strings.HasSuffix(stdout, "0 breaking changes, 0 allowed, 0 safe against git:HEAD\n") {
		t.Errorf("unchanged schema: exit %d, %q", code, stdout)
	}
	// A revision that does not exist is an error that says so.
	code, _, stderr = runCmd(t, "diff", "-against", "git:no-such-branch", "-schema", schemaPath)
	if code != 1 || !strings.Contains(stderr, "git:no-such-branch is not a revision") {
		t.Errorf("bad revision: exit %d, stderr %q", code, stderr)
	}
	// The pull request that adds the schema: the target branch has no
	// schema file, so everything is new and nothing breaks.
	other := filepath.Join(repo, "other")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "schema.yaml"), []byte(schema), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCmd(t, "diff", "-against", "git:HEAD", "-schema", filepath.Join(other, "schema.yaml"))
	if code != 0 || !strings.Contains(stdout, "safe [queue-added]") || !strings.HasSuffix(stdout, "0 breaking changes, 0 allowed, 3 safe against git:HEAD\n") ||
		!strings.Contains(stderr, "git:HEAD has no schema.yaml; every entry is new") {
		t.Errorf("schema new at the revision: exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
}

// TestReviewFlags: bad flags exit 2 with usage; help exits 0.
func TestReviewFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"diff"}, 2, "-against is required"},
		{[]string{"diff", "-against", "x.yaml", "-format", "xml"}, 2, `-format "xml": want text, json or github`},
		{[]string{"lint", "-disable", "no-such-rule"}, 2, `unknown rule "no-such-rule"`},
		{[]string{"lint", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"doc", "-h"}, 0, "usage: storagegen doc"},
		{[]string{"jsonschema", "-nope"}, 2, "flag provided but not defined"},
	} {
		code, _, stderr := runCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.err) {
			t.Errorf("storagegen %v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.err)
		}
	}
}

// TestNoWorkflowCommandInjection: schema text with newlines (a placeholder
// body in a bad key, an allow_breaking reason) never starts a line of
// its own in any report, so a CI log cannot be made to carry a GitHub
// Actions workflow command such as ::error or ::stop-commands::.
func TestNoWorkflowCommandInjection(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	badSrc := "version: 1\ntypes:\n  T: {fields: {a: string}}\ncaches:\n  c: {key: \"x:{a\\n::error file=README.md,line=1::all checks passed\\n::stop-commands::zz}\", payload: T, ttl: 1h}\n"
	old := filepath.Join(dir, "old.yaml")
	cur := filepath.Join(dir, "new.yaml")
	oldSrc := "version: 1\nprefix: \"p:\"\ntypes:\n  T: {fields: {a: string}}\ncaches:\n  c: {key: \"c:{id}\", payload: T, ttl: 1h, doc: d}\n"
	newSrc := strings.Replace(oldSrc, `key: "c:{id}"`, `key: "c2:{id}", allow_breaking: "moved\n::warning file=README.md,line=1::Security review passed\n::stop-commands::x"`, 1)
	for name, src := range map[string]string{bad: badSrc, old: oldSrc, cur: newSrc} {
		if err := os.WriteFile(name, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runs := [][]string{
		{"-check", "-schema", bad, "-out", filepath.Join(dir, "out")},
		{"lint", "-schema", bad},
		{"lint", "-schema", bad, "-format", "github"},
		{"diff", "-against", old, "-schema", bad, "-format", "github"},
		{"diff", "-against", old, "-schema", cur},
		{"diff", "-against", old, "-schema", cur, "-format", "github"},
		{"lint", "-schema", cur},
	}
	for _, args := range runs {
		_, stdout, stderr := runCmd(t, args...)
		for _, line := range strings.Split(stdout+stderr, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "::") && !strings.HasPrefix(line, "::error file="+filepath.ToSlash(bad)) &&
				!strings.HasPrefix(line, "::warning file="+filepath.ToSlash(cur)) && !strings.HasPrefix(line, "::notice file=") &&
				!strings.HasPrefix(line, "::error file="+filepath.ToSlash(cur)) {
				t.Errorf("storagegen %s: a line of its own from schema text: %q", strings.Join(args, " "), line)
			}
		}
	}
}
