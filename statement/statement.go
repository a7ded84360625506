package statement

// Release statement format.
//
// A release statement is a small JSON object, signed by the release signers as the payload
// of a DSSE envelope (package signing) with payload type PayloadType. What is signed is
// exactly the statement bytes. The build writes the envelope into the release manifest (its
// "statement" field, index.Manifest.Statement), so it travels with the release and needs no
// file of its own; the edge answers it, unchanged, in every offer response.
//
//	{
//	  "format":   "driveway-release-statement/1",   // Format; an incompatible change changes it
//	  "catalog":  "contoso-example",                // the manifest's catalog
//	  "sequence": 42,                               // the manifest's sequence
//	  "created":  "2026-11-21T12:00:00Z",           // the manifest's created (RFC 3339, UTC)
//	  "expires":  "2026-11-28T12:00:00Z",           // the manifest's expires
//	  "records":  6,                                // package records: one per label record
//	  "treeHash": "<base64 of 32 bytes>"            // tlog.TreeHash of the records (tree.go)
//	}
//
// Unknown fields are ignored (a compatible addition); another format is refused.
// testdata/statement.dsse is a statement signed with testdata/statement.pub's key, over the
// records of testdata/records.txt (TestVectors).

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/driveway/driveway/signing"
)

// Format is the format field of a statement.
const Format = "driveway-release-statement/1"

// PayloadType is the DSSE payload type of a release statement.
const PayloadType = "application/vnd.driveway.release-statement+json"

// Statement is a release statement.
type Statement struct {
	Format   string    `json:"format"`
	Catalog  string    `json:"catalog"`
	Sequence uint64    `json:"sequence"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
	Records  int64     `json:"records"`
	TreeHash tlog.Hash `json:"-"`
}

type wire struct {
	Format   string    `json:"format"`
	Catalog  string    `json:"catalog"`
	Sequence uint64    `json:"sequence"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
	Records  int64     `json:"records"`
	TreeHash string    `json:"treeHash"`
}

// Marshal encodes the statement (fields in the order above, times in UTC, compact).
func (s *Statement) Marshal() ([]byte, error) {
	return json.Marshal(wire{Format, s.Catalog, s.Sequence, s.Created.UTC(), s.Expires.UTC(), s.Records,
		base64.StdEncoding.EncodeToString(s.TreeHash[:])})
}

// Parse decodes a statement payload and checks its format, times and tree hash.
func Parse(payload []byte) (*Statement, error) {
	var w wire
	if err := json.NewDecoder(bytes.NewReader(payload)).Decode(&w); err != nil {
		return nil, fmt.Errorf("statement: %v: %w", err, ErrMalformed)
	}
	if w.Format != Format {
		return nil, fmt.Errorf("statement: format %q, want %q: %w", w.Format, Format, ErrMalformed)
	}
	h, err := base64.StdEncoding.Strict().DecodeString(w.TreeHash)
	if err != nil || len(h) != tlog.HashSize {
		return nil, fmt.Errorf("statement: treeHash is not base64 of %d bytes: %w", tlog.HashSize, ErrMalformed)
	}
	if w.Created.IsZero() || w.Expires.Before(w.Created) || w.Records < 0 {
		return nil, fmt.Errorf("statement: bad times or record count: %w", ErrMalformed)
	}
	s := &Statement{Format: w.Format, Catalog: w.Catalog, Sequence: w.Sequence, Created: w.Created, Expires: w.Expires, Records: w.Records}
	copy(s.TreeHash[:], h)
	return s, nil
}

// Sign signs the statement: a DSSE envelope of PayloadType.
func Sign(s *Statement, signers ...*signing.Signer) ([]byte, error) {
	payload, err := s.Marshal()
	if err != nil {
		return nil, err
	}
	return signing.Sign(PayloadType, payload, signers...)
}

// Open checks a statement envelope's signatures (threshold distinct keys of keys; 0 means 1)
// and returns the statement. It neither reads a clock nor checks expiry: that is the caller's,
// with its own time.
func Open(envelope []byte, threshold int, keys ...*signing.Verifier) (*Statement, error) {
	if threshold < 1 {
		threshold = 1
	}
	payload, err := signing.Open(envelope, PayloadType, threshold, keys...)
	if err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	return Parse(payload)
}

// Matches checks a statement against the release it claims to describe: catalog, sequence,
// created and expires as the manifest has them, and records and tree hash as recomputed.
func (s *Statement) Matches(catalog string, sequence uint64, created, expires time.Time, t *Tree) error {
	switch {
	case s.Catalog != catalog:
		return fmt.Errorf("statement: catalog %q, the manifest's is %q", s.Catalog, catalog)
	case s.Sequence != sequence:
		return fmt.Errorf("statement: sequence %d, the manifest's is %d", s.Sequence, sequence)
	case !s.Created.Equal(created) || !s.Expires.Equal(expires):
		return fmt.Errorf("statement: created %s expires %s, the manifest's are %s and %s", s.Created, s.Expires, created, expires)
	case s.Records != t.Len():
		return fmt.Errorf("statement: %d records, the release has %d label records", s.Records, t.Len())
	case s.TreeHash != t.Root():
		return fmt.Errorf("statement: tree hash %s, the release's label records hash to %s", s.TreeHash, t.Root())
	}
	return nil
}
