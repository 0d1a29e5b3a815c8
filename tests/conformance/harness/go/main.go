// The Go side of the conformance suite, built on the generated Go module.
//
//	harness publish PLAN   publish the plan's valid events with the typed API, then its invalid
//	                       vectors raw with amqp091-go
//	harness consume PLAN   subscribe to every contract; print each event received, re-serialized
//	                       from its typed value, as one JSON line
//	harness roundtrip FILE decode and re-encode [{type, data}] (the corpus test)
//	harness unroutable PLAN publish to an exchange with no queue: report the error
//
// and two modes with flags, the same in every language's harness, for cross-language tests:
//
//	harness worker --url URL --service NAME --event TYPE --behaviour ok|fail:N|always-fail
//	        --max-attempts M --first-delay-ms D --factor F --count C [--timeout-s T]
//	        [--jitter J] [--handler-ms H] [--prefetch P]
//	    consume TYPE as NAME with that retry policy (jitter default 0.5); one JSON line per handler
//	    call {"lang":"go","id","attempt","at_ms","ok"}; exit 0 once C events succeeded or were
//	    parked (fail:N fails attempts 1..N) or after SIGTERM, 2 when T seconds (default 120)
//	    passed first; {"lang":"go","ready":true} goes to stderr once it consumes
//	harness publish --url URL --service NAME --event TYPE --data-file F --count C [--delay-ms D]
//	        [--pace-ms P]
//	    publish C events with the data in F (one batch, or one every P ms);
//	    {"published":<confirmed>,"at_ms":<before the first>}, then each confirmed id on a line;
//	    each failed one is {"failed":id,"error":…} on stderr, and the exit status is then 1
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	contracts "eventbus.example/contracts"
	eventbus "github.com/eventbus-dev/eventbus/runtimes/go"
	amqp "github.com/rabbitmq/amqp091-go"
)

type plan struct {
	URL     string `json:"url"`
	Service string `json:"service"`
	Valid   []struct {
		Type    string          `json:"type"`
		Data    json.RawMessage `json:"data"`
		ID      string          `json:"id"`
		Subject string          `json:"subject"`
		Time    time.Time       `json:"time"`
	} `json:"valid"`
	Invalid []struct {
		Exchange    string            `json:"exchange"`
		RoutingKey  string            `json:"routing_key"`
		ContentType *string           `json:"content_type"`
		MessageID   string            `json:"message_id"`
		Headers     map[string]string `json:"headers"`
		BodyB64     string            `json:"body_b64"`
	} `json:"invalid"`
	ExpectIDs []string `json:"expect_ids"`
	Exchange  string   `json:"exchange"`
}

var out sync.Mutex

func emit(record map[string]interface{}) {
	out.Lock()
	defer out.Unlock()
	line, _ := json.Marshal(record)
	fmt.Println(string(line))
}

func publish(ctx context.Context, p plan) error {
	bus, err := eventbus.Connect(ctx, eventbus.Options{URL: p.URL, Service: p.Service})
	if err != nil {
		return err
	}
	defer bus.Close()
	connection, err := amqp.Dial(p.URL) // the invalid vectors go out raw, with plain amqp091-go
	if err != nil {
		return err
	}
	defer connection.Close()
	channel, err := connection.Channel()
	if err != nil {
		return err
	}
	if err := channel.Confirm(false); err != nil {
		return err
	}
	confirms := channel.NotifyPublish(make(chan amqp.Confirmation, 1)) // one at a time: in order
	for _, item := range p.Invalid {
		body, err := base64.StdEncoding.DecodeString(item.BodyB64)
		if err != nil {
			return err
		}
		headers := amqp.Table{}
		for key, value := range item.Headers {
			headers[key] = value
		}
		message := amqp.Publishing{Headers: headers, MessageId: item.MessageID, DeliveryMode: amqp.Persistent, Body: body}
		if item.ContentType != nil {
			message.ContentType = *item.ContentType
		}
		if err := channel.PublishWithContext(ctx, item.Exchange, item.RoutingKey, false, false, message); err != nil {
			return err
		}
		if confirmation := <-confirms; !confirmation.Ack {
			return fmt.Errorf("invalid vector %s not confirmed", item.MessageID)
		}
	}
	for _, item := range p.Valid {
		contract, ok := contracts.Contracts[item.Type]
		if !ok {
			return fmt.Errorf("no contract for %s", item.Type)
		}
		options := eventbus.PublishOptions{ID: item.ID, Subject: item.Subject, Time: item.Time}
		if _, err := contract.PublishJSON(ctx, bus, item.Data, options); err != nil {
			return err
		}
	}
	emit(map[string]interface{}{"published": len(p.Valid) + len(p.Invalid)})
	return nil
}

func consume(ctx context.Context, p plan) error {
	bus, err := eventbus.Connect(ctx, eventbus.Options{URL: p.URL, Service: p.Service})
	if err != nil {
		return err
	}
	defer bus.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	waiting := map[string]bool{}
	for _, id := range p.ExpectIDs {
		waiting[id] = true
	}
	handler := func(_ context.Context, data json.RawMessage, meta eventbus.EventContext) error {
		mu.Lock()
		defer mu.Unlock()
		if !waiting[meta.ID] {
			return nil // someone else's event on the shared exchange
		}
		emit(map[string]interface{}{
			"id": meta.ID, "type": meta.Type, "source": meta.Source, "time": meta.Time,
			"subject": nullable(meta.Subject), "dataschema": nullable(meta.DataSchema), "data": data,
		})
		delete(waiting, meta.ID)
		if len(waiting) == 0 {
			cancel()
		}
		return nil
	}
	var subscriptions []*eventbus.Subscription
	for _, contract := range contracts.Contracts {
		subscription, err := contract.SubscribeJSON(ctx, bus, handler, eventbus.SubscribeOptions{})
		if err != nil {
			return err
		}
		subscriptions = append(subscriptions, subscription)
	}
	emit(map[string]interface{}{"ready": true})
	if len(p.ExpectIDs) == 0 {
		cancel()
	}
	for _, subscription := range subscriptions {
		<-subscription.Done()
	}
	return nil
}

// unroutable publishes the first valid event to the plan's exchange, where no queue is bound.
func unroutable(ctx context.Context, p plan) error {
	bus, err := eventbus.Connect(ctx, eventbus.Options{URL: p.URL, Service: p.Service})
	if err != nil {
		return err
	}
	defer bus.Close()
	var event contracts.ConversationEndedV1
	if err := json.Unmarshal(p.Valid[0].Data, &event); err != nil {
		return err
	}
	contract := contracts.ConversationEndedV1Contract.OnExchange(p.Exchange)
	_, err = eventbus.Publish(ctx, bus, contract, event, eventbus.PublishOptions{ID: p.Valid[0].ID})
	var publishErr *eventbus.PublishError
	switch {
	case err == nil:
		emit(map[string]interface{}{"error": nil})
	case errors.As(err, &publishErr) && publishErr.Kind == eventbus.PublishUnroutable:
		emit(map[string]interface{}{"error": "unroutable"})
	default:
		emit(map[string]interface{}{"error": err.Error()})
	}
	return nil
}

func nullable(text string) interface{} {
	if text == "" {
		return nil
	}
	return text
}

// roundtrip decodes every {type, data} item as its event type and encodes it again.
func roundtrip(data []byte) error {
	var items []struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(data, &items); err != nil {
		return err
	}
	results := make([]map[string]interface{}, 0, len(items))
	for _, item := range items {
		contract, ok := contracts.Contracts[item.Type]
		if !ok {
			results = append(results, map[string]interface{}{"ok": false, "error": "no contract for " + item.Type})
			continue
		}
		encoded, err := contract.Reencode(item.Data)
		if err != nil {
			results = append(results, map[string]interface{}{"ok": false, "error": err.Error()})
			continue
		}
		results = append(results, map[string]interface{}{"ok": true, "data": json.RawMessage(encoded)})
	}
	line, err := json.Marshal(results)
	if err != nil {
		return err
	}
	fmt.Println(string(line))
	return nil
}

func main() {
	if len(os.Args) > 2 && strings.HasPrefix(os.Args[2], "--") {
		os.Exit(flagged(os.Args[1], os.Args[2:]))
	}
	data, err := os.ReadFile(os.Args[2])
	if err != nil {
		panic(err)
	}
	if os.Args[1] == "roundtrip" {
		if err := roundtrip(data); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	var p plan
	if err := json.Unmarshal(data, &p); err != nil {
		panic(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	switch os.Args[1] {
	case "publish":
		err = publish(ctx, p)
	case "consume":
		err = consume(ctx, p)
	case "unroutable":
		err = unroutable(ctx, p)
	default:
		err = fmt.Errorf("unknown command %s", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
