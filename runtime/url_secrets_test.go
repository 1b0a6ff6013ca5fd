package runtime

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// TestAddrParamUserInfo: an addr= query option of a cluster or Sentinel
// URL that holds user info (user:password@host:port, its '@' written %40
// so that it is not taken for the URL's own user info) is refused, and no
// piece of it is shown: go-redis's "unable to parse addr param" quotes
// the whole value, and an address "secret@host:port" that go-redis
// accepts would reach dial errors and go-redis's log lines.
func TestAddrParamUserInfo(t *testing.T) {
	const secret = "Qz7Secret"
	for _, addr := range []string{
		"u:" + secret + "%40h2:2",
		"u%3A" + secret + "%40h2:2",
		secret + "%40h2:2",
		url.QueryEscape("u:" + secret + "@h2:2"),
		url.QueryEscape("u:" + secret + "@[::1]:2"),
	} {
		for _, u := range []string{
			"redis+cluster://h:1?addr=" + addr,
			"rediss+cluster://app:pw@h:1?addr=h3:3&addr=" + addr,
			"redis+sentinel://h:1?master_name=m&addr=" + addr,
			"rediss+sentinel://app:pw@h:1/0?addr=" + addr + "&master_name=m",
		} {
			_, err := New(Options{URL: u})
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "query option addr") {
				t.Errorf("New(%s) = %v; want ErrInvalidArgument naming the addr option", u, err)
			}
			if err != nil && strings.Contains(err.Error(), "Qz7") {
				t.Errorf("New(%s): the error carries the secret: %v", u, err)
			}
		}
	}
}
