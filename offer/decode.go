package offer

// This file decodes offer requests (spec/offers.md, "Request") by hand: one pass over the
// body with a cursor, strings unescaped into a reusable arena, no reflection and no
// allocation once a Decoder and a Request have warmed up.
//
// Rules beyond the spec, decided here:
//
//   - The body must be UTF-8 JSON (RFC 8259) holding one object, nested at most maxNesting
//     deep anywhere. Members the schema does not know are skipped, checked for syntax only.
//   - A member the schema knows may appear once per object; a second one is bad-json at the
//     duplicate. Unknown members are not checked for duplicates (that would cost a set of
//     names per object).
//   - null stands for "absent" only where the schema says so: chids entries, smbios values,
//     targetRing, insider and driver. Elsewhere it is a value of the wrong type.
//   - Integers are written plainly: a JSON number of the wrong form for an integer (-1, 1.0,
//     1e3) or out of range is bad-value; a value that is not a number at all is bad-type.
//   - targetBuild is checked whenever it is present and kept only for upgrade scans.
//   - Strings the schema reads must be UTF-8 (else bad-value); skipped strings need not be.
//   - When a body has a semantic error (bad-type, bad-value, missing, limit) and is also not
//     valid JSON, the syntax error wins: the body is re-read to find it (error path only).

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/chid"
	"github.com/driveway/driveway/catalogs/ostable"
)

const (
	maxNesting     = 32             // deepest nesting of objects and arrays anywhere in a body
	maxDeviceIDLen = 128            // most bytes of deviceId (the spec's own limit, not MaxString)
	maxBuildNumber = 1<<31 - 1      // largest os.build and targetBuild
	maxRevision    = math.MaxUint32 // largest os.revision (a UBR is a DWORD)
	rankDigits     = 8              // hex digits of a driver rank
	msgClipLen     = 40             // bytes of a bad value quoted in an error message
)

var (
	osArchNames = [...]string{"x86", "amd64", "arm64"}
	osSKUNames  = [...]string{"client", "server"}
)

const (
	archAMD64 = 1 // index of the default arch in osArchNames
	skuClient = 0 // index of the default sku in osSKUNames
)

// Decoder decodes offer requests. Reuse one per goroutine (e.g. from a sync.Pool): after a
// few requests of a given shape, Decode allocates nothing. A Decoder is not safe for
// concurrent use.
//
// The strings of a decoded Request live in the Decoder's arena and stay valid until its next
// Decode. Integers are plain JSON integers: a number of the wrong form (-1, 1.5, 1e3, 01 is
// not JSON at all) or out of range is CodeBadValue; a string, boolean, object, array or
// null where an integer belongs is CodeBadType.
type Decoder struct {
	lim   Limits
	c     cursor
	arena []byte              // unescaped strings of the current body; cap ≥ len(body), so it never moves mid-body
	path  [maxNesting]pathSeg // the containers open at the cursor, outermost first
	depth int                 // how many of path are open
}

// pathSeg is one open object or array on the path to the cursor.
type pathSeg struct {
	name []byte // objects: the current member's name as written in the body, quotes included
	n    int    // members or elements begun so far; arrays: the current index is n-1
	arr  bool
	at   bool // a member or element is being read, so the segment names a value
}

// cursor reads a body from left to right.
type cursor struct {
	b []byte
	i int // the next byte to read
}

// ws skips JSON white space.
func (c *cursor) ws() {
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

// peek returns the next byte, or 0 at the end of the body.
func (c *cursor) peek() byte {
	if c.i < len(c.b) {
		return c.b[c.i]
	}
	return 0
}

// NewDecoder returns a Decoder enforcing l; zero fields take DefaultLimits.
func NewDecoder(l Limits) *Decoder {
	return &Decoder{lim: l.withDefaults()}
}

// Decode parses body into r, which it resets first, reusing the capacity of r's slices. On
// error it returns a non-nil *Error (a 400) and r is unspecified.
func (d *Decoder) Decode(body []byte, r *Request) *Error {
	resetRequest(r)
	if len(body) > d.lim.MaxBody {
		return &Error{Code: CodeLimit, Message: fmt.Sprintf("the body is %d bytes; at most %d", len(body), d.lim.MaxBody)}
	}
	d.start(body)
	err := d.request(r)
	if err == nil {
		err = d.end()
	}
	if err != nil && err.Code != CodeBadJSON {
		// A body that is not JSON gets bad-json, whatever else is wrong with it.
		d.start(body)
		if serr := d.skip(); serr != nil {
			return serr
		}
		if serr := d.end(); serr != nil {
			return serr
		}
	}
	return err
}

// start points the decoder at the beginning of body.
func (d *Decoder) start(body []byte) {
	d.c = cursor{b: body}
	d.depth = 0
	if cap(d.arena) < len(body) {
		// Unescaping never lengthens a string, so len(body) bytes always suffice.
		d.arena = make([]byte, 0, max(len(body), min(2*cap(d.arena), d.lim.MaxBody)))
	}
	d.arena = d.arena[:0]
	d.c.ws()
}

// end checks that nothing but white space follows the top-level value.
func (d *Decoder) end() *Error {
	d.c.ws()
	if d.c.i < len(d.c.b) {
		return d.syntax(fmt.Sprintf("trailing data at byte %d after the request object", d.c.i))
	}
	return nil
}

// resetRequest empties r, keeping the capacity of its slices (and of its devices' slices).
func resetRequest(r *Request) {
	*r = Request{Audiences: r.Audiences[:0], Devices: r.Devices[:0]}
}

// nextDevice appends a zero device to r, reusing a previous device's slices when there is one.
func nextDevice(r *Request) *Device {
	n := len(r.Devices)
	if n == cap(r.Devices) {
		r.Devices = append(r.Devices, Device{})
		return &r.Devices[n]
	}
	r.Devices = r.Devices[:n+1]
	dv := &r.Devices[n]
	*dv = Device{HardwareIDs: dv.HardwareIDs[:0], CompatibleIDs: dv.CompatibleIDs[:0], Extensions: dv.Extensions[:0]}
	return dv
}

// request reads the top-level object.
func (d *Decoder) request(r *Request) *Error {
	const ( // members seen, to find duplicates and missing members
		hasDeviceID = 1 << iota
		hasOS
		hasScan
		hasTargetBuild
		hasCHIDs
		hasSMBIOS
		hasTargetRing
		hasAudiences
		hasInsider
		hasDevices
	)
	if err := d.object(); err != nil {
		return err
	}
	var seen uint32
	var target uint32
	for {
		name, more, err := d.member()
		if err != nil {
			return err
		}
		if !more {
			break
		}
		switch string(name) {
		case "deviceId":
			if err = d.once(&seen, hasDeviceID); err == nil {
				r.DeviceID, err = d.deviceID()
			}
		case "os":
			if err = d.once(&seen, hasOS); err == nil {
				err = d.os(r)
			}
		case "scan":
			if err = d.once(&seen, hasScan); err == nil {
				var s int
				s, err = d.enum(scanNames[:])
				r.Scan = Scan(s)
			}
		case "targetBuild":
			if err = d.once(&seen, hasTargetBuild); err == nil {
				target, err = d.integer(1, maxBuildNumber)
			}
		case "chids":
			if err = d.once(&seen, hasCHIDs); err == nil {
				err = d.chids(r)
			}
		case "smbios":
			if err = d.once(&seen, hasSMBIOS); err == nil {
				err = d.smbios(r)
			}
		case "targetRing":
			if err = d.once(&seen, hasTargetRing); err == nil {
				r.TargetRing, err = d.optString()
			}
		case "audiences":
			if err = d.once(&seen, hasAudiences); err == nil {
				r.Audiences, err = d.list(r.Audiences, false)
			}
		case "insider":
			if err = d.once(&seen, hasInsider); err == nil {
				r.Insider, err = d.insider()
			}
		case "devices":
			if err = d.once(&seen, hasDevices); err == nil {
				err = d.devices(r)
			}
		default:
			err = d.skip()
		}
		if err != nil {
			return err
		}
	}
	switch {
	case seen&hasDeviceID == 0:
		return d.missing("deviceId", "a string of 1 to 128 bytes")
	case seen&hasOS == 0:
		return d.missing("os", `an object with at least "build"`)
	case seen&hasDevices == 0:
		return d.missing("devices", "an array of devices (it may be empty)")
	case r.Scan == ScanUpgrade && seen&hasTargetBuild == 0:
		return d.missing("targetBuild", `an integer from 1 to 2147483647 when scan is "upgrade"`)
	}
	if r.Scan == ScanUpgrade {
		r.TargetBuild = target
	}
	return nil
}

func (d *Decoder) deviceID() ([]byte, *Error) {
	s, err := d.str(maxDeviceIDLen)
	if err == nil && len(s) == 0 {
		err = d.badValue("is empty; want 1 to 128 bytes")
	}
	return s, err
}

// os reads the os object.
func (d *Decoder) os(r *Request) *Error {
	const (
		hasBuild = 1 << iota
		hasRevision
		hasArch
		hasSKU
		hasSMode
	)
	if err := d.object(); err != nil {
		return err
	}
	var seen uint32
	arch, sku := archAMD64, skuClient
	for {
		name, more, err := d.member()
		if err != nil {
			return err
		}
		if !more {
			break
		}
		switch string(name) {
		case "build":
			if err = d.once(&seen, hasBuild); err == nil {
				r.Build, err = d.integer(1, maxBuildNumber)
			}
		case "revision":
			if err = d.once(&seen, hasRevision); err == nil {
				r.Revision, err = d.integer(0, maxRevision)
			}
		case "arch":
			if err = d.once(&seen, hasArch); err == nil {
				arch, err = d.enum(osArchNames[:])
			}
		case "sku":
			if err = d.once(&seen, hasSKU); err == nil {
				sku, err = d.enum(osSKUNames[:])
			}
		case "sMode":
			if err = d.once(&seen, hasSMode); err == nil {
				r.SMode, err = d.boolean()
			}
		default:
			err = d.skip()
		}
		if err != nil {
			return err
		}
	}
	if seen&hasBuild == 0 {
		return d.missing("build", "an integer from 1 to 2147483647")
	}
	f, ok := ostable.FamilyOf(osArchNames[arch], osSKUNames[sku])
	if !ok {
		return d.fail(CodeBadValue, "sku", `is "server" but there are no x86 servers; want "client" with arch "x86"`)
	}
	r.Family = f
	return nil
}

// chids reads the chids array.
func (d *Decoder) chids(r *Request) *Error {
	if err := d.array(); err != nil {
		return err
	}
	r.HasCHIDs = true
	for n := 0; ; n++ {
		more, err := d.element()
		if err != nil || !more {
			return err
		}
		if n == chid.NumLevels {
			return d.tooMany(chid.NumLevels)
		}
		if d.c.peek() == 'n' {
			if err := d.literal("null"); err != nil {
				return err
			}
			continue
		}
		id, err := d.guid()
		if err != nil {
			return err
		}
		r.CHIDs[n] = id
		r.CHIDMask |= 1 << n
	}
}

// smbios reads the smbios object: members named like chid.FieldNames; others are skipped.
func (d *Decoder) smbios(r *Request) *Error {
	if err := d.object(); err != nil {
		return err
	}
	r.HasSMBIOS = true
	var seen uint32
	for {
		name, more, err := d.member()
		if err != nil || !more {
			return err
		}
		f := fieldIndex(name)
		switch {
		case f < 0:
			err = d.skip()
		case d.once(&seen, 1<<f) != nil:
			err = d.duplicate()
		default:
			r.SMBIOS[f], err = d.optString()
		}
		if err != nil {
			return err
		}
	}
}

// fieldIndex is chid.FieldByName for bytes, without converting them to a string.
func fieldIndex(name []byte) int {
	for i, n := range chid.FieldNames {
		if string(name) == n {
			return i
		}
	}
	return -1
}

func (d *Decoder) insider() (Channel, *Error) {
	if d.c.peek() == 'n' {
		return 0, d.literal("null")
	}
	if d.c.peek() != '"' {
		return 0, d.wrongType("a string or null")
	}
	s, err := d.text(false)
	if err != nil {
		return 0, err
	}
	ch, ok := ParseChannel(s)
	if !ok {
		return 0, d.badValue(fmt.Sprintf("is %s; want one of Canary, Dev, Beta, ReleasePreview or null", quoteClipped(s)))
	}
	return ch, nil
}

// devices reads the devices array.
func (d *Decoder) devices(r *Request) *Error {
	if err := d.array(); err != nil {
		return err
	}
	for n := 0; ; n++ {
		more, err := d.element()
		if err != nil || !more {
			return err
		}
		if n == d.lim.MaxDevices {
			return d.tooMany(d.lim.MaxDevices)
		}
		if err := d.device(nextDevice(r)); err != nil {
			return err
		}
	}
}

// device reads one element of devices.
func (d *Decoder) device(dv *Device) *Error {
	const (
		hasInstanceID = 1 << iota
		hasHardwareIDs
		hasCompatibleIDs
		hasDriver
		hasExtensions
	)
	if err := d.object(); err != nil {
		return err
	}
	var seen uint32
	for {
		name, more, err := d.member()
		if err != nil {
			return err
		}
		if !more {
			break
		}
		switch string(name) {
		case "instanceId":
			if err = d.once(&seen, hasInstanceID); err == nil {
				dv.InstanceID, err = d.nonEmpty()
			}
		case "hardwareIds":
			if err = d.once(&seen, hasHardwareIDs); err == nil {
				dv.HardwareIDs, err = d.list(dv.HardwareIDs, true)
			}
		case "compatibleIds":
			if err = d.once(&seen, hasCompatibleIDs); err == nil {
				dv.CompatibleIDs, err = d.list(dv.CompatibleIDs, true)
			}
		case "driver":
			if err = d.once(&seen, hasDriver); err == nil {
				err = d.driver(&dv.Driver)
			}
		case "extensions":
			if err = d.once(&seen, hasExtensions); err == nil {
				dv.Extensions, err = d.extensions(dv.Extensions)
			}
		default:
			err = d.skip()
		}
		if err != nil {
			return err
		}
	}
	if seen&hasInstanceID == 0 {
		return d.missing("instanceId", "a non-empty string")
	}
	return nil
}

// driver reads a device's driver: an object or null.
func (d *Decoder) driver(dr *Driver) *Error {
	const (
		hasDate = 1 << iota
		hasVersion
		hasRank
		hasGeneric
	)
	if d.c.peek() == 'n' {
		return d.literal("null")
	}
	if d.c.peek() != '{' {
		return d.wrongType("an object or null")
	}
	if err := d.object(); err != nil {
		return err
	}
	var seen uint32
	for {
		name, more, err := d.member()
		if err != nil {
			return err
		}
		if !more {
			break
		}
		switch string(name) {
		case "date":
			if err = d.once(&seen, hasDate); err == nil {
				dr.Date, err = d.date()
			}
		case "version":
			if err = d.once(&seen, hasVersion); err == nil {
				dr.Version, err = d.version()
			}
		case "rank":
			if err = d.once(&seen, hasRank); err == nil {
				dr.Rank, err = d.rank()
				dr.HasRank = err == nil
			}
		case "generic":
			if err = d.once(&seen, hasGeneric); err == nil {
				dr.Generic, err = d.boolean()
			}
		default:
			err = d.skip()
		}
		if err != nil {
			return err
		}
	}
	switch {
	case seen&hasDate == 0:
		return d.missing("date", "a date YYYY-MM-DD")
	case seen&hasVersion == 0:
		return d.missing("version", "a version like 1.2.3.4")
	}
	dr.Present = true
	return nil
}

// extensions reads a device's extensions array into dst.
func (d *Decoder) extensions(dst []Extension) ([]Extension, *Error) {
	dst = dst[:0]
	if err := d.array(); err != nil {
		return dst, err
	}
	for n := 0; ; n++ {
		more, err := d.element()
		if err != nil || !more {
			return dst, err
		}
		if n == d.lim.MaxIDs {
			return dst, d.tooMany(d.lim.MaxIDs)
		}
		dst = append(dst, Extension{})
		if err := d.extension(&dst[n]); err != nil {
			return dst, err
		}
	}
}

// extension reads one element of extensions.
func (d *Decoder) extension(x *Extension) *Error {
	const (
		hasID = 1 << iota
		hasDate
		hasVersion
	)
	if err := d.object(); err != nil {
		return err
	}
	var seen uint32
	for {
		name, more, err := d.member()
		if err != nil {
			return err
		}
		if !more {
			break
		}
		switch string(name) {
		case "extensionId":
			if err = d.once(&seen, hasID); err == nil {
				x.ID, err = d.guid()
			}
		case "date":
			if err = d.once(&seen, hasDate); err == nil {
				x.Date, err = d.date()
			}
		case "version":
			if err = d.once(&seen, hasVersion); err == nil {
				x.Version, err = d.version()
			}
		default:
			err = d.skip()
		}
		if err != nil {
			return err
		}
	}
	switch {
	case seen&hasID == 0:
		return d.missing("extensionId", "a GUID")
	case seen&hasDate == 0:
		return d.missing("date", "a date YYYY-MM-DD")
	case seen&hasVersion == 0:
		return d.missing("version", "a version like 1.2.3.4")
	}
	return nil
}

// list reads an array of strings into dst: at most MaxIDs of at most MaxString bytes.
// Hardware and compatible IDs (hwid) must not be empty and are normalised in place.
func (d *Decoder) list(dst [][]byte, hwid bool) ([][]byte, *Error) {
	dst = dst[:0]
	if err := d.array(); err != nil {
		return dst, err
	}
	for n := 0; ; n++ {
		more, err := d.element()
		if err != nil || !more {
			return dst, err
		}
		if n == d.lim.MaxIDs {
			return dst, d.tooMany(d.lim.MaxIDs)
		}
		var s []byte
		if hwid {
			s, err = d.nonEmpty()
			catalogs.NormalizeHWIDBytes(s)
		} else {
			s, err = d.str(d.lim.MaxString)
		}
		if err != nil {
			return dst, err
		}
		dst = append(dst, s)
	}
}

// Values.

// once records bit in *seen, or reports a duplicate member when it is there already.
func (d *Decoder) once(seen *uint32, bit uint32) *Error {
	if *seen&bit != 0 {
		return d.duplicate()
	}
	*seen |= bit
	return nil
}

// str reads a string of at most limit bytes into the arena.
func (d *Decoder) str(limit int) ([]byte, *Error) {
	if d.c.peek() != '"' {
		return nil, d.wrongType("a string")
	}
	s, err := d.text(true)
	if err == nil && len(s) > limit {
		return nil, d.fail(CodeLimit, "", fmt.Sprintf("is %d bytes; at most %d", len(s), limit))
	}
	return s, err
}

// nonEmpty reads a string of 1 to MaxString bytes.
func (d *Decoder) nonEmpty() ([]byte, *Error) {
	s, err := d.str(d.lim.MaxString)
	if err == nil && len(s) == 0 {
		err = d.badValue("is empty; want a non-empty string")
	}
	return s, err
}

// optString reads a string of at most MaxString bytes, or null (nil).
func (d *Decoder) optString() ([]byte, *Error) {
	if d.c.peek() == 'n' {
		return nil, d.literal("null")
	}
	if d.c.peek() != '"' {
		return nil, d.wrongType("a string or null")
	}
	return d.str(d.lim.MaxString)
}

// enum reads a string that must be one of names and returns its index.
func (d *Decoder) enum(names []string) (int, *Error) {
	if d.c.peek() != '"' {
		return 0, d.wrongType("a string")
	}
	s, err := d.text(false)
	if err != nil {
		return 0, err
	}
	for i, n := range names {
		if string(s) == n {
			return i, nil
		}
	}
	return 0, d.badValue(fmt.Sprintf("is %s; want one of %s", quoteClipped(s), strings.Join(names, ", ")))
}

func (d *Decoder) boolean() (bool, *Error) {
	switch d.c.peek() {
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	}
	return false, d.wrongType("a boolean")
}

// integer reads an integer from lo to hi.
func (d *Decoder) integer(lo, hi uint32) (uint32, *Error) {
	if c := d.c.peek(); c != '-' && (c < '0' || c > '9') {
		return 0, d.wrongType("an integer")
	}
	start := d.c.i
	v, plain, err := d.number()
	if err != nil {
		return 0, err
	}
	if !plain || v < uint64(lo) || v > uint64(hi) {
		return 0, d.badValue(fmt.Sprintf("must be an integer from %d to %d; got %s", lo, hi, clipped(d.c.b[start:d.c.i])))
	}
	return uint32(v), nil
}

// guid reads a GUID string (see chid.ParseBytes).
func (d *Decoder) guid() (chid.ID, *Error) {
	if d.c.peek() != '"' {
		return chid.ID{}, d.wrongType("a string")
	}
	s, err := d.text(false)
	if err != nil {
		return chid.ID{}, err
	}
	id, perr := chid.ParseBytes(s)
	if perr != nil {
		return id, d.badValue(fmt.Sprintf("is %s; want a GUID like 147efce9-f201-5fc8-ab0c-c859751c3440", quoteClipped(s)))
	}
	return id, nil
}

// date reads a date string and returns its days since 1970-01-01.
func (d *Decoder) date() (int32, *Error) {
	if d.c.peek() != '"' {
		return 0, d.wrongType("a string")
	}
	s, err := d.text(false)
	if err != nil {
		return 0, err
	}
	days, ok := parseDate(s)
	if !ok {
		return 0, d.badValue(fmt.Sprintf("is %s; want a date YYYY-MM-DD or an RFC 3339 date-time", quoteClipped(s)))
	}
	return days, nil
}

// version reads a version string.
func (d *Decoder) version() (uint64, *Error) {
	if d.c.peek() != '"' {
		return 0, d.wrongType("a string")
	}
	s, err := d.text(false)
	if err != nil {
		return 0, err
	}
	v, ok := parseVersion(s)
	if !ok {
		return 0, d.badValue(fmt.Sprintf("is %s; want 1 to 4 dot-separated numbers from 0 to 65535, like 2.1.3.0", quoteClipped(s)))
	}
	return v, nil
}

// rank reads a driver rank: exactly 8 hex digits.
func (d *Decoder) rank() (uint32, *Error) {
	if d.c.peek() != '"' {
		return 0, d.wrongType("a string")
	}
	s, err := d.text(false)
	if err != nil {
		return 0, err
	}
	v, ok := parseRank(s)
	if !ok {
		return 0, d.badValue(fmt.Sprintf("is %s; want exactly 8 hex digits, like 00FF0001", quoteClipped(s)))
	}
	return v, nil
}

// Formats of string values.

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

// JSON syntax.

// object opens the object at the cursor, or reports that the value is of another type.
func (d *Decoder) object() *Error {
	if d.c.peek() != '{' {
		return d.wrongType("an object")
	}
	return d.open(false)
}

// array opens the array at the cursor, or reports that the value is of another type.
func (d *Decoder) array() *Error {
	if d.c.peek() != '[' {
		return d.wrongType("an array")
	}
	return d.open(true)
}

// open consumes the '{' or '[' at the cursor and pushes its container on the path.
func (d *Decoder) open(arr bool) *Error {
	if d.depth == maxNesting {
		return d.syntax(fmt.Sprintf("nesting deeper than %d levels at byte %d", maxNesting, d.c.i))
	}
	d.path[d.depth] = pathSeg{arr: arr}
	d.depth++
	d.c.i++
	d.c.ws()
	return nil
}

// member moves to the next member of the object open at the top of the path: it consumes a
// ',' and the member's name and ':', leaving the cursor at the value. After the closing '}'
// it pops the object and returns more = false. name is transient (see text).
func (d *Decoder) member() (name []byte, more bool, err *Error) {
	s := &d.path[d.depth-1]
	s.at = false
	d.c.ws()
	c := d.c.peek()
	if s.n > 0 {
		switch c {
		case ',':
			d.c.i++
			d.c.ws()
			c = d.c.peek()
		case '}':
			d.close()
			return nil, false, nil
		default:
			return nil, false, d.unexpected("',' or '}'")
		}
	} else if c == '}' {
		d.close()
		return nil, false, nil
	}
	if c != '"' {
		return nil, false, d.unexpected("a member name")
	}
	start := d.c.i
	if name, err = d.text(false); err != nil {
		return nil, false, err
	}
	raw := d.c.b[start:d.c.i]
	d.c.ws()
	if d.c.peek() != ':' {
		return nil, false, d.unexpected("':'")
	}
	d.c.i++
	d.c.ws()
	s.name, s.n, s.at = raw, s.n+1, true
	return name, true, nil
}

// element moves to the next element of the array open at the top of the path, consuming a
// ',' and leaving the cursor at the value. After the closing ']' it pops the array and
// returns false.
func (d *Decoder) element() (more bool, err *Error) {
	s := &d.path[d.depth-1]
	s.at = false
	d.c.ws()
	c := d.c.peek()
	if s.n > 0 {
		switch c {
		case ',':
			d.c.i++
			d.c.ws()
		case ']':
			d.close()
			return false, nil
		default:
			return false, d.unexpected("',' or ']'")
		}
	} else if c == ']' {
		d.close()
		return false, nil
	}
	s.n, s.at = s.n+1, true
	return true, nil
}

// close consumes the closing byte of the container at the top of the path and pops it.
func (d *Decoder) close() {
	d.c.i++
	d.depth--
}

// skip reads a value of any type, checking its syntax.
func (d *Decoder) skip() *Error {
	switch d.c.peek() {
	case '{':
		if err := d.open(false); err != nil {
			return err
		}
		for {
			_, more, err := d.member()
			if err != nil || !more {
				return err
			}
			if err := d.skip(); err != nil {
				return err
			}
		}
	case '[':
		if err := d.open(true); err != nil {
			return err
		}
		for {
			more, err := d.element()
			if err != nil || !more {
				return err
			}
			if err := d.skip(); err != nil {
				return err
			}
		}
	case '"':
		_, err := d.text(false)
		return err
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		_, _, err := d.number()
		return err
	}
	return d.unexpected("a value")
}

// literal consumes word (true, false or null) at the cursor.
func (d *Decoder) literal(word string) *Error {
	if end := d.c.i + len(word); end > len(d.c.b) || string(d.c.b[d.c.i:end]) != word {
		if d.c.i == 0 {
			return d.syntax("not JSON: a request is a JSON object such as {\"deviceId\": …, \"os\": …, \"devices\": […]} (docs/offers.md)")
		}
		return d.syntax(fmt.Sprintf("malformed literal at byte %d; want %s", d.c.i, word))
	}
	d.c.i += len(word)
	return nil
}

// number consumes a JSON number. It is plain when it has no sign, fraction or exponent and
// is below 1<<60; v is then its value.
func (d *Decoder) number() (v uint64, plain bool, err *Error) {
	b, i := d.c.b, d.c.i
	plain = true
	if i < len(b) && b[i] == '-' {
		plain = false
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
		if i < len(b) && '0' <= b[i] && b[i] <= '9' {
			d.c.i = i
			return 0, false, d.syntax(fmt.Sprintf("number with a leading zero at byte %d", i-1))
		}
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
			if v < 1<<60 {
				v = v*10 + uint64(b[i]-'0')
			}
		}
		if v >= 1<<60 {
			plain = false
		}
	default:
		d.c.i = i
		return 0, false, d.unexpected("a digit")
	}
	if i < len(b) && b[i] == '.' {
		plain = false
		j := skipDigits(b, i+1)
		if j == i+1 {
			return 0, false, d.malformedNumber(j)
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		plain = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return 0, false, d.malformedNumber(j)
		}
		i = j
	}
	d.c.i = i
	return v, plain, nil
}

// skipDigits returns the index after the decimal digits from b[i] (i when there is none).
func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// stringStop marks the bytes that end a run of plain string bytes.
var stringStop = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// plainASCII skips 8 bytes at a time from b[i] while none ends a run (see stringStop) or is
// not ASCII. It returns the first byte that does, when it is in one of those eight-byte
// words, and otherwise where the whole words end.
func plainASCII(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		if m := specialBytes(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	return i
}

// specialBytes sets the high bit of the bytes of w (the first in memory lowest, as
// binary.LittleEndian reads them) that are below 0x20, a '"', a '\\' or not ASCII. The
// lowest bit set is exact; bits above it may be set for bytes that are not special (a
// borrow of the subtractions carries into the next byte), so only it is to be used.
func specialBytes(w uint64) uint64 {
	const (
		ones  = 0x0101010101010101 // 0x01 in every byte
		highs = 0x8080808080808080 // the high bit of every byte
	)
	q, bk := w^(ones*'"'), w^(ones*'\\')
	return ((w-ones*0x20)&^w | (q-ones)&^q | (bk-ones)&^bk | w) & highs
}

// text reads the string at the cursor (at its opening quote) and returns its unescaped
// bytes. A kept string is copied into the arena and must be UTF-8; it stays valid until the
// next Decode. A string not kept is transient: it may alias the body or the arena's spare
// capacity, and is valid only until the next string is read.
func (d *Decoder) text(keep bool) ([]byte, *Error) {
	b, i := d.c.b, d.c.i+1
	mark := len(d.arena)
	run := i // the first byte not yet copied to the arena
	escaped := false
	var hi byte // the OR of the raw bytes: ≥ 0x80 when some are not ASCII
	for {
		i = plainASCII(b, i)
		for i < len(b) && !stringStop[b[i]] {
			hi |= b[i]
			i++
		}
		if i == len(b) {
			d.c.i = i
			return nil, d.unexpected("'\"' ending a string")
		}
		switch c := b[i]; {
		case c == '"':
			d.c.i = i + 1
			if !keep && !escaped {
				return b[run:i], nil
			}
			d.arena = append(d.arena, b[run:i]...)
			s := d.arena[mark:len(d.arena):len(d.arena)]
			if !keep {
				d.arena = d.arena[:mark]
				return s, nil
			}
			if hi >= utf8.RuneSelf && !utf8.Valid(s) {
				return nil, d.badValue("is not valid UTF-8")
			}
			return s, nil
		case c == '\\':
			d.arena = append(d.arena, b[run:i]...)
			var err *Error
			if i, err = d.unescape(i); err != nil {
				return nil, err
			}
			run, escaped = i, true
		default:
			d.c.i = i
			return nil, d.syntax(fmt.Sprintf("control character 0x%02x in a string at byte %d; write it as \\u%04x", c, i, c))
		}
	}
}

// unescape appends the character of the escape at b[i] to the arena and returns the index
// after the escape. A lone UTF-16 surrogate becomes U+FFFD.
func (d *Decoder) unescape(i int) (int, *Error) {
	b := d.c.b
	if i+1 >= len(b) {
		d.c.i = len(b)
		return 0, d.unexpected("an escape")
	}
	c := b[i+1]
	switch c {
	case '"', '\\', '/':
	case 'b':
		c = '\b'
	case 'f':
		c = '\f'
	case 'n':
		c = '\n'
	case 'r':
		c = '\r'
	case 't':
		c = '\t'
	case 'u':
		r, ok := parseHex4(b, i+2)
		if !ok {
			d.c.i = i
			return 0, d.syntax(fmt.Sprintf(`malformed \u escape at byte %d; want \u and 4 hex digits`, i))
		}
		i += 6
		if utf16.IsSurrogate(r) {
			r2 := rune(-1)
			if i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
				r2, _ = parseHex4(b, i+2)
			}
			if r = utf16.DecodeRune(r, r2); r != utf8.RuneError {
				i += 6 // a valid pair
			}
		}
		d.arena = utf8.AppendRune(d.arena, r)
		return i, nil
	default:
		d.c.i = i
		esc := `\` + string(c)
		if c <= 0x20 || c >= 0x7f {
			esc = fmt.Sprintf("a backslash and byte 0x%02x", c)
		}
		return 0, d.syntax(fmt.Sprintf(`unknown escape %s at byte %d; want one of \" \\ \/ \b \f \n \r \t \uXXXX`, esc, i))
	}
	d.arena = append(d.arena, c)
	return i + 2, nil
}

// parseHex4 reads the 4 hex digits at b[i:].
func parseHex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return -1, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		h, ok := unhexDigit(c)
		if !ok {
			return -1, false
		}
		r = r<<4 | rune(h)
	}
	return r, true
}

// Errors. Building them allocates; they are off the hot path.

// pointer returns the JSON pointer (RFC 6901) and a dotted name ("devices[3].driver.date")
// of the value at the cursor, or of its member sub when sub is not empty.
func (d *Decoder) pointer(sub string) (ptr, name string) {
	var p, n strings.Builder
	for _, s := range d.path[:d.depth] {
		if !s.at {
			break
		}
		if s.arr {
			i := strconv.Itoa(s.n - 1)
			p.WriteString("/" + i)
			n.WriteString("[" + i + "]")
			continue
		}
		writePointerName(&p, &n, s.name)
	}
	if sub != "" {
		writePointerName(&p, &n, []byte(`"`+sub+`"`))
	}
	if n.Len() == 0 {
		return "", "the request"
	}
	return p.String(), n.String()
}

// writePointerName appends a member name (quoted and escaped as in the body) to a pointer and a
// dotted name.
func writePointerName(p, n *strings.Builder, quoted []byte) {
	t := Decoder{c: cursor{b: quoted}}
	name, _ := t.text(false) // already read once, so it is well-formed
	p.WriteByte('/')
	p.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(string(name)))
	if n.Len() > 0 {
		n.WriteByte('.')
	}
	n.Write(name)
}

// fail returns an error about the value at the cursor (or its member sub); msg follows the
// value's name.
func (d *Decoder) fail(code, sub, msg string) *Error {
	ptr, name := d.pointer(sub)
	return &Error{Code: code, Message: name + " " + msg, Field: ptr}
}

func (d *Decoder) badValue(msg string) *Error { return d.fail(CodeBadValue, "", msg) }

// syntax returns a bad-json error at the cursor's value.
func (d *Decoder) syntax(msg string) *Error {
	ptr, _ := d.pointer("")
	return &Error{Code: CodeBadJSON, Message: msg, Field: ptr}
}

// unexpected reports the byte at the cursor (or the end of the body) where want belongs.
func (d *Decoder) unexpected(want string) *Error {
	if d.c.i >= len(d.c.b) {
		return d.syntax(fmt.Sprintf("the body ends at byte %d; want %s", d.c.i, want))
	}
	return d.syntax(fmt.Sprintf("unexpected %s at byte %d; want %s", describeByte(d.c.b[d.c.i]), d.c.i, want))
}

// malformedNumber reports a number whose fraction or exponent has no digits at b[i].
func (d *Decoder) malformedNumber(i int) *Error {
	d.c.i = i
	return d.unexpected("a digit")
}

func (d *Decoder) duplicate() *Error {
	ptr, name := d.pointer("")
	return &Error{Code: CodeBadJSON, Message: "duplicate member " + name, Field: ptr}
}

func (d *Decoder) missing(sub, want string) *Error {
	return d.fail(CodeMissing, sub, "is missing; want "+want)
}

// wrongType reports the value at the cursor, which is not of type want. What is not a JSON
// value at all is a syntax error.
func (d *Decoder) wrongType(want string) *Error {
	var got string
	switch d.c.peek() {
	case '{':
		got = "an object"
	case '[':
		got = "an array"
	case '"':
		got = "a string"
	case 't', 'f':
		got = "a boolean"
	case 'n':
		got = "null"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		got = "a number"
	default:
		return d.unexpected("a value")
	}
	return d.fail(CodeBadType, "", "must be "+want+"; got "+got)
}

// tooMany reports the element at the cursor, which is beyond the limit of its array.
func (d *Decoder) tooMany(limit int) *Error {
	top := &d.path[d.depth-1]
	top.at = false
	_, list := d.pointer("")
	top.at = true
	ptr, _ := d.pointer("")
	return &Error{Code: CodeLimit, Message: fmt.Sprintf("%s has more than %d entries; at most %d", list, limit, limit), Field: ptr}
}

// quoteClipped quotes a string value for a message, cutting it when it is long.
func quoteClipped(s []byte) string {
	if len(s) > msgClipLen {
		return strconv.Quote(string(s[:msgClipLen])) + "…"
	}
	return strconv.Quote(string(s))
}

// clipped is quoteClipped for JSON text quoted as it is.
func clipped(s []byte) string {
	if len(s) > msgClipLen {
		return string(s[:msgClipLen]) + "…"
	}
	return string(s)
}

// describeByte names a byte for a message.
func describeByte(c byte) string {
	if 0x20 < c && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}
