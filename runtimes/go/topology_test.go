package eventbus

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestQueuesAreDeclaredWithPythonsArguments(t *testing.T) {
	main, dlq := QueueSpecs("svc.t.v1", "quorum", 20)
	want := amqp.Table{"x-queue-type": "quorum", "x-delivery-limit": int64(20), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "svc.t.v1.dlq"}
	if fmt.Sprint(main.Arguments) != fmt.Sprint(want) || dlq.Name != "svc.t.v1.dlq" || fmt.Sprint(dlq.Arguments) != fmt.Sprint(amqp.Table{"x-queue-type": "quorum"}) {
		t.Errorf("%v / %v", main, dlq)
	}
	classic, _ := QueueSpecs("q", "classic", 20)
	if len(classic.Arguments) != 1 {
		t.Errorf("classic queues have no delivery limit: %v", classic.Arguments)
	}
}

func TestAMismatchNamesTheArgumentAndBothValues(t *testing.T) {
	broker := &amqp.Error{Code: amqp.PreconditionFailed, Reason: "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'a.b' in vhost '/': received the value 'quorum' of type 'longstr' but current is none"}
	err := describeMismatch(fmt.Errorf("declare: %w", broker))
	mismatch, ok := err.(*TopologyMismatchError)
	if !ok {
		t.Fatalf("%T %v", err, err)
	}
	if mismatch.Error() != "queue 'a.b' already exists with other arguments: inequivalent arg 'x-queue-type' for queue 'a.b' in vhost '/': received the value 'quorum' of type 'longstr' but current is none" {
		t.Error(mismatch.Error())
	}
	other := &amqp.Error{Code: amqp.NotFound, Reason: "NOT_FOUND"}
	if describeMismatch(other) != other {
		t.Error("other errors pass through")
	}
}

func TestBrokerURLsTakeTheCommaSeparatedListAndTheSlice(t *testing.T) {
	got := brokerURLs(" amqp://a:5672/%2F, amqp://b:5672/%2F ,", []string{"amqp://c:5672/%2F"})
	want := []string{"amqp://a:5672/%2F", "amqp://b:5672/%2F", "amqp://c:5672/%2F"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	options, err := Options{Service: "svc"}.withDefaults()
	if err != nil || len(options.URLs) != 1 || options.URLs[0] != DefaultURL {
		t.Fatalf("default URL list: %v, %v", options.URLs, err)
	}
	if _, err := (Options{Service: "svc", URL: "http://nope"}).withDefaults(); err == nil {
		t.Fatal("an http URL was accepted")
	}
}

func TestDialSkipsABrokerThatDoesNotAnswer(t *testing.T) {
	options, err := Options{Service: "svc", URLs: []string{"amqp://guest:guest@127.0.0.1:1/%2F", "amqp://guest:secret@127.0.0.1:2/%2F"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	_, err = dial(&options, "publish")
	var failed *ConnectionFailedError
	if !errors.As(err, &failed) {
		t.Fatalf("want ConnectionFailedError, got %v", err)
	}
	if !strings.Contains(failed.URL, "127.0.0.1:1") || !strings.Contains(failed.URL, "127.0.0.1:2") || strings.Contains(failed.URL, "secret") {
		t.Fatalf("the error names every URL tried, without passwords: %q", failed.URL)
	}
}
