package eventbus

import (
	"strings"
	"testing"
	"time"
)

func TestDelayRouteWritesTheTicksInBinaryAndStartsAtTheHighestBit(t *testing.T) {
	exchange, key, err := DelayRoute(52, "svc.chat.conversation.ended.v1") // 5.2 s = 110100 in binary
	if err != nil {
		t.Fatal(err)
	}
	if exchange != "eventbus.delay.v2.05" {
		t.Errorf("exchange %s", exchange)
	}
	want := strings.Repeat("0.", 17) + "1.1.0.1.0.0.svc.chat.conversation.ended.v1"
	if key != want {
		t.Errorf("key %s, want %s", key, want)
	}
	if exchange, _, _ := DelayRoute(0, "q"); exchange != "eventbus.delay.v2.00" {
		t.Errorf("no delay starts at level 00, got %s", exchange)
	}
	if _, _, err := DelayRoute(1, strings.Repeat("q", 210)); err == nil {
		t.Error("a target longer than 209 bytes is refused")
	}
}

func TestDelayTicksRoundToTheNearestTickWithinSevenDays(t *testing.T) {
	for delay, want := range map[time.Duration]int64{
		0: 0, 49 * time.Millisecond: 0, 50 * time.Millisecond: 1, 5200 * time.Millisecond: 52, -time.Second: 0,
		MaxDelay: 6048000,
	} {
		got, err := DelayTicks(delay)
		if err != nil || got != want {
			t.Errorf("%s: %d %v, want %d", delay, got, err, want)
		}
	}
	if _, err := DelayTicks(MaxDelay + time.Second); err == nil {
		t.Error("more than 7 days is refused")
	}
}

func TestDelayTopologyIsVersion2OnQuorumQueues(t *testing.T) {
	topology := Delays()
	if len(topology.Exchanges) != 25 || len(topology.Queues) != 24 || len(topology.Bindings) != 47 {
		t.Fatalf("%d exchanges, %d queues, %d bindings", len(topology.Exchanges), len(topology.Queues), len(topology.Bindings))
	}
	levels := map[string]QueueSpec{}
	for _, q := range topology.Queues {
		levels[q.Name] = q
	}
	top := levels["eventbus.delay.v2.22"].Arguments
	if top["x-message-ttl"] != int64(100)<<22 || top["x-dead-letter-exchange"] != "eventbus.delay.v2.21" ||
		top["x-queue-type"] != "quorum" || top["x-dead-letter-strategy"] != "at-least-once" || top["x-overflow"] != "reject-publish" {
		t.Errorf("level 22: %v", top)
	}
	if levels["eventbus.delay.v2.00"].Arguments["x-dead-letter-exchange"] != DeliverExchange {
		t.Error("level 00 hands over to the deliver exchange")
	}
	if levels[UnroutableQueue].Arguments["x-queue-type"] != "quorum" {
		t.Error("the unroutable queue is a quorum queue")
	}
	found := map[Binding]bool{}
	for _, b := range topology.Bindings {
		found[b] = true
	}
	if !found[Binding{"eventbus.delay.v2.21", "eventbus.delay.v2.21", "*.1.#", false}] ||
		!found[Binding{"eventbus.delay.v2.21", "eventbus.delay.v2.20", "*.0.#", true}] {
		t.Error("level 21 bindings")
	}
	if topology.Exchanges[1].Arguments["alternate-exchange"] != UnroutableQueue {
		t.Error("deliver exchange alternate")
	}
}

func TestLandingQueueDeadLettersToTheEventsExchangeAtOnce(t *testing.T) {
	landing := LandingQueue("chat", "chat.conversation.ended.v1")
	if landing.Name != "eventbus.delayed.v2.chat.chat.conversation.ended.v1" {
		t.Error(landing.Name)
	}
	a := landing.Arguments
	if a["x-message-ttl"] != int64(0) || a["x-dead-letter-exchange"] != "chat" || a["x-dead-letter-routing-key"] != "chat.conversation.ended.v1" ||
		a["x-queue-type"] != "quorum" || a["x-dead-letter-strategy"] != "at-least-once" || a["x-overflow"] != "reject-publish" {
		t.Errorf("%v", a)
	}
	if TargetBindingKey("q") != strings.Repeat("*.", 23)+"q" {
		t.Error(TargetBindingKey("q"))
	}
}
