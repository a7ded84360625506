// Package catalogs reads a tree of published labels (spec/labels.md; for users docs/labels.md)
// into one model and tells the publisher, precisely and all at once, what is wrong with it.
//
// The tree holds the hardware dashboard's resources as exported (Product, Submission, driver
// metadata, ShippingLabel) plus driveway's extensions (a label's "distribution", a
// submission's "package" and "expansion", and four optional catalog-wide files). [Load]
// reads it; [Tree.Validate] applies driver expansion and every rule of labels.md. Each
// finding is a [Problem] with the rule's stable code, the file, a JSON pointer and a
// message that says what would be right.
//
// This package is the single definition of a label and of a hardware ID: the build compiles
// this model, and the edge compares IDs with [NormalizeHWID].
//
// IDs are 64-bit integers in the resources; here they are canonical decimal strings, read
// exactly (a 19-digit id never goes through float64). Unknown fields of the dashboard's
// resources are ignored; unknown fields of driveway's extension objects are errors (L003).
package catalogs

import (
	"time"

	"github.com/driveway/driveway/catalogs/chid"
	"github.com/driveway/driveway/catalogs/ostable"
)

// Tree is a label tree as read from disk.
type Tree struct {
	Dir       string
	OS        *ostable.Table
	Settings  Settings
	Partners  map[string]*Partner // by seller id; absent partners have no entitlements
	Audiences []Audience          // audiences.json, or the built-in Test Registry Key audience
	Blocks    []Block
	Products  []*Product // by id, numerically
}

// Settings is catalog.json.
type Settings struct {
	Name         string
	ExpiresAfter time.Duration // 0: not set (the build's default applies)
	MinSequence  uint64
	ClassRules   map[string]string // upper-cased INF class -> "require" or "forbid" CHIDs
}

// Partner is one entry of partners.json.
type Partner struct {
	SellerID          string
	Name              string
	CoEngineering     bool
	CeilingAccess     bool
	CHIDRelationships []chid.ID // nil: not listed, so not checked
	HWIDVendors       []string  // upper-cased ("VEN_8086"); nil: not listed, so not checked
}

// Audience is one entry of audiences.json: a device is in it when its request carries the
// targetRing value or names the audience.
type Audience struct {
	ID         chid.ID
	Name       string
	TargetRing string
	Audience   string
}

// TestRegistryKey returns the built-in audience that exists when audiences.json is absent:
// the Test Registry Key (HKLM\Software\Microsoft\DriverFlighting\Partner, TargetRing = Drivers).
func TestRegistryKey() Audience {
	return Audience{
		ID:         chid.ID{15: 1}, // 00000000-0000-0000-0000-000000000001
		Name:       "Test_Registry_Key",
		TargetRing: "Drivers",
	}
}

// Block is one entry of blocks.json: a hold that stops offers to devices with a known
// problem. Every present condition must hold; list fields match if any element matches.
type Block struct {
	ID          string
	Reason      string
	Labels      []string  // label ids; empty: every label
	HardwareIDs []string  // normalised
	CHIDs       []chid.ID //
	MinBuild    int       // 0: no lower bound
	MaxBuild    int       // 0: no upper bound
}

// Product is a product.json with its submissions.
type Product struct {
	ID                  string
	SharedProductID     string
	Name                string
	IsTestSign          bool
	IsFlightSign        bool
	RequestedSignatures []string
	TestHarness         string // hlk, hck, attestation, notset
	OwnerSellerID       string
	Submissions         []*Submission // by id, numerically

	File     string // path in the tree
	expanded bool   // ValidateProduct has applied driver expansion
}

// Submission is a submission.json with its driver metadata and shipping labels.
type Submission struct {
	ID               string
	ProductID        string
	Name             string
	Type             string // initial, derived
	IsExtensionInf   bool
	IsDeclarativeInf bool
	IsUniversal      bool
	SignedPackageURL string     // downloads.items[type=signedPackage].url
	Package          *Package   // nil when absent
	Expansion        *Expansion // nil when absent
	Metadata         *Metadata  // nil when driverMetadata.json is missing or unreadable
	Labels           []*Label   // by id, numerically

	Product      *Product
	File         string // submission.json
	MetadataFile string // driverMetadata.json
}

// Package is where devices download a submission's driver package.
type Package struct {
	URL    string // falls back to SignedPackageURL when empty
	SHA256 [32]byte
	Size   int64
	HasSHA bool
}

// Expansion is a submission owner's request for driver expansion.
type Expansion struct {
	RequestedBy string
	Twice       bool // the submission requested expansion more than once
}

// Metadata is driverMetadata.json.
type Metadata struct {
	Bundles []*Bundle // by id
}

// Bundle is one bundle of a driver package.
type Bundle struct {
	ID   string
	INFs []*INF // by name
}

// INF is one INF file of a bundle with its PnP grid.
type INF struct {
	Bundle      string
	Name        string
	Class       string
	ClassGUID   string
	Provider    string
	Version     uint64 // w<<48 | x<<32 | y<<16 | z
	VersionText string
	Date        int32 // days since 1970-01-01
	DateText    string
	ExtensionID *chid.ID  // nil when null
	CHIDs       []chid.ID // InstallationComputerHardwareIds

	// grid holds the hardware IDs the INF lists on each OS code (see Lists, Entry, Codes,
	// HWIDs). After expansion it also holds the extended TH1 entries (PnP.Extended).
	grid grid

	TargetOSVersions []string // the INF's [Manufacturer] decorations; nil when absent

	pointer string // of this INF in driverMetadata.json
}

// PnP is one (OS code, hardware ID) entry of an INF.
type PnP struct {
	FeatureScore uint8 // default 0xFF
	Extended     bool  // added by driver expansion
}

// Label is a shipping label.
type Label struct {
	ID           string
	ProductID    string
	SubmissionID string
	Name         string
	Destination  string // windowsUpdate, anotherPartner, notSet

	Publishing *Publishing // nil when publishingSpecifications is absent
	Recipient  *Recipient  // nil when recipientSpecifications is absent

	Rows      []Row
	CHIDs     []LabelCHID
	Audiences []chid.ID // restrictedToAudiences

	Floor, Ceiling           string // inServicePublishInfo; "" when not set
	HasInService             bool   // inServicePublishInfo present with a value
	FloorBuild, CeilingBuild int    // coEngDriverPublishInfo; 0 when not set
	HasCoEng                 bool   // coEngDriverPublishInfo present with a value

	Distribution Distribution

	Submission *Submission
	Product    *Product
	File       string
}

// Publishing is a label's publishingSpecifications.
type Publishing struct {
	GoLive         time.Time
	AutoDU         bool // isAutoInstallDuringOSUpgrade
	AutoApplicable bool // isAutoInstallOnApplicableSystems
	Manual         bool // manualAcquisition
	Windows10S     bool // publishToWindows10s
	CoEngineered   bool // additionalInfoForMsApproval.isCoEngineered
	HasUISoftware  bool // additionalInfoForMsApproval.hasUiSoftware
}

// Recipient is a label's recipientSpecifications (a share with another partner).
type Recipient struct {
	ReceiverPublisherID string
	EnforceCHIDs        bool
}

// Row is one row of a label's PnP grid.
type Row struct {
	Bundle string
	INF    string
	OSCode string
	PnP    string // as written
	HWID   string // normalised
	State  string // added, pendingAdd, pendingRemove, notSet
}

// Live reports whether the row is offered: distributionState added.
func (r Row) Live() bool { return r.State == "added" }

// LabelCHID is one CHID of a label's targeting.
type LabelCHID struct {
	ID    chid.ID
	State string
}

// Distribution is driveway's extension on a label: rollout, flight and cancel state.
type Distribution struct {
	Author    *Author
	Flight    *Flight
	Rollout   *Rollout
	Cancelled *Cancelled
}

// Author is who last set the label's targeting.
type Author struct {
	SellerID string
	Role     string // administrator, shippingLabelOwner, shippingLabelPromoter, developer, other
}

// Flight is a label's Windows Insider flight.
type Flight struct {
	Channels []string
	Start    time.Time
	Approved time.Time // zero: not approved
}

// Rollout is a gradual-rollout throttle: the percent of the last stage whose time has passed.
type Rollout struct {
	Stages []Stage
	Paused bool
	// Clusters are an even first ring's per-cluster thresholds (the rollout controller's
	// policy firstRing): a device of a cluster is in while its bucket is below the larger of
	// the stages' percent and its cluster's, once the first stage has begun.
	Clusters []ClusterStage
}

// ClusterStage is the threshold of one targeting cluster of a rollout: devices with the CHID
// (at any level) on a build in [MinBuild, MaxBuild] (0: unbounded), and, when HWID is set,
// matched by that hardware ID (normalised).
type ClusterStage struct {
	CHID               chid.ID
	MinBuild, MaxBuild int
	HWID               string
	BasisPoints        int
}

// Stage is one step of a rollout. Percent is in basis points (0–10000).
type Stage struct {
	At          time.Time
	BasisPoints int
}

// Cancelled expires a label as a whole from At on.
type Cancelled struct {
	At       time.Time
	Rollback bool
	Reason   string
}

// Live reports whether the label is published to Windows Update with at least one live row.
func (l *Label) Live() bool {
	if l.Destination != "windowsUpdate" {
		return false
	}
	for _, r := range l.Rows {
		if r.Live() {
			return true
		}
	}
	return false
}

// LiveCHIDs returns the label's CHIDs in state added.
func (l *Label) LiveCHIDs() []chid.ID {
	var ids []chid.ID
	for _, c := range l.CHIDs {
		if c.State == "added" {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// Publisher is the partner that publishes the label: its author when the export names one,
// else the product's owner.
func (l *Label) Publisher() string {
	if a := l.Distribution.Author; a != nil && a.SellerID != "" {
		return a.SellerID
	}
	return l.Product.OwnerSellerID
}

// Auto reports whether the label installs automatically in some scan (either auto flag).
func (l *Label) Auto() bool {
	return l.Publishing != nil && (l.Publishing.AutoApplicable || l.Publishing.AutoDU)
}

// INF returns the INF a row names, or nil.
func (s *Submission) INF(bundle, name string) *INF {
	if s.Metadata == nil {
		return nil
	}
	for _, b := range s.Metadata.Bundles {
		if b.ID == bundle {
			for _, inf := range b.INFs {
				if inf.Name == name {
					return inf
				}
			}
		}
	}
	return nil
}

// Labels returns every label of the tree, by product, submission and label id.
func (t *Tree) Labels() []*Label {
	var out []*Label
	for _, p := range t.Products {
		for _, s := range p.Submissions {
			out = append(out, s.Labels...)
		}
	}
	return out
}
