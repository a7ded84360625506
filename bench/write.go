package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// treeWriter encodes and writes products on a few goroutines while the generator makes the
// next ones. What it writes depends only on each product, never on which goroutine wrote
// it or when.
type treeWriter struct {
	dir      string
	compact  bool
	workers  int
	progress func(done, total int)
	total    int

	jobs    chan *product
	results chan writeResult
	done    chan struct{}
	wg      sync.WaitGroup

	stats LabelStats
	err   error
	quit  chan struct{}
	once  sync.Once
}

type writeResult struct {
	stats LabelStats
	err   error
}

func newTreeWriter(dir string, opts LabelOptions) *treeWriter {
	w := &treeWriter{dir: dir, compact: opts.Compact, workers: opts.Workers, progress: opts.Progress, total: opts.Labels}
	if w.workers <= 0 {
		w.workers = runtime.GOMAXPROCS(0)
	}
	w.jobs = make(chan *product, 4*w.workers)
	w.results = make(chan writeResult, 4*w.workers)
	w.done = make(chan struct{})
	w.quit = make(chan struct{})
	return w
}

func (w *treeWriter) start() error {
	if err := os.MkdirAll(filepath.Join(w.dir, "products"), 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	for i := 0; i < w.workers; i++ {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			e := &encoder{}
			for p := range w.jobs {
				st, err := e.writeProduct(w.dir, p, w.compact)
				w.results <- writeResult{st, err}
			}
		}()
	}
	go func() {
		w.wg.Wait()
		close(w.results)
	}()
	go func() {
		defer close(w.done)
		step := max(1, w.total/100)
		next := step
		for res := range w.results {
			if res.err != nil && w.err == nil {
				w.err = res.err
				w.once.Do(func() { close(w.quit) })
			}
			w.stats.add(res.stats)
			if w.progress != nil && w.stats.Labels >= next {
				next = w.stats.Labels + step
				w.progress(w.stats.Labels, w.total)
			}
		}
		if w.progress != nil && w.err == nil {
			w.progress(w.stats.Labels, w.total)
		}
	}()
	return nil
}

// send queues a product; it reports false once writing has failed.
func (w *treeWriter) send(p *product) bool {
	select {
	case w.jobs <- p:
		return true
	case <-w.quit:
		return false
	}
}

func (w *treeWriter) wait() (LabelStats, error) {
	close(w.jobs)
	<-w.done
	return w.stats, w.err
}

func (w *treeWriter) writeFile(name string, data []byte) error {
	if err := os.WriteFile(filepath.Join(w.dir, name), data, 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	w.stats.Files++
	w.stats.Bytes += int64(len(data))
	return nil
}

func (s *LabelStats) add(o LabelStats) {
	s.Products += o.Products
	s.Submissions += o.Submissions
	s.Labels += o.Labels
	s.Rows += o.Rows
	s.HWIDs += o.HWIDs
	s.LabelHWIDs += o.LabelHWIDs
	s.Files += o.Files
	s.Bytes += o.Bytes
}

// encoder writes one product's files; each writer goroutine has its own.
type encoder struct {
	w    jsonWriter
	seen map[string]struct{}
}

func (e *encoder) writeProduct(dir string, p *product, compact bool) (LabelStats, error) {
	var st LabelStats
	put := func(rel string) error {
		data := e.w.finish()
		if err := os.WriteFile(filepath.Join(dir, rel), data, 0o644); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		st.Files++
		st.Bytes += int64(len(data))
		return nil
	}
	pdir := filepath.Join("products", p.id)
	if e.seen == nil {
		e.seen = map[string]struct{}{}
	}
	clear(e.seen)
	// Every directory is new: make each with one call rather than MkdirAll's walk.
	mkdir := func(rel string) error {
		if err := os.Mkdir(filepath.Join(dir, rel), 0o755); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		return nil
	}
	if err := mkdir(pdir); err != nil {
		return st, err
	}
	if err := mkdir(filepath.Join(pdir, "submissions")); err != nil {
		return st, err
	}
	for _, s := range p.subs {
		sdir := filepath.Join(pdir, "submissions", s.id)
		if err := mkdir(sdir); err != nil {
			return st, err
		}
		if err := mkdir(filepath.Join(sdir, "shippingLabels")); err != nil {
			return st, err
		}
		e.w.reset(!compact)
		encodeSubmission(&e.w, p, s)
		if err := put(filepath.Join(sdir, "submission.json")); err != nil {
			return st, err
		}
		e.w.reset(!compact)
		encodeMetadata(&e.w, p, s)
		if err := put(filepath.Join(sdir, "driverMetadata.json")); err != nil {
			return st, err
		}
		for _, l := range s.labels {
			e.w.reset(!compact)
			encodeLabel(&e.w, p, s, l)
			if err := put(filepath.Join(sdir, "shippingLabels", l.id+".json")); err != nil {
				return st, err
			}
			st.Labels++
			st.Rows += len(l.rows)
			st.LabelHWIDs += l.hwidCount
			if p.kind != kExtension {
				for _, r := range l.rows {
					e.seen[r.pnp] = struct{}{}
				}
			}
		}
		st.Submissions++
	}
	e.w.reset(!compact)
	encodeProduct(&e.w, p)
	if err := put(filepath.Join(pdir, "product.json")); err != nil {
		return st, err
	}
	st.Products++
	st.HWIDs = len(e.seen)
	return st, nil
}

func encodeProduct(w *jsonWriter, p *product) {
	w.beginObject()
	w.rawField("id", p.id)
	w.rawField("sharedProductId", p.sharedID)
	w.strField("productName", p.name)
	w.boolField("isTestSign", false)
	w.boolField("isFlightSign", false)
	w.strings("requestedSignatures", p.signatures)
	w.strField("testHarness", p.harness)
	w.strField("ownerSellerId", p.ownerSeller)
	w.boolField("isCommitted", true)
	if p.internal {
		w.strField("deviceType", "internal")
	} else {
		w.strField("deviceType", "external")
	}
	w.endObject()
}

func workflow(w *jsonWriter, step, state string) {
	w.name("workflowStatus")
	w.beginObject()
	w.strField("currentStep", step)
	w.strField("state", state)
	w.name("messages")
	w.beginArray()
	w.endArray()
	w.endObject()
}

func encodeSubmission(w *jsonWriter, p *product, s *submission) {
	w.beginObject()
	w.rawField("id", s.id)
	w.rawField("productId", p.id)
	w.strField("name", s.name)
	w.strField("type", "initial")
	w.boolField("isExtensionInf", p.kind == kExtension)
	w.boolField("isDeclarativeInf", true)
	w.boolField("isUniversal", true)
	workflow(w, "finalizeIngestion", "completed")
	w.name("downloads")
	w.beginObject()
	w.name("items")
	w.beginArray()
	w.beginObject()
	w.strField("type", "signedPackage")
	w.strField("url", "https://manage.devcenter.example/"+s.id+".cab")
	w.endObject()
	w.endArray()
	w.name("messages")
	w.beginArray()
	w.endArray()
	w.endObject()
	w.name("package")
	w.beginObject()
	w.strField("url", s.pkgURL)
	w.strField("sha256", s.sha)
	w.intField("size", s.size)
	w.endObject()
	if p.expansion {
		w.name("expansion")
		w.beginObject()
		w.strField("requestedBy", p.ownerSeller)
		w.endObject()
	}
	w.endObject()
}

func encodeMetadata(w *jsonWriter, p *product, s *submission) {
	k := &kinds[p.kind]
	w.beginObject()
	w.name("BundleInfoMap")
	w.beginObject()
	for _, b := range s.bundles {
		w.name(b.id)
		w.beginObject()
		w.strings("Locales", []string{"English"})
		w.name("InfInfoMap")
		w.beginObject()
		for ii, inf := range p.infNames {
			w.name(inf)
			w.beginObject()
			w.strField("DriverPackageFamilyId", "fam-"+inf)
			w.strField("InfClass", k.class)
			w.strField("DriverVersion", s.version)
			w.strField("DriverDate", dayString(s.driverDay)+"T00:00:00")
			if p.extensionID != "" {
				w.strField("ExtensionId", p.extensionID)
			} else {
				w.rawField("ExtensionId", "null")
			}
			w.strField("Provider", p.provider)
			w.strField("ClassGuid", k.classGUID)
			w.name("InstallationComputerHardwareIds")
			w.beginArray()
			w.endArray()
			w.name("OSPnPInfoMap")
			w.beginObject()
			for _, code := range b.codes {
				w.name(code)
				w.beginObject()
				for _, h := range s.hwids {
					if len(p.infNames) > 1 && infFor(p, h.chip) != inf {
						continue
					}
					w.name(h.s)
					w.beginObject()
					w.strField("Manufacturer", p.provider)
					w.strField("DeviceDescription", p.chips[h.chip].descr)
					if p.score != "" {
						w.strField("FeatureScore", p.score)
					} else {
						w.rawField("FeatureScore", "null")
					}
					w.endObject()
				}
				w.endObject()
			}
			w.endObject()
			switch {
			case p.expansion:
				w.strings("TargetOSVersions", []string{"NTamd64"})
			case !p.legacy && ii == 0 && b.id == "amd64" && len(b.codes) > 0 && strings.HasSuffix(b.codes[0], "_VB_FULL"):
				w.strings("TargetOSVersions", []string{"NTamd64.10.0...19041"})
			}
			w.endObject()
		}
		w.endObject()
		w.endObject()
	}
	w.endObject()
	w.endObject()
}

func encodeLabel(w *jsonWriter, p *product, s *submission, l *label) {
	w.beginObject()
	w.rawField("id", l.id)
	w.rawField("productId", p.id)
	w.rawField("submissionId", s.id)
	w.strField("name", l.name)
	w.strField("destination", l.dest)
	w.name("targeting")
	w.beginObject()
	w.name("hardwareIds")
	w.beginArray()
	for _, r := range l.rows {
		w.beginObject()
		w.strField("bundleId", r.bundle)
		w.strField("infId", r.inf)
		w.strField("operatingSystemCode", r.os)
		w.strField("pnpString", r.pnp)
		w.strField("distributionState", r.state)
		w.endObject()
	}
	w.endArray()
	w.name("chids")
	w.beginArray()
	for _, c := range l.chids {
		w.beginObject()
		w.strField("chid", c.id)
		w.strField("distributionState", c.state)
		w.endObject()
	}
	w.endArray()
	w.strings("restrictedToAudiences", l.audiences)
	if l.floor != "" || l.ceiling != "" {
		w.name("inServicePublishInfo")
		w.beginObject()
		if l.floor != "" {
			w.strField("flooring", l.floor)
		}
		if l.ceiling != "" {
			w.strField("ceiling", l.ceiling)
		}
		w.endObject()
	}
	if l.coEngFloor != 0 {
		w.name("coEngDriverPublishInfo")
		w.beginObject()
		w.intField("flooringBuildNumber", int64(l.coEngFloor))
		w.endObject()
	}
	w.endObject()
	if l.dest == "windowsUpdate" {
		workflow(w, "finalizePublishing", "completed")
		w.name("publishingSpecifications")
		w.beginObject()
		w.strField("goLiveDate", timeString(l.goLive))
		w.name("visibleToAccounts")
		w.beginArray()
		w.endArray()
		w.boolField("isAutoInstallDuringOSUpgrade", l.autoDU)
		w.boolField("isAutoInstallOnApplicableSystems", l.autoApp)
		w.boolField("manualAcquisition", l.manual)
		w.boolField("isDisclosureRestricted", false)
		w.boolField("publishToWindows10s", l.win10s)
		w.name("additionalInfoForMsApproval")
		w.beginObject()
		w.strField("microsoftContact", "drivers@"+p.domain+".example")
		w.strField("validationsPerformed", validations[len(l.id)%len(validations)])
		w.name("affectedOems")
		w.beginArray()
		if l.oem != nil {
			w.str(l.oem.name)
		}
		w.endArray()
		w.boolField("isRebootRequired", l.reboot)
		w.boolField("isCoEngineered", l.coEng)
		w.boolField("isForUnreleasedHardware", l.unreleased)
		w.boolField("hasUiSoftware", l.ui)
		w.strField("businessJustification", l.name)
		w.endObject()
		w.endObject()
	} else {
		workflow(w, "finalizeSharing", "completed")
		w.name("recipientSpecifications")
		w.beginObject()
		w.strField("receiverPublisherId", l.receiver)
		w.boolField("enforceChidTargeting", l.enforce)
		w.endObject()
	}
	if l.author != nil || l.flight != nil || l.rollout != nil || l.cancelled != nil {
		w.name("distribution")
		w.beginObject()
		if a := l.author; a != nil {
			w.name("author")
			w.beginObject()
			w.strField("sellerId", a.seller)
			w.strField("role", a.role)
			w.endObject()
		}
		if f := l.flight; f != nil {
			w.name("flight")
			w.beginObject()
			w.strings("channels", f.channels)
			w.strField("start", timeString(f.start))
			if f.approved != 0 {
				w.strField("approved", timeString(f.approved))
			}
			w.endObject()
		}
		if ro := l.rollout; ro != nil {
			w.name("rollout")
			w.beginObject()
			w.name("stages")
			w.beginArray()
			for _, st := range ro.stages {
				w.beginObject()
				w.strField("at", timeString(st.at))
				w.rawField("percent", percentString(st.bp))
				w.endObject()
			}
			w.endArray()
			w.boolField("paused", ro.paused)
			w.endObject()
		}
		if c := l.cancelled; c != nil {
			w.name("cancelled")
			w.beginObject()
			w.strField("at", timeString(c.at))
			w.boolField("rollback", c.rollback)
			w.strField("reason", c.reason)
			w.endObject()
		}
		w.endObject()
	}
	w.endObject()
}

var validations = []string{"HLK, 2-week field pilot", "HLK", "HLK, OEM system validation", "HLK, 4-week field pilot, OEM sign-off"}

func dayString(day int) string {
	return time.Unix(int64(day)*86400, 0).UTC().Format("2006-01-02")
}

func timeString(sec int64) string {
	return time.Unix(sec, 0).UTC().Format(time.RFC3339)
}

// percentString prints basis points as a JSON number with at most two decimals.
func percentString(bp int) string {
	s := strconv.Itoa(bp / 100)
	if f := bp % 100; f != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%02d", f), "0")
	}
	return s
}
