package rollout

// Confidence bounds of the health gates.
//
// A measure is a sample: k of n machines failed. Its failure rate k/n is only an estimate of
// the driver's, and a raw percentage over a small sample cries wolf (one crash among 20
// machines is a 5% crash rate) or misses a regression hidden in noise. The stop gates (pause
// and cancel) therefore ask whether the data show, at the policy's one-sided confidence
// (Policy.Confidence, default 95%), that the rate is past the bound: the lower end of the
// Wilson score interval of k/n must exceed it. The interval needs no minimum population (few
// machines give a wide interval, which proves nothing), and it is sound near 0%, where the
// rates of kernel crashes live and the normal approximation is not.
//
// Wilson's interval for k successes of n at z (Wilson 1927; Brown, Cai and DasGupta 2001):
//
//	centre = (p + z²/2n) / (1 + z²/n),   half = z·sqrt(p(1−p)/n + z²/4n²) / (1 + z²/n),   p = k/n
//
// and the bounds are centre ∓ half: the two roots p of (k/n − p)² = z²·p(1−p)/n.

import "math"

// zFor is the standard normal quantile of a one-sided confidence c (0.95: 1.645).
func zFor(c float64) float64 { return math.Sqrt2 * math.Erfinv(2*c-1) }

// wilson returns the Wilson score interval of k of n at z ([0, 1] when n is 0).
func wilson(k, n int, z float64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	lo, hi = wilsonP(float64(k)/float64(n), float64(n), z)
	if k == 0 {
		lo = 0
	}
	if k == n {
		hi = 1
	}
	return lo, hi
}

func wilsonP(p, n, z float64) (lo, hi float64) {
	z2 := z * z
	den := 1 + z2/n
	centre := (p + z2/(2*n)) / den
	half := z * math.Sqrt(p*(1-p)/n+z2/(4*n*n)) / den
	return max(0, centre-half), min(1, centre+half)
}

// MachinesToCatch is how many machines a measure needs before a driver whose true rate is
// ratio times a stop bound (in percent) is shown past the bound at one-sided confidence c,
// with at least minFailed failed machines, when its machines fail at exactly the true rate:
// the smallest n whose Wilson lower bound at that rate is above the bound (the bound grows
// with n, so a bisection finds it) and whose failures reach minFailed. 0 when the rate is
// not above the bound or is 100%.
func MachinesToCatch(boundPercent, ratio, c float64, minFailed int) int {
	bound, rate, z := boundPercent/100, ratio*boundPercent/100, zFor(c)
	if rate >= 1 || rate <= bound {
		return 0
	}
	caught := func(n int) bool {
		lo, _ := wilsonP(rate, float64(n), z)
		return lo > bound
	}
	hi := 1
	for !caught(hi) {
		hi *= 2
	}
	lo := hi / 2 // not caught, or 0
	for lo+1 < hi {
		if m := (lo + hi) / 2; caught(m) {
			hi = m
		} else {
			lo = m
		}
	}
	return max(hi, int(math.Ceil(float64(minFailed)/rate)))
}
