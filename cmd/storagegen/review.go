package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/storagegen/storagegen/gen"
)

// The review subcommands: diff, lint, doc and jsonschema.

// newFlags returns a flag set for a subcommand whose usage line is usage.
func newFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("storagegen "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: storagegen %s %s\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs and returns the exit code to stop with, or
// -1 to go on.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return 2
	}
	return -1
}

// loadSchema reads and checks the schema at path, printing its problems.
func loadSchema(path string, stderr io.Writer) (*gen.Model, bool) {
	src, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "storagegen: %v\n", err)
		return nil, false
	}
	return loadSource(path, src, stderr)
}

func loadSource(name string, src []byte, stderr io.Writer) (*gen.Model, bool) {
	// The package name does not matter for review; any valid one will do.
	m, err := gen.Load(name, src, gen.CheckOptions{DefaultPackage: "generated"})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, false
	}
	return m, true
}

// formatFlag is -format: text, json or github.
func formatFlag(fs *flag.FlagSet) *string {
	return fs.String("format", "text", "output `format`: text, json, or github (workflow command annotations)")
}

func checkFormat(format string, stderr io.Writer) bool {
	switch format {
	case "text", "json", "github":
		return true
	}
	fmt.Fprintf(stderr, "storagegen: -format %q: want text, json or github\n", format)
	return false
}

func runDiff(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("diff", "-against OLD [-schema FILE] [-format text|json|github]", stderr)
	schema := fs.String("schema", "schema.yaml", "the new schema `file`")
	against := fs.String("against", "", "the old schema: a `file`, or git:REF for the schema file at that revision")
	format := formatFlag(fs)
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	if *against == "" {
		fmt.Fprintln(stderr, "storagegen diff: -against is required")
		fs.Usage()
		return 2
	}
	if !checkFormat(*format, stderr) {
		return 2
	}
	oldName, oldSrc, err := readOld(*against, *schema)
	if err != nil {
		fmt.Fprintf(stderr, "storagegen diff: %v\n", err)
		return 1
	}
	cur, ok := loadSchema(*schema, stderr)
	if !ok {
		return 1
	}
	// With no schema at the old revision, everything is an addition: the
	// old model is the new one's file settings with nothing declared.
	old := &gen.Model{Schema: cur.Schema, Package: cur.Package, Prefix: cur.Prefix}
	if oldSrc != nil {
		if old, ok = loadSource(oldName, oldSrc, stderr); !ok {
			fmt.Fprintf(stderr, "storagegen diff: the old schema (%s) does not check\n", *against)
			return 1
		}
	} else {
		fmt.Fprintf(stderr, "storagegen diff: %s has no %s; every entry is new\n", *against, filepath.Base(*schema))
	}
	changes := gen.Diff(old, cur)
	var breaking, allowed, safe int
	for _, c := range changes {
		switch c.Severity() {
		case "breaking":
			breaking++
		case "allowed":
			allowed++
		default:
			safe++
		}
	}
	summary := fmt.Sprintf("%s, %d allowed, %d safe against %s", plural(breaking, "breaking change"), allowed, safe, *against)
	switch *format {
	case "json":
		type item struct {
			gen.Change
			Severity string `json:"severity"`
			File     string `json:"file"`
			Line     int    `json:"line"`
			Column   int    `json:"column"`
		}
		items := make([]item, len(changes))
		for i, c := range changes {
			items[i] = item{Change: c, Severity: c.Severity(), File: *schema, Line: c.Pos.Line, Column: c.Pos.Col}
		}
		writeJSON(stdout, map[string]any{"schema": *schema, "against": *against, "changes": items,
			"breaking": breaking, "allowed": allowed, "safe": safe})
	case "github":
		for _, c := range changes {
			level, title := "notice", "safe change ("+c.Code+")"
			msg := c.Subject + ": " + c.Message
			switch c.Severity() {
			case "breaking":
				level, title = "error", "breaking change ("+c.Code+")"
				msg += "; if this is intended, add allow_breaking: \"reason\" to the entry"
			case "allowed":
				level, title = "warning", "allowed breaking change ("+c.Code+")"
				msg += " (allowed: " + c.Allowed + ")"
			}
			githubAnnotation(stdout, level, *schema, c.Pos, title, msg)
		}
		fmt.Fprintf(stdout, "storagegen diff: %s\n", summary)
	default:
		for _, c := range changes {
			line := fmt.Sprintf("%s:%d:%d: %s [%s] %s: %s", *schema, c.Pos.Line, c.Pos.Col, c.Severity(), c.Code, c.Subject, c.Message)
			if c.Allowed != "" {
				line += " (allowed: " + c.Allowed + ")"
			}
			fmt.Fprintln(stdout, gen.OneLine(line)) // schema text in a message stays on its line
		}
		fmt.Fprintf(stdout, "storagegen diff: %s\n", summary)
	}
	if breaking > 0 {
		return 1
	}
	return 0
}

// readOld reads the old schema: a file, or git:REF for schema at REF.
// When REF is a revision that does not have the schema file (the pull
// request that adds storagegen to a module), src is nil and err is nil:
// there is nothing to break.
func readOld(against, schema string) (name string, src []byte, err error) {
	ref, isGit := strings.CutPrefix(against, "git:")
	if !isGit {
		src, err = os.ReadFile(against)
		return against, src, err
	}
	if ref == "" {
		return "", nil, errors.New("git: needs a revision, as in git:main or git:HEAD~1")
	}
	dir, base := filepath.Split(schema)
	if dir == "" {
		dir = "."
	}
	git := func(args ...string) ([]byte, error) {
		var stderr bytes.Buffer
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return out, nil
	}
	if _, err := git("rev-parse", "--verify", "--quiet", "--end-of-options", ref+"^{commit}"); err != nil {
		return "", nil, fmt.Errorf("git:%s is not a revision of the repository at %s", ref, dir)
	}
	if _, err := git("cat-file", "-e", ref+":./"+base); err != nil {
		return against, nil, nil
	}
	src, err = git("show", ref+":./"+base)
	return against, src, err
}

func runLint(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("lint", "[-schema FILE] [-disable RULE,…] [-format text|json|github]", stderr)
	schema := fs.String("schema", "schema.yaml", "the schema `file`")
	disable := fs.String("disable", "", "comma-separated lint `rules` not to run")
	format := formatFlag(fs)
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	if !checkFormat(*format, stderr) {
		return 2
	}
	disabled := map[string]bool{}
	for id := range strings.SplitSeq(*disable, ",") {
		if id = strings.TrimSpace(id); id == "" {
			continue
		}
		if gen.FindLintRule(id) == nil {
			fmt.Fprintf(stderr, "storagegen lint: -disable: unknown rule %q\n", id)
			return 2
		}
		disabled[id] = true
	}
	m, ok := loadSchema(*schema, stderr)
	if !ok {
		return 1
	}
	findings := gen.Lint(m, disabled)
	warnings := 0
	for _, f := range findings {
		if f.Severity == gen.Warning {
			warnings++
		}
	}
	summary := fmt.Sprintf("%s, %d info", plural(warnings, "warning"), len(findings)-warnings)
	switch *format {
	case "json":
		type item struct {
			gen.Finding
			File   string `json:"file"`
			Line   int    `json:"line"`
			Column int    `json:"column"`
		}
		items := make([]item, len(findings))
		for i, f := range findings {
			items[i] = item{Finding: f, File: *schema, Line: f.Pos.Line, Column: f.Pos.Col}
		}
		writeJSON(stdout, map[string]any{"schema": *schema, "findings": items, "warnings": warnings, "info": len(findings) - warnings})
	case "github":
		for _, f := range findings {
			level := "warning"
			if f.Severity == gen.Info {
				level = "notice"
			}
			githubAnnotation(stdout, level, *schema, f.Pos, "storagegen lint "+f.Rule, f.Subject+": "+f.Message+". Fix: "+f.Fix)
		}
		fmt.Fprintf(stdout, "storagegen lint: %s\n", summary)
	default:
		for _, f := range findings {
			fmt.Fprintf(stdout, "%s\n\tfix: %s\n", gen.OneLine(fmt.Sprintf("%s:%d:%d: %s [%s] %s: %s", *schema, f.Pos.Line, f.Pos.Col, f.Severity, f.Rule, f.Subject, f.Message)), gen.OneLine(f.Fix))
		}
		fmt.Fprintf(stdout, "storagegen lint: %s\n", summary)
	}
	if warnings > 0 {
		return 1
	}
	return 0
}

func runDoc(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("doc", "[-schema FILE] [-out FILE]", stderr)
	schema := fs.String("schema", "schema.yaml", "the schema `file`")
	out := fs.String("out", "STORAGE.md", "the catalogue `file`; - for standard output")
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	m, ok := loadSchema(*schema, stderr)
	if !ok {
		return 1
	}
	return writeOutput(*out, gen.Catalogue(m), stdout, stderr)
}

func runJSONSchema(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("jsonschema", "[-out FILE]", stderr)
	out := fs.String("out", "-", "the `file` to write; - for standard output")
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	return writeOutput(*out, gen.JSONSchema(), stdout, stderr)
}

// writeOutput writes b to path, or to stdout for "-".
func writeOutput(path string, b []byte, stdout, stderr io.Writer) int {
	if path == "-" {
		stdout.Write(b)
		return 0
	}
	if err := writeFile(path, b); err != nil {
		fmt.Fprintf(stderr, "storagegen: %v\n", err)
		return 1
	}
	return 0
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // keys show placeholders as <name>; keep them readable
	enc.Encode(v)
}

// githubAnnotation writes a GitHub Actions workflow command that marks a
// line of file in the pull request.
func githubAnnotation(w io.Writer, level, file string, pos gen.Pos, title, msg string) {
	prop := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
	data := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	fmt.Fprintf(w, "::%s file=%s,line=%d,col=%d,title=%s::%s\n", level, prop.Replace(filepath.ToSlash(file)), pos.Line, pos.Col, prop.Replace(title), data.Replace(msg))
}
