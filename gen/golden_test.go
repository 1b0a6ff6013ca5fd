package gen

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/storagegen/storagegen/internal/txtar"
)

var update = flag.Bool("update", false, "rewrite the expected outputs of testdata/scenarios")

// Each testdata/scenarios/NAME.txtar holds schema.yaml and either the
// expected generated files (out/store.go, out/types.go) and catalogue
// (STORAGE.md), or the expected errors (stderr). Other files are inputs that the compile step needs,
// such as a package holding an external payload type.
func scenarios(t *testing.T) []string {
	paths, err := filepath.Glob("testdata/scenarios/*.txtar")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	return paths
}

func isOutput(name string) bool {
	return name == "stderr" || name == "STORAGE.md" || strings.HasPrefix(name, "out/")
}

func TestGolden(t *testing.T) {
	for _, path := range scenarios(t) {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			a := txtar.Parse(data)
			schema, ok := a.Get("schema.yaml")
			if !ok {
				t.Fatal("no schema.yaml in the archive")
			}
			got := map[string][]byte{}
			m, err := Load("schema.yaml", schema, CheckOptions{DefaultPackage: "out"})
			if err != nil {
				got["stderr"] = []byte(err.Error() + "\n")
			} else {
				files, err := Generate(m)
				if err != nil {
					t.Fatal(err)
				}
				for name, src := range files {
					got["out/"+name] = src
				}
				got["STORAGE.md"] = Catalogue(m)
			}
			if *update {
				a.SetOutputs(isOutput, got)
				if err := os.WriteFile(path, a.Format(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if diff := cmp.Diff(a.Outputs(isOutput), stringMap(got)); diff != "" {
				t.Errorf("output differs from %s (-want +got); run go test ./gen -update if the change is intended:\n%s", path, diff)
			}
		})
	}
}

func stringMap(m map[string][]byte) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// errorRE matches the expectation comments of compile-failure cases, as
// in the Go repository's test directory: // ERROR "regexp" or
// // ERROR `regexp` on the line that must fail to compile.
var errorRE = regexp.MustCompile("// ERROR (\"(?:[^\"\\\\]|\\\\.)*\"|`[^`]*`)")

// TestCompile builds, in one temporary module that replaces this one,
// the generated code of every success scenario (which must compile
// cleanly) and every testdata/compilefail/*.go program against the
// repository's generated package (each must fail exactly on the lines
// that carry an ERROR comment, with a matching diagnostic).
func TestCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module; skipped with -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) {
		t.Helper()
		path := filepath.Join(dir, filepath.FromSlash(name))
		if old, err := os.ReadFile(path); err == nil && !bytes.Equal(old, data) {
			t.Fatalf("two scenarios write %s differently", name)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// go.mod: this module's requirements, plus a replace to the working tree.
	gomod, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mod := regexp.MustCompile(`(?m)^module .*$`).ReplaceAll(gomod, []byte("module example.com/engine"))
	mod = fmt.Appendf(mod, "\nrequire github.com/storagegen/storagegen v0.0.0\n\nreplace github.com/storagegen/storagegen => %s\n", repo)
	write("go.mod", mod)
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write("go.sum", sum)

	var built []string
	for _, path := range scenarios(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".txtar")
		data, _ := os.ReadFile(path)
		a := txtar.Parse(data)
		if _, failing := a.Get("stderr"); failing {
			continue
		}
		for _, f := range a.Files {
			switch {
			case f.Name == "schema.yaml" || f.Name == "STORAGE.md":
			case strings.HasPrefix(f.Name, "out/"):
				write("scenario_"+name+"/"+strings.TrimPrefix(f.Name, "out/"), f.Data)
			default:
				write(f.Name, f.Data)
			}
		}
		built = append(built, "scenario_"+name)
	}
	cases, _ := filepath.Glob("testdata/compilefail/*.go")
	want := map[string]*regexp.Regexp{} // file:line → expected diagnostic
	for _, c := range cases {
		src, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		file := "fail_" + strings.TrimSuffix(filepath.Base(c), ".go") + "/main.go"
		write(file, src)
		for i, line := range strings.Split(string(src), "\n") {
			if m := errorRE.FindStringSubmatch(line); m != nil {
				expr, err := strconv.Unquote(m[1])
				if err != nil {
					t.Fatalf("%s:%d: bad ERROR comment: %v", c, i+1, err)
				}
				want[fmt.Sprintf("%s:%d", file, i+1)] = regexp.MustCompile(expr)
			}
		}
	}
	if len(built) == 0 || len(want) == 0 {
		t.Fatal("nothing to compile")
	}

	cmd := exec.Command(goBin, "build", "-o", os.DevNull, "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, _ := cmd.CombinedOutput()

	diagRE := regexp.MustCompile(`(?m)^(?:\./)?([\w/.-]+\.go):(\d+):\d+: (.*)$`)
	got := map[string][]string{}
	for _, m := range diagRE.FindAllStringSubmatch(string(out), -1) {
		key := m[1] + ":" + m[2]
		got[key] = append(got[key], m[3])
	}
	for key, re := range want {
		if !slices.ContainsFunc(got[key], re.MatchString) {
			t.Errorf("%s: want a diagnostic matching %q, got %q", key, re, got[key])
		}
	}
	for key, msgs := range got {
		if want[key] == nil {
			t.Errorf("%s: unexpected diagnostic %q", key, msgs)
		}
	}
	if t.Failed() {
		t.Logf("go build output:\n%s", out)
	}
	t.Logf("compiled %d scenarios and %d compile-failure cases", len(built), len(cases))
}
