package readme

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFirstHour runs the README's section "Using storagegen in your
// module" as a new user would, in an empty module: each line of its shell
// block, then the program it shows (which must build), then each run line
// of its CI job. The one step the section cannot show is how the module is
// found: it is not published, so right after go mod init the test requires
// it at v0.0.0 with a replace to this working tree, and seeds go.sum from
// this module's. GOPROXY=off: every dependency comes from the module
// cache, which building this module has filled.
func TestFirstHour(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module; skipped with -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Fatal("the CI job's diff step needs git: ", err)
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	sec := section(t, readme(t), "## Using storagegen in your module")
	shell, program, job, directive := sec.find(t, "sh", "go"), sec.file(t), sec.find(t, "yaml", ""), sec.directive(t)

	dir := t.TempDir()
	env := append(os.Environ(), "GOPROXY=off", "GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local")
	run := func(bin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	for _, line := range strings.Split(shell.text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		args := strings.Fields(line)
		if len(args) == 0 {
			continue
		}
		if args[0] != "go" {
			t.Fatalf("README.md:%d: the shell block runs %q; the test runs only go commands", shell.line, line)
		}
		run(goBin, args[1:]...)
		if len(args) > 2 && args[1] == "mod" && args[2] == "init" {
			run(goBin, "mod", "edit", "-require=github.com/storagegen/storagegen@v0.0.0", "-replace=github.com/storagegen/storagegen="+repo)
			sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	gen, err := os.ReadFile(filepath.Join(dir, "generate.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(gen), "\n"+directive+"\n") {
		t.Errorf("README.md: the directive %q is not the one init writes:\n%s", directive, gen)
	}

	// The program, where the README says it is.
	const mainPath = "cmd/engine/main.go"
	if !strings.Contains(sec.text, "`"+mainPath+"`") {
		t.Fatalf("README.md: the section no longer names %s", mainPath)
	}
	if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(mainPath)), 0o755); err != nil {
		t.Fatal(err)
	}
	// The //line comment makes the compiler's errors name README lines.
	src := fmt.Sprintf("//line README.md:%d:1\n%s", program.line+1, program.text)
	if err := os.WriteFile(filepath.Join(dir, mainPath), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	run(goBin, "build", "./...")
	run(goBin, "vet", "./...")

	// The CI job, on a pull request against main with no change to the
	// schema: a repository whose origin/main is its one commit.
	run(gitBin, "init", "-q")
	run(gitBin, "add", "-A")
	run(gitBin, "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "-m", "first hour")
	run(gitBin, "update-ref", "refs/remotes/origin/main", "HEAD")
	steps := 0
	for _, line := range strings.Split(job.text, "\n") {
		cmd, ok := strings.CutPrefix(strings.TrimSpace(line), "run: ")
		if !ok {
			continue
		}
		cmd = strings.ReplaceAll(cmd, "${{ github.base_ref }}", "main")
		args := strings.Fields(cmd)
		if args[0] != "go" {
			t.Fatalf("README.md:%d: the CI job runs %q; the test runs only go commands", job.line, cmd)
		}
		out := run(goBin, args[1:]...)
		if strings.Contains(out, "::error") || strings.Contains(out, "::warning") {
			t.Errorf("CI step %q reports problems on the starter:\n%s", cmd, out)
		}
		steps++
	}
	if steps < 3 {
		t.Errorf("README.md:%d: the CI job has %d run steps, want -check, diff and lint at least", job.line, steps)
	}
}

// A sectionText is the part of the README under one "## " heading.
type sectionText struct {
	name string
	text string
	bs   []block
}

func section(t *testing.T, md, heading string) sectionText {
	t.Helper()
	start := strings.Index(md, "\n"+heading+"\n")
	if start < 0 {
		t.Fatalf("README.md has no section %q", heading)
	}
	var bs []block
	for _, b := range blocks(md) {
		if b.section == heading {
			bs = append(bs, b)
		}
	}
	text := md[start+1:]
	if end := strings.Index(text[len(heading):], "\n## "); end >= 0 {
		text = text[:len(heading)+end]
	}
	return sectionText{heading, text, bs}
}

// find returns the first block of the section with the given info string
// whose text contains substr.
func (s sectionText) find(t *testing.T, info, substr string) block {
	t.Helper()
	for _, b := range s.bs {
		if b.info == info && strings.Contains(b.text, substr) {
			return b
		}
	}
	t.Fatalf("README.md: %s has no %s block", s.name, info)
	return block{}
}

// file returns the section's go block that is a whole file.
func (s sectionText) file(t *testing.T) block {
	return s.find(t, "go", "package main\n")
}

// directive returns the //go:generate line that the section shows.
func (s sectionText) directive(t *testing.T) string {
	return strings.TrimSpace(s.find(t, "go", "//go:generate").text)
}
