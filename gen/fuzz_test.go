package gen

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storagegen/storagegen/internal/txtar"
)

// FuzzLoad feeds arbitrary bytes to Parse, Check and Generate: they may
// refuse them, but never panic, and every refusal is a positioned list.
// The seed corpus (every scenario schema and the repository's schema)
// runs with go test; go test -fuzz=FuzzLoad ./gen explores further.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("version: 1\n"))
	f.Add([]byte("version: 1\nqueues: {a: {payload: x.com/y.T, key: \"{a}:{b:int}\"}}\n"))
	f.Add([]byte("&a [*a, *a]"))
	f.Add([]byte("version: 1\ntypes: {T: {fields: {a: '[][]map[string]T'}}}\n"))
	if src, err := os.ReadFile("../schema.yaml"); err == nil {
		f.Add(src)
	}
	paths, _ := filepath.Glob("testdata/scenarios/*.txtar")
	for _, p := range paths {
		data, _ := os.ReadFile(p)
		if schema, ok := txtar.Parse(data).Get("schema.yaml"); ok {
			f.Add(schema)
		}
	}
	repo := loadRepoSchema(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		tm := time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("HANG on %q", src)) })
		defer tm.Stop()
		m, err := Load("schema.yaml", src, CheckOptions{DefaultPackage: "out"})
		if err != nil {
			list, ok := err.(ErrorList)
			if !ok || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %T %v", err, err)
			}
			for _, e := range list {
				if !strings.HasPrefix(e.Error(), "schema.yaml:") || e.Pos.Line < 1 || e.Pos.Col < 1 {
					t.Fatalf("unpositioned error: %v", e)
				}
			}
			return
		}
		if _, err := Generate(m); err != nil {
			t.Fatalf("Generate failed on a checked model: %v", err)
		}
		// The review stages take any checked model: no change against
		// itself, and positioned findings and changes against another.
		if changes := Diff(m, m); len(changes) != 0 {
			t.Fatalf("Diff of a schema with itself: %v", changes)
		}
		for _, c := range append(Diff(repo, m), Diff(m, repo)...) {
			if c.Pos.Line < 1 || c.Message == "" {
				t.Fatalf("change without a position or message: %+v", c)
			}
		}
		for _, f := range Lint(m, nil) {
			if f.Pos.Line < 1 || f.Fix == "" {
				t.Fatalf("finding without a position or fix: %+v", f)
			}
		}
		Catalogue(m)
	})
}
