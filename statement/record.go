// Package statement makes a release's offers checkable by a PC that holds nothing but the
// release public key: a canonical text record per label of what an offer of it can say
// (package records), a Merkle tree over the records in label-id order (the hashing of Go's
// checksum database, golang.org/x/mod/sumdb/tlog), and a small signed release statement
// that commits to the tree's root. The build writes the statement into the signed manifest;
// the edge recomputes the tree from the release it verified, refuses a release whose
// statement does not match, and answers each offer with an inclusion proof; package client
// checks them.
//
// The build, the edge and `driveway verify` make records with the one function
// [AppendRecord], from the compiled label record (catalogs/compiled) the release carries,
// so they cannot disagree.
//
// # Package record format
//
// A record is ASCII text, lines ended by "\n", in this order:
//
//	driveway package record 1                 the format line; an incompatible change changes it
//	label <id>                                decimal
//	product <id>                              decimal
//	submission <id>                           decimal
//	category automatic|manual                 manual when the label has manualAcquisition
//	flags <name>…                             the label's flags, in this order, space-separated,
//	                                          or "-" when it has none: windows-update
//	                                          auto-applicable auto-du manual windows10s
//	                                          co-engineered flight-signed extension-inf
//	url <quoted>                              the package URL, strconv.QuoteToASCII
//	sha256 <64 hex>                           lower case
//	size <bytes>                              decimal
//	inf <quoted name> <quoted class> <date> <version> <extension> <kinds>
//	                                          one line per INF, in the label record's order:
//	                                          date YYYY-MM-DD, version w.x.y.z, extension the
//	                                          ExtensionId GUID (lower case) or "-", kinds the
//	                                          offer kinds the decision procedure
//	                                          (spec/offers.md, offer/decide.go) can give an offer
//	                                          of this INF, comma-separated, or "-" for none
//
// Kinds follow from the flags: an extension INF (the label's extension-inf flag or an
// ExtensionId on the INF) is offered only as "extension", and only from a label with
// auto-applicable or auto-du (otherwise "-"). A base INF can always be "automatic" (a devmgr
// scan and, before build 19041, the fallback pick both use the optional pool) and "rollback"
// (step 8 offers the best remaining driver of any pool when another label is cancelled with
// rollback; which label that is lies in the control table, not in this record); "optional"
// only without auto-applicable; "dynamic" only with auto-applicable or auto-du.
//
// Worked example (testdata/record.txt: label 3001 of TestVectors' label records):
//
//	driveway package record 1
//	label 3001
//	product 13635
//	submission 1152921504628295137
//	category automatic
//	flags windows-update auto-applicable auto-du
//	url "https://packages.example/contoso/e1d-12.19.1.37.cab"
//	sha256 00070e151c232a31383f464d545b626970777e858c939aa1a8afb6bdc4cbd2d9
//	size 1843200
//	inf "e1d.inf" "Net" 2024-01-11 12.19.1.37 - automatic,dynamic,rollback
//	inf "e1dext.inf" "Extension" 2024-01-11 12.19.1.37 e2f84ce7-8efa-411c-aa69-97454ca4cb57 extension
//
// Its leaf in the tree is tlog.RecordHash(record) = SHA-256(0x00 || record).
//
// A future compatible version may add lines before the inf lines; a reader of version 1
// refuses a line it does not know, so such a change must change the format line.
package statement

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/driveway/driveway/catalogs/chid"
	"github.com/driveway/driveway/catalogs/compiled"
)

// RecordFormat is the first line of a package record.
const RecordFormat = "driveway package record 1"

// MaxRecord bounds a record's length for a reader (a label with the most INFs a compiled
// record holds would be larger; no real one is).
const MaxRecord = 1 << 16

// ErrMalformed is wrapped by every parsing error of a record or statement.
var ErrMalformed = errors.New("statement: malformed")

// flagNames are the label flags in compiled.Flag* bit order.
var flagNames = [...]string{"windows-update", "auto-applicable", "auto-du", "manual", "windows10s",
	"co-engineered", "flight-signed", "extension-inf"}

// The offer kinds, as the response spells them (offer.Kind's names).
const (
	KindAutomatic = "automatic"
	KindOptional  = "optional"
	KindDynamic   = "dynamic"
	KindExtension = "extension"
	KindRollback  = "rollback"
)

// AppendRecord appends the package record of label id, whose compiled label record is rec.
func AppendRecord(dst []byte, id uint64, rec []byte) ([]byte, error) {
	l, err := compiled.ParseLabel(rec)
	if err != nil {
		return dst, fmt.Errorf("statement: label %d: %w", id, err)
	}
	return AppendLabelRecord(dst, id, &l)
}

// AppendLabelRecord is AppendRecord from the parsed label record. It does not allocate
// beyond growing dst.
func AppendLabelRecord(dst []byte, id uint64, l *compiled.Label) ([]byte, error) {
	return appendRecord(dst, id, l, false)
}

// AppendLabelRecordJSON appends the record as the inside of a JSON string (its newlines,
// quotes and backslashes escaped), as an edge answers it per offer: written escaped in one
// pass, not escaped after. It does not allocate beyond growing dst.
func AppendLabelRecordJSON(dst []byte, id uint64, l *compiled.Label) ([]byte, error) {
	return appendRecord(dst, id, l, true)
}

// appendRecord writes a record, escaped for a JSON string when esc: then each line ends in
// `\n` and each quoted field has its quotes and backslashes escaped (the rest of a record is
// plain ASCII that needs no escape).
func appendRecord(dst []byte, id uint64, l *compiled.Label, esc bool) ([]byte, error) {
	nl := "\n"
	if esc {
		nl = `\n`
	}
	quote := func(dst, s []byte) []byte {
		if plainASCII(s) { // the common case, without strconv's rune by rune quoting
			q := `"`
			if esc {
				q = `\"`
			}
			dst = append(dst, q...)
			dst = append(dst, s...)
			return append(dst, q...)
		}
		from := len(dst)
		dst = strconv.AppendQuoteToASCII(dst, bytesString(s))
		if esc {
			dst = escapeQuoted(dst, from)
		}
		return dst
	}
	dst = append(dst, RecordFormat...)
	dst = append(dst, nl...)
	dst = append(dst, "label "...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, nl...)
	dst = append(dst, "product "...)
	dst = strconv.AppendUint(dst, l.Product, 10)
	dst = append(dst, nl...)
	dst = append(dst, "submission "...)
	dst = strconv.AppendUint(dst, l.Submission, 10)
	dst = append(dst, nl...)
	dst = append(dst, "category "...)
	if l.Flags&compiled.FlagManual != 0 {
		dst = append(dst, "manual"...)
	} else {
		dst = append(dst, "automatic"...)
	}
	dst = append(dst, nl...)
	dst = append(dst, "flags"...)
	if l.Flags == 0 {
		dst = append(dst, " -"...)
	}
	for i, name := range flagNames {
		if l.Flags&(1<<i) != 0 {
			dst = append(dst, ' ')
			dst = append(dst, name...)
		}
	}
	dst = append(dst, nl...)
	dst = append(dst, "url "...)
	dst = quote(dst, l.URL)
	dst = append(dst, nl...)
	dst = append(dst, "sha256 "...)
	dst = hex.AppendEncode(dst, l.PackageSHA256)
	dst = append(dst, nl...)
	dst = append(dst, "size "...)
	dst = strconv.AppendUint(dst, l.PackageSize, 10)
	dst = append(dst, nl...)
	for i := range l.NumINFs() {
		inf, ok := l.INF(i)
		if !ok {
			return dst, fmt.Errorf("statement: label %d: INF %d: %w", id, i, compiled.ErrCorrupt)
		}
		dst = append(dst, "inf "...)
		dst = quote(dst, inf.Name)
		dst = append(dst, ' ')
		dst = quote(dst, inf.Class)
		dst = append(dst, ' ')
		dst = AppendDate(dst, inf.Date)
		dst = append(dst, ' ')
		dst = AppendVersion(dst, inf.Version)
		dst = append(dst, ' ')
		if inf.HasExtension {
			dst = inf.Extension.Append(dst)
		} else {
			dst = append(dst, '-')
		}
		dst = append(dst, ' ')
		dst = append(dst, kindsOf(l.Flags, inf.HasExtension)...)
		dst = append(dst, nl...)
	}
	return dst, nil
}

// plainASCII reports whether strconv.QuoteToASCII leaves every byte of s as it is:
// printable ASCII other than the quote and the backslash.
func plainASCII(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// escapeQuoted escapes dst[from:], a strconv.QuoteToASCII string (printable ASCII), in place
// for the inside of a JSON string: a backslash before each quote and backslash. It grows dst
// by the escapes and moves the text back to front.
func escapeQuoted(dst []byte, from int) []byte {
	extra := 0
	for _, c := range dst[from:] {
		if c == '"' || c == '\\' {
			extra++
		}
	}
	end := len(dst)
	dst = slices.Grow(dst, extra)[:end+extra]
	w := len(dst)
	for r := end - 1; r >= from; r-- {
		c := dst[r]
		w--
		dst[w] = c
		if c == '"' || c == '\\' {
			w--
			dst[w] = '\\'
		}
	}
	return dst
}

// bytesString views b as a string without copying, for strconv's quoting, which reads it and
// keeps nothing (a string(b) conversion would allocate for every field longer than 32 bytes).
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// kindsOf is the kinds field of an INF line (see the package doc).
func kindsOf(flags uint16, extensionID bool) string {
	auto := flags&compiled.FlagAutoApplicable != 0
	du := flags&compiled.FlagAutoDU != 0
	if flags&compiled.FlagExtensionINF != 0 || extensionID {
		if auto || du {
			return KindExtension
		}
		return "-"
	}
	switch {
	case auto:
		return "automatic,dynamic,rollback"
	case du:
		return "automatic,optional,dynamic,rollback"
	}
	return "automatic,optional,rollback"
}

// AppendDate appends days since 1970-01-01 as YYYY-MM-DD, as the offer response writes a
// driver date: time's DateOnly layout of the day at UTC. Years 0 to 9999 (every real date)
// are written from the civil date directly (Howard Hinnant's civil_from_days), which an
// edge does for every INF of every record it answers, without time's general formatter;
// others go through time, which spells them its own way (TestAppendDate holds both together).
func AppendDate(dst []byte, days int32) []byte {
	const year10000 = 25*146097 - 60 // 10000-01-01, in days from 0000-03-01 (25 eras of 400 years, less January and February)
	z := int64(days) + 719468        // days from 0000-03-01
	if z < 0 || z >= year10000 {
		return time.Unix(int64(days)*86400, 0).UTC().AppendFormat(dst, time.DateOnly)
	}
	era := z / 146097
	doe := z - era*146097                                  // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // [0, 365], from March 1
	mp := (5*doy + 2) / 153                                // [0, 11], March first
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	y := yoe + era*400
	if m > 12 {
		m -= 12
		y++
	}
	return append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10))
}

// AppendVersion appends a driver version w<<48|x<<32|y<<16|z as w.x.y.z.
func AppendVersion(dst []byte, v uint64) []byte {
	dst = strconv.AppendUint(dst, v>>48, 10)
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, v>>32&0xFFFF, 10)
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, v>>16&0xFFFF, 10)
	dst = append(dst, '.')
	return strconv.AppendUint(dst, v&0xFFFF, 10)
}

// Record is a parsed package record.
type Record struct {
	Label, Product, Submission uint64
	Category                   string // "automatic" or "manual"
	Flags                      []string
	URL                        string
	SHA256                     string // 64 lower-case hex digits
	Size                       uint64
	INFs                       []RecordINF
}

// RecordINF is one inf line of a record.
type RecordINF struct {
	Name, Class string
	Date        string // YYYY-MM-DD
	Version     string // w.x.y.z
	Extension   string // the ExtensionId, or "" for a base INF
	Kinds       []string
}

// Allows reports whether the INF may be offered as kind.
func (inf *RecordINF) Allows(kind string) bool { return slices.Contains(inf.Kinds, kind) }

// ParseRecord parses a package record. It accepts exactly what AppendRecord writes: the
// text is re-encoded from the parsed fields and must come out byte for byte the same, so a
// record has one spelling.
func ParseRecord(text []byte) (*Record, error) {
	if len(text) > MaxRecord {
		return nil, fmt.Errorf("statement: record of %d bytes (at most %d): %w", len(text), MaxRecord, ErrMalformed)
	}
	bad := func(line int, why string) error {
		return fmt.Errorf("statement: record line %d: %s: %w", line+1, why, ErrMalformed)
	}
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return nil, bad(0, "does not end in a newline")
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 9 || lines[0] != RecordFormat {
		return nil, bad(0, fmt.Sprintf("want %q and 8 more lines", RecordFormat))
	}
	var r Record
	field := func(i int, name string) (string, error) {
		v, ok := strings.CutPrefix(lines[i], name+" ")
		if !ok {
			return "", bad(i, "want "+name)
		}
		return v, nil
	}
	num := func(i int, name string) (uint64, error) {
		v, err := field(i, name)
		if err != nil {
			return 0, err
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, bad(i, "bad "+name)
		}
		return n, nil
	}
	var err error
	if r.Label, err = num(1, "label"); err != nil {
		return nil, err
	}
	if r.Product, err = num(2, "product"); err != nil {
		return nil, err
	}
	if r.Submission, err = num(3, "submission"); err != nil {
		return nil, err
	}
	if r.Category, err = field(4, "category"); err != nil {
		return nil, err
	}
	flags, err := field(5, "flags")
	if err != nil {
		return nil, err
	}
	var bits uint16
	if flags != "-" {
		r.Flags = strings.Split(flags, " ")
		for _, f := range r.Flags {
			i := indexOf(flagNames[:], f)
			if i < 0 {
				return nil, bad(5, "unknown flag "+strconv.Quote(f))
			}
			bits |= 1 << i
		}
	}
	url, err := field(6, "url")
	if err != nil {
		return nil, err
	}
	if r.URL, err = strconv.Unquote(url); err != nil {
		return nil, bad(6, "bad url")
	}
	if r.SHA256, err = field(7, "sha256"); err != nil {
		return nil, err
	}
	if sum, err := hex.DecodeString(r.SHA256); err != nil || len(sum) != 32 {
		return nil, bad(7, "bad sha256")
	}
	if r.Size, err = num(8, "size"); err != nil {
		return nil, err
	}
	for i := 9; i < len(lines); i++ {
		v, err := field(i, "inf")
		if err != nil {
			return nil, err
		}
		var inf RecordINF
		if inf.Name, v, err = unquoteField(v); err != nil {
			return nil, bad(i, "bad INF name")
		}
		if inf.Class, v, err = unquoteField(v); err != nil {
			return nil, bad(i, "bad INF class")
		}
		parts := strings.Split(v, " ")
		if len(parts) != 4 {
			return nil, bad(i, "want date, version, extension and kinds after the class")
		}
		inf.Date, inf.Version = parts[0], parts[1]
		if parts[2] != "-" {
			if _, err := chid.Parse(parts[2]); err != nil {
				return nil, bad(i, "bad extension id")
			}
			inf.Extension = parts[2]
		}
		if parts[3] != kindsOf(bits, inf.Extension != "") {
			return nil, bad(i, "kinds do not follow from the flags")
		}
		if parts[3] != "-" {
			inf.Kinds = strings.Split(parts[3], ",")
		}
		r.INFs = append(r.INFs, inf)
	}
	if !bytes.Equal(r.appendText(nil, bits), text) {
		return nil, bad(0, "not in canonical form")
	}
	return &r, nil
}

// appendText re-encodes a parsed record (ParseRecord's canonical-form check).
func (r *Record) appendText(dst []byte, flags uint16) []byte {
	d := compiled.LabelData{ID: r.Label, Product: r.Product, Submission: r.Submission, Flags: flags,
		PackageSize: r.Size, URL: r.URL}
	hex.Decode(d.PackageSHA256[:], []byte(r.SHA256))
	for _, inf := range r.INFs {
		date, err := time.Parse(time.DateOnly, inf.Date)
		if err != nil {
			return nil
		}
		var w, x, y, z uint64
		if n, err := fmt.Sscanf(inf.Version, "%d.%d.%d.%d", &w, &x, &y, &z); n != 4 || err != nil || w|x|y|z > 0xFFFF {
			return nil
		}
		cd := compiled.INFData{Name: inf.Name, Class: inf.Class, Date: int32(date.Unix() / 86400), Version: w<<48 | x<<32 | y<<16 | z}
		if inf.Extension != "" {
			id, _ := chid.Parse(inf.Extension)
			cd.Extension = &id
		}
		d.INFs = append(d.INFs, cd)
	}
	rec, err := compiled.AppendLabel(nil, &d)
	if err != nil {
		return nil
	}
	out, err := AppendRecord(dst, r.Label, rec)
	if err != nil || (r.Category == "manual") != (flags&compiled.FlagManual != 0) {
		return nil
	}
	return out
}

// unquoteField takes a quoted string and the space after it from the front of s.
func unquoteField(s string) (v, rest string, err error) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", err
	}
	rest, ok := strings.CutPrefix(s[len(q):], " ")
	if !ok {
		return "", "", ErrMalformed
	}
	v, err = strconv.Unquote(q)
	return v, rest, err
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
