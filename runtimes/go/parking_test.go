package eventbus

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestRetryAndParkCopiesCarryThePythonHeaders(t *testing.T) {
	original := amqp.Table{"cloudEvents_id": "e-1", "x-death": []interface{}{}, "x-delivery-count": int64(2)}
	from := origin{"chat", "chat.conversation.ended.v1", "svc.chat.conversation.ended.v1"}
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	retry := RetryHeaders(original, ParkReason{"handler_error", "boom", "*errors.errorString"}, from, 2, 1500*time.Millisecond, first)
	if _, ok := retry["x-death"]; ok {
		t.Error("broker headers are dropped")
	}
	want := amqp.Table{
		"cloudEvents_id": "e-1", AttemptHeader: int64(2), ErrorHeader: "boom", ErrorTypeHeader: "*errors.errorString",
		FirstFailureHeader: "2026-01-01T00:00:00Z", LastFailureHeader: "2026-01-01T00:00:00Z",
		OriginalExchangeHeader: "chat", OriginalRoutingKeyHeader: "chat.conversation.ended.v1",
		OriginalQueueHeader: "svc.chat.conversation.ended.v1", RetryDelayHeader: int64(1500),
		DeliverAtHeader: "2026-01-01T00:00:01.500000Z",
	}
	for key, value := range want {
		if retry[key] != value {
			t.Errorf("%s: %v, want %v", key, retry[key], value)
		}
	}
	if len(retry) != len(want) {
		t.Errorf("extra headers: %v", retry)
	}
	later := first.Add(time.Minute)
	parked := ParkHeaders(retry, ParkReason{"handler_error", "boom again", "E"}, from, 3, later)
	if parked[FirstFailureHeader] != "2026-01-01T00:00:00Z" || parked[LastFailureHeader] != "2026-01-01T00:01:00Z" ||
		parked[ReasonHeader] != "handler_error" || parked[ParkedAtHeader] != "2026-01-01T00:01:00Z" || parked[AttemptHeader] != int64(3) {
		t.Errorf("%v", parked)
	}
	if _, ok := parked[RetryDelayHeader]; ok {
		t.Error("a parked copy has no retry delay")
	}
	if _, ok := parked[DeliverAtHeader]; ok {
		t.Error("a parked copy has no deliver-at")
	}
}

func TestARetryKnowsWhereTheEventWasFirstPublished(t *testing.T) {
	retried := &amqp.Delivery{Exchange: "eventbus.delay.v2.deliver", RoutingKey: "0.0.q", Headers: amqp.Table{
		OriginalExchangeHeader: "chat", OriginalRoutingKeyHeader: "chat.x.v1", AttemptHeader: int32(3)}}
	if from := originOf(retried, "q"); from.Exchange != "chat" || from.RoutingKey != "chat.x.v1" {
		t.Errorf("%+v", from)
	}
	if attemptOf(retried.Headers) != 3 || attemptOf(amqp.Table{}) != 1 || attemptOf(amqp.Table{AttemptHeader: "4"}) != 4 {
		t.Error("attempts")
	}
	direct := &amqp.Delivery{Exchange: "chat", RoutingKey: "chat.x.v1", Headers: amqp.Table{OriginalExchangeHeader: "other", OriginalRoutingKeyHeader: "k"}}
	if from := originOf(direct, "q"); from.Exchange != "chat" {
		t.Errorf("%+v", from)
	}
}

func TestLongErrorsAreShortened(t *testing.T) {
	long := make([]rune, 3000)
	for i := range long {
		long[i] = 'é'
	}
	if got := []rune(shortText(string(long))); len(got) != maxErrorText || got[len(got)-1] != '…' {
		t.Errorf("%d runes", len(got))
	}
}
