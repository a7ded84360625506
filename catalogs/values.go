package catalogs

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ValidID reports whether s is a canonical decimal uint64: digits only, no leading zero
// (except "0"), at most 2^64-1: the ids the loader accepts, and the only strings whose
// IDValue gives them back.
func ValidID(s string) bool {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	_, ok := parseUint(s)
	return ok
}

func parseUint(s string) (uint64, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// IDValue returns the numeric value of a canonical id string (0 when it is not one).
func IDValue(id string) uint64 {
	n, _ := parseUint(id)
	return n
}

// CompareIDs orders ids numerically.
func CompareIDs(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// parseTime reads a dashboard time: RFC 3339, a date-time without zone (read as UTC), or a
// date alone.
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date or an RFC 3339 time (like 2026-01-01T00:00:00Z)", s)
}

// Days returns the number of days since 1970-01-01 of a time's UTC date.
func Days(t time.Time) int32 {
	return int32(t.UTC().Truncate(24*time.Hour).Unix() / 86400)
}

// DateOfDays is the inverse of Days.
func DateOfDays(d int32) time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// ParseVersion reads a driver version w.x.y.z: four decimal parts, each below 65535, not
// all zero. The result packs the parts as w<<48 | x<<32 | y<<16 | z.
func ParseVersion(s string) (uint64, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return 0, fmt.Errorf("%q is not a version w.x.y.z", s)
	}
	var v uint64
	for _, p := range parts {
		n, ok := parseUint(p)
		if !ok || (len(p) > 1 && p[0] == '0') {
			return 0, fmt.Errorf("%q is not a version w.x.y.z of decimal numbers", s)
		}
		if n >= 65535 {
			return 0, fmt.Errorf("version %q has a part of %d; each part must be below 65535", s, n)
		}
		v = v<<16 | n
	}
	if v == 0 {
		return 0, fmt.Errorf("version 0.0.0.0 is not allowed")
	}
	return v, nil
}

// FormatVersion prints a packed version.
func FormatVersion(v uint64) string {
	return fmt.Sprintf("%d.%d.%d.%d", v>>48, v>>32&0xffff, v>>16&0xffff, v&0xffff)
}

// parsePercent reads a percent from 0 to 100 with at most two decimals and returns basis
// points (0–10000).
func parsePercent(text string) (int, error) {
	whole, frac, hasFrac := strings.Cut(text, ".")
	if hasFrac && (len(frac) == 0 || len(frac) > 2) {
		return 0, fmt.Errorf("percent %s has more than two decimals", text)
	}
	w, ok := parseUint(whole)
	if !ok || (len(whole) > 1 && whole[0] == '0') {
		return 0, fmt.Errorf("percent %s is not a number from 0 to 100", text)
	}
	f := uint64(0)
	if hasFrac {
		n, ok := parseUint(frac)
		if !ok {
			return 0, fmt.Errorf("percent %s is not a number from 0 to 100", text)
		}
		f = n
		if len(frac) == 1 {
			f *= 10
		}
	}
	bp := w*100 + f
	if w > 100 || bp > 10000 {
		return 0, fmt.Errorf("percent %s is above 100", text)
	}
	return int(bp), nil
}

// FormatBasisPoints prints basis points as a percent ("25", "0.5", "12.34").
func FormatBasisPoints(bp int) string {
	s := strconv.Itoa(bp / 100)
	if f := bp % 100; f != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%02d", f), "0")
	}
	return s
}

// parseSHA256 reads 64 hex digits.
func parseSHA256(s string) ([32]byte, error) {
	var h [32]byte
	if len(s) != 64 {
		return h, fmt.Errorf("sha256 %q must be 64 hex digits", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("sha256 %q must be 64 hex digits", s)
	}
	return h, nil
}

// parseFeatureScore reads an INF FeatureScore: a hex string ("0xFE", "FE") or an integer,
// 0 to 0xFF.
func parseFeatureScore(v *jsonValue) (uint8, error) {
	var n uint64
	var err error
	switch v.kind {
	case jsonNumber:
		var ok bool
		if n, ok = parseUint(v.text); !ok {
			err = fmt.Errorf("bad")
		}
	case jsonString:
		s := strings.TrimPrefix(strings.TrimPrefix(v.text, "0x"), "0X")
		n, err = strconv.ParseUint(s, 16, 16)
	default:
		err = fmt.Errorf("bad")
	}
	if err != nil || n > 0xFF {
		return 0, fmt.Errorf("FeatureScore must be a hex byte like \"0xFE\" (0x00 to 0xFF)")
	}
	return uint8(n), nil
}
