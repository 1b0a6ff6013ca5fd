package runtime

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// A time without a zone offset (Python's isoformat() of a naive datetime)
// is a decode error that names the field and says what is missing, without
// quoting the payload; other malformed times keep the plain message.
func TestDecodeTimeWithoutZone(t *testing.T) {
	type msg struct {
		SentAt time.Time `json:"sent_at"`
	}
	for _, in := range []string{`{"sent_at":"2026-01-02T03:04:05"}`, `{"sent_at":"2026-01-02T03:04:05.123456"}`} {
		_, err := decode[msg]([]byte(in), 1<<20)
		if !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), "field sent_at (/sent_at)") ||
			!strings.Contains(err.Error(), "no zone offset") || strings.Contains(err.Error(), "2026") {
			t.Errorf("decode %s: %v; want ErrDecode naming sent_at and the missing zone, without the value", in, err)
		}
	}
	for _, in := range []string{`{"sent_at":"2026-01-02 03:04:05+00:00"}`, `{"sent_at":"yesterday"}`, `{"sent_at":"2026-01-02T03:04:05+0000"}`} {
		if _, err := decode[msg]([]byte(in), 1<<20); !errors.Is(err, ErrDecode) || strings.Contains(err.Error(), "zone") {
			t.Errorf("decode %s: %v; want ErrDecode that says nothing of a zone", in, err)
		}
	}
}
