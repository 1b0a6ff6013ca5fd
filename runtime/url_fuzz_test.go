package runtime

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzSecret makes a secret of s that no URL template of FuzzURLSecrets
// and no error text holds a piece of: every ASCII letter becomes 'Q' or
// 'J', and a 'Q' follows every second rune, so that each 3-byte piece of
// the secret holds a 'Q' or a 'J' (or a byte of a multi-byte rune), which
// the templates and the runtime's and go-redis's messages never do.
func fuzzSecret(s string) string {
	var b strings.Builder
	b.WriteString("QJ")
	n := 0
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'm', 'A' <= r && r <= 'M':
			r = 'Q'
		case 'n' <= r && r <= 'z', 'N' <= r && r <= 'Z':
			r = 'J'
		}
		b.WriteRune(r)
		if n++; n%2 == 0 {
			b.WriteByte('Q')
		}
	}
	b.WriteString("JQ")
	return b.String()
}

// secretPiece returns a piece of secret, or of its percent-encodings, that
// text holds: 3 bytes of it that hold a 'Q', a 'J' or a non-ASCII byte.
func secretPiece(text, secret string) string {
	for _, form := range []string{secret, url.PathEscape(secret), url.QueryEscape(secret)} {
		for i := 0; i+3 <= len(form); i++ {
			w := form[i : i+3]
			if strings.ContainsAny(w, "QJ") || !isASCII(w) {
				if strings.Contains(text, w) {
					return w
				}
			}
		}
	}
	return ""
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

var fuzzSchemes = []string{"redis", "rediss", "redis+cluster", "rediss+cluster", "redis+sentinel", "REDISS+SENTINEL", "unix"}

// fuzzShapes put a secret (raw or encoded) where credentials go, or might
// be put by mistake, and extra (the fuzzer's bytes, raw) somewhere else.
var fuzzShapes = []func(scheme, secret, extra string) string{
	func(sc, s, x string) string { return sc + "://app:" + s + "@" + x },
	func(sc, s, x string) string { return sc + "://" + url.UserPassword("app", s).String() + "@" + x },
	func(sc, s, x string) string { return sc + "://" + s + "@" + x },
	func(sc, s, x string) string { return sc + "://" + url.UserPassword(s, "pw").String() + "@h:1" + x },
	func(sc, s, x string) string { return sc + "://h:1/0?" + x + "&password=" + s },
	func(sc, s, x string) string { return sc + "://h:1/0?password=" + s + "&" + x },
	func(sc, s, x string) string { return sc + "://h:1?sentinel_password=" + s + x },
	func(sc, s, x string) string {
		return sc + "://h:1?master_name=m&addr=" + url.QueryEscape("app:"+s+"@h2:2") + x
	},
	func(sc, s, x string) string {
		return sc + "://h:1?master_name=m&addr=" + url.QueryEscape(s+"@h2:2") + "&" + x
	},
	func(sc, s, x string) string { return sc + "://" + url.UserPassword("app", s).String() + "@h:1/" + x },
	func(sc, s, x string) string { return sc + "://" + url.UserPassword("app", s).String() + "@h:1?" + x },
	func(sc, s, x string) string {
		return sc + "://" + url.UserPassword("app", s).String() + "@[" + x + "]:1"
	},
	func(sc, s, x string) string { return sc + "://app:" + s + "@h:1?master_name=" + x },
	func(sc, s, x string) string { return x + "://app:" + s + "@h:1" },
}

// FuzzURLSecrets: whatever the URL around them, no option error shows a
// piece of a password put in the user info (raw or percent-encoded), in a
// credential query option, or in an addr option's user info; no address,
// master name or client name the client would dial or log holds one; and a
// percent-encoded password that parses is the password the client sends.
func FuzzURLSecrets(f *testing.F) {
	for _, s := range []string{"hunter2", "p@ss:w/rd?#", "%zz", "%2", " a b ", "é☃", "[::1]", "a\nb\r\x00", "a&b;c#d@e", "%40h:1"} {
		for _, x := range []string{"h:1", "h:1/0", "", "[::1]:1", "h:1?addr=h2:2&addr=h2:2", "h:x", ":1", "h:1/2", "h:1?db=1",
			"h:1?pass%77ord=x", "h:1?PASSWORD=x", "h:1#frag", "h:1?master_name=%zz", "redis+cluster://", "[", "]", "h:1?skip_verify=true",
			"h:1?read_only=true", "master_name=a;b", "pool_size=1;x"} {
			f.Add(uint8(len(s)+len(x)), s, x)
		}
	}
	f.Fuzz(func(t *testing.T, shape uint8, raw, extra string) {
		secret := fuzzSecret(raw)
		if strings.ContainsAny(extra, "QJ") {
			return // extra may not hold the secret's marks
		}
		sc := fuzzSchemes[int(shape)%len(fuzzSchemes)]
		n := int(shape) / len(fuzzSchemes) % len(fuzzShapes)
		u := fuzzShapes[n](sc, secret, extra)
		co, err := Options{URL: u}.redisOptions()
		if err != nil {
			if p := secretPiece(err.Error(), secret); p != "" {
				t.Fatalf("URL %q: the error holds %q of the secret: %v", u, p, err)
			}
			return
		}
		var shown []string
		switch {
		case co.cluster != nil:
			shown = append(co.cluster.Addrs, co.cluster.ClientName)
		case co.failover != nil:
			shown = append(co.failover.SentinelAddrs, co.failover.MasterName, co.failover.ClientName)
		default:
			shown = []string{co.single.Addr, co.single.ClientName}
		}
		for _, s := range shown {
			if p := secretPiece(s, secret); p != "" {
				t.Fatalf("URL %q: %q, which the client dials or logs, holds %q of the secret", u, s, p)
			}
		}
		if n == 1 && !strings.ContainsAny(extra, "@?#") {
			var pw string
			switch {
			case co.cluster != nil:
				pw = co.cluster.Password
			case co.failover != nil:
				pw = co.failover.Password
			default:
				pw = co.single.Password
			}
			if pw != secret {
				t.Fatalf("URL %q: password %q; want %q", u, pw, secret)
			}
		}
	})
}
