package eventbus

import (
	"fmt"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Delays on stock RabbitMQ, topology v2 (docs/reliability.md): a delay is rounded to ticks of
// 100 ms and written in binary, one routing-key word per bit (23 words, most significant
// first), followed by the name of the queue that finally gets the message. Level k is a topic
// exchange eventbus.delay.v2.<k> plus a quorum queue whose x-message-ttl is 2^k ticks: a 1
// goes into the queue, waits exactly its TTL and is dead-lettered to level k-1; a 0 passes on
// through an exchange-to-exchange binding. After level 00 the message reaches
// eventbus.delay.v2.deliver, where the target queue is bound behind 23 '*' words. Every message
// in one level queue has the same TTL, so there is no head-of-line blocking.

// Delay topology names and sizes, shared with the Python and Node runtimes.
const (
	TickMS           = 100
	DelayLevels      = 23
	MaxDelay         = 7 * 24 * time.Hour
	DelayPrefix      = "eventbus.delay." // every exchange a retry can arrive from starts with it
	DelayV2Prefix    = "eventbus.delay.v2."
	DeliverExchange  = "eventbus.delay.v2.deliver"
	UnroutableQueue  = "eventbus.delay.v2.unroutable"
	LandingPrefix    = "eventbus.delayed.v2."
	maxTargetLength  = 255 - 2*DelayLevels
	maxDelayTicks    = int64(MaxDelay / (TickMS * time.Millisecond))
	anyBitsKeyPrefix = "*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*."
)

// ExchangeSpec is an exchange the runtime declares.
type ExchangeSpec struct {
	Name      string
	Kind      string
	Arguments amqp.Table
}

// Binding is source exchange → destination queue (or exchange when ToExchange).
type Binding struct {
	Source, Destination, RoutingKey string
	ToExchange                      bool
}

// DelayTopology is every exchange, queue and binding of the delay machinery.
type DelayTopology struct {
	Exchanges []ExchangeSpec
	Queues    []QueueSpec
	Bindings  []Binding
}

// LevelName is the exchange and queue of delay level level.
func LevelName(level int) string { return fmt.Sprintf("%s%02d", DelayV2Prefix, level) }

func nextHop(level int) string {
	if level == 0 {
		return DeliverExchange
	}
	return LevelName(level - 1)
}

// quorumDelayArguments are the arguments every delay queue shares: replicated, and
// dead-lettered at least once (which needs reject-publish overflow).
func quorumDelayArguments() amqp.Table {
	return amqp.Table{"x-queue-type": "quorum", "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
}

// Delays returns the delay topology v2, as every runtime declares it.
func Delays() DelayTopology {
	t := DelayTopology{
		Exchanges: []ExchangeSpec{
			{UnroutableQueue, "fanout", nil},
			{DeliverExchange, "topic", amqp.Table{"alternate-exchange": UnroutableQueue}},
		},
		Queues:   []QueueSpec{{UnroutableQueue, amqp.Table{"x-queue-type": "quorum"}}},
		Bindings: []Binding{{UnroutableQueue, UnroutableQueue, "", false}},
	}
	for level := 0; level < DelayLevels; level++ {
		name := LevelName(level)
		t.Exchanges = append(t.Exchanges, ExchangeSpec{name, "topic", nil})
		arguments := quorumDelayArguments()
		arguments["x-message-ttl"] = int64(TickMS) << level
		arguments["x-dead-letter-exchange"] = nextHop(level)
		t.Queues = append(t.Queues, QueueSpec{name, arguments})
		prefix := strings.Repeat("*.", DelayLevels-1-level)
		t.Bindings = append(t.Bindings,
			Binding{name, name, prefix + "1.#", false},
			Binding{name, nextHop(level), prefix + "0.#", true})
	}
	return t
}

// DelayTicks is a delay as whole 100 ms ticks, rounded to the nearest; negative is due now.
func DelayTicks(delay time.Duration) (int64, error) {
	if delay < 0 {
		delay = 0
	}
	ticks := (delay + TickMS*time.Millisecond/2) / (TickMS * time.Millisecond)
	if int64(ticks) > maxDelayTicks {
		return 0, &ConfigurationError{fmt.Sprintf("delay of %gs is longer than the maximum of 7 days", delay.Seconds())}
	}
	return int64(ticks), nil
}

// DelayRoute is where to publish so that target receives the message after ticks ticks: the
// level of the highest set bit (the levels above would only pass it on).
func DelayRoute(ticks int64, target string) (exchange, routingKey string, err error) {
	if err := checkTarget(target); err != nil {
		return "", "", err
	}
	var key strings.Builder
	key.Grow(2*DelayLevels + len(target))
	highest := 0
	for level := DelayLevels - 1; level >= 0; level-- {
		if ticks>>level&1 == 1 {
			key.WriteString("1.")
			if highest == 0 {
				highest = level
			}
		} else {
			key.WriteString("0.")
		}
	}
	key.WriteString(target)
	return LevelName(highest), key.String(), nil
}

func checkTarget(target string) error {
	if len(target) > maxTargetLength {
		return &ConfigurationError{fmt.Sprintf("queue name '%s' is too long to be a delay target (%d bytes)", target, maxTargetLength)}
	}
	return nil
}

// TargetBindingKey binds queue to the delivery exchange, matching its own name only.
func TargetBindingKey(queue string) string { return anyBitsKeyPrefix + queue }

// LandingQueue hands a delayed event to its exchange with its routing key, at once, so it
// reaches every subscriber as a direct publish would.
func LandingQueue(exchange, routingKey string) QueueSpec {
	arguments := quorumDelayArguments()
	arguments["x-message-ttl"] = int64(0)
	arguments["x-dead-letter-exchange"] = exchange
	arguments["x-dead-letter-routing-key"] = routingKey
	return QueueSpec{LandingPrefix + exchange + "." + routingKey, arguments}
}
