package rollout

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func testTokens(t testing.TB) *ReportTokens {
	t.Helper()
	tk, err := NewReportTokens(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// TestTokenRoundTrip: a token checks for the device and label it was issued for, and says
// which release and minute issued it.
func TestTokenRoundTrip(t *testing.T) {
	tk := testTokens(t)
	issued := t0.Add(90 * time.Second)
	tok := string(tk.Append(nil, []byte("pc-1"), 3009, 42, issued))
	if len(tok) != TokenLen || strings.ContainsAny(tok, "+/=") {
		t.Fatalf("token %q: want %d base64url characters", tok, TokenLen)
	}
	got, err := tk.Check(tok, "pc-1", 3009, issued.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got.Release != 42 || !got.Issued.Equal(issued.Truncate(time.Minute)) {
		t.Errorf("checked as %+v; want release 42 issued %s", got, issued.Truncate(time.Minute))
	}
	// The same secret on another edge checks it; another secret does not.
	other, _ := NewReportTokens(testSecret)
	if _, err := other.Check(tok, "pc-1", 3009, issued); err != nil {
		t.Errorf("another edge with the fleet secret: %v", err)
	}
	stranger, _ := NewReportTokens([]byte(strings.Repeat("another fleet's secret ", 2)))
	if _, err := stranger.Check(tok, "pc-1", 3009, issued); err == nil {
		t.Error("a token of another fleet's secret checked")
	}
}

// TestTokenRefusals (issue 14: reports bound to offers): every way a token can be wrong is
// refused, with a reason.
func TestTokenRefusals(t *testing.T) {
	tk := testTokens(t)
	tok := string(tk.Append(nil, []byte("pc-1"), 3009, 42, t0))
	flip := func(i int) string {
		raw, _ := base64.RawURLEncoding.DecodeString(tok)
		raw[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(raw)
	}
	cases := []struct {
		name, token, device string
		label               uint64
		now                 time.Time
		msg                 string
	}{
		{"another device", tok, "pc-2", 3009, t0, "not issued for labelId 3009 and this deviceId"},
		{"another label", tok, "pc-1", 3010, t0, "not issued for labelId 3010"},
		{"expired", tok, "pc-1", 3009, t0.Add(DefaultTokenTTL + time.Minute), "good for 30 days"},
		{"from the future", tok, "pc-1", 3009, t0.Add(-TokenSkew - 2*time.Minute), "after the edge's clock"},
		{"too short", tok[:TokenLen-1], "pc-1", 3009, t0, "is 38 characters"},
		{"not base64url", strings.Repeat("!", TokenLen), "pc-1", 3009, t0, "not a report token"},
		{"padded base64", base64.URLEncoding.EncodeToString(make([]byte, TokenBytes))[:TokenLen], "pc-1", 3009, t0, ""},
		{"another version", flip(0), "pc-1", 3009, t0, "version 0"},
		{"empty", "", "pc-1", 3009, t0, "is 0 characters"},
	}
	for i := 1; i < TokenBytes; i++ { // any bit of the issue time, release or tag
		cases = append(cases, struct {
			name, token, device string
			label               uint64
			now                 time.Time
			msg                 string
		}{"byte " + string(rune('0'+i%10)), flip(i), "pc-1", 3009, t0, ""})
	}
	for _, c := range cases {
		if _, err := tk.Check(c.token, c.device, c.label, c.now); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v; want an error saying %q", c.name, err, c.msg)
		}
	}
	if _, err := NewReportTokens([]byte("short")); err == nil {
		t.Error("a 5-byte secret was taken")
	}
}

// TestTokenVectors: the token format of token.go, byte for byte (testdata/report-tokens.json;
// an edge of one version must check the tokens an edge of another issued).
func TestTokenVectors(t *testing.T) {
	b, err := os.ReadFile("testdata/report-tokens.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct {
		Secret, DeviceID, Token string
		Label, Release          uint64
		Issued                  time.Time
	}
	if err := json.Unmarshal(b, &vs); err != nil || len(vs) == 0 {
		t.Fatalf("%d vectors: %v", len(vs), err)
	}
	for _, v := range vs {
		tk, err := NewReportTokens([]byte(v.Secret))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(tk.Append(nil, []byte(v.DeviceID), v.Label, v.Release, v.Issued)); got != v.Token {
			t.Errorf("%s/%d/%d at %s: %s; want %s", v.DeviceID, v.Label, v.Release, v.Issued, got, v.Token)
		}
		if tok, err := tk.Check(v.Token, v.DeviceID, v.Label, v.Issued.Add(time.Hour)); err != nil || tok.Release != v.Release {
			t.Errorf("%s: %+v, %v", v.Token, tok, err)
		}
		// The vector again, from the format as token.go's comment writes it.
		key := hmac.New(sha256.New, []byte(v.Secret))
		key.Write([]byte("driveway report token key v1"))
		head := []byte{1}
		head = binary.BigEndian.AppendUint32(head, uint32(v.Issued.Unix()/60))
		head = binary.BigEndian.AppendUint64(head, v.Release)
		m := hmac.New(sha256.New, key.Sum(nil))
		m.Write([]byte("driveway report token v1\x00"))
		m.Write(head)
		m.Write(binary.BigEndian.AppendUint64(nil, v.Label))
		m.Write([]byte(v.DeviceID))
		if want := base64.RawURLEncoding.EncodeToString(append(head, m.Sum(nil)[:16]...)); want != v.Token {
			t.Errorf("the format says %s; the vector is %s", want, v.Token)
		}
	}
}

// TestTokenAllocs: issuing a token (once per offer) allocates nothing once warm.
func TestTokenAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	tk := testTokens(t)
	buf := make([]byte, 0, 256)
	dev := []byte("b7e1c0de-5d1e-4c0a-9f55-6a3e2f0d9b11")
	tk.Append(buf, dev, 1, 2, t0)
	if n := testing.AllocsPerRun(1000, func() { buf = tk.Append(buf[:0], dev, 1152921504606978422, 42, t0) }); n != 0 {
		t.Errorf("Append: %v allocations; want 0", n)
	}
}

// TestDecodeReportsTokens: with DecodeOptions.Tokens, a report needs the token of its offer,
// and a bad one is refused at its pointer.
func TestDecodeReportsTokens(t *testing.T) {
	tk := testTokens(t)
	good, _ := strictCases()
	opts := strictOptions()
	opts.Tokens = tk
	tok := string(tk.Append(nil, []byte("pc-1"), 3009, 7, t0.Add(-2*time.Hour)))
	with := func(token string) string {
		return strings.Replace(good, `"build"`, `"reportToken":"`+token+`","build"`, 1)
	}
	rs, err := DecodeReports([]byte(with(tok)), opts)
	if err != nil || len(rs) != 1 || rs[0].ReportToken != tok {
		t.Fatalf("a report with its token: %+v, %v", rs, err)
	}
	other := string(tk.Append(nil, []byte("pc-2"), 3009, 7, t0))
	for _, c := range []struct{ name, body, field, msg string }{
		{"no token", good, "/reportToken", "reportToken is required"},
		{"another device's token", with(other), "/reportToken", "not issued for labelId 3009"},
		{"the second of a batch", "[" + with(tok) + "," + with(other) + "]", "/1/reportToken", "not issued"},
		{"a token as a number", strings.Replace(good, `"build"`, `"reportToken":1,"build"`, 1), "/reportToken", "must be a string"},
	} {
		_, err := DecodeReports([]byte(c.body), opts)
		var re *Error
		if !errors.As(err, &re) || re.Field != c.field || !strings.Contains(re.Message, c.msg) {
			t.Errorf("%s: %v; want %q at %s", c.name, err, c.msg, c.field)
		}
	}
	// Without Tokens (a tool reading reports), the token is read for form only.
	if _, err := DecodeReports([]byte(good), strictOptions()); err != nil {
		t.Errorf("without Tokens: %v", err)
	}
}

// FuzzReportToken: no string makes Check panic, and one that checks is exactly the token
// Append issues for that device, label, release and minute (nothing else verifies).
func FuzzReportToken(f *testing.F) {
	tk := testTokens(f)
	f.Add(string(tk.Append(nil, []byte("pc-1"), 3009, 42, t0)), "pc-1", uint64(3009))
	f.Add("AQHIjxAAAAAAAAAAKjs0I3s68ZLUKHOihMqXohw", "b7e1c0de-5d1e-4c0a-9f55-6a3e2f0d9b11", uint64(1152921504606978422))
	f.Add(strings.Repeat("A", TokenLen), "", uint64(0))
	f.Add("", "pc", uint64(1))
	f.Fuzz(func(t *testing.T, token, device string, label uint64) {
		tok, err := tk.Check(token, device, label, t0)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		if again := string(tk.Append(nil, []byte(device), label, tok.Release, tok.Issued)); again != token {
			t.Fatalf("%q checked for %q/%d but the token of that offer is %q", token, device, label, again)
		}
	})
}
