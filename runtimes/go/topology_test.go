package eventbus

import (
	"fmt"
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
