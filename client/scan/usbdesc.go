package scan

// This file reads a USB device's raw descriptors, as Linux keeps them in sysfs
// (sys/bus/usb/devices/B-P/descriptors), for what the other attribute files do not show:
// the interface association descriptors (IADs) that group interfaces into functions. The
// file is what the device answered to GET_DESCRIPTOR (USB 2.0, chapter 9):
//
//	device descriptor   [18]  bLength 18, bDescriptorType 1, …
//	per configuration:
//	  configuration descriptor [9]  bLength 9, bDescriptorType 2, wTotalLength [2] LE,
//	                                bNumInterfaces, bConfigurationValue, …
//	  wTotalLength-9 more bytes of descriptors, each bLength [1], bDescriptorType [1], …
//	  among them interface association descriptors [8]: bLength 8, bDescriptorType 0Bh,
//	                                bFirstInterface, bInterfaceCount, bFunctionClass,
//	                                bFunctionSubClass, bFunctionProtocol, iFunction
//
// Only the configuration whose bConfigurationValue is the active one is read. A descriptor
// whose length is below 2 or runs past its configuration is an error, as is a configuration
// that runs past the file.

import (
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	usbDeviceDescLen = 18
	usbConfigDescLen = 9
	usbIADLen        = 8
	usbDescConfig    = 0x02
	usbDescIAD       = 0x0b
	maxDescriptors   = 64 << 10 // bytes of a descriptors file read at most (wTotalLength is 16 bits)
)

// ErrUSBDescriptors marks a descriptors file that is not well formed.
var ErrUSBDescriptors = errors.New("scan: malformed USB descriptors")

// ParseUSBFunctions returns the interface association descriptors of configuration config
// in raw descriptors (the device descriptor, then each configuration's). A configuration
// the descriptors do not hold has none.
func ParseUSBFunctions(raw []byte, config uint8) ([]USBFunction, error) {
	if len(raw) < usbDeviceDescLen || raw[0] != usbDeviceDescLen || raw[1] != 0x01 {
		return nil, fmt.Errorf("%w: %d bytes that do not start with an 18-byte device descriptor", ErrUSBDescriptors, len(raw))
	}
	off := usbDeviceDescLen
	for off < len(raw) {
		if len(raw)-off < usbConfigDescLen || raw[off] < usbConfigDescLen || raw[off+1] != usbDescConfig {
			return nil, fmt.Errorf("%w: no configuration descriptor at offset %d", ErrUSBDescriptors, off)
		}
		total := int(binary.LittleEndian.Uint16(raw[off+2:]))
		if total < int(raw[off]) || total > len(raw)-off {
			return nil, fmt.Errorf("%w: the configuration at offset %d says it has %d bytes; %d remain", ErrUSBDescriptors, off, total, len(raw)-off)
		}
		value := raw[off+5]
		cfg := raw[off : off+total]
		off += total
		if value != config {
			continue
		}
		var fs []USBFunction
		for p := int(cfg[0]); p < len(cfg); {
			n := int(cfg[p])
			if n < 2 || n > len(cfg)-p {
				return nil, fmt.Errorf("%w: a descriptor of length %d at offset %d of configuration %d (of %d bytes)", ErrUSBDescriptors, n, p, value, len(cfg))
			}
			if cfg[p+1] == usbDescIAD && n >= usbIADLen {
				d := cfg[p:]
				fs = append(fs, USBFunction{First: d[2], Count: d[3], Class: d[4], SubClass: d[5], Protocol: d[6]})
			}
			p += n
		}
		return fs, nil
	}
	return nil, nil
}
