package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	contracts "eventbus.example/contracts"
	eventbus "github.com/eventbus-dev/eventbus/runtimes/go"
)

// flagged runs the worker and publish modes (see main.go); it returns the exit code.
func flagged(mode string, args []string) int {
	var err error
	code := 0
	switch mode {
	case "worker":
		code, err = worker(args)
	case "publish":
		code, err = publishMany(args)
	default:
		err = fmt.Errorf("unknown mode %s", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return code
}

func nowMS() int64 { return time.Now().UnixNano() / int64(time.Millisecond) }

// modeFlags are the flags both modes share: --url, --service, --event.
func modeFlags(mode string) (flags *flag.FlagSet, url, service, eventType *string) {
	flags = flag.NewFlagSet(mode, flag.ContinueOnError)
	url = flags.String("url", eventbus.DefaultURL, "broker URL")
	service = flags.String("service", "", "service name")
	eventType = flags.String("event", "", "event type")
	return flags, url, service, eventType
}

func worker(args []string) (int, error) {
	flags, url, service, eventType := modeFlags("worker")
	behaviour := flags.String("behaviour", "ok", "ok, fail:N or always-fail")
	maxAttempts := flags.Int("max-attempts", 5, "attempts before parking")
	firstDelay := flags.Int("first-delay-ms", 1000, "delay before attempt 2")
	factor := flags.Float64("factor", 2, "backoff factor")
	count := flags.Int("count", 1, "events to finish")
	timeout := flags.Float64("timeout-s", 120, "give up after")
	jitter := flags.Float64("jitter", 0.5, "backoff jitter (0: exact delays)")
	handlerMS := flags.Int("handler-ms", 0, "time each handler call takes")
	prefetch := flags.Int("prefetch", 100, "prefetch, and so handlers at once")
	if err := flags.Parse(args); err != nil {
		return 0, err
	}
	failUntil := 0
	switch {
	case *behaviour == "ok":
	case *behaviour == "always-fail":
		failUntil = 1 << 30
	case strings.HasPrefix(*behaviour, "fail:"):
		n, err := strconv.Atoi(strings.TrimPrefix(*behaviour, "fail:"))
		if err != nil {
			return 0, err
		}
		failUntil = n
	default:
		return 0, fmt.Errorf("unknown behaviour %s", *behaviour)
	}
	contract, ok := contracts.Contracts[*eventType]
	if !ok {
		return 0, fmt.Errorf("no contract for %s", *eventType)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	bus, err := eventbus.Connect(ctx, eventbus.Options{URL: *url, Service: *service, ShutdownGrace: 10 * time.Second,
		Prefetch: *prefetch, ReconnectWindow: 30 * time.Second})
	if err != nil {
		return 0, err
	}
	defer bus.Close()
	var mu sync.Mutex
	finished := map[string]bool{}
	done := make(chan struct{})
	handler := func(_ context.Context, _ json.RawMessage, meta eventbus.EventContext) error {
		succeed := meta.Attempt > failUntil
		emit(map[string]interface{}{"lang": "go", "id": meta.ID, "attempt": meta.Attempt, "at_ms": nowMS(), "ok": succeed})
		if *handlerMS > 0 {
			time.Sleep(time.Duration(*handlerMS) * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		if succeed || meta.Attempt >= *maxAttempts {
			finished[meta.ID] = true
			if len(finished) == *count {
				close(done)
			}
		}
		if succeed {
			return nil
		}
		return fmt.Errorf("attempt %d fails on purpose", meta.Attempt)
	}
	policy := eventbus.RetryPolicy{MaxAttempts: *maxAttempts, Backoff: eventbus.Backoff{
		First: time.Duration(*firstDelay) * time.Millisecond, Factor: *factor, Maximum: time.Hour, Jitter: *jitter}}
	if _, err := contract.SubscribeJSON(ctx, bus, handler, eventbus.SubscribeOptions{Retry: &policy}); err != nil {
		return 0, err
	}
	fmt.Fprintln(os.Stderr, `{"lang":"go","ready":true}`)
	select {
	case <-done: // Close below waits for the last settlements (a park's confirmed copy, an ack)
		return 0, nil
	case <-ctx.Done():
		return 0, nil
	case <-time.After(time.Duration(*timeout * float64(time.Second))):
		fmt.Fprintf(os.Stderr, "only %d of %d events finished in %gs\n", len(finished), *count, *timeout)
		return 2, nil
	}
}

func publishMany(args []string) (int, error) {
	flags, url, service, eventType := modeFlags("publish")
	dataFile := flags.String("data-file", "", "JSON data of the events")
	count := flags.Int("count", 1, "events to publish")
	delayMS := flags.Int("delay-ms", 0, "delay each event")
	paceMS := flags.Int("pace-ms", 0, "publish one at a time, this far apart (0: one batch)")
	if err := flags.Parse(args); err != nil {
		return 1, err
	}
	contract, ok := contracts.Contracts[*eventType]
	if !ok {
		return 1, fmt.Errorf("no contract for %s", *eventType)
	}
	data, err := os.ReadFile(*dataFile)
	if err != nil {
		return 1, err
	}
	ctx := context.Background()
	bus, err := eventbus.Connect(ctx, eventbus.Options{URL: *url, Service: *service, ReconnectWindow: 30 * time.Second})
	if err != nil {
		return 1, err
	}
	defer bus.Close()
	options := eventbus.PublishOptions{Delay: time.Duration(*delayMS) * time.Millisecond}
	started := nowMS()
	var ids []string
	var errs []error
	if *paceMS > 0 {
		for i := 0; i < *count; i++ {
			id, err := contract.PublishJSON(ctx, bus, data, options)
			ids, errs = append(ids, id), append(errs, err)
			time.Sleep(time.Duration(*paceMS) * time.Millisecond)
		}
	} else {
		items := make([][]byte, *count)
		for i := range items {
			items[i] = data
		}
		ids, errs = contract.PublishManyJSON(ctx, bus, items, []eventbus.PublishOptions{options})
	}
	var confirmed []string
	for i, id := range ids {
		if errs[i] == nil {
			confirmed = append(confirmed, id)
		} else {
			line, _ := json.Marshal(map[string]string{"failed": id, "error": errs[i].Error()})
			fmt.Fprintln(os.Stderr, string(line))
		}
	}
	emit(map[string]interface{}{"published": len(confirmed), "at_ms": started})
	for _, id := range confirmed {
		fmt.Println(id)
	}
	if len(confirmed) < *count {
		return 1, nil
	}
	return 0, nil
}
