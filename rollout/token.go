package rollout

// Report tokens.
//
// An edge with reports enabled hands out, with every offer, a report token: the proof that
// this edge (or another of the fleet) offered this label to this device, which a report on
// the label must carry ("reportToken"). It is 39 characters of unpadded base64url (RFC 4648
// §5) encoding 29 bytes:
//
//	version  1 byte   1
//	issued   4 bytes  big-endian minutes since 1970-01-01T00:00Z, the offering edge's clock
//	release  8 bytes  big-endian sequence of the release that made the offer
//	tag     16 bytes  the first 16 bytes of HMAC-SHA256(K, "driveway report token v1" 0x00
//	                  version issued release label deviceId)
//
// label is the offered label's id as 8 big-endian bytes and deviceId the request's, as sent.
// K = HMAC-SHA256(fleet report secret, "driveway report token key v1"): a key of its own, so
// that no token is ever a device pseudonym (Pseudonym) or the other way round.
//
// Why a MAC and not a signature: the only party that checks a token is an edge, and every
// edge already holds the fleet's report secret (its pseudonyms need it), while a PC never
// needs to check one. HMAC-SHA256 costs about a microsecond per offer and 16 bytes, where an
// Ed25519 signature would cost tens of microseconds on every offer and 64 bytes, and would
// give nothing more: an attacker who has an edge's secret can write its spool directly.
//
// What a token stops: a report on a label the device was never offered (a forged report for
// someone else's driver), a report for another device's offer (the tag covers deviceId), and a
// report older than TokenTTL after its offer. What it cannot stop, because offer requests are
// anonymous: anyone may ask for offers under made-up device ids and report on them. That is
// what the edge's per-source rate limits and the policy's MinFailureSources are for.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash"
	"sync"
	"time"
)

// Token sizes.
const (
	TokenBytes   = 1 + 4 + 8 + 16
	TokenLen     = (TokenBytes*8 + 5) / 6 // base64url characters, unpadded: 39
	tokenVersion = 1
	tagBytes     = 16
)

// Defaults of token checks.
const (
	// DefaultTokenTTL is how long after its offer a token is good for: a driver that crashes
	// the kernel a week after its install is still reported, and after install the device is
	// not offered that label again (nothing newer to get a fresh token from). The reports'
	// retention window.
	DefaultTokenTTL = DefaultRetention
	// TokenSkew is how far ahead of the checking edge's clock a token's issue time may be:
	// the offering edge's clock may run a little ahead.
	TokenSkew = 5 * time.Minute
)

var tokenContext = []byte("driveway report token v1\x00")

// ReportTokens issues and checks report tokens with a fleet report secret. It is safe for
// concurrent use; issuing a token allocates nothing once warm.
type ReportTokens struct {
	key  [sha256.Size]byte
	TTL  time.Duration // how long a token is good for; zero: DefaultTokenTTL
	macs sync.Pool     // *tokenMAC
}

type tokenMAC struct {
	h   hash.Hash
	msg [256]byte // context, head, label and a deviceId of up to 128 bytes (longer ones grow it)
	sum [sha256.Size]byte
	raw [TokenBytes]byte
}

// NewReportTokens returns the token issuer and checker of a fleet report secret (at least
// MinSecretBytes; LoadSecret reads one).
func NewReportTokens(secret []byte) (*ReportTokens, error) {
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("rollout: the report secret is %d bytes; at least %d (head -c 32 /dev/urandom | base64)", len(secret), MinSecretBytes)
	}
	t := &ReportTokens{}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("driveway report token key v1"))
	m.Sum(t.key[:0])
	t.macs.New = func() any { return &tokenMAC{h: hmac.New(sha256.New, t.key[:])} }
	return t, nil
}

func (t *ReportTokens) ttl() time.Duration {
	if t.TTL > 0 {
		return t.TTL
	}
	return DefaultTokenTTL
}

// tokenTag computes the tag of a token's first 13 bytes for label and deviceID into m.sum.
func tokenTag[T string | []byte](m *tokenMAC, head []byte, label uint64, deviceID T) []byte {
	m.h.Reset()
	b := append(m.msg[:0], tokenContext...)
	b = append(b, head...)
	b = binary.BigEndian.AppendUint64(b, label)
	b = append(b, deviceID...)
	m.h.Write(b)
	return m.h.Sum(m.sum[:0])[:tagBytes]
}

// Append appends the token of an offer of label to deviceID, made by release sequence seq at
// time issued (the edge's clock), TokenLen characters.
func (t *ReportTokens) Append(dst, deviceID []byte, label, seq uint64, issued time.Time) []byte {
	m := t.macs.Get().(*tokenMAC)
	raw := m.raw[:0]
	raw = append(raw, tokenVersion)
	raw = binary.BigEndian.AppendUint32(raw, uint32(max(0, issued.Unix()/60)))
	raw = binary.BigEndian.AppendUint64(raw, seq)
	raw = append(raw, tokenTag(m, raw, label, deviceID)...)
	dst = base64.RawURLEncoding.AppendEncode(dst, raw)
	t.macs.Put(m)
	return dst
}

// Token is what a checked token says.
type Token struct {
	Issued  time.Time // to the minute
	Release uint64
}

// Check checks a report's token against its deviceId and label at the edge's time now. The
// error says what is wrong in words a PC's developer can act on.
func (t *ReportTokens) Check(token string, deviceID string, label uint64, now time.Time) (Token, error) {
	m := t.macs.Get().(*tokenMAC)
	defer t.macs.Put(m)
	if len(token) != TokenLen {
		return Token{}, fmt.Errorf("is %d characters; a report token is %d: send the reportToken of the offer you report on, as it came", len(token), TokenLen)
	}
	raw := m.raw[:]
	// Strict: the last character's two spare bits must be zero, so that each token has one
	// spelling (FuzzReportToken found the four).
	if n, err := base64.RawURLEncoding.Strict().Decode(raw, []byte(token)); err != nil || n != TokenBytes {
		return Token{}, fmt.Errorf("is not a report token (unpadded base64url of %d bytes): send the reportToken of the offer you report on, as it came", TokenBytes)
	}
	if raw[0] != tokenVersion {
		return Token{}, fmt.Errorf("has version %d; this edge knows version %d", raw[0], tokenVersion)
	}
	tok := Token{Issued: time.Unix(int64(binary.BigEndian.Uint32(raw[1:5]))*60, 0).UTC(), Release: binary.BigEndian.Uint64(raw[5:13])}
	if !hmac.Equal(tokenTag(m, raw[:13], label, deviceID), raw[13:]) {
		return Token{}, fmt.Errorf("was not issued for labelId %d and this deviceId: report only on offers this device received, with the token that came with each", label)
	}
	switch {
	case tok.Issued.After(now.Add(TokenSkew)):
		return Token{}, fmt.Errorf("was issued at %s, after the edge's clock (%s): check the edges' clocks", tok.Issued.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case now.Sub(tok.Issued) > t.ttl():
		return Token{}, fmt.Errorf("was issued at %s and is good for %s: reports on an offer older than that are not taken", tok.Issued.Format(time.RFC3339), formatDuration(t.ttl()))
	}
	return tok, nil
}
