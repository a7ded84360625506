package offer

// Benchmarks of the hand-written Decoder against the obvious alternative: encoding/json into
// a tagged struct, then the same conversion (copying strings to []byte, normalising IDs,
// parsing dates, versions and GUIDs, applying defaults and limits). TestStdlibAgrees checks
// that both give the same Request for every test request, so the race is fair.
//
// Measured on a shared 2-vCPU AMD EPYC VM (linux/amd64, go1.26.8) while other jobs ran, so
// the numbers are noisy (medians of 6 runs, fastest run in brackets):
//
//	go test ./offer -run '^$' -bench 'Decode' -benchmem -count 6 -cpu 1
//
//	                       ns/op             MB/s    B/op  allocs/op
//	Decode/1dev             2 665  (2 048)    492       0          0
//	Decode/20dev           15 648 (14 868)    644       0          0
//	DecodeStdlib/1dev      17 812 (16 753)     71   3 728        112
//	DecodeStdlib/20dev    157 544 (141 010)    64  37 776        975
//
// bench-1dev.json is 1 260 bytes, bench-20dev.json 10 077. The hand-written decoder is 7 to
// 10 times faster, allocates nothing, and gives precise errors; it is the one we keep.

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/chid"
	"github.com/driveway/driveway/catalogs/ostable"
)

var benchRequests = []struct{ name, file string }{
	{"1dev", "bench-1dev.json"},
	{"20dev", "bench-20dev.json"},
	{"wholepc", "bench-wholepc.json"}, // bench gen-devices --whole-pc: 189 devices, 1,107 IDs
}

func BenchmarkDecode(b *testing.B) {
	for _, br := range benchRequests {
		body := readRequest(b, br.file)
		b.Run(br.name, func(b *testing.B) {
			d := NewDecoder(Limits{})
			var r Request
			if err := d.Decode(body, &r); err != nil {
				b.Fatal(err)
			}
			n := len(r.Devices)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := d.Decode(body, &r); err != nil || len(r.Devices) != n {
					b.Fatalf("Decode = %v, %d devices; want %d", err, len(r.Devices), n)
				}
			}
		})
	}
}

func BenchmarkDecodeStdlib(b *testing.B) {
	for _, br := range benchRequests {
		body := readRequest(b, br.file)
		b.Run(br.name, func(b *testing.B) {
			var r Request
			if err := decodeStdlib(body, &r); err != nil {
				b.Fatal(err)
			}
			n := len(r.Devices)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := decodeStdlib(body, &r); err != nil || len(r.Devices) != n {
					b.Fatalf("decodeStdlib = %v, %d devices; want %d", err, len(r.Devices), n)
				}
			}
		})
	}
}

// BenchmarkDecodeParallel is the edge's use: Decoders and Requests from a sync.Pool.
func BenchmarkDecodeParallel(b *testing.B) {
	type state struct {
		d *Decoder
		r Request
	}
	for _, br := range benchRequests {
		body := readRequest(b, br.file)
		b.Run(br.name, func(b *testing.B) {
			pool := sync.Pool{New: func() any { return &state{d: NewDecoder(Limits{})} }}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					s := pool.Get().(*state)
					if err := s.d.Decode(body, &s.r); err != nil || len(s.r.Devices) == 0 {
						b.Errorf("Decode = %v", err)
					}
					pool.Put(s)
				}
			})
		})
	}
}

// TestStdlibAgrees checks that decodeStdlib, the baseline, does the same work as Decode.
func TestStdlibAgrees(t *testing.T) {
	for _, name := range requestFiles(t) {
		body := readRequest(t, name)
		var want, got Request
		if err := NewDecoder(Limits{}).Decode(body, &want); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := decodeStdlib(body, &got); err != nil {
			t.Fatalf("%s: decodeStdlib: %v", name, err)
		}
		for _, d := range diffRequest(&got, &want) {
			t.Errorf("%s: %s", name, d)
		}
	}
}

// The baseline: a tagged struct for encoding/json. Pointers tell absent from zero.
type (
	stdRequest struct {
		DeviceID    *string      `json:"deviceId"`
		OS          *stdOS       `json:"os"`
		Scan        *string      `json:"scan"`
		TargetBuild *uint32      `json:"targetBuild"`
		CHIDs       []*string    `json:"chids"`
		SMBIOS      *stdSMBIOS   `json:"smbios"`
		TargetRing  *string      `json:"targetRing"`
		Audiences   []string     `json:"audiences"`
		Insider     *string      `json:"insider"`
		Devices     *[]stdDevice `json:"devices"`
	}
	stdOS struct {
		Build    *uint32 `json:"build"`
		Revision uint32  `json:"revision"`
		Arch     *string `json:"arch"`
		SKU      *string `json:"sku"`
		SMode    bool    `json:"sMode"`
	}
	stdSMBIOS struct {
		Manufacturer          *string `json:"manufacturer"`
		Family                *string `json:"family"`
		ProductName           *string `json:"productName"`
		SKUNumber             *string `json:"skuNumber"`
		BIOSVendor            *string `json:"biosVendor"`
		BIOSVersion           *string `json:"biosVersion"`
		BIOSMajorRelease      *string `json:"biosMajorRelease"`
		BIOSMinorRelease      *string `json:"biosMinorRelease"`
		EnclosureType         *string `json:"enclosureType"`
		BaseboardManufacturer *string `json:"baseboardManufacturer"`
		BaseboardProduct      *string `json:"baseboardProduct"`
	}
	stdDevice struct {
		InstanceID    *string        `json:"instanceId"`
		HardwareIDs   []string       `json:"hardwareIds"`
		CompatibleIDs []string       `json:"compatibleIds"`
		Driver        *stdDriver     `json:"driver"`
		Extensions    []stdExtension `json:"extensions"`
	}
	stdDriver struct {
		Date    *string `json:"date"`
		Version *string `json:"version"`
		Rank    *string `json:"rank"`
		Generic bool    `json:"generic"`
	}
	stdExtension struct {
		ExtensionID *string `json:"extensionId"`
		Date        *string `json:"date"`
		Version     *string `json:"version"`
	}
)

var errStd = errors.New("bad request")

// decodeStdlib is Decode done with encoding/json (errors are not precise).
func decodeStdlib(body []byte, r *Request) error {
	l := DefaultLimits
	if len(body) > l.MaxBody {
		return errStd
	}
	var s stdRequest
	if err := json.Unmarshal(body, &s); err != nil {
		return err
	}
	resetRequest(r)
	if s.DeviceID == nil || len(*s.DeviceID) == 0 || len(*s.DeviceID) > maxDeviceIDLen || s.OS == nil || s.Devices == nil {
		return errStd
	}
	r.DeviceID = []byte(*s.DeviceID)
	if err := convertOS(s.OS, r); err != nil {
		return err
	}
	if s.Scan != nil {
		i, ok := stdIndex(scanNames[:], *s.Scan)
		if !ok {
			return errStd
		}
		r.Scan = Scan(i)
	}
	if s.TargetBuild != nil && (*s.TargetBuild < 1 || *s.TargetBuild > maxBuildNumber) {
		return errStd
	}
	if r.Scan == ScanUpgrade {
		if s.TargetBuild == nil {
			return errStd
		}
		r.TargetBuild = *s.TargetBuild
	}
	if s.CHIDs != nil {
		if len(s.CHIDs) > chid.NumLevels {
			return errStd
		}
		r.HasCHIDs = true
		for n, c := range s.CHIDs {
			if c == nil {
				continue
			}
			id, err := chid.Parse(*c)
			if err != nil {
				return err
			}
			r.CHIDs[n] = id
			r.CHIDMask |= 1 << n
		}
	}
	if m := s.SMBIOS; m != nil {
		r.HasSMBIOS = true
		for f, v := range [...]*string{m.Manufacturer, m.Family, m.ProductName, m.SKUNumber, m.BIOSVendor, m.BIOSVersion,
			m.BIOSMajorRelease, m.BIOSMinorRelease, m.EnclosureType, m.BaseboardManufacturer, m.BaseboardProduct} {
			if v != nil {
				if len(*v) > l.MaxString {
					return errStd
				}
				r.SMBIOS[f] = []byte(*v)
			}
		}
	}
	if s.TargetRing != nil {
		if len(*s.TargetRing) > l.MaxString {
			return errStd
		}
		r.TargetRing = []byte(*s.TargetRing)
	}
	var err error
	if r.Audiences, err = convertStrings(r.Audiences, s.Audiences, false); err != nil {
		return err
	}
	if s.Insider != nil {
		ch, ok := ParseChannel([]byte(*s.Insider))
		if !ok {
			return errStd
		}
		r.Insider = ch
	}
	if len(*s.Devices) > l.MaxDevices {
		return errStd
	}
	for i := range *s.Devices {
		if err := convertDevice(&(*s.Devices)[i], nextDevice(r)); err != nil {
			return err
		}
	}
	return nil
}

func convertOS(o *stdOS, r *Request) error {
	if o.Build == nil || *o.Build < 1 || *o.Build > maxBuildNumber {
		return errStd
	}
	r.Build, r.Revision, r.SMode = *o.Build, o.Revision, o.SMode
	arch, sku := "amd64", "client"
	if o.Arch != nil {
		arch = *o.Arch
	}
	if o.SKU != nil {
		sku = *o.SKU
	}
	f, ok := ostable.FamilyOf(arch, sku)
	if !ok {
		return errStd
	}
	r.Family = f
	return nil
}

func convertDevice(s *stdDevice, dv *Device) error {
	l := DefaultLimits
	if s.InstanceID == nil || len(*s.InstanceID) == 0 || len(*s.InstanceID) > l.MaxString {
		return errStd
	}
	dv.InstanceID = []byte(*s.InstanceID)
	var err error
	if dv.HardwareIDs, err = convertStrings(dv.HardwareIDs, s.HardwareIDs, true); err != nil {
		return err
	}
	if dv.CompatibleIDs, err = convertStrings(dv.CompatibleIDs, s.CompatibleIDs, true); err != nil {
		return err
	}
	if dr := s.Driver; dr != nil {
		if dr.Date == nil || dr.Version == nil {
			return errStd
		}
		d, ok1 := parseDate([]byte(*dr.Date))
		v, ok2 := parseVersion([]byte(*dr.Version))
		if !ok1 || !ok2 {
			return errStd
		}
		dv.Driver = Driver{Present: true, Generic: dr.Generic, Date: d, Version: v}
		if dr.Rank != nil {
			rank, ok := parseRank([]byte(*dr.Rank))
			if !ok {
				return errStd
			}
			dv.Driver.HasRank, dv.Driver.Rank = true, rank
		}
	}
	if len(s.Extensions) > l.MaxIDs {
		return errStd
	}
	for _, x := range s.Extensions {
		if x.ExtensionID == nil || x.Date == nil || x.Version == nil {
			return errStd
		}
		id, err := chid.Parse(*x.ExtensionID)
		d, ok1 := parseDate([]byte(*x.Date))
		v, ok2 := parseVersion([]byte(*x.Version))
		if err != nil || !ok1 || !ok2 {
			return errStd
		}
		dv.Extensions = append(dv.Extensions, Extension{ID: id, Date: d, Version: v})
	}
	return nil
}

func convertStrings(dst [][]byte, src []string, hwid bool) ([][]byte, error) {
	l := DefaultLimits
	if len(src) > l.MaxIDs {
		return dst, errStd
	}
	for _, s := range src {
		if len(s) > l.MaxString || (hwid && len(s) == 0) {
			return dst, errStd
		}
		b := []byte(s)
		if hwid {
			catalogs.NormalizeHWIDBytes(b)
		}
		dst = append(dst, b)
	}
	return dst, nil
}

func stdIndex(names []string, s string) (int, bool) {
	for i, n := range names {
		if n == s {
			return i, true
		}
	}
	return 0, false
}
