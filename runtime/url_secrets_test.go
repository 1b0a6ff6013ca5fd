package runtime

import (
	"errors"
	"net/url"
	"slices"
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
		"u:" + secret + "%40h2:2%", // a bad escape must not hide the %40
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

// TestRefusedCredentialValueNeverShown: a credential written in a query
// string is refused, and no piece of its value is shown, however it is
// written: its value may run on past a '#', '&', ';' or '@' (an unencoded
// password may hold any of them), a ';' separates pairs that url.Query
// drops without a word (so a password after one was neither refused nor
// hidden), and a name that is not go-redis's own but says what it holds
// (passwd, auth, token...) holds a credential all the same.
func TestRefusedCredentialValueNeverShown(t *testing.T) {
	const secret = "Qz7cd"
	for _, u := range []string{
		"redis://h:1/0?password=ab#" + secret,
		"redis://h:1/0?dial_timeout=1s&password=ab#x&" + secret,
		"redis+cluster://h:1?password=ab&" + secret,
		"redis+cluster://h:1?password=ab&" + secret + "=1",
		"redis+cluster://h:1?password=ab&" + secret + "&pool_size=many",
		"redis://h:1/0?password=ab@" + secret,
		"redis://h:1/0?password=ab@" + secret + ":1/0",
		"rediss+cluster://app:pw@h:1?username=u&password=ab@" + secret + ":2",
		"redis+sentinel://h:1?master_name=m&sentinel_password=ab@" + secret + ":1",
		"redis+cluster://h:1?x=1;password=" + secret + "&pool_size=many",
		"redis://h:1/0?pool_size=1;password=" + secret,
		"redis+sentinel://h:1?master_name=m;sentinel_password=" + secret,
		"redis://h:1/0?passwd=" + secret,
		"redis://h:1/0?pass=" + secret + "&pool_size=many",
		"redis+cluster://h:1?auth=" + secret,
		"redis+cluster://h:1?token=" + secret,
		"redis+sentinel://h:1?master_name=m&sentinel_pass=" + secret,
		"redis://h:1/0?requirepass=" + secret,
		"redis://h:1/0?user=app:" + secret,
		"redis://h:1/0?password:" + secret,
		"redis://h:1/0?Pass%20word=" + secret,
		"redis://h:1/0?%70assword%zz=" + secret,
	} {
		_, err := New(Options{URL: u})
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "credentials never go in a query string") {
			t.Errorf("New(%s) = %v; want ErrInvalidArgument refusing a credential in the query string", u, err)
		}
		if err != nil && strings.Contains(err.Error(), "Qz7") {
			t.Errorf("New(%s): the error carries the secret: %v", u, err)
		}
	}
}

// TestMalformedQueryRefused: a query string that url.ParseQuery cannot
// read (a ';' separator, a '%' not followed by two hex digits) is refused:
// url.Query, which go-redis's parsers use, drops such a pair without a
// word, so ?addr=h2:2;addr=h3:3 seeded a cluster with its first host only
// and ?pool_size=7;dial_timeout=1s set neither.
func TestMalformedQueryRefused(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"redis://127.0.0.1:1/0?pool_size=7;dial_timeout=1s", "semicolon"},
		{"redis://127.0.0.1:1/0?dial_timeout=1s&pool_size=%zz7", `invalid URL escape "%zz"`},
		{"redis+cluster://h:1?addr=h2:2;addr=h3:3", "semicolon"},
		{"rediss+cluster://app:pw@h:1?addr=h2:2&addr=h3:%3", "invalid URL escape"},
		{"redis+sentinel://h:1?master_name=m;addr=h2:2", "semicolon"},
		{"redis+sentinel://h:1?master_name=m&addr=h2:2&pool%g=1", "invalid URL escape"},
		{"unix:///tmp/redis.sock?db=1;protocol=2", "semicolon"},
	} {
		_, err := New(Options{URL: tc.url})
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "query string") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%s) = %v; want ErrInvalidArgument about the query string with %q", tc.url, err, tc.want)
		}
	}
	// Every addr of a well-formed cluster URL seeds the client.
	co, err := Options{URL: "redis+cluster://h:1?addr=h2:2&addr=h3:3&addr=h2:2"}.redisOptions()
	if err != nil || !slices.Equal(co.cluster.Addrs, []string{"h:1", "h2:2", "h3:3", "h2:2"}) {
		t.Errorf("cluster URL with three addr: %v, %v", co, err)
	}
}
