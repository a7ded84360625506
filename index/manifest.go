package index

// Release manifest format.
//
// A release is one signed manifest plus the shards it names. The manifest is JSON, signed
// as the payload of a DSSE envelope (package signing) with payload type ManifestType; the
// envelope's bytes are the file releases/<sequence>.dsse. What is signed is exactly the
// manifest bytes (DSSE's PAE of type and payload), so no JSON canonicalisation is needed.
//
//	{
//	  "format":   "driveway release 1",          // FormatLine; a future incompatible format changes it
//	  "catalog":  "contoso-example",
//	  "sequence": 42,                            // strictly greater than every earlier release
//	  "created":  "2026-11-21T12:00:00Z",
//	  "expires":  "2026-11-28T12:00:00Z",
//	  "routing":  {"hash": "xxhash64", "seed": 0, "hwidShards": 16, "labelShards": 4},
//	  "shards":   [ {"name": "<sha256>.shard", "kind": "hwid", "shard": 0, "size": 812,
//	                 "sha256": "<64 hex>", "keys": 3, "blocks": 1}, … ],      // every shard of both kinds
//	  "counts":   {"labels": 6, "rows": 14, "hwids": 8, "keys": 14},
//	  "osTable":  { … },                         // the OS table the build used (catalogs/ostable format)
//	  "control":  { "labels": […], "blocks": […], "audiences": […] },  // catalogs/compiled.Control
//	  "statement": { "payloadType": …, "payload": …, "signatures": […] } // package statement
//	}
//
// The statement is the release statement (package statement): a DSSE envelope of its own,
// signed by the release signers, committing to a Merkle tree over the release's label
// records, which edges hand to PCs with a proof per offer. It rides inside the manifest so
// that no further file travels to edges; releases built before it have none.
//
// The hash, its seed and the shard counts are recorded so a reader never guesses how keys
// are routed: key k of kind K lives in shard Route(k, count of K). Shards are named by the
// sha256 of their bytes, so a CDN or a half-finished copy can never pair a manifest with the
// wrong shard. Unknown fields are ignored (a compatible addition); a different format line
// is refused.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// FormatLine is the manifest format this package reads and writes.
const FormatLine = "driveway release 1"

// ManifestType is the DSSE payload type of a release manifest.
const ManifestType = "application/vnd.driveway.release+json"

// Shard kinds.
const (
	KindHWID  = "hwid"
	KindLabel = "label"
)

// Manifest is a release's manifest.
type Manifest struct {
	Format   string          `json:"format"`
	Catalog  string          `json:"catalog"`
	Sequence uint64          `json:"sequence"`
	Created  time.Time       `json:"created"`
	Expires  time.Time       `json:"expires"`
	Routing  Routing         `json:"routing"`
	Shards   []ShardRef      `json:"shards"`
	Counts   Counts          `json:"counts"`
	OSTable  json.RawMessage `json:"osTable"`
	Control  json.RawMessage `json:"control"`
	// Statement is the signed release statement (package statement), or nil.
	Statement json.RawMessage `json:"statement,omitempty"`
}

// Routing records how keys are routed to shards.
type Routing struct {
	Hash        string `json:"hash"` // "xxhash64"
	Seed        uint64 `json:"seed"` // 0
	HWIDShards  int    `json:"hwidShards"`
	LabelShards int    `json:"labelShards"`
}

// ShardRef names one shard of a release.
type ShardRef struct {
	Name   string `json:"name"` // <sha256>.shard
	Kind   string `json:"kind"` // KindHWID or KindLabel
	Shard  int    `json:"shard"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Keys   int    `json:"keys"`
	Blocks int    `json:"blocks"`
}

// Counts are what a release holds.
type Counts struct {
	Labels int `json:"labels"` // label records
	Rows   int `json:"rows"`   // compiled grid rows
	HWIDs  int `json:"hwids"`  // HWID records (distinct normalised hardware IDs)
	Keys   int `json:"keys"`   // keys in all shards
}

// maxShards bounds the shard counts a manifest may declare.
const maxShards = 4096

var shardName = regexp.MustCompile(`^[0-9a-f]{64}\.shard$`)

// Marshal encodes a manifest deterministically (struct fields in order) and compactly: every
// edge parses, hashes and base64-decodes each byte of it on a swap, and indentation (which
// json.MarshalIndent also applies inside the control table) made a 100k release's payload
// 1.3 MB instead of 0.8. `driveway inspect` shows its contents for people.
func (m *Manifest) Marshal() ([]byte, error) { return json.Marshal(m) }

// ParseManifest decodes and checks a manifest payload: the format line, the routing, and
// that the shard list is exactly one shard of each kind and number with a valid name. It
// does not touch any file.
func ParseManifest(payload []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("index: manifest: %w", err)
	}
	if m.Format != FormatLine {
		return nil, fmt.Errorf("index: manifest format %q, want %q (a newer driveway may be needed)", m.Format, FormatLine)
	}
	r := m.Routing
	if r.Hash != "xxhash64" || r.Seed != 0 {
		return nil, fmt.Errorf("index: manifest routes with %s seed %d; this reader knows xxhash64 seed 0", r.Hash, r.Seed)
	}
	if r.HWIDShards < 1 || r.HWIDShards > maxShards || r.LabelShards < 1 || r.LabelShards > maxShards {
		return nil, fmt.Errorf("index: manifest declares %d HWID and %d label shards (1..%d each)", r.HWIDShards, r.LabelShards, maxShards)
	}
	if len(m.Shards) != r.HWIDShards+r.LabelShards {
		return nil, fmt.Errorf("index: manifest lists %d shards, routing needs %d", len(m.Shards), r.HWIDShards+r.LabelShards)
	}
	seen := map[string]bool{}
	for i, s := range m.Shards {
		var n int
		switch s.Kind {
		case KindHWID:
			n = r.HWIDShards
		case KindLabel:
			n = r.LabelShards
		default:
			return nil, fmt.Errorf("index: manifest shard %d: unknown kind %q", i, s.Kind)
		}
		key := fmt.Sprintf("%s/%d", s.Kind, s.Shard)
		if s.Shard < 0 || s.Shard >= n || seen[key] {
			return nil, fmt.Errorf("index: manifest shard %d: %s shard %d is out of range or listed twice", i, s.Kind, s.Shard)
		}
		seen[key] = true
		sum, err := hex.DecodeString(s.SHA256)
		if err != nil || len(sum) != 32 || !shardName.MatchString(s.Name) || s.Name != s.SHA256+".shard" {
			return nil, fmt.Errorf("index: manifest shard %d: name %q and sha256 %q do not match (want <sha256>.shard)", i, s.Name, s.SHA256)
		}
		if s.Size <= 0 || s.Keys < 0 || s.Blocks < 0 {
			return nil, fmt.Errorf("index: manifest shard %d: bad size or counts", i)
		}
	}
	if m.Created.IsZero() || m.Expires.Before(m.Created) {
		return nil, fmt.Errorf("index: manifest: expires %s is before created %s", m.Expires, m.Created)
	}
	return &m, nil
}

// ShardsOf returns the shard references of a kind, in shard order.
func (m *Manifest) ShardsOf(kind string) []ShardRef {
	n := m.Routing.HWIDShards
	if kind == KindLabel {
		n = m.Routing.LabelShards
	}
	out := make([]ShardRef, n)
	for _, s := range m.Shards {
		if s.Kind == kind {
			out[s.Shard] = s
		}
	}
	return out
}
