package runtime

import "testing"

// TestUnixSocketURLs: a unix socket's path may hold an '@' of its own; the
// user info of a unix URL ends before the path.
func TestUnixSocketURLs(t *testing.T) {
	for _, tc := range []struct{ url, addr, user, pass string }{
		{"unix:///tmp/redis@1.sock", "/tmp/redis@1.sock", "", ""},
		{"unix://u:p%40ss@/tmp/redis@1.sock?db=2", "/tmp/redis@1.sock", "u", "p@ss"},
	} {
		ro, err := parseURL(tc.url, false)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if ro.Network != "unix" || ro.Addr != tc.addr || ro.Username != tc.user || ro.Password != tc.pass {
			t.Errorf("%s: %s %s %q %q; want unix %s %q %q", tc.url, ro.Network, ro.Addr, ro.Username, ro.Password, tc.addr, tc.user, tc.pass)
		}
	}
}
