package redistest

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestREADMEShowsTheACLLine: the README's "Least privilege" shows
// ACLSetUser as it is, the line the tests' user is made from.
func TestREADMEShowsTheACLLine(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Split(string(b), "\n"), ACLSetUser) {
		t.Errorf("README.md has no line\n%s\n(redistest.ACLSetUser): keep them the same", ACLSetUser)
	}
}

// TestAppUserRules: the tests' prefixes replace ~myapp:*, and nothing else
// of the line changes.
func TestAppUserRules(t *testing.T) {
	got := strings.Join(AppUserRules("test:", "example:"), " ")
	want := strings.Replace(strings.Join(strings.Fields(ACLSetUser)[5:], " "), "~myapp:*", "~test:* ~example:*", 1)
	if got != want || strings.Contains(got, "myapp") || !strings.HasPrefix(got, "resetkeys ") {
		t.Errorf("AppUserRules = %q; want %q", got, want)
	}
}
