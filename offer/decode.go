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
	"fmt"
	"math"
	"strings"

	"github.com/driveway/driveway/catalogs/chid"
	"github.com/driveway/driveway/catalogs/ostable"
)

const (
	maxNesting     = 32             // deepest nesting of objects and arrays anywhere in a body
	maxDeviceIDLen = 128            // most bytes of deviceId (the spec's own limit, not MaxString)
	maxBuildNumber = 1<<31 - 1      // largest os.build and targetBuild
	maxRevision    = math.MaxUint32 // largest os.revision (a UBR is a DWORD)
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
			s, err = d.hwid()
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
	s, err := d.keptText(false)
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

// hwid reads a hardware or compatible ID: a string of 1 to MaxString bytes, normalised
// (nonEmpty, then catalogs.NormalizeHWIDBytes, in one pass: see keptText).
func (d *Decoder) hwid() ([]byte, *Error) {
	if d.c.peek() != '"' {
		return nil, d.wrongType("a string")
	}
	s, err := d.keptText(true)
	switch {
	case err != nil:
	case len(s) > d.lim.MaxString:
		return nil, d.fail(CodeLimit, "", fmt.Sprintf("is %d bytes; at most %d", len(s), d.lim.MaxString))
	case len(s) == 0:
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
	return formatted(d, parseGUID, "a GUID like 147efce9-f201-5fc8-ab0c-c859751c3440")
}

// date reads a date string and returns its days since 1970-01-01.
func (d *Decoder) date() (int32, *Error) {
	return formatted(d, parseDate, "a date YYYY-MM-DD or an RFC 3339 date-time")
}

// version reads a version string.
func (d *Decoder) version() (uint64, *Error) {
	return formatted(d, parseVersion, "1 to 4 dot-separated numbers from 0 to 65535, like 2.1.3.0")
}

// rank reads a driver rank: exactly 8 hex digits.
func (d *Decoder) rank() (uint32, *Error) {
	return formatted(d, parseRank, "exactly 8 hex digits, like 00FF0001")
}

// formatted reads a string in the format parse reads; want names the format for the error.
// The string is transient (see text): parse must not keep it.
func formatted[T any](d *Decoder, parse func([]byte) (T, bool), want string) (T, *Error) {
	var zero T
	if d.c.peek() != '"' {
		return zero, d.wrongType("a string")
	}
	s, err := d.text(false)
	if err != nil {
		return zero, err
	}
	v, ok := parse(s)
	if !ok {
		return zero, d.badValue("is " + quoteClipped(s) + "; want " + want)
	}
	return v, nil
}
