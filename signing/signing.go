// Package signing signs driveway releases and verifies them offline.
//
// A release manifest is a small byte string. It is signed inside a DSSE
// envelope (https://github.com/secure-systems-lab/dsse), the envelope format
// of in-toto and Sigstore, so any DSSE tool can check a release with nothing
// but the envelope and a public key.
//
// # What is signed
//
// Every signature covers exactly the DSSE pre-authentication encoding of the
// payload type and the payload bytes:
//
//	PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
//
// where SP is one space (0x20) and LEN is the length in bytes, written as
// ASCII decimal without leading zeros. For payload type "t" and payload "hi"
// the signed bytes are "DSSEv1 1 t 2 hi". The type is bound to the
// signature, so a manifest can never be passed off as some other document,
// and no JSON canonicalisation is needed: the payload is signed as the exact
// bytes it is.
//
// Ed25519 signs the PAE bytes directly (pure Ed25519, deterministic).
// ECDSA P-256 signs the SHA-256 digest of the PAE bytes and writes the
// signature in ASN.1 DER; ECDSA signatures are randomised.
//
// # Envelope
//
// The envelope is one JSON object, as written by [Sign]:
//
//	{
//	  "payloadType": "application/vnd.driveway.release+json",
//	  "payload": "<base64 of the payload bytes>",
//	  "signatures": [
//	    {"keyid": "<key id>", "sig": "<base64 of the signature>"}
//	  ]
//	}
//
// Base64 is the standard alphabet with padding (RFC 4648 section 4), as the
// DSSE reference implementations write it. [Open] accepts only that form
// (strict: no URL-safe alphabet, no line breaks, canonical padding bits), so
// an envelope has a single encoding of its payload and signatures. [Sign]
// writes no whitespace and the fields in the order shown, so signing the same
// payload with the same Ed25519 keys gives byte-identical envelopes.
//
// [Open] treats the envelope as hostile: it refuses envelopes over
// [MaxEnvelopeSize] bytes before parsing them, and envelopes with more than
// [MaxSignatures] signatures as soon as it reaches the one too many, so a
// forged envelope cannot make it allocate or verify without bound. It never panics and never does I/O: verification is
// a pure function of the envelope bytes, the expected type and the trusted
// keys.
//
// # Keys
//
// Keys are ECDSA P-256 or Ed25519. Private keys are PEM files: PKCS#8
// ("PRIVATE KEY", as written by [GenerateKey] without a password and by
// openssl genpkey), SEC 1 ("EC PRIVATE KEY"), or encrypted. [GenerateKey]
// encrypts with Sigstore's scheme ("ENCRYPTED SIGSTORE PRIVATE KEY": scrypt
// and NaCl secretbox, as cosign does); OpenSSL's "ENCRYPTED PRIVATE KEY" is
// read too. The password of an encrypted key comes from the environment
// variable [PasswordEnv], never from a flag. Decrypting costs about 0.2 s of
// scrypt, so load a key once per process. A private key may also live in a
// KMS, named by a reference such as awskms:///alias/driveway; see
// [LoadSigner].
//
// Public keys are PEM "PUBLIC KEY" files (PKIX). A key's id is the lower-case
// hex SHA-256 of its PKIX DER encoding; the private and public halves of a
// pair have the same id ([Signer.KeyID], [Verifier.KeyID]). Each signature
// in an envelope carries the id of its key, so [Open] knows which key to try.
// The id is a hint, not signed data: a signature with an empty or unknown id
// is tried against every trusted key. DSSE libraries that skip signatures
// whose keyid differs from their own id for the key (go-securesystemslib, and
// sigstore's dsse wrappers, which use SSH SHA256 fingerprints) must be given
// these ids, or the keyid fields removed.
//
// # Rotation and thresholds
//
// A release may carry several signatures. To rotate from an old key to a new
// one, sign with both for a while: edges that trust either key accept the
// release with threshold 1. [Open] counts distinct keys, not signatures, so
// two signatures by one key never meet a threshold of 2.
//
// # Example
//
//	s, err := signing.LoadSigner(ctx, "release.key", signing.PasswordFromEnv())
//	env, err := signing.Sign(manifestType, manifest, s)
//	...
//	v, err := signing.LoadVerifier("release.pub")
//	manifest, err := signing.Open(env, manifestType, 1, v)
package signing

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

const (
	// MaxEnvelopeSize is the largest envelope, in bytes, that Sign writes
	// and Open reads.
	MaxEnvelopeSize = 64 << 20
	// MaxSignatures is the largest number of signatures in an envelope.
	MaxSignatures = 16
)

// ErrUnverified is wrapped by every error Open returns. The wrapping error
// gives the reason.
var ErrUnverified = errors.New("signing: envelope not verified")

// b64 is the envelope's base64: standard alphabet, padded. Strict rejects
// non-zero padding bits, so each byte string has one encoding.
var b64 = base64.StdEncoding.Strict()

// envelope is the DSSE JSON envelope. The field order is the output order.
type envelope struct {
	PayloadType string  `json:"payloadType"`
	Payload     string  `json:"payload"`
	Signatures  sigList `json:"signatures"`
}

type envSig struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// sigList decodes a JSON array of signatures, failing as soon as it holds
// more than MaxSignatures, before decoding the rest.
type sigList []envSig

func (l *sigList) UnmarshalJSON(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	t, err := d.Token()
	if err != nil {
		return err
	}
	if t == nil { // null
		*l = nil
		return nil
	}
	if t != json.Delim('[') {
		return errors.New("signatures is not an array")
	}
	*l = (*l)[:0]
	for d.More() {
		if len(*l) == MaxSignatures {
			return fmt.Errorf("more than %d signatures", MaxSignatures)
		}
		var s envSig
		if err := d.Decode(&s); err != nil {
			return err
		}
		*l = append(*l, s)
	}
	_, err = d.Token() // ']'
	return err
}

// pae returns the DSSE pre-authentication encoding of typ and body: the
// bytes every signature covers.
func pae(typ string, body []byte) []byte {
	b := make([]byte, 0, 32+len(typ)+len(body))
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(typ)), 10)
	b = append(b, ' ')
	b = append(b, typ...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, ' ')
	return append(b, body...)
}

// Sign wraps payload in a DSSE envelope with one signature by each signer,
// in order. Signing the same payload with the same Ed25519 keys gives the
// same bytes. The envelope must fit in MaxEnvelopeSize, and at most
// MaxSignatures signers may sign.
func Sign(payloadType string, payload []byte, signers ...*Signer) ([]byte, error) {
	if len(signers) == 0 {
		return nil, errors.New("signing: no signing key given")
	}
	if len(signers) > MaxSignatures {
		return nil, fmt.Errorf("signing: %d signing keys; at most %d may sign", len(signers), MaxSignatures)
	}
	if n := b64.EncodedLen(len(payload)); n > MaxEnvelopeSize {
		return nil, fmt.Errorf("signing: payload is %d bytes; its envelope would exceed %d bytes", len(payload), MaxEnvelopeSize)
	}
	msg := pae(payloadType, payload)
	env := envelope{
		PayloadType: payloadType,
		Payload:     b64.EncodeToString(payload),
		Signatures:  make(sigList, 0, len(signers)),
	}
	for _, s := range signers {
		if s == nil || s.s == nil {
			return nil, errors.New("signing: nil Signer")
		}
		sig, err := s.s.SignMessage(bytes.NewReader(msg))
		if err != nil {
			return nil, fmt.Errorf("signing: sign with key %s: %w", s.KeyID(), err)
		}
		env.Signatures = append(env.Signatures, envSig{KeyID: s.KeyID(), Sig: b64.EncodeToString(sig)})
	}
	out, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("signing: encode envelope: %w", err)
	}
	if len(out) > MaxEnvelopeSize {
		return nil, fmt.Errorf("signing: envelope is %d bytes; the limit is %d", len(out), MaxEnvelopeSize)
	}
	return out, nil
}

// Open verifies envelope and returns its payload. It succeeds only if the
// envelope is well formed, its payload type equals payloadType, and at
// least threshold distinct keys among verifiers each verify a signature
// over PAE(payloadType, payload). Signatures by keys not among verifiers
// are ignored; several signatures by one key count once, and so do
// duplicate verifiers. Every error wraps ErrUnverified.
//
// Open does no I/O. The returned payload is a new slice owned by the caller.
func Open(envelope []byte, payloadType string, threshold int, verifiers ...*Verifier) ([]byte, error) {
	var keys []*Verifier
	for _, v := range verifiers {
		if v == nil || v.v == nil {
			return nil, fmt.Errorf("%w: nil Verifier", ErrUnverified)
		}
		if !containsKey(keys, v.keyID) {
			keys = append(keys, v)
		}
	}
	if threshold < 1 {
		return nil, fmt.Errorf("%w: threshold %d: must be at least 1", ErrUnverified, threshold)
	}
	if threshold > len(keys) {
		return nil, fmt.Errorf("%w: threshold %d but only %d distinct keys given", ErrUnverified, threshold, len(keys))
	}
	if len(envelope) > MaxEnvelopeSize {
		return nil, fmt.Errorf("%w: envelope is %d bytes; the limit is %d", ErrUnverified, len(envelope), MaxEnvelopeSize)
	}

	env, err := parseEnvelope(envelope)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed envelope: %v", ErrUnverified, err)
	}
	if env.PayloadType != payloadType {
		return nil, fmt.Errorf("%w: payload type is %q, want %q", ErrUnverified, env.PayloadType, payloadType)
	}
	payload, err := decodeB64(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed envelope: payload: %v", ErrUnverified, err)
	}
	if len(env.Signatures) == 0 {
		return nil, fmt.Errorf("%w: envelope has no signatures", ErrUnverified)
	}
	sigs := make([][]byte, len(env.Signatures))
	for i, s := range env.Signatures {
		if sigs[i], err = decodeB64(s.Sig); err != nil {
			return nil, fmt.Errorf("%w: malformed envelope: signature %d: %v", ErrUnverified, i, err)
		}
	}

	msg := pae(env.PayloadType, payload)
	verified := make([]bool, len(keys))
	n := 0
	for i, s := range env.Signatures {
		for j, k := range keys {
			if verified[j] || (s.KeyID != k.keyID && containsKey(keys, s.KeyID)) {
				// A signature naming a trusted key is tried against that
				// key only; one with an empty or unknown id against all.
				continue
			}
			if k.v.VerifySignature(bytes.NewReader(sigs[i]), bytes.NewReader(msg)) == nil {
				verified[j] = true
				n++
				break
			}
		}
		if n >= threshold {
			return payload, nil
		}
	}
	return nil, fmt.Errorf("%w: threshold not met: %d of %d keys verified (%d signatures)", ErrUnverified, n, threshold, len(env.Signatures))
}

func parseEnvelope(b []byte) (*envelope, error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, err
	}
	return &env, nil
}

// decodeB64 decodes strict, padded, standard base64. The standard decoder
// skips CR and LF; they are refused here so an encoding is unique.
func decodeB64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("line break in base64")
	}
	return b64.DecodeString(s)
}

func containsKey(keys []*Verifier, id string) bool {
	return slices.ContainsFunc(keys, func(k *Verifier) bool { return k.keyID == id })
}

// Payload returns an envelope's payload WITHOUT verifying any signature. It is for
// housekeeping of files the caller wrote itself (pruning a build's own directory) and for
// showing what an envelope claims (inspect); anything that acts on the content must use Open.
func Payload(envelope []byte, payloadType string) ([]byte, error) {
	if len(envelope) > MaxEnvelopeSize {
		return nil, fmt.Errorf("signing: envelope is %d bytes; the limit is %d", len(envelope), MaxEnvelopeSize)
	}
	env, err := parseEnvelope(envelope)
	if err != nil {
		return nil, fmt.Errorf("signing: malformed envelope: %v", err)
	}
	if env.PayloadType != payloadType {
		return nil, fmt.Errorf("signing: payload type is %q, want %q", env.PayloadType, payloadType)
	}
	payload, err := decodeB64(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("signing: malformed envelope: payload: %v", err)
	}
	return payload, nil
}
