// Package txtar reads and writes txtar archives, the format of
// golang.org/x/tools/txtar, written out here to keep the module's
// dependencies to the ones the project names: a comment, then files, each
// introduced by a "-- name --" line. The golden tests keep their cases in
// them.
package txtar

import (
	"bytes"
	"maps"
	"slices"
	"strings"
)

// Archive is a comment and a list of files.
type Archive struct {
	Comment []byte
	Files   []File
}

// File is one file of an archive.
type File struct {
	Name string
	Data []byte
}

// Parse reads an archive.
func Parse(data []byte) *Archive {
	a := &Archive{}
	cur := &a.Comment
	for len(data) > 0 {
		line, rest, _ := bytes.Cut(data, []byte("\n"))
		data = rest
		if name, ok := fileMarker(string(line)); ok {
			a.Files = append(a.Files, File{Name: name})
			cur = &a.Files[len(a.Files)-1].Data
			continue
		}
		*cur = append(append(*cur, line...), '\n')
	}
	return a
}

func fileMarker(line string) (string, bool) {
	name, ok := strings.CutPrefix(line, "-- ")
	if !ok {
		return "", false
	}
	name, ok = strings.CutSuffix(name, " --")
	return strings.TrimSpace(name), ok && name != ""
}

// Format writes the archive; each file ends with a newline.
func (a *Archive) Format() []byte {
	var b bytes.Buffer
	b.Write(a.Comment)
	for _, f := range a.Files {
		b.WriteString("-- " + f.Name + " --\n")
		b.Write(f.Data)
		if len(f.Data) > 0 && f.Data[len(f.Data)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// Get returns the contents of the named file.
func (a *Archive) Get(name string) ([]byte, bool) {
	for _, f := range a.Files {
		if f.Name == name {
			return f.Data, true
		}
	}
	return nil, false
}

// Outputs returns the files for which isOutput holds, as strings.
func (a *Archive) Outputs(isOutput func(name string) bool) map[string]string {
	out := map[string]string{}
	for _, f := range a.Files {
		if isOutput(f.Name) {
			out[f.Name] = string(f.Data)
		}
	}
	return out
}

// SetOutputs replaces the files for which isOutput holds by got, in name
// order after the others: what a golden test's -update writes.
func (a *Archive) SetOutputs(isOutput func(name string) bool, got map[string][]byte) {
	files := slices.DeleteFunc(a.Files, func(f File) bool { return isOutput(f.Name) })
	for _, name := range slices.Sorted(maps.Keys(got)) {
		files = append(files, File{Name: name, Data: got[name]})
	}
	a.Files = files
}
