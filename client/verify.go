// Package client is the PC's side of driveway: it checks an edge's offer response with
// nothing but the release public key(s), so that a compromised edge, load balancer or
// network path cannot make a PC install a package the release does not offer.
//
// # What is checked
//
// [Verify] takes the response bytes, the PC's own request, the release keys, a time and the
// newest release sequence the PC has verified before. The response must carry the release
// statement (package statement) signed by the release keys, unexpired at the given time, not
// created in the future (beyond [Skew]), of a sequence not below the newest seen, and naming
// the sequence the response says it answers from. Each offer must then carry an inclusion
// proof of a package record in the statement's tree (tlog.CheckRecord), and agree with the
// record: label, product and submission id, category, package URL, sha256 and size, an INF
// of the record with the offer's name, class, driver date and version, and an offer kind the
// record allows that INF. The offer must be for a device of the request, through one of the
// device's own hardware or compatible IDs.
//
// An offer that fails is left out of [Result.Offers] and reported in [Result.Errors] with
// its reason; a response that fails as a whole (no valid statement) is an error. Verify is a
// pure function of its arguments: it reads no clock, file or network.
//
// # What is not checked
//
// That the edge offered everything it should have (it can withhold offers), that the
// statement is the newest the signers made (an edge can serve an older statement until it
// expires or the PC has seen a newer one), and the rollout, block and ranking decisions
// (the record says what an offer of a label can be, not whether this PC should get it now).
//
// # Usage
//
//	res, err := client.Verify(body, request, client.Options{Keys: keys, Now: time.Now(), Newest: saved})
//	if err != nil { … nothing in body can be trusted … }
//	for _, e := range res.Errors { log e }
//	for _, o := range res.Offers { download o.URL; check o.Size and o.SHA256; install }
//	saved = max(saved, res.Statement.Sequence)
package client

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/driveway/driveway/signing"
	"github.com/driveway/driveway/statement"
)

// Errors, wrapped by Verify's errors and Result.Errors.
var (
	ErrMalformed = errors.New("client: malformed response")
	ErrStatement = errors.New("client: release statement not verified") // missing, badly signed or for another release
	ErrExpired   = errors.New("client: release statement expired")      // or created in the future
	ErrOld       = errors.New("client: release older than the newest seen")
	ErrProof     = errors.New("client: offer not proved") // no proof, or it does not lead to the statement's tree
	ErrMismatch  = errors.New("client: offer differs from its signed record")
	ErrDevice    = errors.New("client: offer is not for a device of the request")
)

// Limits on what a response may make Verify parse.
const (
	MaxResponse = 64 << 20 // bytes
	MaxHashes   = 64       // proof hashes: a tree of 2^64 records needs 64
	Skew        = 5 * time.Minute
)

// Options configure Verify. Keys and Now are required.
type Options struct {
	Keys      []*signing.Verifier // the release keys
	Threshold int                 // distinct keys that must have signed the statement; 0 means 1
	Now       time.Time           // the PC's time: the statement must be unexpired at it
	Newest    uint64              // the newest release sequence the PC verified before; 0: none
	Catalog   string              // the catalog the PC belongs to; "": any
}

// Offer is a verified offer: the response's fields, each one checked against the record.
type Offer struct {
	InstanceID    string
	Kind          string
	Category      string
	LabelID       uint64
	ProductID     uint64
	SubmissionID  uint64
	INF, Class    string
	HardwareID    string
	DriverDate    string
	DriverVersion string
	URL           string
	SHA256        string // 64 hex digits
	Size          uint64
	Record        *statement.Record // the signed record the offer was checked against
	Index         int64             // the record's index in the tree
}

// OfferError is why offer Index of the response was refused.
type OfferError struct {
	Index   int    // in the response's offers
	LabelID string // as the response says it
	Err     error
}

func (e *OfferError) Error() string {
	return fmt.Sprintf("client: offer %d (label %s): %v", e.Index, e.LabelID, e.Err)
}

func (e *OfferError) Unwrap() error { return e.Err }

// Result is what Verify found.
type Result struct {
	Statement *statement.Statement
	Offers    []Offer
	Errors    []*OfferError
}

// Response is an offer response as the edge writes it (spec/offers.md with the members of
// statement.Attestation). Unknown members are ignored.
type Response struct {
	Release struct {
		Sequence uint64 `json:"sequence"`
		ID       string `json:"id"`
	} `json:"release"`
	Statement json.RawMessage `json:"statement"`
	Offers    []ResponseOffer `json:"offers"`
}

// ResponseOffer is one offer of a response.
type ResponseOffer struct {
	InstanceID    string `json:"instanceId"`
	Kind          string `json:"kind"`
	Category      string `json:"category"`
	LabelID       string `json:"labelId"`
	ProductID     string `json:"productId"`
	SubmissionID  string `json:"submissionId"`
	INF           string `json:"inf"`
	Class         string `json:"class"`
	HardwareID    string `json:"hardwareId"`
	DriverDate    string `json:"driverDate"`
	DriverVersion string `json:"driverVersion"`
	Package       struct {
		URL    string `json:"url"`
		SHA256 string `json:"sha256"`
		Size   uint64 `json:"size"`
	} `json:"package"`
	Proof *Proof `json:"proof"`
}

// Proof is an offer's inclusion proof.
type Proof struct {
	Index  int64            `json:"index"`
	Record string           `json:"record"`
	Hashes []string         `json:"hashes"`
	hashes tlog.RecordProof // decoded by ParseResponse
}

// ParseResponse decodes a response and every proof's hashes (strict base64 of 32 bytes, at
// most MaxHashes). An offer's missing or malformed proof is not an error here: it is
// reported per offer by Verify (its Proof is nil).
func ParseResponse(body []byte) (*Response, error) {
	if len(body) > MaxResponse {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrMalformed, len(body), MaxResponse)
	}
	var r Response
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	for i := range r.Offers {
		if p := r.Offers[i].Proof; p != nil && decodeHashes(p) != nil {
			r.Offers[i].Proof = nil
		}
	}
	return &r, nil
}

func decodeHashes(p *Proof) error {
	if len(p.Hashes) > MaxHashes || p.Index < 0 || len(p.Record) > statement.MaxRecord {
		return ErrMalformed
	}
	p.hashes = make(tlog.RecordProof, len(p.Hashes))
	for i, s := range p.Hashes {
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			return ErrMalformed
		}
		copy(p.hashes[i][:], b)
	}
	return nil
}

// request is the part of the PC's request Verify reads.
type request struct {
	Devices []struct {
		InstanceID    string   `json:"instanceId"`
		HardwareIDs   []string `json:"hardwareIds"`
		CompatibleIDs []string `json:"compatibleIds"`
	} `json:"devices"`
}

// Verify checks response against the PC's request (the JSON it sent) and opts. See the
// package doc for what is checked.
func Verify(response, req []byte, opts Options) (*Result, error) {
	var rq request
	if err := json.Unmarshal(req, &rq); err != nil {
		return nil, fmt.Errorf("client: the request: %v", err)
	}
	r, err := ParseResponse(response)
	if err != nil {
		return nil, err
	}
	if len(r.Statement) == 0 {
		return nil, fmt.Errorf("%w: the response has no release statement", ErrStatement)
	}
	st, err := statement.Open(r.Statement, opts.Threshold, opts.Keys...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStatement, err)
	}
	switch {
	case opts.Catalog != "" && st.Catalog != opts.Catalog:
		return nil, fmt.Errorf("%w: catalog %q, want %q", ErrStatement, st.Catalog, opts.Catalog)
	case st.Sequence != r.Release.Sequence:
		return nil, fmt.Errorf("%w: the response answers from release %d, its statement is of %d", ErrStatement, r.Release.Sequence, st.Sequence)
	case opts.Now.After(st.Expires):
		return nil, fmt.Errorf("%w: release %d expired at %s (now %s)", ErrExpired, st.Sequence, st.Expires.UTC().Format(time.RFC3339), opts.Now.UTC().Format(time.RFC3339))
	case st.Created.After(opts.Now.Add(Skew)):
		return nil, fmt.Errorf("%w: release %d is created at %s, after now %s", ErrExpired, st.Sequence, st.Created.UTC().Format(time.RFC3339), opts.Now.UTC().Format(time.RFC3339))
	case st.Sequence < opts.Newest:
		return nil, fmt.Errorf("%w: release %d, and this PC has verified release %d", ErrOld, st.Sequence, opts.Newest)
	}
	res := &Result{Statement: st}
	for i := range r.Offers {
		o, err := checkOffer(&r.Offers[i], st, &rq)
		if err != nil {
			res.Errors = append(res.Errors, &OfferError{Index: i, LabelID: r.Offers[i].LabelID, Err: err})
			continue
		}
		res.Offers = append(res.Offers, *o)
	}
	return res, nil
}

// checkOffer checks one offer against its proof and record.
func checkOffer(o *ResponseOffer, st *statement.Statement, rq *request) (*Offer, error) {
	p := o.Proof
	if p == nil {
		return nil, fmt.Errorf("%w: no proof, or a malformed one", ErrProof)
	}
	if p.Index >= st.Records {
		return nil, fmt.Errorf("%w: record %d of %d", ErrProof, p.Index, st.Records)
	}
	text := []byte(p.Record)
	if err := tlog.CheckRecord(p.hashes, st.Records, st.TreeHash, p.Index, tlog.RecordHash(text)); err != nil {
		return nil, fmt.Errorf("%w: record %d: %v", ErrProof, p.Index, err)
	}
	rec, err := statement.ParseRecord(text)
	if err != nil {
		// Signed but unreadable: a newer record format, or a bug.
		return nil, fmt.Errorf("%w: record %d: %v", ErrMismatch, p.Index, err)
	}
	mismatch := func(field, got, want string) error {
		return fmt.Errorf("%w: %s %q, the record says %q", ErrMismatch, field, got, want)
	}
	u := strconv.FormatUint
	switch {
	case o.LabelID != u(rec.Label, 10):
		return nil, mismatch("labelId", o.LabelID, u(rec.Label, 10))
	case o.ProductID != u(rec.Product, 10):
		return nil, mismatch("productId", o.ProductID, u(rec.Product, 10))
	case o.SubmissionID != u(rec.Submission, 10):
		return nil, mismatch("submissionId", o.SubmissionID, u(rec.Submission, 10))
	case o.Category != rec.Category:
		return nil, mismatch("category", o.Category, rec.Category)
	case o.Package.URL != rec.URL:
		return nil, mismatch("package url", o.Package.URL, rec.URL)
	case o.Package.SHA256 != rec.SHA256:
		return nil, mismatch("package sha256", o.Package.SHA256, rec.SHA256)
	case o.Package.Size != rec.Size:
		return nil, mismatch("package size", u(o.Package.Size, 10), u(rec.Size, 10))
	}
	var inf *statement.RecordINF
	for i := range rec.INFs {
		x := &rec.INFs[i]
		if x.Name == o.INF && x.Class == o.Class && x.Date == o.DriverDate && x.Version == o.DriverVersion {
			inf = x
			break
		}
	}
	if inf == nil {
		return nil, fmt.Errorf("%w: no INF %q (class %q, %s, %s) in the record", ErrMismatch, o.INF, o.Class, o.DriverDate, o.DriverVersion)
	}
	if !inf.Allows(o.Kind) {
		return nil, fmt.Errorf("%w: kind %q; the record allows %s for %s", ErrMismatch, o.Kind, strings.Join(inf.Kinds, ", "), inf.Name)
	}
	if !forDevice(rq, o.InstanceID, o.HardwareID) {
		return nil, fmt.Errorf("%w: instance %q through %q", ErrDevice, o.InstanceID, o.HardwareID)
	}
	if _, err := hex.DecodeString(o.Package.SHA256); err != nil || len(o.Package.SHA256) != 64 {
		return nil, fmt.Errorf("%w: package sha256 %q", ErrMismatch, o.Package.SHA256)
	}
	return &Offer{InstanceID: o.InstanceID, Kind: o.Kind, Category: o.Category, LabelID: rec.Label, ProductID: rec.Product,
		SubmissionID: rec.Submission, INF: inf.Name, Class: inf.Class, HardwareID: o.HardwareID, DriverDate: inf.Date,
		DriverVersion: inf.Version, URL: rec.URL, SHA256: rec.SHA256, Size: rec.Size, Record: rec, Index: p.Index}, nil
}

// forDevice reports whether the request has device instance with id among its hardware or
// compatible IDs (IDs compare case-insensitively, as PnP's do).
func forDevice(rq *request, instance, id string) bool {
	for _, d := range rq.Devices {
		if d.InstanceID != instance {
			continue
		}
		for _, list := range [][]string{d.HardwareIDs, d.CompatibleIDs} {
			for _, x := range list {
				if strings.EqualFold(x, id) {
					return true
				}
			}
		}
	}
	return false
}
