package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/driveway/driveway/catalogs/chid"
)

// chidFlags are the flag names of the SMBIOS fields, in chid.Field order.
var chidFlags = [chid.NumFields]string{
	"manufacturer", "family", "product-name", "sku-number", "bios-vendor", "bios-version",
	"bios-major-release", "bios-minor-release", "enclosure-type", "baseboard-manufacturer", "baseboard-product",
}

func cmdCHID(e *env, args []string) int {
	fs := e.flags("chid", `
Chid computes the 15 computer hardware IDs (CHIDs) Windows derives from a machine's SMBIOS
fields, like ComputerHardwareIds.exe: a publisher computes what to target, and the edge does
the same for requests that send smbios instead of chids (docs/offers.md).

Give the fields as flags, or as a JSON object with the request's field names
(manufacturer, family, productName, skuNumber, biosVendor, biosVersion, biosMajorRelease,
biosMinorRelease, enclosureType, baseboardManufacturer, baseboardProduct) with --smbios
(- reads stdin). BIOS releases and enclosure type are lowercase hex, as SMBIOS reports them.`)
	smbios := fs.String("smbios", "", "a JSON `FILE` of SMBIOS fields (- for stdin)")
	var values [chid.NumFields]*string
	for i, name := range chidFlags {
		values[i] = fs.String(name, "", "SMBIOS "+chid.FieldNames[i])
	}
	asJSON := fs.Bool("json", false, `print {"chids": [...]}, ready to paste into an offer request`)
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	var fields chid.Fields
	if *smbios != "" {
		for _, name := range chidFlags {
			if fs.Changed(name) {
				return e.usageError("chid", "--smbios and --"+name+" exclude each other")
			}
		}
		var err error
		if fields, err = readSMBIOS(e, *smbios); err != nil {
			return e.fail("chid", err)
		}
	} else {
		for i, v := range values {
			fields[i] = *v
		}
	}
	if fields[chid.Manufacturer] == "" {
		return e.usageError("chid", "the manufacturer is needed: every CHID includes it")
	}
	ids, present := chid.Compute(&fields)
	if *asJSON {
		out := make([]*string, chid.NumLevels)
		for n := range ids {
			if present&(1<<n) != 0 {
				s := ids[n].String()
				out[n] = &s
			}
		}
		b, _ := json.MarshalIndent(map[string]any{"chids": out}, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
		return exitOK
	}
	for n, lv := range chid.Levels {
		names := make([]string, len(lv))
		for i, f := range lv {
			names[i] = chid.FieldNames[f]
		}
		id := "-                                   "
		if present&(1<<n) != 0 {
			id = ids[n].String()
		}
		fmt.Fprintf(e.stdout, "HardwareID-%-2d %s  %s\n", n, id, strings.Join(names, "&"))
	}
	return exitOK
}

func readSMBIOS(e *env, path string) (chid.Fields, error) {
	var fields chid.Fields
	var r io.Reader = e.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return fields, err
		}
		defer f.Close()
		r = f
	}
	var m map[string]*string
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	if err := dec.Decode(&m); err != nil {
		return fields, fmt.Errorf("%s: not a JSON object of SMBIOS strings: %v", path, err)
	}
	for k, v := range m {
		f, ok := chid.FieldByName(k)
		if !ok {
			return fields, fmt.Errorf("%s: unknown SMBIOS field %q (known: %s)", path, k, strings.Join(chid.FieldNames[:], ", "))
		}
		if v != nil {
			fields[f] = *v
		}
	}
	return fields, nil
}
