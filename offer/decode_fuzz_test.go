package offer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/catalogs/chid"
)

// fuzzLimits are small enough for the seeds to reach each limit, so that the fuzzer need not
// grow inputs to find them (minimising a 256 KiB input stalls it for a minute).
var fuzzLimits = Limits{MaxBody: 8 << 10, MaxDevices: 8, MaxIDs: 8, MaxString: 128}

// FuzzDecode checks that Decode never panics, that its errors are well-formed, and that
// whatever it accepts is valid JSON, keeps the invariants and survives a round trip through
// encodeRequest. It is seeded from testdata/requests and from broken requests.
//
//	go test ./offer -run '^$' -fuzz FuzzDecode -fuzztime 60s
func FuzzDecode(f *testing.F) {
	for _, name := range requestFiles(f) {
		if bigRequest(name) {
			continue // bench-1dev.json has the same shapes; 10 KB seeds slow the fuzzer down
		}
		f.Add(readRequest(f, name))
	}
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `{"deviceId":`, reqBase + `x`, reqWith(`"pc-1"`, `"\ud800\udc00\udc00\ud800"`),
		reqWith(`19045`, `1e3`), reqWith(`19045`, `-0`), reqWith(`19045`, `19045,"sku":"server","arch":"x86"`),
		reqWith(`"os"`, `"x":`+strings.Repeat("[", 40)+`,"os"`), reqWith(`"os"`, `"chids":[`+strings.Repeat("null,", 15)+`null],"os"`),
		reqWith(`["A"]`, "[\"\xff\"]"), reqDriver(`{"date":"2023-05-01T00:00:00.5+01:00","version":"1.2.3.4","rank":"0000000A"}`),
		`{"x":"` + strings.Repeat("a", fuzzLimits.MaxBody) + `"}`, reqDevice(strings.Repeat(`{"instanceId":"X"},`, 8) + `{}`),
		reqDevice(`{"instanceId":"X","hardwareIds":["` + strings.Repeat(`\`, 129) + `"]}`),
		// Crashers the fuzzer found go here.
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d := NewDecoder(fuzzLimits)
		var r Request
		err := d.Decode(body, &r)
		if err != nil {
			checkDecodeError(t, body, err)
			if err.Code == CodeBadJSON && json.Valid(body) && !strings.Contains(err.Message, "duplicate") && jsonNesting(body) <= maxNesting {
				t.Fatalf("Decode(%q) = %v; but it is JSON, without duplicates or deep nesting", body, err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("Decode(%q) accepted a body that is not JSON", body)
		}
		checkRequest(t, body, &r, fuzzLimits)

		enc := encodeRequest(nil, &r)
		var r2 Request
		if err := NewDecoder(Limits{}).Decode(enc, &r2); err != nil {
			t.Fatalf("Decode(%q) = %v after a round trip of %q", enc, err, body)
		}
		if diff := diffRequest(&r2, &r); len(diff) > 0 {
			t.Fatalf("round trip of %q through %q:\n%s", body, enc, strings.Join(diff, "\n"))
		}
		// Decoding again with the same Decoder and Request gives the same result.
		if err := d.Decode(body, &r2); err != nil {
			t.Fatalf("second Decode(%q) = %v", body, err)
		}
		if diff := diffRequest(&r2, &r); len(diff) > 0 {
			t.Fatalf("second Decode(%q):\n%s", body, strings.Join(diff, "\n"))
		}
	})
}

// TestRoundTrip runs the fuzz property over the test requests, so go test checks it too.
func TestRoundTrip(t *testing.T) {
	for _, name := range requestFiles(t) {
		var r, r2 Request
		if err := NewDecoder(Limits{}).Decode(readRequest(t, name), &r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		enc := encodeRequest(nil, &r)
		if err := NewDecoder(Limits{}).Decode(enc, &r2); err != nil {
			t.Fatalf("%s: Decode(%s) = %v", name, enc, err)
		}
		for _, diff := range diffRequest(&r2, &r) {
			t.Errorf("%s: %s", name, diff)
		}
	}
}

// jsonNesting returns the deepest nesting of objects and arrays in a JSON text.
func jsonNesting(b []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// encodeRequest encodes r as a request, the inverse of Decode (for tests).
func encodeRequest(dst []byte, r *Request) []byte {
	arch, sku, _ := strings.Cut(r.Family.String(), "/")
	dst = append(dst, `{"deviceId":`...)
	dst = encodeString(dst, r.DeviceID)
	dst = fmt.Appendf(dst, `,"os":{"build":%d,"revision":%d,"arch":%q,"sku":%q,"sMode":%t}`, r.Build, r.Revision, arch, sku, r.SMode)
	dst = fmt.Appendf(dst, `,"scan":%q`, r.Scan)
	if r.Scan == ScanUpgrade {
		dst = fmt.Appendf(dst, `,"targetBuild":%d`, r.TargetBuild)
	}
	if r.HasCHIDs {
		dst = append(dst, `,"chids":[`...)
		for n := range chid.NumLevels {
			if r.CHIDMask>>n == 0 {
				break
			}
			if n > 0 {
				dst = append(dst, ',')
			}
			if r.CHIDMask&(1<<n) == 0 {
				dst = append(dst, "null"...)
				continue
			}
			dst = append(dst, '"')
			dst = r.CHIDs[n].Append(dst)
			dst = append(dst, '"')
		}
		dst = append(dst, ']')
	}
	if r.HasSMBIOS {
		dst = append(dst, `,"smbios":{"unknownField":1`...)
		for f, v := range r.SMBIOS {
			if v != nil {
				dst = fmt.Appendf(dst, `,%q:`, chid.FieldNames[f])
				dst = encodeString(dst, v)
			}
		}
		dst = append(dst, '}')
	}
	if r.TargetRing != nil {
		dst = append(dst, `,"targetRing":`...)
		dst = encodeString(dst, r.TargetRing)
	}
	dst = append(dst, `,"audiences":`...)
	dst = encodeStrings(dst, r.Audiences)
	if r.Insider != 0 {
		dst = fmt.Appendf(dst, `,"insider":%q`, channelNames[bitIndex(uint(r.Insider))])
	}
	dst = append(dst, `,"devices":[`...)
	for i, dv := range r.Devices {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"instanceId":`...)
		dst = encodeString(dst, dv.InstanceID)
		dst = append(dst, `,"hardwareIds":`...)
		dst = encodeStrings(dst, dv.HardwareIDs)
		dst = append(dst, `,"compatibleIds":`...)
		dst = encodeStrings(dst, dv.CompatibleIDs)
		if dr := dv.Driver; dr.Present {
			dst = append(dst, `,"driver":{"date":`...)
			dst = encodeDate(dst, dr.Date)
			dst = append(dst, `,"version":`...)
			dst = encodeVersion(dst, dr.Version)
			if dr.HasRank {
				dst = fmt.Appendf(dst, `,"rank":"%08X"`, dr.Rank)
			}
			dst = fmt.Appendf(dst, `,"generic":%t}`, dr.Generic)
		} else {
			dst = append(dst, `,"driver":null`...)
		}
		dst = append(dst, `,"extensions":[`...)
		for j, x := range dv.Extensions {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"extensionId":"`...)
			dst = x.ID.Append(dst)
			dst = append(dst, `","date":`...)
			dst = encodeDate(dst, x.Date)
			dst = append(dst, `,"version":`...)
			dst = encodeVersion(dst, x.Version)
			dst = append(dst, '}')
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, "]}"...)
}

func bitIndex(x uint) int {
	n := 0
	for x > 1 {
		x >>= 1
		n++
	}
	return n
}

// encodeString appends s as a JSON string, escaping what must be escaped and, to exercise
// the decoder, every backslash as \u005c.
func encodeString(dst, s []byte) []byte {
	dst = append(dst, '"')
	for _, c := range s {
		switch {
		case c == '"':
			dst = append(dst, `\"`...)
		case c == '\\':
			dst = append(dst, `\u005c`...)
		case c < 0x20:
			dst = fmt.Appendf(dst, `\u%04x`, c)
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

func encodeStrings(dst []byte, ss [][]byte) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = encodeString(dst, s)
	}
	return append(dst, ']')
}

// encodeDate appends days since 1970-01-01 as "YYYY-MM-DD".
func encodeDate(dst []byte, days int32) []byte {
	y, m, d := civilFromDays(days)
	return fmt.Appendf(dst, `"%04d-%02d-%02d"`, y, m, d)
}

// civilFromDays is the inverse of daysSinceEpoch (Howard Hinnant's civil_from_days).
func civilFromDays(days int32) (y, m, d int) {
	z := int(days) + 719468
	era := z / 146097
	if z < 0 {
		era = (z - 146096) / 146097
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if m > 12 {
		m -= 12
	}
	y = yoe + era*400
	if m <= 2 {
		y++
	}
	return y, m, d
}

func encodeVersion(dst []byte, v uint64) []byte {
	dst = append(dst, '"')
	for i := range 4 {
		if i > 0 {
			dst = append(dst, '.')
		}
		dst = strconv.AppendUint(dst, v>>(48-16*i)&0xffff, 10)
	}
	return append(dst, '"')
}

func TestCivil(t *testing.T) {
	for days := int32(-719468); days < 2932897; days += 7 {
		y, m, d := civilFromDays(days)
		if got := daysSinceEpoch(y, m, d); got != days {
			t.Fatalf("daysSinceEpoch(civilFromDays(%d) = %d-%d-%d) = %d", days, y, m, d, got)
		}
	}
	if b := encodeDate(nil, 0); !bytes.Equal(b, []byte(`"1970-01-01"`)) {
		t.Errorf("appendDate(0) = %s", b)
	}
}

// TestAppendDays holds the response's dates to time's "2006-01-02" for every day of years 0
// to 9999 (written digit by digit) and a margin beyond them (written by appendPadded).
func TestAppendDays(t *testing.T) {
	const first, last = -719528, 2932896 // 0000-01-01 and 9999-12-31
	for days := int32(first - 1000); days <= last+1000; days++ {
		want := time.Unix(int64(days)*86400, 0).UTC().AppendFormat([]byte("x"), "2006-01-02")
		if days < first || days > last {
			y, m, d := civilFromDays(days)
			sign := ""
			if y < 0 {
				sign, y = "-", -y
			}
			want = fmt.Appendf([]byte("x"), "%s%04d-%02d-%02d", sign, y, m, d)
		}
		if got := appendDays([]byte("x"), days); !bytes.Equal(got, want) {
			t.Fatalf("appendDays(%d) = %q; want %q", days, got, want)
		}
	}
}
