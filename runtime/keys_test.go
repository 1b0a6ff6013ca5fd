package runtime

import (
	"errors"
	"testing"

	"github.com/storagegen/storagegen/internal/keyspace"
)

// The key space lives in internal/keyspace; this package only gives it the
// names generated code uses. Its errors must still be this package's.
func TestKeySpaceNames(t *testing.T) {
	if ErrInvalidArgument != keyspace.ErrInvalidArgument {
		t.Fatal("runtime.ErrInvalidArgument is not keyspace.ErrInvalidArgument")
	}
	if _, err := MustKeyPattern("q:{a}").Expand(""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Expand(\"\") = %v; want ErrInvalidArgument", err)
	}
	if err := checkName("a{b"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("checkName = %v; want ErrInvalidArgument", err)
	}
	if got := reliableKeys(QueueKey("p:", "q"))[keyDead]; got != DeadKey(QueueKey("p:", "q")) {
		t.Errorf("dead key %q", got)
	}
	defer func() {
		if r := recover(); r == nil {
			t.Error("MustKeyPattern of a bad pattern did not panic")
		}
	}()
	MustKeyPattern("{unclosed")
}
