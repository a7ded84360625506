// Package chtest starts a real clickhouse-server for a test: on free loopback ports, with
// a configuration, data and logs of its own in the test's temporary directory, stopped at
// the test's cleanup. Only tests import it.
//
// The server is the first of: $DRIVEWAY_CLICKHOUSE_SERVER (a clickhouse-server binary, or
// the single "clickhouse" binary, run as "clickhouse server"), clickhouse-server on PATH,
// /usr/sbin/clickhouse-server, /usr/bin/clickhouse-server, clickhouse on PATH. Debian's
// package is `apt-get install clickhouse-server` (18.16). Without one the test skips,
// except under CI=true, where it fails: CI installs it (.ci/run).
package chtest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Bounded waits.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
	httpTimeout  = 60 * time.Second
)

// Server is a running clickhouse-server.
type Server struct {
	URL string // its HTTP interface, http://127.0.0.1:port
	Dir string // its configuration, data and logs
}

// binary finds a server: its path and the arguments before the configuration's.
func binary() (string, []string, bool) {
	if p := os.Getenv("DRIVEWAY_CLICKHOUSE_SERVER"); p != "" {
		if filepath.Base(p) == "clickhouse" {
			return p, []string{"server"}, true
		}
		return p, nil, true
	}
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return p, nil, true
	}
	for _, p := range []string{"/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil, true
		}
	}
	if p, err := exec.LookPath("clickhouse"); err == nil {
		return p, []string{"server"}, true
	}
	return "", nil, false
}

// Start starts a server for t, or skips t when there is none (fails under CI=true).
func Start(t testing.TB) *Server {
	t.Helper()
	bin, pre, ok := binary()
	if !ok {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and no clickhouse-server found: CI must install it (.ci/run: apt-get install clickhouse-server)")
		}
		t.Skip("clickhouse-server is not installed (apt-get install clickhouse-server, or DRIVEWAY_CLICKHOUSE_SERVER=path): skipping the ClickHouse test")
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port may be taken before the server binds it
		dir := t.TempDir()
		s, err := start(t, bin, pre, dir)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatal(lastErr)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// config is the server's configuration: loopback only, everything under dir.
const config = `<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>{dir}/log/server.log</log>
        <errorlog>{dir}/log/error.log</errorlog>
        <console>0</console>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http}</http_port>
    <tcp_port>{tcp}</tcp_port>
    <path>{dir}/data/</path>
    <tmp_path>{dir}/tmp/</tmp_path>
    <user_files_path>{dir}/user_files/</user_files_path>
    <format_schema_path>{dir}/format_schemas/</format_schema_path>
    <users_config>{dir}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <max_concurrent_queries>20</max_concurrent_queries>
    <!-- The server waits for idle keep-alive connections when it shuts down. -->
    <keep_alive_timeout>1</keep_alive_timeout>
    {timezone}
</yandex>
`

// users is a passwordless default user, from 127.0.0.1 only.
const users = `<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>2000000000</max_memory_usage>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
`

func start(t testing.TB, bin string, pre []string, dir string) (*Server, error) {
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	tcpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"log", "data", "tmp", "user_files", "format_schemas"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	// A server time zone other than UTC, where the machine has one, shows that the measures
	// do not depend on it.
	tz := ""
	if _, err := os.Stat("/usr/share/zoneinfo/Asia/Kolkata"); err == nil {
		tz = "<timezone>Asia/Kolkata</timezone>"
	}
	conf := strings.NewReplacer("{dir}", dir, "{http}", fmt.Sprint(httpPort), "{tcp}", fmt.Sprint(tcpPort), "{timezone}", tz).Replace(config)
	confPath := filepath.Join(dir, "config.xml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), []byte(users), 0o644); err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(dir, "log", "stdout"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append(pre, "--config-file="+confPath)...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("chtest: starting %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		out.Close()
		close(exited)
	}()
	stop := func() {
		signalGroup(cmd, false)
		select {
		case <-exited:
			return
		case <-time.After(stopTimeout):
		}
		signalGroup(cmd, true)
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			t.Errorf("chtest: clickhouse-server (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
		}
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", httpPort), Dir: dir}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := client.Get(s.URL + "/ping")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(b)) == "Ok." {
				t.Cleanup(stop)
				return s, nil
			}
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("chtest: %s exited before answering /ping:\n%s", bin, tail(dir))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("chtest: %s did not answer /ping within %s:\n%s", bin, startTimeout, tail(dir))
		}
	}
}

// tail is the end of the server's output and error log, for a failure message.
func tail(dir string) string {
	var b strings.Builder
	for _, f := range []string{"stdout", "error.log"} {
		data, _ := os.ReadFile(filepath.Join(dir, "log", f))
		if len(data) > 3000 {
			data = data[len(data)-3000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", f, data)
	}
	return b.String()
}

// client keeps no idle connections: a server stopping waits for them.
var client = &http.Client{Timeout: httpTimeout, Transport: &http.Transport{DisableKeepAlives: true}}

// Client is an HTTP client for the server that keeps no idle connections (so that the
// server stops at once at cleanup).
func (s *Server) Client() *http.Client { return client }

// Exec runs one statement and returns its answer; an error answer fails t.
func (s *Server) Exec(t testing.TB, query string) string {
	t.Helper()
	resp, err := client.Post(s.URL+"/", "text/plain; charset=utf-8", strings.NewReader(query))
	if err != nil {
		t.Fatalf("clickhouse: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("clickhouse: %s: %s\nquery: %.500s", resp.Status, b, query)
	}
	return string(b)
}

// Insert sends JSON lines to a table as Vector's clickhouse sink (up to 0.56) sends a batch:
// POST /?input_format_import_nested_json=1&query=INSERT INTO "database"."table" FORMAT
// JSONEachRow, the body gzipped. An error answer fails t.
func (s *Server) Insert(t testing.TB, database, table string, lines []byte) {
	t.Helper()
	var body bytes.Buffer
	zw := gzip.NewWriter(&body)
	zw.Write(lines)
	zw.Close()
	q := url.Values{"query": {fmt.Sprintf(`INSERT INTO "%s"."%s" FORMAT JSONEachRow`, database, strings.ReplaceAll(table, `"`, `\"`))}}.Encode()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/?input_format_import_nested_json=1&"+q, &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("clickhouse insert: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("clickhouse insert: %s: %s", resp.Status, b)
	}
}
