package eventbus

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func half() float64 { return 0.5 }

func TestBackoffGrowsExponentiallyIsCappedAndJittered(t *testing.T) {
	exact := Backoff{First: time.Second, Factor: 2, Maximum: 5 * time.Second}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 500: 5 * time.Second} {
		if got := exact.Delay(attempt, half); got != want {
			t.Errorf("attempt %d: %s, want %s", attempt, got, want)
		}
	}
	if got := DefaultBackoff.Delay(2, half); got != 6*time.Second { // 8 s with jitter 0.5 at 0.5: 8 * 0.75
		t.Errorf("jittered: %s", got)
	}
}

func TestDecideRetriesUntilTheLastAttemptThenParks(t *testing.T) {
	policy := RetryPolicy{MaxAttempts: 3, Backoff: Backoff{First: time.Second, Factor: 2, Maximum: time.Minute}}
	failure := errors.New("database down")
	if d := policy.Decide(failure, 1, half); d.Park != nil || d.Attempt != 2 || d.Delay != time.Second {
		t.Errorf("attempt 1: %+v", d)
	}
	if d := policy.Decide(failure, 2, half); d.Park != nil || d.Attempt != 3 || d.Delay != 2*time.Second {
		t.Errorf("attempt 2: %+v", d)
	}
	d := policy.Decide(failure, 3, half)
	if d.Park == nil || d.Park.Code != "handler_error" || d.Park.Error != "*errors.errorString: database down" {
		t.Errorf("attempt 3: %+v", d.Park)
	}
}

func TestHandlersSteerWithRetryLaterAndPark(t *testing.T) {
	policy := DefaultRetry
	if d := policy.Decide(RetryLater(30*time.Second), 1, half); d.Delay != 30*time.Second || d.Attempt != 2 {
		t.Errorf("retry later: %+v", d)
	}
	if d := policy.Decide(RetryLater(time.Second), 5, half); d.Park == nil || d.Park.Code != "retry_requested" {
		t.Errorf("retry later on the last attempt: %+v", d.Park)
	}
	if d := policy.Decide(Park("customer_gone"), 1, half); d.Park == nil || d.Park.Code != "customer_gone" {
		t.Errorf("park: %+v", d.Park)
	}
	wrapped := fmt.Errorf("outer: %w", Park("inner"))
	if d := policy.Decide(wrapped, 1, half); d.Park == nil || d.Park.Code != "inner" {
		t.Errorf("wrapped park: %+v", d.Park)
	}
	timeout := &HandlerTimeoutError{Limit: time.Second, EventType: "t", EventID: "i"}
	if reason := FailureReason(timeout); reason.Code != "handler_timeout" {
		t.Errorf("timeout: %+v", reason)
	}
	bug := errors.New("bug")
	never := RetryPolicy{MaxAttempts: 5, Backoff: DefaultBackoff, GiveUpOn: func(err error) bool { return err == bug }}
	if d := never.Decide(bug, 1, half); d.Park == nil || d.Park.Code != "handler_error" {
		t.Error("GiveUpOn parks at once")
	}
}
