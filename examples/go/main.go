// A Go analytics service in miniature: it consumes context.friendship.status_changed.v1 with the
// generated Go module and the eventbus runtime, and prints every change of a pair's friendship
// status.
//
//	go run . -service analytics -max 10
//	go run . -service analytics -remind-after 5s   # also publish a delayed status change
//
// EVENTBUS_URL points at the broker (default: local RabbitMQ). Invalid deliveries never reach the
// handler: the runtime parks them in <service>.<type>.dlq with the reason. A handler error is
// retried with exponential backoff through the delay queues (here: 3 attempts, 1 s then 2 s)
// and parked after the last attempt.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	contracts "eventbus.example/contracts"
	eventbus "github.com/eventbus-dev/eventbus/runtimes/go"
)

var errFlaky = errors.New("a transient failure, on purpose (-flaky)")

func main() {
	service := flag.String("service", "analytics", "service name: the queue is <service>.context.friendship.status_changed.v1")
	max := flag.Int64("max", 0, "stop after this many events (0: run until interrupted)")
	remindAfter := flag.Duration("remind-after", 0, "publish one status change delayed by this much (0: none)")
	flaky := flag.Bool("flaky", false, "fail every first attempt, to show the retries")
	flag.Parse()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bus, err := eventbus.Connect(ctx, eventbus.Options{Service: *service, URL: os.Getenv("EVENTBUS_URL")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(3)
	}

	var seen int64
	retry := eventbus.RetryPolicy{MaxAttempts: 3, Backoff: eventbus.Backoff{First: time.Second, Factor: 2, Maximum: time.Minute, Jitter: 0.5}}
	subscription, err := contracts.SubscribeFriendshipStatusChangedV1(ctx, bus,
		func(_ context.Context, change contracts.FriendshipStatusChangedV1, meta eventbus.EventContext) error {
			if *flaky && meta.Attempt == 1 {
				fmt.Printf("attempt 1 of %s failed; retried in about 1 s\n", meta.ID)
				return errFlaky // retried: attempt 2 after about 1 s, attempt 3 after 2 s, then parked
			}
			fmt.Printf("%s %s <-> %s: %s -> %s (score %.1f, %s)\n", change.ChangedAt.UTC().Format("2006-01-02T15:04:05Z"),
				change.UserA, change.UserB, change.PreviousStatus, change.Status, change.Score, change.Cause)
			if atomic.AddInt64(&seen, 1) == *max {
				cancel()
			}
			return nil
		}, eventbus.SubscribeOptions{Retry: &retry, Timeout: 10 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	fmt.Printf("waiting for friendship status changes on %s\n", subscription.Queue)

	if *remindAfter > 0 {
		reminder := contracts.FriendshipStatusChangedV1{
			UserA: "u_1842", UserB: "u_3300", PreviousStatus: "friend", Status: "acquaintance",
			Score: 38.2, Cause: "decay", ChangedAt: time.Now().UTC().Truncate(time.Second),
		}
		id, err := contracts.PublishFriendshipStatusChangedV1(ctx, bus, reminder, eventbus.PublishOptions{Delay: *remindAfter})
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		fmt.Printf("published %s, due in %s\n", id, *remindAfter)
	}

	// Run serves until SIGTERM or SIGINT (or cancel, after -max events), then lets handlers in
	// flight finish and closes.
	if err := bus.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	fmt.Printf("printed %d status changes\n", atomic.LoadInt64(&seen))
}
