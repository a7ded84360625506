// Command benchedge makes the data of scripts/bench-edge.sh: a label tree of bench's
// generator, and offer requests of a given number of devices drawn from bench's PCs.
//
//	go run ./scripts/benchedge labels  --out DIR [--labels 100000]
//	go run ./scripts/benchedge request --labels DIR --devices N > request.json
//	go run ./scripts/benchedge swap --url http://EDGE -- driveway build --control-only …
//
// swap runs the command (a build publishing into the edge's catalog) and measures the time
// from the command's exit to the edge serving a newer sequence (GET /v1/release, polled
// every millisecond, for at most 30 s).
//
// It is a helper of the benchmark script, not part of driveway.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"time"

	"github.com/driveway/driveway/bench"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchedge labels|request [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "labels":
		err = labels(os.Args[2:])
	case "request":
		err = request(os.Args[2:])
	case "swap":
		err = swap(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchedge: %v\n", err)
		os.Exit(1)
	}
}

func labels(args []string) error {
	fs := flag.NewFlagSet("labels", flag.ExitOnError)
	out := fs.String("out", "", "directory to write the tree into (must not exist)")
	n := fs.Int("labels", 100000, "shipping labels")
	fs.Parse(args)
	st, err := bench.GenerateLabels(*out, bench.LabelOptions{Labels: *n, Compact: true})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %d labels in %d files (%d bytes)\n", st.Labels, st.Files, st.Bytes)
	return nil
}

// request prints one offer request with exactly n devices: the first generated PC that has
// at least n devices, its device list cut to n.
func request(args []string) error {
	fs := flag.NewFlagSet("request", flag.ExitOnError)
	tree := fs.String("labels", "", "the label tree the PCs' hardware comes from")
	n := fs.Int("devices", 1, "devices in the request")
	pcs := fs.Int("pcs", 2000, "PCs to draw from")
	fs.Parse(args)
	var buf bytes.Buffer
	if _, err := bench.GenerateDevices(&buf, bench.DeviceOptions{PCs: *pcs, Labels: *tree}); err != nil {
		return err
	}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var pc map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &pc); err != nil {
			return err
		}
		var devs []json.RawMessage
		if err := json.Unmarshal(pc["devices"], &devs); err != nil {
			return err
		}
		if len(devs) < *n {
			continue
		}
		pc["devices"], _ = json.Marshal(devs[:*n])
		b, err := json.Marshal(pc)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(append(b, '\n'))
		return err
	}
	return fmt.Errorf("no PC among %d has %d devices", *pcs, *n)
}

func swap(args []string) error {
	fs := flag.NewFlagSet("swap", flag.ExitOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "the edge")
	fs.Parse(args)
	cmd := fs.Args()
	if len(cmd) == 0 {
		return fmt.Errorf("swap: no command")
	}
	client := &http.Client{Timeout: 2 * time.Second}
	seqOf := func() (uint64, error) {
		resp, err := client.Get(*url + "/v1/release")
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r struct {
			Sequence uint64 `json:"sequence"`
		}
		err = json.Unmarshal(b, &r)
		return r.Sequence, err
	}
	before, err := seqOf()
	if err != nil {
		return err
	}
	c := exec.Command(cmd[0], cmd[1:]...)
	c.Stderr = os.Stderr
	start := time.Now()
	if err := c.Run(); err != nil {
		return fmt.Errorf("swap: %v: %w", cmd, err)
	}
	built := time.Now()
	for time.Since(built) < 30*time.Second {
		if seq, err := seqOf(); err == nil && seq > before {
			fmt.Printf("build %.1f ms; swap %.1f ms after the build exited (release %d -> %d)\n",
				float64(built.Sub(start).Microseconds())/1000, float64(time.Since(built).Microseconds())/1000, before, seq)
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("swap: release %d still served 30 s after the build", before)
}
