package eventbus

import (
	"errors"
	"regexp"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Names and arguments of everything a service declares, the same as the Python SDK's
// (eventbus/_topology.py), so replicas in any language declare identical queues:
//
//	exchange      <domain>                durable topic exchange, routing key = event type
//	queue         <service>.<event type>  quorum (default) or classic, durable; quorum queues carry
//	                                      x-delivery-limit with the DLQ as dead-letter target
//	dead letters  <queue>.dlq             same type as the queue

// DefaultDeliveryLimit is the broker-side safety net of quorum queues (Python's delivery_limit).
const DefaultDeliveryLimit = 20

// QueueSpec is a durable queue and the arguments it is declared with.
type QueueSpec struct {
	Name      string
	Arguments amqp.Table
}

// DeadLetterQueue is the name of queue's parking lot.
func DeadLetterQueue(queue string) string { return queue + ".dlq" }

// QueueSpecs are the consumer queue and its dead-letter queue.
func QueueSpecs(queue, queueType string, deliveryLimit int) (QueueSpec, QueueSpec) {
	return ConsumerQueueSpecs(queue, queueType, deliveryLimit, false)
}

// ConsumerQueueSpecs are QueueSpecs with x-single-active-consumer on the consumer queue when
// singleActiveConsumer is set, as Python's queue_specs(..., single_active_consumer=True).
func ConsumerQueueSpecs(queue, queueType string, deliveryLimit int, singleActiveConsumer bool) (QueueSpec, QueueSpec) {
	deadLetters := DeadLetterQueue(queue)
	main := amqp.Table{"x-queue-type": queueType}
	if singleActiveConsumer {
		main["x-single-active-consumer"] = true
	}
	if queueType == "quorum" && deliveryLimit > 0 {
		main["x-delivery-limit"] = int64(deliveryLimit)
		main["x-dead-letter-exchange"] = ""
		main["x-dead-letter-routing-key"] = deadLetters
	}
	return QueueSpec{queue, main}, QueueSpec{deadLetters, amqp.Table{"x-queue-type": queueType}}
}

var inequivalent = regexp.MustCompile(`inequivalent arg '([^']+)' for (queue|exchange) '([^']+)'`)

// describeMismatch turns RabbitMQ's PRECONDITION_FAILED into a *TopologyMismatchError naming
// the argument and both values; other errors come back unchanged.
func describeMismatch(err error) error {
	var amqpErr *amqp.Error
	if !errors.As(err, &amqpErr) || amqpErr.Code != amqp.PreconditionFailed {
		return err
	}
	text := amqpErr.Reason
	match := inequivalent.FindStringSubmatchIndex(text)
	if match == nil {
		return &TopologyMismatchError{Entity: "entity", Detail: text}
	}
	detail := text[match[0]:]
	return &TopologyMismatchError{Entity: text[match[4]:match[5]] + " '" + text[match[6]:match[7]] + "'", Detail: strings.TrimRight(detail, "')\" ")}
}

// declarer declares on one connection, opening a fresh channel after a refusal (the broker
// closes the channel that a failed declaration was sent on).
type declarer struct {
	connection *amqp.Connection
	channel    *amqp.Channel
}

func (d *declarer) ch() (*amqp.Channel, error) {
	if d.channel == nil || d.channel.IsClosed() {
		channel, err := d.connection.Channel()
		if err != nil {
			return nil, err
		}
		d.channel = channel
	}
	return d.channel, nil
}

func (d *declarer) close() {
	if d.channel != nil {
		d.channel.Close()
	}
}

func (d *declarer) exchange(spec ExchangeSpec) error {
	ch, err := d.ch()
	if err != nil {
		return err
	}
	return describeMismatch(ch.ExchangeDeclare(spec.Name, spec.Kind, true, false, false, false, spec.Arguments))
}

// queue declares spec; a queue made by an older eventbus without the delivery-limit safety net
// is used as it is (RabbitMQ cannot add arguments later), as in Python.
func (d *declarer) queue(spec QueueSpec, logger Logger) error {
	ch, err := d.ch()
	if err != nil {
		return err
	}
	_, err = ch.QueueDeclare(spec.Name, true, false, false, false, spec.Arguments)
	err = describeMismatch(err)
	var mismatch *TopologyMismatchError
	if !errors.As(err, &mismatch) || spec.Arguments["x-delivery-limit"] == nil {
		return err
	}
	legacy := amqp.Table{}
	for key, value := range spec.Arguments {
		switch key {
		case "x-delivery-limit", "x-dead-letter-exchange", "x-dead-letter-routing-key":
		default:
			legacy[key] = value
		}
	}
	if ch, err = d.ch(); err != nil {
		return err
	}
	if _, other := ch.QueueDeclare(spec.Name, true, false, false, false, legacy); other != nil {
		return describeMismatch(other)
	}
	logger.Warn("queue was declared without a delivery limit (by an older eventbus); re-create it to add the safety net", "queue", spec.Name)
	return nil
}

func (d *declarer) bind(b Binding) error {
	ch, err := d.ch()
	if err != nil {
		return err
	}
	if b.ToExchange {
		return ch.ExchangeBind(b.Destination, b.RoutingKey, b.Source, false, nil)
	}
	return ch.QueueBind(b.Destination, b.RoutingKey, b.Source, false, nil)
}

func (d *declarer) delays(logger Logger) error {
	t := Delays()
	for _, e := range t.Exchanges {
		if err := d.exchange(e); err != nil {
			return err
		}
	}
	for _, q := range t.Queues {
		if err := d.queue(q, logger); err != nil {
			return err
		}
	}
	for _, b := range t.Bindings {
		if err := d.bind(b); err != nil {
			return err
		}
	}
	return nil
}
