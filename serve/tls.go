package serve

// TLS on the edge's listeners.
//
// With Config.TLSCert and TLSKey (PEM files: the certificate chain, leaf first, and its
// private key), Serve and ServeAdmin speak HTTPS. The pair is loaded by New (a bad pair is an
// error at start) and read again when either file changes (its size, modification time or
// inode, checked at each handshake: two stats, against a handshake's own cost of about a
// millisecond), so a renewed certificate (certbot, cert-manager) is served without a restart.
// A pair that does not load — a half-written file, a key that does not match — is logged
// and the previous pair stays in service; the next handshake tries again.
//
// Threat: the device inventory a PC sends (its hardware IDs, model, OS, device id) and the
// offers it gets read or altered on a network where no load balancer terminates TLS.
// (Offers are checkable by the PC anyway, package client; requests and reports are not.)

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"
)

type certReloader struct {
	certFile, keyFile string
	s                 *Server

	mu            sync.Mutex
	cert          *tls.Certificate
	certID, keyID fileID
	failedID      [2]fileID // the pair that last failed to load: logged once
}

func newCertReloader(s *Server, certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, s: s}
	if err := r.load(); err != nil {
		return nil, fmt.Errorf("serve: TLS: %w (give --tls-cert a PEM certificate chain and --tls-key its private key)", err)
	}
	return r, nil
}

// load reads the pair; on success it replaces the one served.
func (r *certReloader) load() error {
	cid, err := statFile(r.certFile)
	if err != nil {
		return err
	}
	kid, err := statFile(r.keyFile)
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	r.cert, r.certID, r.keyID = &cert, cid, kid
	return nil
}

// get is tls.Config.GetCertificate: the current pair, read again first if a file changed.
func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cid, cerr := statFile(r.certFile)
	kid, kerr := statFile(r.keyFile)
	if cerr == nil && kerr == nil && (cid != r.certID || kid != r.keyID) && [2]fileID{cid, kid} != r.failedID {
		if err := r.load(); err != nil {
			r.failedID = [2]fileID{cid, kid}
			r.s.log.Error("TLS certificate or key changed but does not load; serving the previous pair", "cert", r.certFile, "key", r.keyFile, "error", err.Error())
		} else {
			r.s.log.Info("TLS certificate reloaded", "cert", r.certFile)
		}
	}
	return r.cert, nil
}

// listener wraps ln in TLS when the edge has a certificate.
func (s *Server) listener(ln net.Listener) net.Listener {
	if s.certs == nil {
		return ln
	}
	return tls.NewListener(ln, &tls.Config{GetCertificate: s.certs.get, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}})
}
