package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// pkgServer serves one package on a loopback socket and records the Range of each request.
// mode changes what it answers.
type pkgServer struct {
	*httptest.Server
	mu     sync.Mutex
	body   []byte
	mode   string // "" (http.ServeContent: Range honoured), "ignore-range", "416", "wrong-range", "404", "longer", "shorter"
	ranges []string
}

func newPkgServer(t *testing.T, body []byte) *pkgServer {
	p := &pkgServer{body: body}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.ranges = append(p.ranges, r.Header.Get("Range"))
		mode, body := p.mode, p.body
		p.mu.Unlock()
		switch mode {
		case "ignore-range":
			w.Write(body)
		case "416":
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		case "wrong-range":
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(body)-1, len(body)))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(body)
		case "404":
			http.NotFound(w, r)
		case "longer":
			w.Write(append(append([]byte(nil), body...), "and more"...))
		case "shorter":
			w.Write(body[:len(body)-1])
		default:
			http.ServeContent(w, r, "p.cab", time.Time{}, bytes.NewReader(body))
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *pkgServer) set(mode string) {
	p.mu.Lock()
	p.mode, p.ranges = mode, nil
	p.mu.Unlock()
}

func (p *pkgServer) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.ranges...)
}

func testOffer(url string, body []byte) *Offer {
	sum := sha256.Sum256(body)
	return &Offer{URL: url, SHA256: hex.EncodeToString(sum[:]), Size: uint64(len(body)), INF: "x.inf", LabelID: 7}
}

// TestDownload: a fresh download, a resumed one, the servers that get Range wrong, and
// bodies of the wrong length or bytes; only a checked file is ever in packages/.
func TestDownload(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	srv := newPkgServer(t, body)
	o := testOffer(srv.URL+"/pkgs/P.CAB", body)
	part := func(state string) string { return filepath.Join(state, DownloadsDir, o.SHA256+".part") }
	final := func(state string) string { return filepath.Join(state, PackagesDir, o.SHA256+".cab") }
	hc := srv.Client()
	ctx := context.Background()

	check := func(t *testing.T, state string, d *Download) {
		t.Helper()
		got, err := os.ReadFile(final(state))
		if err != nil || !bytes.Equal(got, body) || d.Path != final(state) {
			t.Fatalf("package %s: %d bytes, %v", d.Path, len(got), err)
		}
		if _, err := os.Stat(part(state)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("partial file left: %v", err)
		}
	}
	nothing := func(t *testing.T, state string) {
		t.Helper()
		for _, p := range []string{part(state), final(state)} {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s left: %v", p, err)
			}
		}
	}

	t.Run("fresh, then cached", func(t *testing.T) {
		state := t.TempDir()
		srv.set("")
		d, err := download(ctx, hc, state, o)
		if err != nil || d.Resumed != 0 || d.Fetched != int64(len(body)) {
			t.Fatalf("%+v %v", d, err)
		}
		check(t, state, d)
		d, err = download(ctx, hc, state, o)
		if err != nil || !d.Cached || len(srv.seen()) != 1 {
			t.Fatalf("second download: %+v %v, %d requests", d, err, len(srv.seen()))
		}
	})
	withPart := func(t *testing.T, b []byte) string {
		state := t.TempDir()
		os.MkdirAll(filepath.Join(state, DownloadsDir), 0o755)
		os.WriteFile(part(state), b, 0o644)
		return state
	}
	t.Run("resumed", func(t *testing.T) {
		state := withPart(t, body[:10000])
		srv.set("")
		d, err := download(ctx, hc, state, o)
		if err != nil || d.Resumed != 10000 || d.Fetched != int64(len(body)-10000) {
			t.Fatalf("%+v %v", d, err)
		}
		if r := srv.seen(); len(r) != 1 || r[0] != "bytes=10000-" {
			t.Fatalf("ranges asked: %q", r)
		}
		check(t, state, d)
	})
	t.Run("server ignores Range", func(t *testing.T) {
		state := withPart(t, body[:10000])
		srv.set("ignore-range")
		d, err := download(ctx, hc, state, o)
		if err != nil || d.Resumed != 0 || d.Fetched != int64(len(body)) {
			t.Fatalf("%+v %v", d, err)
		}
		check(t, state, d)
	})
	t.Run("partial file of other bytes", func(t *testing.T) {
		state := withPart(t, bytes.Repeat([]byte("x"), 10000))
		srv.set("")
		_, err := download(ctx, hc, state, o)
		if !errors.Is(err, ErrHash) || !strings.Contains(err.Error(), "sha256") {
			t.Fatalf("%v", err)
		}
		nothing(t, state) // the next attempt starts over
		if d, err := download(ctx, hc, state, o); err != nil {
			t.Fatal(err)
		} else {
			check(t, state, d)
		}
	})
	t.Run("partial file longer than the package", func(t *testing.T) {
		state := withPart(t, append(append([]byte(nil), body...), "tail"...))
		srv.set("")
		d, err := download(ctx, hc, state, o)
		if err != nil || d.Resumed != 0 {
			t.Fatalf("%+v %v", d, err)
		}
		check(t, state, d)
	})
	t.Run("complete partial file", func(t *testing.T) {
		state := withPart(t, body)
		srv.set("404")
		d, err := download(ctx, hc, state, o)
		if err != nil || len(srv.seen()) != 0 {
			t.Fatalf("%+v %v, %d requests", d, err, len(srv.seen()))
		}
		check(t, state, d)
	})
	for _, c := range []struct {
		mode, part string
		want       error
		says       string
	}{
		{"404", "", ErrDownload, "404"},
		{"416", "0123", ErrHash, "416"},
		{"wrong-range", "0123", ErrDownload, "to a request from byte 4"},
		{"longer", "", ErrHash, "the record says 65536"},
		{"shorter", "", ErrHash, "65535 bytes"},
	} {
		t.Run(c.mode, func(t *testing.T) {
			state := t.TempDir()
			if c.part != "" {
				state = withPart(t, []byte(c.part))
			}
			srv.set(c.mode)
			_, err := download(ctx, hc, state, o)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("%v, want %v saying %q", err, c.want, c.says)
			}
			if _, err := os.Stat(final(state)); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("a package was installed")
			}
		})
	}
	t.Run("not http", func(t *testing.T) {
		for _, u := range []string{"file:///etc/passwd", "ftp://x/p.cab", "http:///p.cab", "::"} {
			if _, err := download(ctx, hc, t.TempDir(), testOffer(u, body)); !errors.Is(err, ErrDownload) {
				t.Errorf("%s: %v", u, err)
			}
		}
	})
}

func TestPackageExt(t *testing.T) {
	for p, want := range map[string]string{"/a/b.cab": ".cab", "/a/B.CAB": ".cab", "/a/b": "", "/a/b.": "", "/a/b.toolongext": "", "/a/b.c$b": "", "/a/b.zip": ".zip"} {
		if got := packageExt(p); got != want {
			t.Errorf("packageExt(%q) = %q, want %q", p, got, want)
		}
	}
}

// TestHook: the command gets the package as its last argument and the offer's fields in
// its environment; its status decides; a missing program fails with no status.
func TestHook(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	o := &Offer{SHA256: strings.Repeat("ab", 32), Size: 3, INF: "net.inf", Class: "Net", Kind: "automatic", LabelID: 42, InstanceID: `PCI\X\1`}
	h := &Hook{Command: []string{"/bin/sh", "-c", `printf '%s %s %s %s %s %s\n' "$#" "$2" "$DRIVEWAY_INF" "$DRIVEWAY_LABEL_ID" "$DRIVEWAY_INSTANCE_ID" "$DRIVEWAY_RELEASE" > ` + out + `; exit $1`, "hook", "0"}}
	code, err := h.run(context.Background(), dir, "/p.cab", o, "c", 9)
	b, _ := os.ReadFile(out)
	if err != nil || code == nil || *code != 0 || string(b) != "2 /p.cab net.inf 42 PCI\\X\\1 9\n" {
		t.Fatalf("%v %v %q", code, err, b)
	}
	h.Command[4] = "5"
	if code, err := h.run(context.Background(), dir, "/p.cab", o, "c", 9); !errors.Is(err, ErrHook) || code == nil || *code != 5 || !strings.Contains(err.Error(), "status 5") {
		t.Fatalf("%v %v", code, err)
	}
	h.OK = []int{0, 5}
	if _, err := h.run(context.Background(), dir, "/p.cab", o, "c", 9); err != nil {
		t.Fatalf("status 5 in OK: %v", err)
	}
	h = &Hook{Command: []string{filepath.Join(dir, "no-such-hook")}}
	if code, err := h.run(context.Background(), dir, "/p.cab", o, "c", 9); !errors.Is(err, ErrHook) || code != nil {
		t.Fatalf("%v %v", code, err)
	}
}

func TestPnPUtilSteps(t *testing.T) {
	s := PnPUtilSteps(`C:\Windows`, `C:\ProgramData\driveway\packages\x.cab`, "D", "e1d.inf")
	want := [][]string{
		{`C:\Windows\System32\expand.exe`, "-F:*", `C:\ProgramData\driveway\packages\x.cab`, "D"},
		{`C:\Windows\System32\pnputil.exe`, "/add-driver", filepath.Join("D", "e1d.inf"), "/subdirs", "/install"},
	}
	if fmt.Sprint(s) != fmt.Sprint(want) {
		t.Fatalf("%q", s)
	}
	if s := PnPUtilSteps("", "p", "d", "i.inf"); s[0][0] != "expand.exe" || s[1][0] != "pnputil.exe" {
		t.Fatalf("%q", s)
	}
}
