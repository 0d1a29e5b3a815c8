package eventbus

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestFormatTimeWritesMicrosecondsOnlyWhenThereAreAny(t *testing.T) {
	at := time.Date(2026, 11, 25, 18, 45, 1, 250000, time.FixedZone("CET", 3600))
	if got := FormatTime(at); got != "2026-11-25T17:45:01.000250Z" {
		t.Error(got)
	}
	if got := FormatTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); got != "2026-01-01T00:00:00Z" {
		t.Error(got)
	}
}

func TestExtensionsGoOutAsCloudEventsHeadersAndComeBack(t *testing.T) {
	headers := BuildHeaders(Attributes{ID: "e-1", Source: "/s", Type: "t.v1", Time: "2026-01-01T00:00:00Z",
		Extensions: map[string]string{"partitionkey": "conv_1", "sequence": "7"}}, map[string]string{"traceparent": "00-a-b-01", "other": "x"})
	if headers["cloudEvents_partitionkey"] != "conv_1" || headers["cloudEvents_sequence"] != "7" || headers["traceparent"] != "00-a-b-01" {
		t.Fatalf("%v", headers)
	}
	if _, ok := headers["other"]; ok {
		t.Error("only trace headers pass through")
	}
	attrs, _, err := ParseEnvelope(headers, JSONContentType, []byte(`{}`))
	if err != nil || attrs.Extensions["partitionkey"] != "conv_1" || attrs.Extensions["sequence"] != "7" || attrs.ID != "e-1" {
		t.Fatalf("%+v %v", attrs, err)
	}
}

func TestReadersAcceptEveryPrefixAndStructuredMode(t *testing.T) {
	for _, prefix := range []string{"cloudEvents_", "cloudEvents:", "ce-", "ce_"} {
		headers := amqp.Table{prefix + "specversion": "1.0", prefix + "id": "1", prefix + "source": "/s", prefix + "type": "t"}
		if attrs, _, err := ParseEnvelope(headers, "", []byte(`{}`)); err != nil || attrs.Type != "t" {
			t.Errorf("%s: %v", prefix, err)
		}
	}
	body := []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","partitionkey":"p","data":{"a":1}}`)
	attrs, data, err := ParseEnvelope(nil, StructuredContentType, body)
	if err != nil || string(data) != `{"a":1}` || attrs.Extensions["partitionkey"] != "p" {
		t.Errorf("structured: %+v %s %v", attrs, data, err)
	}
}

func TestEnvelopeProblemsHaveThePythonReasons(t *testing.T) {
	cases := map[string]struct {
		headers     amqp.Table
		contentType string
	}{
		"missing_attribute":        {amqp.Table{"cloudEvents_specversion": "1.0", "cloudEvents_id": "1", "cloudEvents_type": "t"}, ""},
		"bad_specversion":          {amqp.Table{"cloudEvents_specversion": "0.3", "cloudEvents_id": "1", "cloudEvents_source": "/s", "cloudEvents_type": "t"}, ""},
		"unsupported_content_type": {amqp.Table{"cloudEvents_specversion": "1.0", "cloudEvents_id": "1", "cloudEvents_source": "/s", "cloudEvents_type": "t"}, "text/plain"},
	}
	for reason, c := range cases {
		_, _, err := ParseEnvelope(c.headers, c.contentType, []byte(`{}`))
		if envelope, ok := err.(*EnvelopeError); !ok || envelope.Reason != reason {
			t.Errorf("%s: %v", reason, err)
		}
	}
}

func TestOnlyCloudEventsExtensionNamesAreWritten(t *testing.T) {
	for name, ok := range map[string]bool{"partitionkey": true, "seq2": true, "Upper": false, "with-dash": false, "id": false, "": false} {
		if validExtensionName(name) != ok {
			t.Errorf("%q", name)
		}
	}
}
