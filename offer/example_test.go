package offer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/driveway/driveway/build"
	"github.com/driveway/driveway/catalogs/examples"
	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/offer"
	"github.com/driveway/driveway/signing"
)

// The edge's pipeline for one request: Decode the body, Decide the offers at a time, and
// AppendResponse the JSON answer, against a release of the bundled example catalog.
func Example() {
	dir, err := os.MkdirTemp("", "offer-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	engine, rel := exampleRelease(dir, now)
	defer rel.Close()
	body, err := fs.ReadFile(examples.Requests, "requests/contoso-model-b13.json")
	if err != nil {
		log.Fatal(err)
	}

	// A Decoder, a Request and a Result are reused from one request to the next: an edge
	// keeps one of each per connection, and their memory serves every request after.
	dec := offer.NewDecoder(offer.Limits{})
	var req offer.Request
	var res offer.Result
	if e := dec.Decode(body, &req); e != nil {
		log.Fatal(e) // an edge answers 400 with offer.AppendError(nil, e)
	}
	engine.Decide(&req, now, false, &res)
	resp := offer.AppendResponse(nil, &req, &res, engine.OS())

	var answer struct {
		Release struct {
			Sequence uint64 `json:"sequence"`
		} `json:"release"`
		Offers []struct {
			InstanceID string `json:"instanceId"`
			Kind       string `json:"kind"`
			LabelID    string `json:"labelId"`
		} `json:"offers"`
	}
	if err := json.Unmarshal(resp, &answer); err != nil {
		log.Fatal(err)
	}
	fmt.Println("release", answer.Release.Sequence)
	for _, o := range answer.Offers {
		fmt.Println(o.Kind, o.LabelID, o.InstanceID)
	}
	// Output:
	// release 1
	// automatic 1152921504606978201 PCI\VEN_8086&DEV_15F3&SUBSYS_0A5417AA&REV_03\3&11583659&0&FE
	// extension 1152921504606978501 PCI\VEN_8086&DEV_15F3&SUBSYS_0A5417AA&REV_03\3&11583659&0&FE
	// automatic 1152921504606978301 UEFI\RES_{5A1E0C7B-0A3C-4E1F-9C11-2B3D4E5F6A7B}\0
	// automatic 1152921504606978101 HID\TOASTER&COL02\7&1&0
}

// exampleRelease builds the example catalog into dir at now, as `driveway build` does, and
// opens the release as an Engine.
func exampleRelease(dir string, now time.Time) (*offer.Engine, *index.Release) {
	labels, catalog, key := filepath.Join(dir, "labels"), filepath.Join(dir, "catalog"), filepath.Join(dir, "release")
	tree, err := fs.Sub(examples.Contoso, "contoso")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.CopyFS(labels, tree); err != nil {
		log.Fatal(err)
	}
	if err := signing.WriteKeyPair(key, signing.Ed25519, nil); err != nil {
		log.Fatal(err)
	}
	signer, err := signing.LoadSigner(context.Background(), key+".key", nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := build.Build(context.Background(), build.Options{Labels: labels, Out: catalog, Signers: []*signing.Signer{signer}, Now: now}); err != nil {
		log.Fatal(err)
	}
	rel, err := index.OpenRelease(catalog, &index.VerifyOptions{Keys: []*signing.Verifier{signer.Verifier()}, Now: now})
	if err != nil {
		log.Fatal(err)
	}
	src, err := offer.SourceOf(rel)
	if err != nil {
		log.Fatal(err)
	}
	engine, err := offer.NewEngine(src)
	if err != nil {
		log.Fatal(err)
	}
	return engine, rel
}
