package eventbus

import (
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The eventbus- headers a message gains on its way through retries and into the dead-letter
// queue, exactly as the Python SDK writes them (eventbus/_parking.py). A retried or parked
// message is a copy of the original, body and CloudEvents headers byte for byte; the broker's
// own dead-letter headers (x-death, ...) are dropped from every copy.
const (
	AttemptHeader            = "eventbus-attempt"
	ReasonHeader             = "eventbus-park-reason"
	ErrorHeader              = "eventbus-error"
	ErrorTypeHeader          = "eventbus-error-type"
	TracebackHeader          = "eventbus-traceback"
	ParkedAtHeader           = "eventbus-parked-at"
	FirstFailureHeader       = "eventbus-first-failure-at"
	LastFailureHeader        = "eventbus-last-failure-at"
	OriginalExchangeHeader   = "eventbus-original-exchange"
	OriginalRoutingKeyHeader = "eventbus-original-routing-key"
	OriginalQueueHeader      = "eventbus-original-queue"
	RetryDelayHeader         = "eventbus-retry-delay-ms"
	DeliverAtHeader          = "eventbus-deliver-at"
	maxErrorText             = 2000
)

var brokerHeaders = map[string]bool{
	"x-death": true, "x-first-death-exchange": true, "x-first-death-queue": true, "x-first-death-reason": true,
	"x-last-death-exchange": true, "x-last-death-queue": true, "x-last-death-reason": true, "x-delivery-count": true,
}

// ParkReason says why a delivery goes to the dead-letter queue: a stable code, a sentence,
// the error type.
type ParkReason struct {
	Code      string
	Error     string
	ErrorType string
}

// copyHeaders returns original minus what the broker added on the way.
func copyHeaders(original amqp.Table) amqp.Table {
	headers := make(amqp.Table, len(original)+12)
	for key, value := range original {
		if !brokerHeaders[key] {
			headers[key] = value
		}
	}
	return headers
}

func shortText(text string) string {
	if runes := []rune(text); len(runes) > maxErrorText {
		return string(runes[:maxErrorText-1]) + "…"
	}
	return text
}

// origin is where a delivery's event was first published, and the queue that failed it.
type origin struct {
	Exchange, RoutingKey, Queue string
}

func failureHistory(original amqp.Table, reason ParkReason, from origin, attempt int, now time.Time) (amqp.Table, string) {
	headers := copyHeaders(original)
	stamp := FormatTime(now)
	if first := headerString(headers[FirstFailureHeader]); first != "" {
		headers[FirstFailureHeader] = first
	} else {
		headers[FirstFailureHeader] = stamp
	}
	headers[LastFailureHeader] = stamp
	headers[ErrorHeader] = shortText(reason.Error)
	headers[ErrorTypeHeader] = reason.ErrorType
	headers[OriginalExchangeHeader] = from.Exchange
	headers[OriginalRoutingKeyHeader] = from.RoutingKey
	headers[OriginalQueueHeader] = from.Queue
	headers[AttemptHeader] = int64(attempt)
	return headers, stamp
}

// RetryHeaders are the headers of the copy that comes back to the queue as attempt attempt
// after delay.
func RetryHeaders(original amqp.Table, reason ParkReason, from origin, attempt int, delay time.Duration, now time.Time) amqp.Table {
	headers, _ := failureHistory(original, reason, from, attempt, now)
	headers[RetryDelayHeader] = delay.Milliseconds()
	headers[DeliverAtHeader] = FormatTime(now.Add(delay))
	return headers
}

// ParkHeaders are the dead-letter copy's headers: the original's plus the eventbus- diagnosis.
func ParkHeaders(original amqp.Table, reason ParkReason, from origin, attempt int, now time.Time) amqp.Table {
	headers, stamp := failureHistory(original, reason, from, attempt, now)
	delete(headers, RetryDelayHeader)
	delete(headers, DeliverAtHeader)
	headers[ReasonHeader] = reason.Code
	headers[ParkedAtHeader] = stamp
	return headers
}

func headerString(value interface{}) string {
	switch v := value.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

// attemptOf reads eventbus-attempt (1 when absent or unreadable).
func attemptOf(headers amqp.Table) int {
	var n int64
	switch v := headers[AttemptHeader].(type) {
	case int64:
		n = v
	case int32:
		n = int64(v)
	case int16:
		n = int64(v)
	case int8:
		n = int64(v)
	case uint8:
		n = int64(v)
	case uint16:
		n = int64(v)
	case uint32:
		n = int64(v)
	case string:
		for _, c := range v {
			if c < '0' || c > '9' {
				return 1
			}
			n = n*10 + int64(c-'0')
		}
	}
	if n < 1 {
		return 1
	}
	return int(n)
}

// originOf is where the event was first published: a retry arrives through the delay machinery
// (or a replay through the default exchange) and carries its original exchange and key in headers.
func originOf(delivery *amqp.Delivery, queue string) origin {
	if delivery.Exchange == "" || len(delivery.Exchange) >= len(DelayPrefix) && delivery.Exchange[:len(DelayPrefix)] == DelayPrefix {
		exchange, okE := delivery.Headers[OriginalExchangeHeader]
		key, okK := delivery.Headers[OriginalRoutingKeyHeader]
		if okE && okK {
			return origin{headerString(exchange), headerString(key), queue}
		}
	}
	return origin{delivery.Exchange, delivery.RoutingKey, queue}
}
