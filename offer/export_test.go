package offer

import "time"

// FirstFailures returns, for each candidate of an explained res, the first failing check of
// Explain's own run of step 2 ("" when it finds none): TestExplainFirstFailure compares it
// with Decide's verdict.
func (e *Engine) FirstFailures(req *Request, now time.Time, res *Result) []string {
	out := make([]string, len(res.Cands))
	for i := range res.Cands {
		k := &res.Cands[i]
		if fs := e.failing(req, &req.Devices[k.Device], k, e.label(k.Label), unix(now), res); len(fs) > 0 {
			out[i] = fs[0].v.String() + ": " + e.detailText(fs[0].v, fs[0].d, res)
		}
	}
	return out
}

// DetailOf is a candidate's verdict and detail as Explain writes them.
func (e *Engine) DetailOf(res *Result, i int) string {
	k := &res.Cands[i]
	return k.Verdict.String() + ": " + e.detailText(k.Verdict, k.detail, res)
}
