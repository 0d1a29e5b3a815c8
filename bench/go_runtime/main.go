// The Go runtime against raw amqp091-go in the same run, on the same broker, payload and queue.
//
//	publish  raw: amqp091-go, confirm channel, mandatory, 500 unconfirmed at most, confirms by
//	         delivery tag; runtime: eventbus.PublishMany (window 500), validation included
//	consume  raw: amqp091-go, prefetch 200, ack each, no validation; runtime: eventbus.Subscribe
//	         with 200 workers, full validation (input limits, JSON Schema, typed decode)
//
// Rounds interleave raw and runtime; the table gives medians and ratios. Run through run.py,
// which builds offline and gives the benchmark a private vhost.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	contracts "eventbus.example/contracts"
	eventbus "github.com/eventbus-dev/eventbus/runtimes/go"
	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
)

const (
	window   = 500
	prefetch = 200
	service  = "bench-go"
)

var contract = contracts.ConversationEndedV1Contract.OnExchange("bench.chat")

func event(n int) contracts.ConversationEndedV1 {
	people := make([]string, 16) // about 735 bytes, the payload of the performance budget
	for i := range people {
		people[i] = fmt.Sprintf("user_%05d", i)
	}
	counts := map[string]int64{}
	total := int64(0)
	for i, p := range people {
		counts[p] = int64(10 + i)
		total += int64(10 + i)
	}
	start := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	return contracts.ConversationEndedV1{
		ConversationId: fmt.Sprintf("conv_bench_%08d_%s", n, uuid.NewString()[:20]), Participants: people,
		StartedAt: start, EndedAt: start.Add(42 * time.Minute), MessageCount: total, MessagesByParticipant: counts,
	}
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// rawPublish is what a careful amqp091-go user writes: windowed confirms by delivery tag.
func rawPublish(connection *amqp.Connection, bodies [][]byte) time.Duration {
	channel, err := connection.Channel()
	must(err)
	defer channel.Close()
	must(channel.Confirm(false))
	confirms := channel.NotifyPublish(make(chan amqp.Confirmation, len(bodies)+1))
	returns := channel.NotifyReturn(make(chan amqp.Return, 16))
	started := time.Now()
	confirmed := 0
	for i, body := range bodies {
		id := uuid.NewString()
		headers := eventbus.BuildHeaders(eventbus.Attributes{ID: id, Source: "/services/" + service, Type: contract.Type,
			Time: eventbus.FormatTime(time.Now()), DataSchema: contract.SchemaID}, nil)
		must(channel.PublishWithContext(context.Background(), contract.Exchange, contract.RoutingKey, true, false, amqp.Publishing{
			ContentType: eventbus.JSONContentType, DeliveryMode: amqp.Persistent, MessageId: id, Type: contract.Type,
			Timestamp: time.Now(), AppId: "/services/" + service, Headers: headers, Body: body}))
		for i+1-confirmed > window {
			if c := <-confirms; !c.Ack {
				must(fmt.Errorf("nacked"))
			}
			confirmed++
		}
	}
	for confirmed < len(bodies) {
		<-confirms
		confirmed++
	}
	if len(returns) > 0 {
		must(fmt.Errorf("returned"))
	}
	return time.Since(started)
}

func runtimePublish(bus *eventbus.Bus, events []contracts.ConversationEndedV1) time.Duration {
	started := time.Now()
	_, errs := eventbus.PublishMany(context.Background(), bus, contract, events, nil)
	for _, err := range errs {
		must(err)
	}
	return time.Since(started)
}

func rawConsume(connection *amqp.Connection, queue string, n int) time.Duration {
	channel, err := connection.Channel()
	must(err)
	defer channel.Close()
	must(channel.Qos(prefetch, 0, false))
	deliveries, err := channel.Consume(queue, "", false, false, false, false, nil)
	must(err)
	var started time.Time
	for i := 0; i < n; i++ {
		d := <-deliveries
		if i == 0 {
			started = time.Now() // from the first delivery, as for the runtime
		}
		must(d.Ack(false))
	}
	return time.Since(started)
}

func runtimeConsume(bus *eventbus.Bus, n int) time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	var handled int64
	done := make(chan struct{})
	var once, first sync.Once
	var started time.Time
	_, err := eventbus.Subscribe(ctx, bus, contract, func(_ context.Context, e contracts.ConversationEndedV1, _ eventbus.EventContext) error {
		first.Do(func() { started = time.Now() }) // from the first delivery: the declarations are not consuming
		if atomic.AddInt64(&handled, 1) == int64(n) {
			once.Do(func() { close(done) })
		}
		return nil
	}, eventbus.SubscribeOptions{Prefetch: prefetch})
	must(err)
	<-done
	elapsed := time.Since(started)
	cancel()
	return elapsed
}

func median(values []float64) float64 {
	sorted := append([]float64(nil), values...)
	sort.Float64s(sorted)
	return sorted[len(sorted)/2]
}

func main() {
	url := flag.String("url", eventbus.DefaultURL, "broker URL (a private vhost)")
	count := flag.Int("count", 20000, "events per measurement")
	rounds := flag.Int("rounds", 3, "interleaved rounds")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the whole run here (go tool pprof)")
	flag.Parse()
	if *profile != "" {
		out, err := os.Create(*profile)
		must(err)
		must(pprof.StartCPUProfile(out))
		defer pprof.StopCPUProfile()
	}

	connection, err := amqp.Dial(*url)
	must(err)
	defer connection.Close()
	setup, err := connection.Channel()
	must(err)
	queue := service + "." + contract.Type
	main, dlq := eventbus.QueueSpecs(queue, "quorum", eventbus.DefaultDeliveryLimit)
	must(setup.ExchangeDeclare(contract.Exchange, "topic", true, false, false, false, nil))
	_, err = setup.QueueDeclare(main.Name, true, false, false, false, main.Arguments)
	must(err)
	_, err = setup.QueueDeclare(dlq.Name, true, false, false, false, dlq.Arguments)
	must(err)
	must(setup.QueueBind(queue, contract.RoutingKey, contract.Exchange, false, nil))
	defer func() {
		_, _ = setup.QueueDelete(queue, false, false, false)
		_, _ = setup.QueueDelete(dlq.Name, false, false, false)
	}()

	events := make([]contracts.ConversationEndedV1, *count)
	bodies := make([][]byte, *count)
	for i := range events {
		events[i] = event(i)
		bodies[i], err = contract.Encode(events[i])
		must(err)
	}
	fmt.Fprintf(os.Stderr, "payload %d bytes, %d events per measurement, %d rounds\n", len(bodies[0]), *count, *rounds)

	rates := map[string][]float64{}
	rate := func(name string, elapsed time.Duration) {
		rates[name] = append(rates[name], float64(*count)/elapsed.Seconds())
	}
	for round := 0; round < *rounds; round++ {
		bus, err := eventbus.Connect(context.Background(), eventbus.Options{URL: *url, Service: service, Prefetch: prefetch})
		must(err)
		_, err = setup.QueuePurge(queue, false)
		must(err)
		if round%2 == 0 {
			rate("publish raw", rawPublish(connection, bodies))
			rate("publish runtime", runtimePublish(bus, events))
		} else {
			rate("publish runtime", runtimePublish(bus, events))
			rate("publish raw", rawPublish(connection, bodies))
		}
		// A stopping subscription still settles what its workers had started (up to the
		// prefetch beyond the count): a spare for each consumer, so the second never runs dry.
		rawPublish(connection, bodies[:2*prefetch])
		if round%2 == 0 {
			rate("consume raw", rawConsume(connection, queue, *count))
			rate("consume runtime", runtimeConsume(bus, *count))
		} else {
			rate("consume runtime", runtimeConsume(bus, *count))
			rate("consume raw", rawConsume(connection, queue, *count))
		}
		must(bus.Close())
	}
	fmt.Printf("| measurement | raw amqp091-go msg/s | runtime msg/s | ratio | goal |\n|---|---|---|---|---|\n")
	for _, kind := range []string{"publish", "consume"} {
		raw, ours := median(rates[kind+" raw"]), median(rates[kind+" runtime"])
		goal := "0.9"
		if kind == "consume" {
			goal = "0.6"
		}
		fmt.Printf("| %s | %.0f | %.0f | %.2f | ≥ %s |\n", kind, raw, ours, ours/raw, goal)
	}
}
