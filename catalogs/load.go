package catalogs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/driveway/driveway/catalogs/chid"
	"github.com/driveway/driveway/catalogs/ostable"
)

// MaxFileSize bounds one file of the tree; a larger file is reported (L001), not read.
const MaxFileSize = 64 << 20

// LoadOptions configure Load. A nil *LoadOptions is valid.
type LoadOptions struct {
	OS      *ostable.Table // nil: ostable.Default()
	Workers int            // files decoded in parallel; 0: GOMAXPROCS
	// Progress, when set, is called after each product directory is read, with the number
	// read so far and the number of product directories; calls do not overlap.
	Progress func(done, total int)
}

// Load reads the label tree in dir. Problems in the tree's files (L001–L005, and L002,
// L003, L015 for what cannot be decoded) are returned as Problems, sorted, together with
// everything that could be read; the error is for a dir that cannot be read at all, or
// that is not a label tree: one without a products/ directory (a *NotATreeError, naming the
// subdirectories that are trees: a typo'd --labels must not become an empty release).
// Load applies no validation rule beyond decoding: see Validate.
func Load(dir string, opts *LoadOptions) (*Tree, Problems, error) {
	if err := CheckTree(dir); err != nil {
		return nil, nil, err
	}
	t, probs, err := LoadFS(os.DirFS(dir), opts)
	if t != nil {
		t.Dir = dir
	}
	return t, probs, err
}

// ErrNotATree is what a *NotATreeError is (errors.Is).
var ErrNotATree = errors.New("catalogs: not a label tree")

// NotATreeError is the error for a directory without products/: not a label tree. An empty
// tree has an empty products/ directory; a missing one is a wrong path (the parent of the
// tree, the tree's products/ itself) or an export that did not happen.
type NotATreeError struct {
	Dir    string   // the directory given; "" from LoadFS
	DidYou []string // the directories nearby that are label trees: subdirectories with products/, or the parent of a products/ given
}

func (e *NotATreeError) Error() string {
	dir := e.Dir
	if dir == "" {
		dir = "the tree"
	}
	msg := fmt.Sprintf("catalogs: %s has no products/ directory, so it is not a label tree", dir)
	switch n := len(e.DidYou); {
	case n == 1:
		msg += fmt.Sprintf("; did you mean %s?", e.DidYou[0])
	case n > 1 && n <= 3:
		msg += fmt.Sprintf("; did you mean %s or %s?", strings.Join(e.DidYou[:n-1], ", "), e.DidYou[n-1])
	case n > 3:
		msg += fmt.Sprintf("; did you mean %s, or one of the %d others with products/?", strings.Join(e.DidYou[:3], ", "), n-3)
	}
	return msg
}

func (e *NotATreeError) Is(target error) bool { return target == ErrNotATree }

// CheckTree returns Load's error for a dir that is not a label tree (missing, not a
// directory, without products/), and nil for one that is, without reading its files.
func CheckTree(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("catalogs: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("catalogs: %s is not a directory", dir)
	}
	if st, err := os.Stat(filepath.Join(dir, "products")); err == nil && !st.IsDir() {
		return fmt.Errorf("catalogs: %s is not a directory", filepath.Join(dir, "products"))
	}
	err = checkProducts(os.DirFS(dir))
	var nt *NotATreeError
	if !errors.As(err, &nt) {
		return err
	}
	nt.Dir = dir
	for i, sub := range nt.DidYou {
		nt.DidYou[i] = filepath.Join(dir, filepath.FromSlash(sub))
	}
	if filepath.Base(filepath.Clean(dir)) == "products" {
		if up := filepath.Dir(filepath.Clean(dir)); up != dir {
			nt.DidYou = append([]string{up}, nt.DidYou...)
		}
	}
	return nt
}

// checkProducts returns a *NotATreeError when fsys has no products/ directory, naming its
// subdirectories that have one.
func checkProducts(fsys fs.FS) error {
	st, err := fs.Stat(fsys, "products")
	if err == nil {
		if !st.IsDir() {
			return errors.New("catalogs: products is not a directory")
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("catalogs: %w", err)
	}
	nt := &NotATreeError{}
	subs, _ := listDir(fsys, ".")
	for _, sub := range subs {
		if st, err := fs.Stat(fsys, sub+"/products"); err == nil && st.IsDir() {
			nt.DidYou = append(nt.DidYou, sub)
		}
	}
	return nt
}

// LoadFS is Load over any file system: a directory, an embedded example, a test's map.
func LoadFS(fsys fs.FS, opts *LoadOptions) (*Tree, Problems, error) {
	if opts == nil {
		opts = &LoadOptions{}
	}
	t, probs, productDirs, err := OpenFS(fsys, opts)
	if err != nil {
		return nil, nil, err
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	type result struct {
		product *Product
		probs   Problems
	}
	results := make([]result, len(productDirs))
	var progressMu sync.Mutex
	done := 0
	progress := func() {
		if opts.Progress == nil {
			return
		}
		progressMu.Lock()
		done++
		opts.Progress(done, len(productDirs))
		progressMu.Unlock()
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i].product, results[i].probs = t.ReadProduct(fsys, productDirs[i])
				progress()
			}
		}()
	}
	for i := range productDirs {
		next <- i
	}
	close(next)
	wg.Wait()

	for _, r := range results {
		probs = append(probs, r.probs...)
		t.Products = append(t.Products, r.product)
	}
	t.SortProducts()
	probs = append(probs, t.CheckReferences()...)
	probs.Sort()
	return t, probs, nil
}

// Open is the first half of Load, for a caller that reads the products itself (the build,
// which reuses what it compiled before for products whose files did not change): it checks
// that dir is a label tree, reads the catalog-wide files (catalog.json, partners.json,
// audiences.json, blocks.json) into a Tree with no products, and returns the names of the
// directories under products/, sorted. Read each with ReadProduct, append them to
// Tree.Products, then call SortProducts and CheckReferences: that is Load.
func Open(dir string, opts *LoadOptions) (*Tree, Problems, []string, error) {
	if err := CheckTree(dir); err != nil {
		return nil, nil, nil, err
	}
	t, probs, dirs, err := OpenFS(os.DirFS(dir), opts)
	if t != nil {
		t.Dir = dir
	}
	return t, probs, dirs, err
}

// OpenFS is Open over any file system.
func OpenFS(fsys fs.FS, opts *LoadOptions) (*Tree, Problems, []string, error) {
	if opts == nil {
		opts = &LoadOptions{}
	}
	if err := checkProducts(fsys); err != nil {
		return nil, nil, nil, err
	}
	t := &Tree{OS: opts.OS, Partners: map[string]*Partner{}}
	if t.OS == nil {
		t.OS = ostable.Default()
	}
	sink := &problemSink{}
	l := &loader{fsys: fsys, tree: t}

	if v := l.readOptional(sink, "catalog.json"); v != nil {
		l.decodeSettings(sink, v)
	}
	if v := l.readOptional(sink, "partners.json"); v != nil {
		l.decodePartners(sink, v)
	}
	if v := l.readOptional(sink, "audiences.json"); v != nil {
		l.decodeAudiences(sink, v)
	} else {
		t.Audiences = []Audience{TestRegistryKey()}
	}
	if v := l.readOptional(sink, "blocks.json"); v != nil {
		l.decodeBlocks(sink, v)
	}

	productDirs, err := listDir(fsys, "products")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("catalogs: %w", err)
	}
	return t, sink.list, productDirs, nil
}

// ReadProduct reads the directory products/<dirName> of fsys: the product, its submissions,
// their driver metadata and labels, with the problems of its files. It reads t only (the OS
// table), so products can be read in parallel. The product is not part of t until the caller
// appends it to t.Products.
func (t *Tree) ReadProduct(fsys fs.FS, dirName string) (*Product, Problems) {
	sink := &problemSink{}
	p := (&loader{fsys: fsys, tree: t}).loadProduct(sink, dirName)
	return p, sink.list
}

// SortProducts puts t.Products in the order Load gives them: by id, numerically.
func (t *Tree) SortProducts() {
	sort.SliceStable(t.Products, func(i, j int) bool { return CompareIDs(t.Products[i].ID, t.Products[j].ID) < 0 })
}

type loader struct {
	fsys fs.FS
	tree *Tree
}

// listDir returns the names of the subdirectories of dir, sorted.
func listDir(fsys fs.FS, dir string) ([]string, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// read reads and parses one file of the tree; rel is slash-separated. A missing file is
// reported when required.
func (l *loader) read(sink *problemSink, rel string, sc scope, required bool) *jsonValue {
	f, err := l.fsys.Open(rel)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if required {
				sink.add("L001", rel, "", sc, "file is missing; every %s directory needs one", path.Base(path.Dir(rel)))
			}
			return nil
		}
		sink.add("L001", rel, "", sc, "cannot read: %v", err)
		return nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		sink.add("L001", rel, "", sc, "cannot read: %v", err)
		return nil
	}
	if st.Size() > MaxFileSize {
		sink.add("L001", rel, "", sc, "file is %d bytes; at most %d are read", st.Size(), MaxFileSize)
		return nil
	}
	data := make([]byte, st.Size())
	if _, err := readFull(f, data); err != nil {
		sink.add("L001", rel, "", sc, "cannot read: %v", err)
		return nil
	}
	v, err := parseJSON(data)
	if err != nil {
		sink.add("L001", rel, "", sc, "not JSON: %v", err)
		return nil
	}
	return v
}

func readFull(f fs.File, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := f.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (l *loader) readOptional(sink *problemSink, name string) *jsonValue {
	return l.read(sink, name, scope{level: scopeCatalog}, false)
}

func (l *loader) decodeSettings(sink *problemSink, v *jsonValue) {
	r := &reader{file: "catalog.json", sink: sink, scope: scope{level: scopeCatalog}}
	if r.typed(v, "", jsonObject) == nil {
		return
	}
	r.strict(v, "", "name", "expiresAfter", "minSequence", "classRules")
	s := &l.tree.Settings
	s.Name = r.str(v, "", "name", false)
	if d := r.str(v, "", "expiresAfter", false); d != "" {
		dur, err := time.ParseDuration(d)
		if err != nil || dur <= 0 {
			r.malformed("/expiresAfter", "%q is not a positive duration like \"168h\"", d)
		} else {
			s.ExpiresAfter = dur
		}
	}
	s.MinSequence, _ = r.integer(v, "", "minSequence", false, 1<<62)
	if rules := r.object(v, "", "classRules", false); rules != nil {
		s.ClassRules = map[string]string{}
		for _, m := range rules.members {
			ptr := pointerJoin("/classRules", m.name)
			if m.val.kind != jsonString || (m.val.text != "require" && m.val.text != "forbid" && m.val.text != "allow") {
				r.problem("L002", ptr, "a class rule is \"require\", \"forbid\" or \"allow\" (CHIDs)")
				continue
			}
			s.ClassRules[strings.ToUpper(m.name)] = m.val.text
		}
	}
}

func (l *loader) decodePartners(sink *problemSink, v *jsonValue) {
	r := &reader{file: "partners.json", sink: sink, scope: scope{level: scopeCatalog}}
	if r.typed(v, "", jsonArray) == nil {
		return
	}
	for i, it := range v.items {
		ptr := pointerIndex("", i)
		if r.typed(it, ptr, jsonObject) == nil {
			continue
		}
		r.strict(it, ptr, "sellerId", "name", "coEngineering", "ceilingAccess", "chidRelationships", "hwidVendors")
		p := &Partner{
			SellerID:      r.id(it, ptr, "sellerId", true),
			Name:          r.str(it, ptr, "name", false),
			CoEngineering: r.boolean(it, ptr, "coEngineering", false),
			CeilingAccess: r.boolean(it, ptr, "ceilingAccess", false),
		}
		if it.member("chidRelationships") != nil {
			p.CHIDRelationships = r.guids(it, ptr, "chidRelationships")
			if p.CHIDRelationships == nil {
				p.CHIDRelationships = []chid.ID{}
			}
		}
		if it.member("hwidVendors") != nil {
			p.HWIDVendors = []string{}
			for _, s := range r.stringList(it, ptr, "hwidVendors") {
				p.HWIDVendors = append(p.HWIDVendors, strings.ToUpper(s))
			}
		}
		if p.SellerID == "" {
			continue
		}
		if _, dup := l.tree.Partners[p.SellerID]; dup {
			r.problem("L002", pointerJoin(ptr, "sellerId"), "partner %s is listed twice", p.SellerID)
			continue
		}
		l.tree.Partners[p.SellerID] = p
	}
}

// guids reads an array of GUID strings (L015 for a malformed one).
func (r *reader) guids(obj *jsonValue, ptr, name string) []chid.ID {
	var out []chid.ID
	for i, s := range r.stringList(obj, ptr, name) {
		id, err := chid.Parse(s)
		if err != nil {
			r.malformed(pointerIndex(pointerJoin(ptr, name), i), "%q is not a GUID (8-4-4-4-12 hex digits)", s)
			continue
		}
		out = append(out, id)
	}
	return out
}

func (r *reader) guid(obj *jsonValue, ptr, name string, required bool) (chid.ID, bool) {
	s := r.str(obj, ptr, name, required)
	if s == "" {
		return chid.ID{}, false
	}
	id, err := chid.Parse(s)
	if err != nil {
		r.malformed(pointerJoin(ptr, name), "%q is not a GUID (8-4-4-4-12 hex digits)", s)
		return chid.ID{}, false
	}
	return id, true
}

func (r *reader) time(obj *jsonValue, ptr, name string, required bool) time.Time {
	s := r.str(obj, ptr, name, required)
	if s == "" {
		return time.Time{}
	}
	t, err := parseTime(s)
	if err != nil {
		r.malformed(pointerJoin(ptr, name), "%v", err)
	}
	return t
}

func (l *loader) decodeAudiences(sink *problemSink, v *jsonValue) {
	r := &reader{file: "audiences.json", sink: sink, scope: scope{level: scopeCatalog}}
	if r.typed(v, "", jsonArray) == nil {
		return
	}
	l.tree.Audiences = []Audience{}
	seen := map[chid.ID]bool{}
	for i, it := range v.items {
		ptr := pointerIndex("", i)
		if r.typed(it, ptr, jsonObject) == nil {
			continue
		}
		r.strict(it, ptr, "id", "audienceName", "match")
		a := Audience{Name: r.str(it, ptr, "audienceName", true)}
		id, ok := r.guid(it, ptr, "id", true)
		match := r.object(it, ptr, "match", true)
		r.strict(match, pointerJoin(ptr, "match"), "targetRing", "audience")
		a.TargetRing = r.str(match, pointerJoin(ptr, "match"), "targetRing", false)
		a.Audience = r.str(match, pointerJoin(ptr, "match"), "audience", false)
		if match != nil && a.TargetRing == "" && a.Audience == "" {
			r.problem("L002", pointerJoin(ptr, "match"), "an audience matches on \"targetRing\" or \"audience\"; give one")
		}
		if !ok {
			continue
		}
		if seen[id] {
			r.problem("L002", pointerJoin(ptr, "id"), "audience %s is defined twice", id)
			continue
		}
		seen[id] = true
		a.ID = id
		l.tree.Audiences = append(l.tree.Audiences, a)
	}
}

func (l *loader) decodeBlocks(sink *problemSink, v *jsonValue) {
	r := &reader{file: "blocks.json", sink: sink, scope: scope{level: scopeCatalog}}
	if r.typed(v, "", jsonArray) == nil {
		return
	}
	seen := map[string]bool{}
	for i, it := range v.items {
		ptr := pointerIndex("", i)
		if r.typed(it, ptr, jsonObject) == nil {
			continue
		}
		r.strict(it, ptr, "id", "reason", "labels", "hardwareIds", "chids", "minBuild", "maxBuild")
		b := Block{ID: r.id(it, ptr, "id", true), Reason: r.str(it, ptr, "reason", false)}
		for j, lv := range r.array(it, ptr, "labels", false) {
			if id := r.idValue(lv, pointerIndex(pointerJoin(ptr, "labels"), j)); id != "" {
				b.Labels = append(b.Labels, id)
			}
		}
		for _, h := range r.stringList(it, ptr, "hardwareIds") {
			b.HardwareIDs = append(b.HardwareIDs, NormalizeHWID(h))
		}
		b.CHIDs = r.guids(it, ptr, "chids")
		minB, _ := r.integer(it, ptr, "minBuild", false, 1<<31-1)
		maxB, _ := r.integer(it, ptr, "maxBuild", false, 1<<31-1)
		b.MinBuild, b.MaxBuild = int(minB), int(maxB)
		if b.MaxBuild != 0 && b.MinBuild > b.MaxBuild {
			r.malformed(pointerJoin(ptr, "minBuild"), "minBuild %d is above maxBuild %d", b.MinBuild, b.MaxBuild)
		}
		if b.ID == "" {
			continue
		}
		if seen[b.ID] {
			r.problem("L002", pointerJoin(ptr, "id"), "block %s is defined twice", b.ID)
			continue
		}
		seen[b.ID] = true
		l.tree.Blocks = append(l.tree.Blocks, b)
	}
}

// loadProduct reads one products/<id> directory: the product, its submissions, their
// metadata and labels.
func (l *loader) loadProduct(sink *problemSink, dirName string) *Product {
	base := "products/" + dirName
	sc := scope{level: scopeProduct, product: dirName}
	v := l.read(sink, base+"/product.json", sc, true)
	p := &Product{File: base + "/product.json"}
	if v != nil {
		r := &reader{file: p.File, sink: sink, scope: sc}
		if r.typed(v, "", jsonObject) != nil {
			p.ID = r.id(v, "", "id", true)
			p.SharedProductID = r.id(v, "", "sharedProductId", false)
			p.Name = r.str(v, "", "productName", false)
			p.IsTestSign = r.boolean(v, "", "isTestSign", false)
			p.IsFlightSign = r.boolean(v, "", "isFlightSign", false)
			p.RequestedSignatures = r.stringList(v, "", "requestedSignatures")
			p.TestHarness = r.oneOf(v, "", "testHarness", false, "hlk", "hck", "attestation", "notset")
			p.OwnerSellerID = r.id(v, "", "ownerSellerId", false)
			if p.ID != "" && p.ID != dirName {
				r.problem("L004", "/id", "product id %s differs from its directory products/%s", p.ID, dirName)
			}
		}
	}
	if p.ID == "" {
		p.ID = dirName // keep going so the rest of the product is still checked
	}
	subDirs, err := listDir(l.fsys, "products/"+dirName+"/submissions")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		sink.add("L001", base+"/submissions", "", sc, "cannot read: %v", err)
	}
	for _, sd := range subDirs {
		if s := l.loadSubmission(sink, p, sd); s != nil {
			p.Submissions = append(p.Submissions, s)
		}
	}
	sort.Slice(p.Submissions, func(i, j int) bool { return CompareIDs(p.Submissions[i].ID, p.Submissions[j].ID) < 0 })
	return p
}

func (l *loader) loadSubmission(sink *problemSink, p *Product, dirName string) *Submission {
	base := "products/" + path.Base(path.Dir(p.File)) + "/submissions/" + dirName
	sc := scope{level: scopeSubmission, product: p.ID, submission: dirName}
	s := &Submission{Product: p, File: base + "/submission.json", MetadataFile: base + "/driverMetadata.json"}
	if v := l.read(sink, s.File, sc, true); v != nil {
		l.decodeSubmission(&reader{file: s.File, sink: sink, scope: sc}, v, s, dirName)
	}
	if s.ID == "" {
		s.ID = dirName
	}
	s.ProductID = p.ID
	if v := l.read(sink, s.MetadataFile, sc, true); v != nil {
		s.Metadata = decodeMetadata(&reader{file: s.MetadataFile, sink: sink, scope: sc}, v)
	}
	entries, err := fs.ReadDir(l.fsys, base+"/shippingLabels")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		sink.add("L001", base+"/shippingLabels", "", sc, "cannot read: %v", err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") {
			continue
		}
		rel := base + "/shippingLabels/" + name
		lsc := scope{level: scopeLabel, product: p.ID, submission: s.ID, label: strings.TrimSuffix(name, ".json")}
		v := l.read(sink, rel, lsc, true)
		if v == nil {
			continue
		}
		lab := decodeLabel(&reader{file: rel, sink: sink, scope: lsc}, v, strings.TrimSuffix(name, ".json"))
		if lab == nil {
			continue
		}
		lab.Submission, lab.Product, lab.File = s, p, rel
		s.Labels = append(s.Labels, lab)
	}
	sort.Slice(s.Labels, func(i, j int) bool { return CompareIDs(s.Labels[i].ID, s.Labels[j].ID) < 0 })
	return s
}

func (l *loader) decodeSubmission(r *reader, v *jsonValue, s *Submission, dirName string) {
	if r.typed(v, "", jsonObject) == nil {
		return
	}
	s.ID = r.id(v, "", "id", true)
	if s.ID != "" && s.ID != dirName {
		r.problem("L004", "/id", "submission id %s differs from its directory submissions/%s", s.ID, dirName)
	}
	if pid := r.id(v, "", "productId", false); pid != "" && pid != s.Product.ID {
		r.problem("L004", "/productId", "submission names product %s but is filed under product %s", pid, s.Product.ID)
	}
	s.Name = r.str(v, "", "name", false)
	s.Type = r.str(v, "", "type", false)
	s.IsExtensionInf = r.boolean(v, "", "isExtensionInf", false)
	s.IsDeclarativeInf = r.boolean(v, "", "isDeclarativeInf", false)
	s.IsUniversal = r.boolean(v, "", "isUniversal", false)
	if dl := r.object(v, "", "downloads", false); dl != nil {
		for i, it := range r.array(dl, "/downloads", "items", false) {
			ptr := pointerIndex("/downloads/items", i)
			if r.typed(it, ptr, jsonObject) != nil && r.str(it, ptr, "type", false) == "signedPackage" {
				s.SignedPackageURL = r.str(it, ptr, "url", false)
			}
		}
	}
	if pkg := r.object(v, "", "package", false); pkg != nil {
		r.strict(pkg, "/package", "url", "sha256", "size")
		s.Package = &Package{URL: r.str(pkg, "/package", "url", false)}
		if h := r.str(pkg, "/package", "sha256", false); h != "" {
			sum, err := parseSHA256(h)
			if err != nil {
				r.malformed("/package/sha256", "%v", err)
			} else {
				s.Package.SHA256, s.Package.HasSHA = sum, true
			}
		}
		size, _ := r.integer(pkg, "/package", "size", false, 1<<53)
		s.Package.Size = int64(size)
	}
	if n := v.count("expansion"); n > 0 {
		if exp := r.object(v, "", "expansion", false); exp != nil {
			r.strict(exp, "/expansion", "requestedBy")
			s.Expansion = &Expansion{RequestedBy: r.id(exp, "/expansion", "requestedBy", true), Twice: n > 1}
		}
	}
}

func decodeMetadata(r *reader, v *jsonValue) *Metadata {
	if r.typed(v, "", jsonObject) == nil {
		return nil
	}
	m := &Metadata{}
	bundles := r.object(v, "", "BundleInfoMap", true)
	if bundles == nil {
		return m
	}
	for _, bm := range bundles.members {
		bptr := pointerJoin("/BundleInfoMap", bm.name)
		if r.typed(bm.val, bptr, jsonObject) == nil {
			continue
		}
		b := &Bundle{ID: bm.name}
		infs := r.object(bm.val, bptr, "InfInfoMap", true)
		if infs != nil {
			for _, im := range infs.members {
				if inf := decodeINF(r, im.val, pointerJoin(pointerJoin(bptr, "InfInfoMap"), im.name), b.ID, im.name); inf != nil {
					b.INFs = append(b.INFs, inf)
				}
			}
		}
		sort.Slice(b.INFs, func(i, j int) bool { return b.INFs[i].Name < b.INFs[j].Name })
		m.Bundles = append(m.Bundles, b)
	}
	sort.Slice(m.Bundles, func(i, j int) bool { return m.Bundles[i].ID < m.Bundles[j].ID })
	return m
}

func decodeINF(r *reader, v *jsonValue, ptr, bundle, name string) *INF {
	if r.typed(v, ptr, jsonObject) == nil {
		return nil
	}
	inf := &INF{Bundle: intern(bundle), Name: intern(name), pointer: ptr}
	defer inf.grid.seal()
	inf.Class = intern(r.str(v, ptr, "InfClass", true))
	inf.ClassGUID = r.str(v, ptr, "ClassGuid", false)
	inf.Provider = r.str(v, ptr, "Provider", false)
	if inf.VersionText = r.str(v, ptr, "DriverVersion", true); inf.VersionText != "" {
		ver, err := ParseVersion(inf.VersionText)
		if err != nil {
			r.malformed(pointerJoin(ptr, "DriverVersion"), "%v", err)
		}
		inf.Version = ver
	}
	if inf.DateText = r.str(v, ptr, "DriverDate", true); inf.DateText != "" {
		t, err := parseTime(inf.DateText)
		if err != nil {
			r.malformed(pointerJoin(ptr, "DriverDate"), "%v", err)
		}
		inf.Date = Days(t)
	}
	if id, ok := r.guid(v, ptr, "ExtensionId", false); ok {
		inf.ExtensionID = &id
	}
	inf.CHIDs = r.guids(v, ptr, "InstallationComputerHardwareIds")
	if v.member("TargetOSVersions") != nil {
		inf.TargetOSVersions = r.stringList(v, ptr, "TargetOSVersions")
	}
	grid := r.object(v, ptr, "OSPnPInfoMap", true)
	if grid == nil {
		return inf
	}
	gptr := pointerJoin(ptr, "OSPnPInfoMap")
	for _, om := range grid.members {
		optr := pointerJoin(gptr, om.name)
		if r.typed(om.val, optr, jsonObject) == nil {
			continue
		}
		for _, pm := range om.val.members {
			pptr := pointerJoin(optr, pm.name)
			info := r.typed(pm.val, pptr, jsonObject)
			if info == nil {
				continue
			}
			e := PnP{FeatureScore: 0xFF}
			if fs := info.member("FeatureScore"); fs != nil && fs.kind != jsonNull {
				score, err := parseFeatureScore(fs)
				if err != nil {
					r.malformed(pointerJoin(pptr, "FeatureScore"), "%v", err)
				} else {
					e.FeatureScore = score
				}
			}
			inf.grid.add(om.name, NormalizeHWID(pm.name), e)
		}
		if inf.grid.code(om.name) == nil {
			inf.grid.codes = append(inf.grid.codes, gridCode{code: intern(om.name)}) // listed with no IDs
		}
	}
	return inf
}

func decodeLabel(r *reader, v *jsonValue, fileID string) *Label {
	if r.typed(v, "", jsonObject) == nil {
		return nil
	}
	lab := &Label{
		ID:           r.id(v, "", "id", true),
		ProductID:    r.id(v, "", "productId", true),
		SubmissionID: r.id(v, "", "submissionId", true),
		Name:         r.str(v, "", "name", false),
		Destination:  r.oneOf(v, "", "destination", true, "windowsUpdate", "anotherPartner", "notSet"),
	}
	if lab.ID != "" && lab.ID != fileID {
		r.problem("L004", "/id", "label id %s differs from its file name %s.json", lab.ID, fileID)
	}
	if lab.ID == "" {
		lab.ID = fileID
	}
	if ps := r.object(v, "", "publishingSpecifications", false); ps != nil {
		p := &Publishing{
			GoLive:         r.time(ps, "/publishingSpecifications", "goLiveDate", lab.Destination == "windowsUpdate"),
			AutoDU:         r.boolean(ps, "/publishingSpecifications", "isAutoInstallDuringOSUpgrade", false),
			AutoApplicable: r.boolean(ps, "/publishingSpecifications", "isAutoInstallOnApplicableSystems", false),
			Manual:         r.boolean(ps, "/publishingSpecifications", "manualAcquisition", false),
			Windows10S:     r.boolean(ps, "/publishingSpecifications", "publishToWindows10s", false),
		}
		if info := r.object(ps, "/publishingSpecifications", "additionalInfoForMsApproval", false); info != nil {
			const iptr = "/publishingSpecifications/additionalInfoForMsApproval"
			p.CoEngineered = r.boolean(info, iptr, "isCoEngineered", false)
			p.HasUISoftware = r.boolean(info, iptr, "hasUiSoftware", false)
		}
		lab.Publishing = p
	}
	if rs := r.object(v, "", "recipientSpecifications", false); rs != nil {
		lab.Recipient = &Recipient{
			ReceiverPublisherID: r.id(rs, "/recipientSpecifications", "receiverPublisherId", false),
			EnforceCHIDs:        r.boolean(rs, "/recipientSpecifications", "enforceChidTargeting", false),
		}
	}
	states := []string{"added", "pendingAdd", "pendingRemove", "notSet"}
	if tg := r.object(v, "", "targeting", lab.Destination == "windowsUpdate"); tg != nil {
		items := r.array(tg, "/targeting", "hardwareIds", false)
		lab.Rows = make([]Row, 0, len(items))
		for i, it := range items {
			ptr := pointerIndex("/targeting/hardwareIds", i)
			if r.typed(it, ptr, jsonObject) == nil {
				continue
			}
			row := Row{
				Bundle: intern(r.str(it, ptr, "bundleId", true)),
				INF:    intern(r.str(it, ptr, "infId", true)),
				OSCode: intern(r.str(it, ptr, "operatingSystemCode", true)),
				PnP:    intern(r.str(it, ptr, "pnpString", true)),
				State:  intern(r.oneOf(it, ptr, "distributionState", true, states...)),
			}
			row.HWID = intern(NormalizeHWID(row.PnP))
			lab.Rows = append(lab.Rows, row)
		}
		for i, it := range r.array(tg, "/targeting", "chids", false) {
			ptr := pointerIndex("/targeting/chids", i)
			if r.typed(it, ptr, jsonObject) == nil {
				continue
			}
			id, ok := r.guid(it, ptr, "chid", true)
			state := r.oneOf(it, ptr, "distributionState", true, states...)
			if ok {
				lab.CHIDs = append(lab.CHIDs, LabelCHID{ID: id, State: state})
			}
		}
		lab.Audiences = r.guids(tg, "/targeting", "restrictedToAudiences")
		if isp := r.object(tg, "/targeting", "inServicePublishInfo", false); isp != nil {
			const iptr = "/targeting/inServicePublishInfo"
			lab.Floor = r.str(isp, iptr, "flooring", false)
			lab.Ceiling = r.str(isp, iptr, "ceiling", false)
			lab.HasInService = lab.Floor != "" || lab.Ceiling != ""
		}
		if ce := r.object(tg, "/targeting", "coEngDriverPublishInfo", false); ce != nil {
			const cptr = "/targeting/coEngDriverPublishInfo"
			f, _ := r.integer(ce, cptr, "flooringBuildNumber", false, 1<<31-1)
			c, _ := r.integer(ce, cptr, "ceilingBuildNumber", false, 1<<31-1)
			lab.FloorBuild, lab.CeilingBuild = int(f), int(c)
			lab.HasCoEng = f != 0 || c != 0
		}
	}
	if d := r.object(v, "", "distribution", false); d != nil {
		decodeDistribution(r, d, &lab.Distribution)
	}
	return lab
}

// decodeClusters reads a rollout's "clusters" (an even first ring's thresholds).
func decodeClusters(r *reader, ro *jsonValue, rptr string) []ClusterStage {
	var out []ClusterStage
	for i, it := range r.array(ro, rptr, "clusters", false) {
		cptr := pointerIndex(rptr+"/clusters", i)
		if r.typed(it, cptr, jsonObject) == nil {
			continue
		}
		r.strict(it, cptr, "chid", "minBuild", "maxBuild", "hardwareId", "percent")
		var c ClusterStage
		c.CHID, _ = r.guid(it, cptr, "chid", true)
		minB, _ := r.integer(it, cptr, "minBuild", false, 1<<31-1)
		maxB, _ := r.integer(it, cptr, "maxBuild", false, 1<<31-1)
		c.MinBuild, c.MaxBuild = int(minB), int(maxB)
		if c.MaxBuild != 0 && c.MinBuild > c.MaxBuild {
			r.malformed(cptr+"/minBuild", "minBuild %d is above maxBuild %d", c.MinBuild, c.MaxBuild)
		}
		if h := r.str(it, cptr, "hardwareId", false); h != "" {
			c.HWID = NormalizeHWID(h)
		}
		if pv := r.typed(r.get(it, cptr, "percent", true), cptr+"/percent", jsonNumber); pv != nil {
			bp, err := parsePercent(pv.text)
			if err != nil {
				r.malformed(cptr+"/percent", "%v", err)
			}
			c.BasisPoints = bp
		}
		out = append(out, c)
	}
	return out
}

func decodeDistribution(r *reader, d *jsonValue, dist *Distribution) {
	const ptr = "/distribution"
	r.strict(d, ptr, "author", "flight", "rollout", "cancelled")
	if a := r.object(d, ptr, "author", false); a != nil {
		const aptr = ptr + "/author"
		r.strict(a, aptr, "sellerId", "role")
		dist.Author = &Author{
			SellerID: r.id(a, aptr, "sellerId", false),
			Role:     r.oneOf(a, aptr, "role", false, "administrator", "shippingLabelOwner", "shippingLabelPromoter", "developer", "other"),
		}
	}
	if f := r.object(d, ptr, "flight", false); f != nil {
		const fptr = ptr + "/flight"
		r.strict(f, fptr, "channels", "start", "approved")
		fl := &Flight{Start: r.time(f, fptr, "start", true), Approved: r.time(f, fptr, "approved", false)}
		for i, c := range r.stringList(f, fptr, "channels") {
			if _, ok := channelBit(c); !ok {
				r.problem("L002", pointerIndex(fptr+"/channels", i), "%q is not an Insider channel (Canary, Dev, Beta, ReleasePreview)", c)
				continue
			}
			fl.Channels = append(fl.Channels, c)
		}
		dist.Flight = fl
	}
	if ro := r.object(d, ptr, "rollout", false); ro != nil {
		const rptr = ptr + "/rollout"
		r.strict(ro, rptr, "stages", "paused", "clusters")
		rollout := &Rollout{Paused: r.boolean(ro, rptr, "paused", false)}
		rollout.Clusters = decodeClusters(r, ro, rptr)
		for i, it := range r.array(ro, rptr, "stages", true) {
			sptr := pointerIndex(rptr+"/stages", i)
			if r.typed(it, sptr, jsonObject) == nil {
				continue
			}
			r.strict(it, sptr, "at", "percent")
			st := Stage{At: r.time(it, sptr, "at", true)}
			if pv := r.typed(r.get(it, sptr, "percent", true), sptr+"/percent", jsonNumber); pv != nil {
				bp, err := parsePercent(pv.text)
				if err != nil {
					r.malformed(sptr+"/percent", "%v", err)
				}
				st.BasisPoints = bp
			}
			if n := len(rollout.Stages); n > 0 {
				prev := rollout.Stages[n-1]
				if !st.At.After(prev.At) {
					r.malformed(sptr+"/at", "stage %d starts at %s, not after stage %d (%s); stages must be in increasing time order",
						i, st.At.Format(time.RFC3339), i-1, prev.At.Format(time.RFC3339))
				}
				if st.BasisPoints < prev.BasisPoints {
					r.malformed(sptr+"/percent", "stage %d lowers the percent from %s to %s; a rollout only grows (pause it instead)",
						i, FormatBasisPoints(prev.BasisPoints), FormatBasisPoints(st.BasisPoints))
				}
			}
			rollout.Stages = append(rollout.Stages, st)
		}
		dist.Rollout = rollout
	}
	if c := r.object(d, ptr, "cancelled", false); c != nil {
		const cptr = ptr + "/cancelled"
		r.strict(c, cptr, "at", "rollback", "reason")
		dist.Cancelled = &Cancelled{
			At:       r.time(c, cptr, "at", true),
			Rollback: r.boolean(c, cptr, "rollback", false),
			Reason:   r.str(c, cptr, "reason", false),
		}
	}
}

// channelBit numbers the Insider channels (the order of offer.Channel).
func channelBit(name string) (uint8, bool) {
	for i, n := range []string{"Canary", "Dev", "Beta", "ReleasePreview"} {
		if name == n {
			return 1 << i, true
		}
	}
	return 0, false
}

// CheckReferences reports labels whose productId or submissionId disagree with where they
// are filed: L004 when the named resource exists elsewhere in t, L005 when it does not. Load
// applies it; a caller of Open applies it once every product is in t.
func (t *Tree) CheckReferences() Problems {
	sink := &problemSink{}
	products := map[string]*Product{}
	submissions := map[string]*Submission{}
	for _, p := range t.Products {
		products[p.ID] = p
		for _, s := range p.Submissions {
			submissions[s.ID] = s
		}
	}
	for _, p := range t.Products {
		for _, s := range p.Submissions {
			for _, lab := range s.Labels {
				sc := scope{level: scopeLabel, product: p.ID, submission: s.ID, label: lab.ID}
				if lab.ProductID != "" && lab.ProductID != p.ID {
					code := "L005"
					if products[lab.ProductID] != nil {
						code = "L004"
					}
					sink.add(code, lab.File, "/productId", sc, "label names product %s but is filed under product %s", lab.ProductID, p.ID)
				}
				if lab.SubmissionID != "" && lab.SubmissionID != s.ID {
					code := "L005"
					if submissions[lab.SubmissionID] != nil {
						code = "L004"
					}
					sink.add(code, lab.File, "/submissionId", sc, "label names submission %s but is filed under submission %s", lab.SubmissionID, s.ID)
				}
			}
		}
	}
	return sink.list
}
