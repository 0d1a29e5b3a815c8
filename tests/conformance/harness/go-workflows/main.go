// The Go side of tests/conformance/test_workflows_go.py, built on the workflow demo's generated
// module (examples/workflows/generated/go):
//
//	wfharness serve --url URL --service NAME [--revocations REDIS_URL] [--max-attempts N] [--single-active]
//	    serve the demo's Go steps until SIGTERM: tasks.wfdemo.score.v1 returns the notify command
//	    (points = the length of user_id, trail + "go"); tasks.wfdemo.square.v1 returns the squared
//	    result, or fails when fail is true; {"ready":true} goes to stderr once both consume
//	wfharness request --url URL --service NAME --n N [--fail] --timeout-ms T
//	    request tasks.wfdemo.square.v1 and print the outcome as one JSON line:
//	    {"n","square"}, {"error":"remote","remote_type","remote_message"} or {"error":"timeout"}
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	wfdemo "eventbus.example/wfdemo"
	eventbus "github.com/eventbus-dev/eventbus/runtimes/go"
)

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: wfharness serve|request [flags]"))
	}
	flags := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	url := flags.String("url", eventbus.DefaultURL, "broker URL")
	service := flags.String("service", "wfgo", "service name")
	revocations := flags.String("revocations", "", "revocation store (Redis URL)")
	maxAttempts := flags.Int("max-attempts", 1, "attempts per step")
	single := flags.Bool("single-active", false, "declare the queues with x-single-active-consumer")
	n := flags.Int64("n", 3, "the number to square")
	failing := flags.Bool("fail", false, "ask the square step to fail")
	timeout := flags.Int("timeout-ms", 5000, "request timeout")
	_ = flags.Parse(os.Args[2:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bus, err := eventbus.Connect(ctx, eventbus.Options{URL: *url, Service: *service, RevocationsURL: *revocations,
		ShutdownGrace: 2 * time.Second})
	if err != nil {
		fail(err)
	}
	defer bus.Close()
	switch os.Args[1] {
	case "serve":
		err = serve(ctx, bus, *maxAttempts, *single)
	case "request":
		err = request(ctx, bus, *n, *failing, time.Duration(*timeout)*time.Millisecond)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func serve(ctx context.Context, bus *eventbus.Bus, maxAttempts int, single bool) error {
	retry := eventbus.RetryPolicy{MaxAttempts: maxAttempts, Backoff: eventbus.Backoff{First: 100 * time.Millisecond, Factor: 1, Maximum: time.Second}}
	options := eventbus.SubscribeOptions{Retry: &retry, SingleActiveConsumer: single}
	_, err := wfdemo.ServeScoreV1(ctx, bus, func(ctx context.Context, event wfdemo.ScoreV1, meta eventbus.EventContext) (any, error) {
		trail := append(append([]string{}, event.Trail...), "go")
		return wfdemo.NotifyV1{UserId: event.UserId, Points: float64(len(event.UserId)), Trail: trail}, nil
	}, options)
	if err != nil {
		return err
	}
	_, err = wfdemo.ServeSquareV1(ctx, bus, func(ctx context.Context, event wfdemo.SquareV1, meta eventbus.EventContext) (any, error) {
		if event.Fail != nil && *event.Fail {
			return nil, fmt.Errorf("square of %d failed on purpose", event.N)
		}
		return &wfdemo.SquaredV1{N: event.N, Square: event.N * event.N}, nil
	}, options)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, `{"ready":true}`)
	return bus.Run(ctx)
}

func request(ctx context.Context, bus *eventbus.Bus, n int64, failing bool, timeout time.Duration) error {
	event := wfdemo.SquareV1{N: n}
	if failing {
		event.Fail = &failing
	}
	result, err := wfdemo.RequestSquareV1(ctx, bus, event, wfdemo.SquaredV1Contract, timeout)
	var remote *eventbus.RemoteTaskError
	var line map[string]any
	switch {
	case err == nil:
		line = map[string]any{"n": result.N, "square": result.Square}
	case errors.As(err, &remote):
		line = map[string]any{"error": "remote", "remote_type": remote.RemoteType, "remote_message": remote.RemoteMessage}
	case errors.Is(err, eventbus.ErrRequestTimeout):
		line = map[string]any{"error": "timeout"}
	default:
		return err
	}
	text, _ := json.Marshal(line)
	fmt.Println(string(text))
	return nil
}
