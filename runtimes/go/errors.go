package eventbus

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// The error tree mirrors the Python SDK's (eventbus/_exceptions.py):
//
//	*ValidationError        data that breaks its contract (Violations lists every reason)
//	*EnvelopeError          a delivery that is not one of our CloudEvents, or bad input (Reason: a stable code)
//	*PublishError           a publish not known to be safely on a queue (Kind says why)
//	*TopologyMismatchError  a queue or exchange exists with other arguments (Detail: the difference)
//	*HandlerTimeoutError    a handler ran past its time limit
//	*ConnectionFailedError  no broker answered
//	*ConfigurationError     options that cannot work
//
// Handler control flow is kept apart from failures: a handler returns RetryLater(d) or
// Park(reason) to steer what happens to its delivery.

// SchemaViolation is one reason a value breaks its JSON Schema.
type SchemaViolation struct {
	InstancePath string
	SchemaPath   string
	Message      string
}

func (v SchemaViolation) String() string {
	return fmt.Sprintf("%s: %s (schema %s)", v.InstancePath, v.Message, v.SchemaPath)
}

// ValidationError is event data that does not satisfy its contract.
type ValidationError struct {
	EventType  string
	Violations []SchemaViolation
}

func (e *ValidationError) Error() string {
	shown := make([]string, 0, 5)
	for i, v := range e.Violations {
		if i == 5 {
			break
		}
		shown = append(shown, v.String())
	}
	more := ""
	if len(e.Violations) > 5 {
		more = fmt.Sprintf(" (+%d more)", len(e.Violations)-5)
	}
	return fmt.Sprintf("%s: %s%s", e.EventType, strings.Join(shown, "; "), more)
}

// EnvelopeError is a delivery that cannot be read as one of our CloudEvents, or a body refused
// by the input limits. Reason is the park reason (invalid_json, too_deep, ...).
type EnvelopeError struct {
	Reason  string
	Message string
}

func (e *EnvelopeError) Error() string { return e.Message }

// PublishKind says why a publish failed.
type PublishKind string

// The kinds of PublishError.
const (
	PublishUnroutable PublishKind = "unroutable" // mandatory: no queue is bound for it
	PublishNacked     PublishKind = "nacked"     // the broker refused it
	PublishTimeout    PublishKind = "timeout"    // no confirm in time; it may or may not be stored
	PublishFailed     PublishKind = "failed"     // the connection failed and did not come back in time
)

// PublishError is a publish the broker did not confirm as stored on a queue.
type PublishError struct {
	Kind      PublishKind
	EventType string
	EventID   string
	Message   string
}

func (e *PublishError) Error() string { return e.Message }

// TopologyMismatchError is an existing queue or exchange declared before with other arguments.
type TopologyMismatchError struct {
	Entity string // e.g. queue 'svc.chat.conversation.ended.v1'
	Detail string // RabbitMQ's words: the argument, the value sent and the value in place
}

func (e *TopologyMismatchError) Error() string {
	return e.Entity + " already exists with other arguments: " + e.Detail
}

// HandlerTimeoutError is a handler that ran past its time limit; the attempt counts as failed.
type HandlerTimeoutError struct {
	Limit     time.Duration
	EventType string
	EventID   string
}

func (e *HandlerTimeoutError) Error() string {
	return fmt.Sprintf("handler for %s %s ran past its %gs time limit", e.EventType, e.EventID, e.Limit.Seconds())
}

// ConfigurationError is an option that cannot work (a delay beyond 7 days, a bad policy).
type ConfigurationError struct{ Message string }

func (e *ConfigurationError) Error() string { return e.Message }

// ConnectionFailedError is a broker that did not answer at URL (shown without its password).
type ConnectionFailedError struct {
	URL string
	Err error
}

func (e *ConnectionFailedError) Error() string {
	return "no broker answered at " + e.URL + ": " + e.Err.Error()
}

// Unwrap returns the client's error.
func (e *ConnectionFailedError) Unwrap() error { return e.Err }

// ErrClosed is returned by operations on a closed Bus.
var ErrClosed = errors.New("eventbus: the bus is closed")

// ParkError, returned by a handler, sends the delivery to the dead-letter queue now, without
// further attempts, with Reason as its park reason. Make one with Park.
type ParkError struct{ Reason string }

func (e *ParkError) Error() string { return e.Reason }

// Park returns the error a handler returns to park its delivery now; reason becomes the
// eventbus-park-reason header ("parked_by_handler" when empty).
func Park(reason string) error {
	if reason == "" {
		reason = "parked_by_handler"
	}
	return &ParkError{Reason: reason}
}

// RetryLaterError, returned by a handler, tries the delivery again after Delay. It counts as a
// failed attempt: after the policy's last attempt the delivery is parked as retry_requested.
type RetryLaterError struct {
	Delay  time.Duration
	Reason string
}

func (e *RetryLaterError) Error() string {
	return fmt.Sprintf("%s: retry in %gs", e.Reason, e.Delay.Seconds())
}

// RetryLater returns the error a handler returns to be called again after delay.
func RetryLater(delay time.Duration) error {
	if delay < 0 {
		delay = 0
	}
	return &RetryLaterError{Delay: delay, Reason: "retry_requested"}
}
