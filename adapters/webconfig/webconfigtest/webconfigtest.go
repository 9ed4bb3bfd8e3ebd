// Package webconfigtest writes web config files and certificates for tests.
package webconfigtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/telemetry-pipeline/telemetry-pipeline/ports/portstest"
)

// Principals is the web config file naming p (bcrypt at its least cost: tests only).
func Principals(t testing.TB, p portstest.Principals) string {
	var b strings.Builder
	b.WriteString("basic_auth_users:\n")
	for name, pass := range p.Passwords {
		hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
		require.NoError(t, err)
		fmt.Fprintf(&b, "  %s: %s\n", name, hash)
	}
	b.WriteString("bearer_tokens:\n")
	for name, tok := range p.Tokens {
		sum := sha256.Sum256([]byte(tok))
		fmt.Fprintf(&b, "  %s: %s\n", name, hex.EncodeToString(sum[:]))
	}
	b.WriteString("roles:\n")
	for name, r := range p.Roles {
		fmt.Fprintf(&b, "  %s: %s\n", name, r)
	}
	return b.String()
}

// SelfSigned makes a certificate for localhost and 127.0.0.1, and its key, in PEM.
func SelfSigned(t testing.TB) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}
