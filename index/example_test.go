package index_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/signing"
)

// A release of one HWID shard and one label shard, published into a catalog directory,
// opened and verified, and a key looked up in the shard it is routed to.
func Example() {
	dir, err := os.MkdirTemp("", "index-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	prefix := filepath.Join(dir, "release")
	if err := signing.WriteKeyPair(prefix, signing.Ed25519, nil); err != nil {
		log.Fatal(err)
	}
	signer, err := signing.LoadSigner(context.Background(), prefix+".key", nil)
	if err != nil {
		log.Fatal(err)
	}
	catalog := filepath.Join(dir, "catalog")

	// The build: each shard holds its records sorted by key, and is named by its sha256.
	records := map[string][][2]string{
		index.KindHWID:  {{`pci\ven_8086&dev_1234`, "row 1"}, {`pci\ven_8086&dev_5678`, "row 2"}},
		index.KindLabel: {{"3001", "label 3001"}},
	}
	var refs []index.ShardRef
	for _, kind := range []string{index.KindHWID, index.KindLabel} {
		sf, err := index.CreateShard(catalog, &index.WriterOptions{Kind: kind, Shard: 0, Shards: 1})
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range records[kind] {
			if err := sf.Add([]byte(r[0]), []byte(r[1])); err != nil {
				log.Fatal(err)
			}
		}
		ref, _, err := sf.Commit()
		if err != nil {
			log.Fatal(err)
		}
		refs = append(refs, ref)
	}
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	m := &index.Manifest{Format: index.FormatLine, Catalog: "contoso", Sequence: 1, Created: now, Expires: now.Add(7 * 24 * time.Hour),
		Routing: index.Routing{Hash: "xxhash64", HWIDShards: 1, LabelShards: 1}, Shards: refs}
	if _, _, err := index.Publish(catalog, m, signer); err != nil {
		log.Fatal(err)
	}

	// The edge: the newest release, its signature, expiry and every shard's sha256 checked.
	rel, err := index.OpenRelease(catalog, &index.VerifyOptions{Keys: []*signing.Verifier{signer.Verifier()}, Now: now.Add(time.Hour)})
	if err != nil {
		log.Fatal(err)
	}
	defer rel.Close()
	key := []byte(`pci\ven_8086&dev_5678`)
	v, ok, err := rel.HWID[index.Route(key, len(rel.HWID))].Get(key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("release %d of %s: %s -> %q (%v)\n", rel.Manifest.Sequence, rel.Manifest.Catalog, key, v, ok)
	_, ok, _ = rel.Label[0].Get([]byte("3002"))
	fmt.Println("label 3002 found:", ok)
	// Output:
	// release 1 of contoso: pci\ven_8086&dev_5678 -> "row 2" (true)
	// label 3002 found: false
}
