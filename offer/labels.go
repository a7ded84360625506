package offer

// HasLabel reports whether the release has a label of this id (its record is in a label
// shard and parses), for callers outside the offer procedure: the edge checks the labelId of
// install reports with it. It reads the label cache but never fills it, so ids that come from
// outside (any number a client sends) cannot evict the labels offers use; a miss costs one
// record lookup. The offer path does not call it.
func (e *Engine) HasLabel(id uint64) bool {
	set := (id * 0x9E3779B97F4A7C15) >> (64 - labelCacheBits) &^ 1
	for i := set; i < set+2; i++ {
		if l := e.labels[i].Load(); l != nil && l.id == id {
			return l.ok
		}
	}
	_, ok := e.labelRecord(id)
	return ok
}
