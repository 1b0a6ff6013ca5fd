package runtime

import (
	"crypto/tls"
	"errors"
	"net"
	"reflect"
)

// handshakeAlerts are the TLS alerts a peer sends only to refuse a
// handshake (RFC 8446 section 6.2): handshake_failure, bad_certificate,
// unsupported_certificate, certificate_revoked, certificate_expired,
// certificate_unknown, unknown_ca, access_denied, protocol_version,
// insufficient_security, unrecognized_name, certificate_required,
// no_application_protocol.
var handshakeAlerts = map[uint64]bool{40: true, 42: true, 43: true, 44: true, 45: true, 46: true, 48: true,
	49: true, 70: true, 71: true, 112: true, 116: true, 120: true}

// tlsRefused reports whether err is a refused TLS handshake: the client
// refused the server's certificate (wrong CA, wrong name, expired), or the
// server refused the client's (none, or one it does not trust) with a
// handshake alert, which TLS 1.3 delivers on the first read after the
// client's side of the handshake is done. Either way the server read no
// command of that connection: a write that failed so was not sent.
func tlsRefused(err error) bool {
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return true
	}
	// crypto/tls reports a peer's alert as a *net.OpError "remote error"
	// around a value of its unexported uint8 alert type.
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" && op.Err != nil {
		if v := reflect.ValueOf(op.Err); v.Kind() == reflect.Uint8 {
			return handshakeAlerts[v.Uint()]
		}
	}
	return false
}
