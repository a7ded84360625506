package offer

import (
	"encoding/hex"
	"math/bits"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/driveway/driveway/catalogs/compiled"
	"github.com/driveway/driveway/catalogs/ostable"
)

// AppendResponse appends the JSON response of spec/offers.md for a decided request: the
// release, the offers in device order (base driver before extensions) and, when the Result
// was decided with explain, every candidate with its verdict. Field order is fixed, so the
// same inputs give the same bytes. It does not allocate beyond growing dst.
func AppendResponse(dst []byte, req *Request, res *Result, tab *ostable.Table) []byte {
	return AppendResponseWith(dst, req, res, tab, nil)
}

// Proofs adds to a response what lets a PC check its offers against the signed release
// (package statement's Attestation): the release statement once, after "release", and a
// proof in each offer, after "package". Each method appends one JSON member ("name":value)
// and must not allocate beyond growing dst.
type Proofs interface {
	AppendStatement(dst []byte) []byte
	AppendProof(dst []byte, label uint64, rec *compiled.Label) []byte
}

// AppendResponseWith is AppendResponse with the members of p (nil: none, AppendResponse).
func AppendResponseWith(dst []byte, req *Request, res *Result, tab *ostable.Table, p Proofs) []byte {
	dst = append(dst, `{"release":{"sequence":`...)
	dst = strconv.AppendUint(dst, res.Sequence, 10)
	dst = append(dst, `,"id":`...)
	dst = appendJSON(dst, res.ID)
	dst = append(dst, '}')
	if p != nil {
		dst = append(dst, ',')
		dst = p.AppendStatement(dst)
	}
	dst = append(dst, `,"offers":[`...)
	for i := range res.Offers {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendOffer(dst, req, &res.Offers[i], p)
	}
	dst = append(dst, ']')
	if res.Explain {
		dst = appendExplain(dst, req, res, tab)
	}
	return append(dst, "}\n"...)
}

func appendOffer(dst []byte, req *Request, o *Offer, p Proofs) []byte {
	dst = append(dst, `{"instanceId":`...)
	dst = appendJSON(dst, req.Devices[o.Device].InstanceID)
	dst = append(dst, `,"kind":"`...)
	dst = append(dst, o.Kind.String()...)
	dst = append(dst, `","category":"`...)
	if o.Manual {
		dst = append(dst, "manual"...)
	} else {
		dst = append(dst, "automatic"...)
	}
	dst = append(dst, `","labelId":"`...)
	dst = strconv.AppendUint(dst, o.Label, 10)
	dst = append(dst, `","productId":"`...)
	dst = strconv.AppendUint(dst, o.Product, 10)
	dst = append(dst, `","submissionId":"`...)
	dst = strconv.AppendUint(dst, o.Submission, 10)
	dst = append(dst, `","inf":`...)
	dst = appendJSON(dst, o.INF)
	dst = append(dst, `,"class":`...)
	dst = appendJSON(dst, o.Class)
	dst = append(dst, `,"hardwareId":`...)
	dst = appendJSON(dst, o.HardwareID)
	dst = append(dst, `,"rank":"`...)
	dst = appendRank(dst, o.Rank)
	dst = append(dst, `","driverDate":"`...)
	dst = appendDays(dst, o.Date)
	dst = append(dst, `","driverVersion":"`...)
	dst = appendDriverVersion(dst, o.Version)
	dst = append(dst, `","package":{"url":`...)
	dst = appendJSON(dst, o.URL)
	dst = append(dst, `,"sha256":"`...)
	dst = hex.AppendEncode(dst, o.SHA256)
	dst = append(dst, `","size":`...)
	dst = strconv.AppendUint(dst, o.Size, 10)
	dst = append(dst, '}')
	if p != nil {
		dst = append(dst, ',')
		dst = p.AppendProof(dst, o.Label, o.Record)
	}
	if o.Throttled {
		dst = append(dst, `,"rollout":{"bucket":`...)
		dst = strconv.AppendInt(dst, int64(o.Bucket), 10)
		dst = append(dst, `,"percent":`...)
		dst = appendPercent(dst, o.BasisPoints)
		dst = append(dst, '}')
	}
	if len(o.ReportToken) > 0 { // base64url: nothing to escape
		dst = append(dst, `,"reportToken":"`...)
		dst = append(dst, o.ReportToken...)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

func appendExplain(dst []byte, req *Request, res *Result, tab *ostable.Table) []byte {
	dst = append(dst, `,"explain":[`...)
	c := 0
	for d := range req.Devices {
		if d > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"instanceId":`...)
		dst = appendJSON(dst, req.Devices[d].InstanceID)
		dst = append(dst, `,"candidates":[`...)
		for first := true; c < len(res.Cands) && res.Cands[c].Device == d; c++ {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			k := &res.Cands[c]
			dst = append(dst, `{"labelId":"`...)
			dst = strconv.AppendUint(dst, k.Label, 10)
			dst = append(dst, `","hardwareId":`...)
			dst = appendJSON(dst, k.HardwareID)
			dst = append(dst, `,"row":"`...)
			dst = append(dst, k.Row.Family.String()...)
			dst = append(dst, ' ')
			dst = append(dst, tab.SlotName(k.Row.Slot)...)
			dst = append(dst, `","rank":"`...)
			dst = appendRank(dst, k.Rank)
			dst = append(dst, `","verdict":"`...)
			dst = append(dst, k.Verdict.String()...)
			dst = append(dst, `","detail":`...)
			res.detail = appendDetail(res.detail[:0], k, res, tab)
			dst = appendJSON(dst, res.detail)
			dst = append(dst, '}')
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, ']')
}

// appendDetail writes the one-line explanation of a verdict.
func appendDetail(dst []byte, k *Candidate, res *Result, tab *ostable.Table) []byte {
	d := &k.detail
	s := func(x string) { dst = append(dst, x...) }
	slot := func(v ostable.Slot) { s(tab.SlotName(v)) }
	num := func(v int64) { dst = strconv.AppendInt(dst, v, 10) }
	when := func(v int64) { dst = time.Unix(v, 0).UTC().AppendFormat(dst, time.RFC3339) }
	switch k.Verdict {
	case Offered:
		s("offered as ")
		s(d.kind.String())
	case NotLive:
		if d.text == "" {
			s("label is not published to Windows Update")
		} else {
			s("row is ")
			s(d.text)
		}
	case NotYet:
		s("goes live ")
		when(d.at)
	case Cancelled:
		s("cancelled ")
		when(d.at)
		if d.text != "" {
			s(": ")
			s(d.text)
		}
	case OSFamily:
		s("row is for ")
		s(d.family.String())
		s(" ")
		slot(d.slot)
		s(", device is ")
		s(res.eff.family.String())
		s(" ")
		s(tab.SlotName(res.eff.slot))
	case BelowFloor:
		switch d.text {
		case "floor":
			s("floor ")
			slot(d.slot)
			s(" > ")
			slot(res.eff.slot)
		case "row":
			s("row certified from ")
			slot(d.slot)
			s(" > ")
			slot(res.eff.slot)
		case "build":
			s("build floor ")
			num(int64(d.build))
			s(" > ")
			num(int64(res.eff.build))
		default:
			s("extension INFs need build 16299.192 or later")
		}
	case AboveCeiling:
		if d.text == "build" {
			s("build ceiling ")
			num(int64(d.build))
			s(" < ")
			num(int64(res.eff.build))
		} else {
			s("ceiling ")
			slot(d.slot)
			s(" < ")
			slot(res.eff.slot)
		}
	case SMode:
		s("S mode device; the label is not published to Windows 10 in S mode")
	case Audience:
		s("restricted to audiences the device is not in")
	case Flight:
		s("in flight to ")
		dst = appendChannels(dst, d.channels)
		s("; device insider channel: ")
		dst = appendChannels(dst, d.insider)
	case FlightEnded:
		s("co-engineered flight ended ")
		when(d.at)
	case CHID:
		s("no CHID of the device is among the ")
		s(d.text)
		s("'s CHIDs")
	case CHIDLessSpecific:
		s("matches on HardwareID-")
		num(int64(d.level))
		s("; another label matches the more specific HardwareID-")
		num(int64(d.best))
	case Blocked:
		s("blocked by ")
		s(d.text)
	case Paused:
		s("rollout paused")
	case Rollout:
		if d.text == "old" {
			s("builds below 16299 wait for 100% (now ")
			dst = appendPercent(dst, int(d.percent))
			s("%)")
		} else {
			s("bucket ")
			num(int64(d.bucket))
			s(" ≥ ")
			num(int64(d.percent))
			s(" (")
			dst = appendPercent(dst, int(d.percent))
			s("%)")
		}
	case Category:
		s("not offered in a ")
		s(res.eff.scan.String())
		s(" scan on build ")
		num(int64(res.eff.build))
		if d.text == "extension" {
			s(": extension INFs are offered from automatic labels")
		}
	case Outranked:
		s("outranked by ")
		dst = strconv.AppendUint(dst, d.label, 10)
	case NotBetter:
		if d.text == "extension" {
			s("the installed extension is as new or newer")
		} else {
			s("installed driver ")
			dst = appendDriverVersion(dst, d.version)
			s(" (")
			dst = appendDays(dst, d.date)
			s(") is as good or better")
		}
	}
	return dst
}

func appendChannels(dst []byte, ch Channel) []byte {
	if ch == 0 {
		return append(dst, "none"...)
	}
	first := true
	for i, name := range channelNames {
		if ch&(1<<i) != 0 {
			if !first {
				dst = append(dst, ", "...)
			}
			first = false
			dst = append(dst, name...)
		}
	}
	return dst
}

// AppendError appends the body of a 400 answer.
func AppendError(dst []byte, e *Error) []byte {
	dst = append(dst, `{"error":{"code":`...)
	dst = appendJSON(dst, e.Code)
	dst = append(dst, `,"message":`...)
	dst = appendJSON(dst, e.Message)
	dst = append(dst, `,"field":`...)
	dst = appendJSON(dst, e.Field)
	return append(dst, "}}\n"...)
}

func appendRank(dst []byte, r uint32) []byte {
	const digits = "0123456789ABCDEF"
	for shift := 28; shift >= 0; shift -= 4 {
		dst = append(dst, digits[r>>uint(shift)&0xF])
	}
	return dst
}

func appendDriverVersion(dst []byte, v uint64) []byte {
	dst = strconv.AppendUint(dst, v>>48, 10)
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, v>>32&0xFFFF, 10)
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, v>>16&0xFFFF, 10)
	dst = append(dst, '.')
	return strconv.AppendUint(dst, v&0xFFFF, 10)
}

// appendPercent prints basis points as a JSON number: 2500 -> 25, 50 -> 0.5, 1234 -> 12.34.
func appendPercent(dst []byte, bp int) []byte {
	dst = strconv.AppendInt(dst, int64(bp/100), 10)
	if f := bp % 100; f != 0 {
		dst = append(dst, '.', byte('0'+f/10))
		if f%10 != 0 {
			dst = append(dst, byte('0'+f%10))
		}
	}
	return dst
}

// appendDays prints days since 1970-01-01 as YYYY-MM-DD (proleptic Gregorian calendar).
func appendDays(dst []byte, days int32) []byte {
	// Howard Hinnant's civil_from_days.
	z := int64(days) + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	if 0 <= y && y <= 9999 { // every real date: its digits directly, as appendPadded writes them
		return append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
			byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10))
	}
	dst = appendPadded(dst, y, 4)
	dst = append(dst, '-')
	dst = appendPadded(dst, m, 2)
	dst = append(dst, '-')
	return appendPadded(dst, d, 2)
}

func appendPadded(dst []byte, v int64, width int) []byte {
	if v < 0 {
		dst = append(dst, '-')
		v = -v
	}
	var buf [20]byte
	b := strconv.AppendInt(buf[:0], v, 10)
	for i := len(b); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, b...)
}

// appendJSON appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSON[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		// Copy the run of bytes that need no escaping in one append.
		j := plainRun(s, i)
		dst = append(dst, s[i:j]...)
		if i = j; i == len(s) {
			break
		}
		switch c := s[i]; {
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		default:
			dst = appendEscape(dst, c)
			i++
		}
	}
	return append(dst, '"')
}

// plainRun returns the end of the run from s[i] of printable ASCII other than '"' and '\\':
// bytes a JSON string holds as they are. Eight bytes at a time, as plainASCII (which the
// decoder keeps for itself: a []byte-only loop without the tail inlines into its caller).
func plainRun[T string | []byte](s T, i int) int {
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if m := specialBytes(w); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for i < len(s) && !stringStop[s[i]] && s[i] < utf8.RuneSelf {
		i++
	}
	return i
}

func appendEscape(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	const digits = "0123456789abcdef"
	return append(dst, '\\', 'u', '0', '0', digits[c>>4], digits[c&15])
}
