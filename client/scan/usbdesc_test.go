package scan

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

// webcamDescriptors: a device descriptor and one configuration (value 1) with a video
// function (IAD over interfaces 0-1), an interface of its own (2) and an audio function
// (IAD over 3-4), and a second configuration (value 2) without IADs.
func webcamDescriptors() []byte {
	dev := []byte{18, 1, 0, 2, 0xef, 2, 1, 64, 0x6d, 0x04, 0x5e, 0x08, 0x16, 0, 0, 2, 1, 2}
	body := bytes.Join([][]byte{
		{8, 0x0b, 0, 2, 0x0e, 0x03, 0, 0}, // IAD: video, interfaces 0-1
		{9, 4, 0, 0, 1, 0x0e, 1, 0, 0},    // interface 0
		{7, 5, 0x83, 3, 0x40, 0, 8},       // its endpoint
		{9, 4, 1, 0, 0, 0x0e, 2, 0, 0},    // interface 1
		{9, 4, 2, 0, 0, 0xff, 0, 0, 0},    // interface 2, alone
		{8, 0x0b, 3, 2, 0x01, 0x02, 0, 0}, // IAD: audio, interfaces 3-4
		{9, 4, 3, 0, 0, 1, 1, 0, 0},       // interface 3
		{9, 4, 4, 0, 0, 1, 2, 0, 0},       // interface 4
		{5, 0x24, 1, 0, 0},                // a class-specific descriptor
	}, nil)
	cfg1 := append([]byte{9, 2, byte(9 + len(body)), 0, 5, 1, 0, 0x80, 0xfa}, body...)
	cfg2 := []byte{9, 2, 18, 0, 1, 2, 0, 0x80, 0xfa, 9, 4, 0, 0, 0, 0xff, 0, 0, 0}
	return bytes.Join([][]byte{dev, cfg1, cfg2}, nil)
}

func TestUSBFunctions(t *testing.T) {
	raw := webcamDescriptors()
	fs, err := ParseUSBFunctions(raw, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []USBFunction{{First: 0, Count: 2, Class: 0x0e, SubClass: 3}, {First: 3, Count: 2, Class: 1, SubClass: 2}}
	if !slices.Equal(fs, want) {
		t.Fatalf("configuration 1: %+v; want %+v", fs, want)
	}
	if fs, err := ParseUSBFunctions(raw, 2); err != nil || len(fs) != 0 {
		t.Fatalf("configuration 2: %+v, %v; want none", fs, err)
	}
	if fs, err := ParseUSBFunctions(raw, 3); err != nil || fs != nil {
		t.Fatalf("configuration 3 (absent): %+v, %v; want none", fs, err)
	}

	u := USBDevice{Vendor: 0x046d, Product: 0x085e, Revision: 0x16, Class: 0xef, SubClass: 2, Protocol: 1, NumInterfaces: 5, Functions: fs,
		Interfaces: []USBInterface{{Number: 0, Class: 0x0e, SubClass: 1}, {Number: 1, Class: 0x0e, SubClass: 2}, {Number: 2, Class: 0xff},
			{Number: 3, Class: 1, SubClass: 1}, {Number: 4, Class: 1, SubClass: 2}}}
	kids := u.Children()
	wantKids := []USBInterface{{Number: 0, Class: 0x0e, SubClass: 3}, {Number: 2, Class: 0xff}, {Number: 3, Class: 1, SubClass: 2}}
	if !slices.Equal(kids, wantKids) {
		t.Fatalf("Children() = %+v; want %+v", kids, wantKids)
	}
	hw, compat := u.InterfaceIDs(kids[0])
	if !slices.Equal(hw, []string{`USB\VID_046D&PID_085E&REV_0016&MI_00`, `USB\VID_046D&PID_085E&MI_00`}) ||
		!slices.Equal(compat, []string{`USB\Class_0E&SubClass_03&Prot_00`, `USB\Class_0E&SubClass_03`, `USB\Class_0E`}) {
		t.Errorf("the video function's IDs %q %q", hw, compat)
	}

	mess := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(raw)) }
	for _, c := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"empty", nil, "device descriptor"},
		{"no configuration", mess(func(b []byte) []byte { b[18+1] = 4; return b }), "no configuration descriptor at offset 18"},
		{"total past the end", mess(func(b []byte) []byte { return b[:40] }), "remain"},
		{"descriptor of length 0", mess(func(b []byte) []byte { b[18+9] = 0; return b }), "length 0"},
		{"descriptor past its configuration", mess(func(b []byte) []byte { b[18+9] = 200; return b }), "length 200"},
	} {
		_, err := ParseUSBFunctions(c.raw, 1)
		if !errors.Is(err, ErrUSBDescriptors) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v; want ErrUSBDescriptors saying %q", c.name, err, c.want)
		}
	}
}

// FuzzUSBDescriptors: no descriptors make the parser panic or loop; the functions it
// returns come from IADs of the file.
func FuzzUSBDescriptors(f *testing.F) {
	f.Add(webcamDescriptors(), uint8(1))
	f.Add(webcamDescriptors()[:30], uint8(1))
	f.Add([]byte{18, 1}, uint8(0))
	f.Fuzz(func(t *testing.T, raw []byte, config uint8) {
		fs, err := ParseUSBFunctions(raw, config)
		if err != nil {
			return
		}
		for _, fn := range fs {
			iad := []byte{usbIADLen, usbDescIAD, fn.First, fn.Count, fn.Class, fn.SubClass, fn.Protocol}
			if !bytes.Contains(raw, iad[2:]) {
				t.Fatalf("function %+v is not in the descriptors", fn)
			}
		}
		if len(fs) > len(raw)/2 {
			t.Fatalf("%d functions from %d bytes", len(fs), len(raw))
		}
	})
}
