package serve_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driveway/driveway/internal/conformance"
	"github.com/driveway/driveway/offer"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
)

// adminEdge serves conformance scenario 01 with cfg, on a public and (with AdminOnly) an
// admin loopback listener; it returns both base URLs and a request.
func adminEdge(t *testing.T, cfg serve.Config, scheme string) (public, admin string, req []byte) {
	t.Helper()
	k := newKey(t)
	sc := conformance.LoadOne(t, "01-forward-and-floor.json")
	now := mustTime(t, sc.Now)
	work := t.TempDir()
	conformance.WriteTree(t, filepath.Join(work, "labels"), sc.Labels)
	dir := filepath.Join(work, "catalog")
	buildRelease(t, filepath.Join(work, "labels"), dir, k, now, 0)
	clock := newClock(now)
	cfg.Catalog, cfg.Keys, cfg.Clock, cfg.DisableInotify = dir, []*signing.Verifier{k.verifier}, clock.now, true
	srv, err := serve.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	listen := func(serveOn func(net.Listener) error) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go serveOn(ln)
		return scheme + "://" + ln.Addr().String()
	}
	public = listen(srv.Serve)
	if cfg.AdminOnly {
		admin = listen(srv.ServeAdmin)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return public, admin, sc.Requests[1].Request
}

// TestAdminListener: with AdminOnly, /metrics, /v1/release and explain are answered on the
// admin listener only; the public one still answers offers, health and readiness. Without it
// (the attack: any client reading the operator views) the public listener answers them all.
func TestAdminListener(t *testing.T) {
	open, _, req := adminEdge(t, serve.Config{}, "http")
	waitFor(t, 10*time.Second, "the edge serves", func() bool { return releaseSeq(t, open) == 1 })
	if code, body := postRaw(t, open+"/v1/offers?explain=1", req); code != 200 || !strings.Contains(string(body), `"explain"`) {
		t.Fatalf("without AdminOnly, explain on the public listener: %d %s", code, body)
	}

	public, admin, req := adminEdge(t, serve.Config{AdminOnly: true}, "http")
	waitFor(t, 10*time.Second, "the edge serves", func() bool { return releaseSeq(t, admin) == 1 })
	for _, c := range []struct {
		base, method, path string
		want               int
		body               string
	}{
		{public, "POST", "/v1/offers", 200, `"offers"`},
		{public, "POST", "/v1/offers?explain=0", 200, `"offers"`},
		{public, "POST", "/v1/offers?explain=1", 403, "admin listener"},
		{public, "POST", "/v1/offers?explain=true", 403, "admin listener"},
		{public, "POST", "/v1/offers?explain=full", 403, "admin listener"},
		{public, "GET", "/metrics", 404, "admin listener"},
		{public, "GET", "/v1/release", 404, "admin listener"},
		{public, "GET", "/healthz", 200, ""},
		{public, "GET", "/readyz", 200, ""},
		{admin, "POST", "/v1/offers?explain=1", 200, `"explain"`},
		{admin, "POST", "/v1/offers?explain=full", 200, `"explanation"`},
		{admin, "GET", "/metrics", 200, "driveway_edge_requests_total"},
		{admin, "GET", "/v1/release", 200, `"sequence":1`},
	} {
		var code int
		var body []byte
		if c.method == "POST" {
			code, body = postRaw(t, c.base+c.path, req)
		} else {
			code, body = get(t, c.base+c.path)
		}
		if code != c.want || !strings.Contains(string(body), c.body) {
			t.Errorf("%s %s on %s: %d %.200s; want %d with %q", c.method, c.path, map[bool]string{true: "public", false: "admin"}[c.base == public], code, body, c.want, c.body)
		}
	}
	// The refusals are counted on the public side's metrics, which the admin listener shows.
	if _, body := get(t, admin+"/metrics"); !strings.Contains(string(body), `driveway_edge_requests_total{path="/v1/offers",status="403"} 3`) {
		t.Errorf("the public listener's 403s are not in the metrics:\n%s", body)
	}
}

// TestTLSReload: with a certificate, the edge speaks HTTPS; a renewed pair is served from the
// next handshake, and a pair that does not load leaves the previous one in service.
func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "edge.crt"), filepath.Join(dir, "edge.key")
	pool := x509.NewCertPool()
	writePair := func(serial int64) {
		t.Helper()
		cert, key := selfSigned(t, serial)
		pool.AddCert(cert)
		// Written to temporary names and renamed, as certificate tools do.
		writeFileAtomic(t, keyFile, key)
		writeFileAtomic(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	}
	writePair(1)
	if _, err := serve.New(serve.Config{TLSCert: certFile, Catalog: dir, Keys: []*signing.Verifier{newKey(t).verifier}, Clock: time.Now}); err == nil ||
		!strings.Contains(err.Error(), "go together") {
		t.Errorf("a certificate without its key: %v", err)
	}
	public, _, req := adminEdge(t, serve.Config{TLSCert: certFile, TLSKey: keyFile}, "https")
	served := func() (int64, int) {
		t.Helper()
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "edge.test"}, DisableKeepAlives: true}}
		resp, err := c.Post(public+"/v1/offers", "application/json", strings.NewReader(string(req)))
		if err != nil {
			t.Fatalf("HTTPS: %v", err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64(), resp.StatusCode
	}
	waitFor(t, 10*time.Second, "the edge serves over HTTPS", func() bool { _, code := served(); return code == 200 })
	if serial, _ := served(); serial != 1 {
		t.Fatalf("serial %d served; want 1", serial)
	}
	writePair(2)
	if serial, code := served(); serial != 2 || code != 200 {
		t.Errorf("after renewal: serial %d, status %d; want 2, 200", serial, code)
	}
	writeFileAtomic(t, certFile, []byte("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"))
	if serial, code := served(); serial != 2 || code != 200 {
		t.Errorf("after a broken certificate file: serial %d, status %d; want the previous pair (2), 200", serial, code)
	}
	// Plain HTTP on the TLS port is not answered as HTTP.
	if resp, err := httpClient.Get("http" + strings.TrimPrefix(public, "https") + "/healthz"); err == nil && resp.StatusCode == 200 {
		t.Error("plain HTTP answered 200 on the TLS listener")
	}
}

func selfSigned(t *testing.T, serial int64) (*x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "edge.test"}, DNSNames: []string{"edge.test"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), // valid whatever the calendar says IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kd, _ := x509.MarshalECPrivateKey(key)
	return cert, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

func writeFileAtomic(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer safe for the access log's writer and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestAccessLog: each request answered is one JSON line with its method, path, query,
// status, size and time, written by Shutdown at the latest; a client's path with quotes,
// control bytes and invalid UTF-8 stays one valid JSON line; bodies are not logged.
func TestAccessLog(t *testing.T) {
	var out syncBuffer
	public, _, req := adminEdge(t, serve.Config{AccessLog: &out}, "http")
	waitFor(t, 10*time.Second, "the edge serves", func() bool { return releaseSeq(t, public) == 1 })
	postRaw(t, public+"/v1/offers?explain=0", req)
	get(t, public+"/nowhere%22%0A%FF")
	waitFor(t, 10*time.Second, "the access log's lines", func() bool { return strings.Count(out.String(), "\n") >= 3 })
	var offers, notFound int
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var l struct {
			Time, Remote, Method, Path, Query string
			Status, Bytes                     int
			US                                *int64 `json:"us"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil || l.Time == "" || l.US == nil || !strings.HasPrefix(l.Remote, "127.0.0.1:") {
			t.Fatalf("not an access log line: %q (%v)", line, err)
		}
		switch {
		case l.Method == "POST" && l.Path == "/v1/offers" && l.Query == "explain=0" && l.Status == 200 && l.Bytes > 0:
			offers++
		case l.Path == "/nowhere\"\n\ufffd" && l.Status == 404:
			notFound++
		}
	}
	if offers != 1 || notFound != 1 {
		t.Errorf("access log: %d offer lines, %d not-found lines; want 1 and 1:\n%s", offers, notFound, out.String())
	}
	if strings.Contains(out.String(), "instanceId") || strings.Contains(out.String(), "hardwareIds") {
		t.Error("the access log holds a request body")
	}
}

// TestRequestSample: one request in Every is written, with its device id hashed (the same
// device, the same hash) and no instance paths, everything else as sent, each line a request
// the edge's decoder takes (what driveway diff --population replays).
func TestRequestSample(t *testing.T) {
	var out syncBuffer
	public, _, req := adminEdge(t, serve.Config{Sample: serve.SampleOptions{Out: &out, Every: 2, Secret: []byte("sample secret")}}, "http")
	waitFor(t, 10*time.Second, "the edge serves", func() bool { return releaseSeq(t, public) == 1 })
	for range 6 {
		if code, body := postRaw(t, public+"/v1/offers", req); code != 200 {
			t.Fatalf("offer: %d %s", code, body)
		}
	}
	waitFor(t, 10*time.Second, "three sampled lines", func() bool { return strings.Count(out.String(), "\n") >= 3 })
	var sent struct {
		DeviceID string `json:"deviceId"`
		Devices  []struct {
			InstanceID  string   `json:"instanceId"`
			HardwareIDs []string `json:"hardwareIds"`
		} `json:"devices"`
	}
	if err := json.Unmarshal(req, &sent); err != nil || sent.DeviceID == "" || len(sent.Devices) == 0 {
		t.Fatalf("the test's request: %v %+v", err, sent)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines sampled of 6 requests at 1 in 2; want 3:\n%s", len(lines), out.String())
	}
	dec := offer.NewDecoder(offer.Limits{})
	var r offer.Request
	hashed := ""
	for _, line := range lines {
		if perr := dec.Decode([]byte(line), &r); perr != nil {
			t.Fatalf("a sampled line is not a request: %v\n%s", perr, line)
		}
		var got struct {
			DeviceID string `json:"deviceId"`
			Devices  []struct {
				InstanceID  string   `json:"instanceId"`
				HardwareIDs []string `json:"hardwareIds"`
			} `json:"devices"`
		}
		json.Unmarshal([]byte(line), &got)
		if !strings.HasPrefix(got.DeviceID, "sample:") || strings.Contains(line, sent.DeviceID) || (hashed != "" && got.DeviceID != hashed) {
			t.Errorf("device id %q (sent %q, before %q)", got.DeviceID, sent.DeviceID, hashed)
		}
		hashed = got.DeviceID
		for i, d := range got.Devices {
			if d.InstanceID != fmt.Sprintf(`SAMPLE\%d`, i) || strings.Contains(line, sent.Devices[i].InstanceID) {
				t.Errorf("device %d: instance %q kept or not replaced", i, d.InstanceID)
			}
			if strings.Join(d.HardwareIDs, " ") != strings.Join(sent.Devices[i].HardwareIDs, " ") {
				t.Errorf("device %d: hardware IDs %v, sent %v", i, d.HardwareIDs, sent.Devices[i].HardwareIDs)
			}
		}
	}
}
