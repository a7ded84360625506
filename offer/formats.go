package offer

// This file reads the string values of a request whose format the spec fixes (a GUID, a
// driver's date, version and rank; see spec/offers.md, "Request"): plain functions over the
// bytes of a string, which allocate nothing and report only whether the value is
// well-formed. The decoder says what was wrong.

import (
	"math"

	"github.com/driveway/driveway/catalogs/chid"
)

const rankDigits = 8 // hex digits of a driver rank

// parseGUID is chid.ParseBytes as a format: it says only whether s is a GUID.
func parseGUID(s []byte) (chid.ID, bool) {
	id, err := chid.ParseBytes(s)
	return id, err == nil
}

// parseDate reads "YYYY-MM-DD", or an RFC 3339 date-time of which it takes the date as
// written, and returns the days since 1970-01-01.
func parseDate(s []byte) (int32, bool) {
	const dateLen = len("2006-01-02")
	if len(s) < dateLen || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	y, ok1 := parseDecimal(s[0:4])
	m, ok2 := parseDecimal(s[5:7])
	dd, ok3 := parseDecimal(s[8:10])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || dd < 1 || dd > daysInMonth(y, m) {
		return 0, false
	}
	if len(s) > dateLen && !validTime(s[dateLen:]) {
		return 0, false
	}
	return daysSinceEpoch(y, m, dd), true
}

// validTime checks the part of an RFC 3339 date-time after the date: "T15:04:05",
// optional fraction, then "Z" or an offset "+07:00". T and Z may be lower-case.
func validTime(s []byte) bool {
	const timeLen = len("T15:04:05")
	if len(s) < timeLen || (s[0] != 'T' && s[0] != 't') || s[3] != ':' || s[6] != ':' {
		return false
	}
	h, ok1 := parseDecimal(s[1:3])
	m, ok2 := parseDecimal(s[4:6])
	sec, ok3 := parseDecimal(s[7:9])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || sec > 60 {
		return false
	}
	s = s[timeLen:]
	if len(s) > 0 && s[0] == '.' {
		n := 1
		for n < len(s) && '0' <= s[n] && s[n] <= '9' {
			n++
		}
		if n == 1 {
			return false
		}
		s = s[n:]
	}
	if len(s) == 1 {
		return s[0] == 'Z' || s[0] == 'z'
	}
	if len(s) != len("+07:00") || (s[0] != '+' && s[0] != '-') || s[3] != ':' {
		return false
	}
	oh, ok1 := parseDecimal(s[1:3])
	om, ok2 := parseDecimal(s[4:6])
	return ok1 && ok2 && oh <= 23 && om <= 59
}

// parseDecimal reads a string of decimal digits (at most 9 of them).
func parseDecimal(s []byte) (int, bool) {
	v := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, len(s) > 0
}

func daysInMonth(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysSinceEpoch returns the days from 1970-01-01 to a date of the proleptic Gregorian
// calendar (years 0 to 9999), after Howard Hinnant's days_from_civil.
func daysSinceEpoch(y, m, d int) int32 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400                     // [0, 399]
	doy := (153*((m+9)%12)+2)/5 + d - 1    // [0, 365], from March 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy // [0, 146096]
	return int32(era*146097 + doe - 719468)
}

// parseVersion reads 1 to 4 dot-separated decimal parts from 0 to 65535 and packs them as
// w<<48 | x<<32 | y<<16 | z, missing parts being 0.
func parseVersion(s []byte) (uint64, bool) {
	var v uint64
	i := 0
	for part := 0; part < 4; part++ {
		p, start := uint32(0), i
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			if p = p*10 + uint32(s[i]-'0'); p > math.MaxUint16 {
				return 0, false
			}
		}
		if i == start {
			return 0, false
		}
		v |= uint64(p) << (48 - 16*part)
		if i == len(s) {
			return v, true
		}
		if s[i] != '.' {
			return 0, false
		}
		i++
	}
	return 0, false
}

// parseRank reads exactly 8 hex digits, either case.
func parseRank(s []byte) (uint32, bool) {
	if len(s) != rankDigits {
		return 0, false
	}
	var v uint32
	for _, c := range s {
		h, ok := unhexDigit(c)
		if !ok {
			return 0, false
		}
		v = v<<4 | uint32(h)
	}
	return v, true
}

func unhexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
