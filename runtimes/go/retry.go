package eventbus

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// What to do after a handler failed: try again later through the delay queues, or park. Pure
// decisions, the same as the Python SDK's RetryPolicy.decide (eventbus/_retry.py).

// Backoff is the delay before attempt n+1 after attempt n failed: First * Factor^(n-1), capped
// at Maximum, then drawn uniformly from [d*(1-Jitter), d] so retries of many messages that
// failed together spread out. Jitter 0 makes delays exact.
type Backoff struct {
	First   time.Duration
	Factor  float64
	Maximum time.Duration
	Jitter  float64
}

// DefaultBackoff is Python's ExponentialBackoff(): 2 s, ×4, at most 1 h, jitter 0.5.
var DefaultBackoff = Backoff{First: 2 * time.Second, Factor: 4, Maximum: time.Hour, Jitter: 0.5}

// Delay is how long to wait after attempt failedAttempt (1-based) failed.
func (b Backoff) Delay(failedAttempt int, random func() float64) time.Duration {
	exponent := failedAttempt - 1
	if exponent < 0 {
		exponent = 0
	}
	base := float64(b.Maximum)
	if exponent <= 64 {
		base = math.Min(float64(b.Maximum), float64(b.First)*math.Pow(b.Factor, float64(exponent)))
	}
	if b.Jitter > 0 {
		base *= 1 - b.Jitter*random()
	}
	return time.Duration(base)
}

func (b Backoff) check() error {
	switch {
	case b.First < 0 || b.Maximum < b.First:
		return &ConfigurationError{"backoff needs 0 <= First <= Maximum"}
	case b.Factor < 1:
		return &ConfigurationError{"backoff factor must be at least 1"}
	case b.Jitter < 0 || b.Jitter > 1:
		return &ConfigurationError{"backoff jitter must be between 0 and 1"}
	}
	return nil
}

// RetryPolicy says how a handler's failures are retried; one per subscription, with a bus-wide
// default. MaxAttempts counts handler runs, the first included (1: never retry). GiveUpOn, when
// set, names errors that never get better by waiting: they are parked at once.
type RetryPolicy struct {
	MaxAttempts int
	Backoff     Backoff
	GiveUpOn    func(error) bool
}

// DefaultRetry is Python's RetryPolicy(): 5 attempts with DefaultBackoff.
var DefaultRetry = RetryPolicy{MaxAttempts: 5, Backoff: DefaultBackoff}

// NeverRetry parks on the first failure.
var NeverRetry = RetryPolicy{MaxAttempts: 1, Backoff: DefaultBackoff}

func (p RetryPolicy) check() error {
	if p.MaxAttempts < 1 {
		return &ConfigurationError{fmt.Sprintf("MaxAttempts must be at least 1, got %d", p.MaxAttempts)}
	}
	return p.Backoff.check()
}

// Decision is the fate of a failed delivery: Park set, or a retry after Delay as Attempt.
type Decision struct {
	Park    *ParkReason
	Delay   time.Duration
	Attempt int
}

// Decide is the fate of a delivery whose handler returned err on attempt attempt.
func (p RetryPolicy) Decide(err error, attempt int, random func() float64) Decision {
	var park *ParkError
	if errors.As(err, &park) {
		return Decision{Park: &ParkReason{park.Reason, park.Reason, "ParkError"}}
	}
	if attempt >= p.MaxAttempts {
		reason := FailureReason(err)
		return Decision{Park: &reason}
	}
	var later *RetryLaterError
	if errors.As(err, &later) {
		return Decision{Delay: later.Delay, Attempt: attempt + 1}
	}
	if p.GiveUpOn != nil && p.GiveUpOn(err) {
		reason := FailureReason(err)
		return Decision{Park: &reason}
	}
	return Decision{Delay: p.Backoff.Delay(attempt, random), Attempt: attempt + 1}
}

// FailureReason is what the dead-letter queue says about a handler error that is not retried.
func FailureReason(err error) ParkReason {
	var later *RetryLaterError
	if errors.As(err, &later) {
		return ParkReason{later.Reason, later.Error(), "RetryLaterError"}
	}
	var park *ParkError
	if errors.As(err, &park) {
		return ParkReason{park.Reason, park.Reason, "ParkError"}
	}
	kind := fmt.Sprintf("%T", err)
	var timeout *HandlerTimeoutError
	if errors.As(err, &timeout) {
		return ParkReason{"handler_timeout", fmt.Sprintf("%s: %v", "HandlerTimeoutError", err), kind}
	}
	return ParkReason{"handler_error", fmt.Sprintf("%s: %v", kind, err), kind}
}
