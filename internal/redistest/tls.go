package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// StartTLS starts a redis-server that speaks only TLS, with a certificate
// for 127.0.0.1 signed by a CA made here. It returns the server and the CA
// pool a client needs to trust it.
func StartTLS(args ...string) (*Server, *x509.CertPool, error) {
	certs, err := NewTLS()
	if err != nil {
		return nil, nil, err
	}
	bin, err := execLookPath()
	if err != nil {
		certs.remove()
		return nil, nil, err
	}
	s, err := startWith(bin, func(port int) ([]string, error) {
		return append([]string{"--port", "0", "--tls-port", strconv.Itoa(port), "--tls-cert-file", certs.certFile,
			"--tls-key-file", certs.keyFile, "--tls-auth-clients", "no"}, args...), nil
	}, &tls.Config{RootCAs: certs.CA, ServerName: "127.0.0.1"})
	if err != nil {
		certs.remove()
		return nil, nil, err
	}
	s.more = append(s.more, certs.dir) // Restart reads the certificate again
	return s, certs.CA, nil
}

// TLS is the certificates of a topology started WithTLS, made by NewTLS
// with crypto/x509: a CA, a server certificate it signed (every node and
// sentinel uses it), a client certificate it signed, and a CA that signed
// nothing here.
type TLS struct {
	// CA trusts the servers' certificate (and the client certificate).
	CA *x509.CertPool
	// WrongCA is another CA: a client that trusts only it refuses the
	// servers' certificate.
	WrongCA *x509.CertPool
	// ClientCert is a client certificate signed by CA, which servers that
	// require one (tls-auth-clients yes) accept.
	ClientCert tls.Certificate
	// Names are the host names and IP addresses the servers' certificate
	// holds.
	Names []string

	dir, caFile, certFile, keyFile string
}

// DefaultTLSNames are the names of the servers' certificate unless
// WithTLS names others.
var DefaultTLSNames = []string{"127.0.0.1", "localhost"}

// NewTLS makes a CA, a server certificate for names (DefaultTLSNames when
// none; an IP address goes in as one) that the CA signed, valid for
// server and client authentication (a node presents it to another on the
// cluster bus or for replication), a client certificate that the CA
// signed, and a wrong CA, in files of a new directory.
func NewTLS(names ...string) (*TLS, error) {
	if len(names) == 0 {
		names = DefaultTLSNames
	}
	dir, err := os.MkdirTemp("", "redistest-tls-")
	if err != nil {
		return nil, err
	}
	t := &TLS{Names: append([]string(nil), names...), dir: dir,
		caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	if err := t.make(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return t, nil
}

// Config returns a client configuration that trusts CA and presents
// ClientCert, with no ServerName: each certificate is checked against the
// host dialed.
func (t *TLS) Config() *tls.Config {
	return &tls.Config{RootCAs: t.CA, Certificates: []tls.Certificate{t.ClientCert}}
}

// harnessConfig is the configuration of the harness's own connections:
// Config, with the certificate's first name as ServerName, since the
// harness dials 127.0.0.1 whatever names the certificate holds.
func (t *TLS) harnessConfig() *tls.Config {
	c := t.Config()
	c.ServerName = t.Names[0]
	return c
}

// serverArgs are the arguments that make a redis-server (or a sentinel)
// listen on port with TLS only, present the certificate, trust the CA for
// the certificates presented to it, and require one from every client.
func (t *TLS) serverArgs(port int) []string {
	return []string{"--port", "0", "--tls-port", strconv.Itoa(port),
		"--tls-cert-file", t.certFile, "--tls-key-file", t.keyFile, "--tls-ca-cert-file", t.caFile,
		"--tls-auth-clients", "yes"}
}

func (t *TLS) remove() {
	if t != nil {
		os.RemoveAll(t.dir)
	}
}

// make writes the CA and the server certificate and key, and fills in the
// pools and the client certificate.
func (t *TLS) make() error {
	now := time.Now()
	newKey := func() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }
	newCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
		key, err := newKey()
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			return nil, nil, err
		}
		cert, err := x509.ParseCertificate(der)
		return cert, key, err
	}
	ca, caKey, err := newCA("redistest CA")
	if err != nil {
		return err
	}
	wrong, _, err := newCA("redistest wrong CA")
	if err != nil {
		return err
	}
	leaf := func(serial int64, cn string, usage ...x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey, error) {
		key, err := newKey()
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usage,
		}
		if cn != "redistest client" {
			for _, n := range t.Names {
				if ip := net.ParseIP(n); ip != nil {
					tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
				} else {
					tmpl.DNSNames = append(tmpl.DNSNames, n)
				}
			}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		return der, key, err
	}
	serverDER, serverKey, err := leaf(2, t.Names[0], x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return err
	}
	clientDER, clientKey, err := leaf(3, "redistest client", x509.ExtKeyUsageClientAuth)
	if err != nil {
		return err
	}
	keyPEM := func(k *ecdsa.PrivateKey) ([]byte, error) {
		der, err := x509.MarshalECPrivateKey(k)
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), err
	}
	certPEM := func(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) }
	serverKeyPEM, err := keyPEM(serverKey)
	if err != nil {
		return err
	}
	clientKeyPEM, err := keyPEM(clientKey)
	if err != nil {
		return err
	}
	for file, b := range map[string][]byte{t.caFile: certPEM(ca.Raw), t.certFile: certPEM(serverDER), t.keyFile: serverKeyPEM} {
		if err := os.WriteFile(file, b, 0o600); err != nil {
			return err
		}
	}
	if t.ClientCert, err = tls.X509KeyPair(certPEM(clientDER), clientKeyPEM); err != nil {
		return err
	}
	t.CA, t.WrongCA = x509.NewCertPool(), x509.NewCertPool()
	t.CA.AddCert(ca)
	t.WrongCA.AddCert(wrong)
	return nil
}
