package offer

import (
	"github.com/driveway/driveway/catalogs/chid"
	"github.com/driveway/driveway/catalogs/ostable"
)

// Scan is the kind of scan a PC runs (spec/offers.md, "Request").
type Scan uint8

// The scan kinds.
const (
	ScanScheduled Scan = iota // the default
	ScanUser                  // someone pressed Check for updates
	ScanPlugin                // a device just appeared and has no local driver
	ScanUpgrade               // the OS is being upgraded to targetBuild
	ScanOptional              // the View optional updates list
	ScanDevmgr                // Device Manager's Update driver
	numScans
)

var scanNames = [numScans]string{"scheduled", "user", "plugin", "upgrade", "optional", "devmgr"}

func (s Scan) String() string {
	if s < numScans {
		return scanNames[s]
	}
	return "unknown"
}

// Channel is a set of Windows Insider channels, one bit each.
type Channel uint8

// The Insider channels.
const (
	ChannelCanary Channel = 1 << iota
	ChannelDev
	ChannelBeta
	ChannelReleasePreview
)

var channelNames = [...]string{"Canary", "Dev", "Beta", "ReleasePreview"}

// ParseChannel returns the channel with a name ("Dev"); names are case-sensitive.
func ParseChannel(name []byte) (Channel, bool) {
	for i, n := range channelNames {
		if string(name) == n {
			return Channel(1) << i, true
		}
	}
	return 0, false
}

// Request is a decoded offer request. Byte slices point into the Decoder that filled it and
// are valid until its next Decode. Hardware and compatible IDs are already normalised
// (catalogs.NormalizeHWIDBytes).
type Request struct {
	DeviceID []byte // 1–128 bytes; feeds rollout bucketing only

	Build    uint32 // os.build (required)
	Revision uint32 // os.revision (UBR), default 0
	Family   ostable.Family
	SMode    bool

	Scan        Scan
	TargetBuild uint32 // required when Scan is ScanUpgrade, else 0

	// CHIDs[N] is HardwareID-N when bit N of CHIDMask is set. HasCHIDs is true when the
	// request carried "chids" (which then wins over "smbios").
	CHIDs    [chid.NumLevels]chid.ID
	CHIDMask uint16
	HasCHIDs bool

	// SMBIOS holds the raw fields when the request carried "smbios"; empty = absent.
	SMBIOS    [chid.NumFields][]byte
	HasSMBIOS bool

	TargetRing []byte
	Audiences  [][]byte
	Insider    Channel // zero or one channel

	Devices []Device
}

// Device is one PnP device node of a request.
type Device struct {
	InstanceID    []byte
	HardwareIDs   [][]byte // most specific first; position i gives rank identifier i
	CompatibleIDs [][]byte // position j gives rank identifier 0x2000+j
	Driver        Driver
	Extensions    []Extension
}

// Driver is the installed driver of a device. Present is false when the request has none.
type Driver struct {
	Present bool
	Generic bool   // only an inbox basic driver
	HasRank bool   // Rank was given
	Rank    uint32 // 8 hex digits in the request
	Date    int32  // days since 1970-01-01
	Version uint64 // w<<48 | x<<32 | y<<16 | z
}

// Extension is an installed extension INF.
type Extension struct {
	ID      chid.ID // the extension id (a GUID)
	Date    int32   // days since 1970-01-01
	Version uint64  // w<<48 | x<<32 | y<<16 | z
}

// Limits bound what a request may hold (spec/offers.md). Zero fields take the defaults.
type Limits struct {
	MaxBody    int // bytes; default 256 KiB
	MaxDevices int // devices per request; default 512
	MaxIDs     int // entries per list (hardwareIds, compatibleIds, extensions, audiences); default 64, at most 8192
	MaxString  int // bytes per string, after unescaping; default 512 (deviceId has its own 1–128)
}

// DefaultLimits are the spec's defaults.
var DefaultLimits = Limits{MaxBody: 256 << 10, MaxDevices: 512, MaxIDs: 64, MaxString: 512}

func (l Limits) withDefaults() Limits {
	if l.MaxBody <= 0 {
		l.MaxBody = DefaultLimits.MaxBody
	}
	if l.MaxDevices <= 0 {
		l.MaxDevices = DefaultLimits.MaxDevices
	}
	if l.MaxIDs <= 0 {
		l.MaxIDs = DefaultLimits.MaxIDs
	}
	// A candidate's rank holds its ID's place in a list below compatibleBase.
	l.MaxIDs = min(l.MaxIDs, compatibleBase)
	if l.MaxString <= 0 {
		l.MaxString = DefaultLimits.MaxString
	}
	return l
}

// Error is a request the procedure cannot answer: a 400 with a precise reason. It encodes as
// {"error":{"code":…,"message":…,"field":…}}. Functions return *Error, not error: compare
// the *Error with nil (a nil *Error stored in an error variable is not a nil error).
type Error struct {
	Code    string // one of the Code* constants
	Message string // what is wrong and what would be right
	Field   string // JSON pointer of the offending value ("/devices/3/hardwareIds/0"), "" for the whole body
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Code + ": " + e.Message
	}
	return e.Code + " at " + e.Field + ": " + e.Message
}

// Error codes.
const (
	CodeBadJSON  = "bad-json"  // not JSON, a duplicate member, nesting too deep, trailing data
	CodeBadType  = "bad-type"  // a value of the wrong JSON type
	CodeBadValue = "bad-value" // a value of the right type that is not allowed
	CodeMissing  = "missing"   // a required member is absent
	CodeLimit    = "limit"     // the body, a list or a string is beyond its limit
)
