package dashboard

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// MinTokenLen is the shortest -token accepted: long enough that guessing
// it through the login form is hopeless.
const MinTokenLen = 16

// ErrRefused means the dashboard will not start as configured.
var ErrRefused = errors.New("refused")

// Loopback reports whether the listen address addr (host:port) binds to a
// loopback address only: 127.0.0.0/8, ::1 or localhost. An empty host
// (":8080") binds to every interface and is not loopback.
func Loopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("%w: listen address %q: %v", ErrRefused, addr, err)
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// CheckListen returns an error wrapping ErrRefused when the dashboard must
// not listen on addr with token: a non-loopback address without a token,
// or a token shorter than MinTokenLen.
func CheckListen(addr, token string) error {
	lb, err := Loopback(addr)
	if err != nil {
		return err
	}
	if token != "" && len(token) < MinTokenLen {
		return fmt.Errorf("%w: the token is shorter than %d bytes", ErrRefused, MinTokenLen)
	}
	if !lb && token == "" {
		return fmt.Errorf("%w: %s is not a loopback address: anyone who reaches it would see the data; give -token (or STORAGEGEN_DASHBOARD_TOKEN) to require it", ErrRefused, addr)
	}
	return nil
}

// secrets are the per-process values derived from a random key: the
// CSRF token every write must carry and the session cookie the login
// form sets (never the token itself).
type secrets struct {
	csrf    string
	session string
}

func newSecrets(key []byte, token string) secrets {
	mac := func(what string) string {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(what))
		return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
	}
	return secrets{csrf: mac("csrf"), session: mac("session\x00" + token)}
}

// equal compares in constant time (for equal lengths; the lengths of the
// values compared here are public).
func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

const cookieName = "storagegen_dashboard"

// hostOK reports whether the Host header names this server, against DNS
// rebinding (a page of another site whose name was made to resolve to
// this address): an IP literal (a loopback one when the dashboard listens
// on loopback), localhost when it listens on loopback, or a name given
// with -allow-host. A rebinding attack needs a name, so IP literals are
// safe; a name is accepted only when the operator listed it.
func (s *Server) hostOK(r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return false
	}
	if slices.Contains(s.allowHosts, strings.ToLower(host)) {
		return true
	}
	if ip := net.ParseIP(host); ip != nil {
		return !s.loopback || ip.IsLoopback()
	}
	return s.loopback && strings.EqualFold(host, "localhost")
}

// authed reports whether the request carries the token: as a bearer
// header or as the session cookie the login form sets.
func (s *Server) authed(r *http.Request) bool {
	if s.token == "" {
		return true
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		return ok && strings.EqualFold(scheme, "Bearer") && equal(strings.TrimSpace(tok), s.token)
	}
	c, err := r.Cookie(cookieName)
	return err == nil && equal(c.Value, s.sec.session)
}

// sameOrigin reports whether a POST comes from a page of this server: its
// Origin header, or without one its Referer, names this host (the Host
// header, port included), over http or https (a TLS proxy in front makes
// the browser's origin https while the request reaches this server over
// http). A request with neither header is refused.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		o = r.Header.Get("Referer")
	}
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Host == r.Host
}

// csrfOK checks a write: same origin and the CSRF token in the form.
func (s *Server) csrfOK(r *http.Request) bool {
	return sameOrigin(r) && equal(r.PostFormValue("csrf"), s.sec.csrf)
}

// securityHeaders are set on every response: nothing is loaded from
// elsewhere, no page is framed (the confirmation buttons cannot be
// clickjacked), nothing is cached or sniffed.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}
