package chid

import (
	"encoding/json"
	"os"
	"testing"
)

type vectors struct {
	Machines []struct {
		Name   string            `json:"name"`
		SMBIOS map[string]string `json:"smbios"`
		CHIDs  []*string         `json:"chids"`
	} `json:"machines"`
}

// The vectors are testdata/conformance/chids.json, a copy of shared/conformance.
func loadVectors(t *testing.T) vectors {
	b, err := os.ReadFile("../../testdata/conformance/chids.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Machines) == 0 {
		t.Fatal("no vectors")
	}
	return v
}

func TestVectors(t *testing.T) {
	for _, m := range loadVectors(t).Machines {
		var f Fields
		for k, v := range m.SMBIOS {
			fi, ok := FieldByName(k)
			if !ok {
				t.Fatalf("%s: unknown field %q", m.Name, k)
			}
			f[fi] = v
		}
		ids, present := Compute(&f)
		for n := 0; n < NumLevels; n++ {
			want := m.CHIDs[n]
			got := present&(1<<n) != 0
			switch {
			case want == nil && got:
				t.Errorf("%s: HardwareID-%d = %s, want none", m.Name, n, ids[n])
			case want != nil && !got:
				t.Errorf("%s: HardwareID-%d not generated, want %s", m.Name, n, *want)
			case want != nil && ids[n].String() != *want:
				t.Errorf("%s: HardwareID-%d = %s, want %s", m.Name, n, ids[n], *want)
			}
		}
	}
}

func TestHasherAllocs(t *testing.T) {
	var f [NumFields][]byte
	for i := range f {
		f[i] = []byte("Contoso value")
	}
	var h Hasher
	var ids [NumLevels]ID
	h.Compute(&f, &ids)
	if n := testing.AllocsPerRun(100, func() { h.Compute(&f, &ids) }); n != 0 {
		t.Errorf("Hasher.Compute allocates %v times per run, want 0", n)
	}
}

func TestParse(t *testing.T) {
	want := "147efce9-f201-5fc8-ab0c-c859751c3440"
	for _, s := range []string{want, "147EFCE9-F201-5FC8-AB0C-C859751C3440", "{147efce9-f201-5fc8-ab0c-c859751c3440}"} {
		id, err := Parse(s)
		if err != nil || id.String() != want {
			t.Errorf("Parse(%q) = %s, %v; want %s", s, id, err, want)
		}
	}
	for _, s := range []string{"", "147efce9f2015fc8ab0cc859751c3440", "147efce9-f201-5fc8-ab0c-c859751c344", "147efce9-f201-5fc8-ab0c-c859751c344g",
		"147efce9-f201-5fc8-ab0cc-859751c3440", "{147efce9-f201-5fc8-ab0c-c859751c3440", "147efce9-f201-5fc8-ab0c-c859751c3440 "} {
		if id, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) = %s; want an error", s, id)
		}
	}
}

func TestUTF16(t *testing.T) {
	got := appendUTF16LE(nil, []byte("aé😀\xff"))
	want := []byte{'a', 0, 0xe9, 0, 0x3d, 0xd8, 0x00, 0xde, 0xfd, 0xff}
	if string(got) != string(want) {
		t.Errorf("appendUTF16LE = % x, want % x", got, want)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("147efce9-f201-5fc8-ab0c-c859751c3440")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			return
		}
		if again, err := Parse(id.String()); err != nil || again != id {
			t.Fatalf("Parse(%q) = %s does not round-trip", s, id)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	s := []byte("147efce9-f201-5fc8-ab0c-c859751c3440")
	for i := 0; i < b.N; i++ {
		if _, err := ParseBytes(s); err != nil {
			b.Fatal(err)
		}
	}
}
