// A Go analytics service in miniature: it consumes context.friendship.status_changed.v1 with the
// generated Go module and prints every change of a pair's friendship status.
//
//	go run . -service analytics -max 10
//
// EVENTBUS_URL points at the broker (default: local RabbitMQ). Invalid deliveries never reach the
// handler: the generated consumer parks them in <service>.<type>.dlq with the reason.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	contracts "eventbus.example/contracts"
)

func main() {
	service := flag.String("service", "analytics", "service name: the queue is <service>.context.friendship.status_changed.v1")
	max := flag.Int64("max", 0, "stop after this many events (0: run until interrupted)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	bus, err := contracts.Connect(ctx, contracts.Options{Service: *service, URL: os.Getenv("EVENTBUS_URL")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(3)
	}
	defer bus.Close()

	var seen int64
	subscription, err := contracts.SubscribeFriendshipStatusChangedV1(ctx, bus,
		func(_ context.Context, change contracts.FriendshipStatusChangedV1, meta contracts.EventContext) error {
			fmt.Printf("%s %s <-> %s: %s -> %s (score %.1f, %s)\n", change.ChangedAt.UTC().Format("2006-01-02T15:04:05Z"),
				change.UserA, change.UserB, change.PreviousStatus, change.Status, change.Score, change.Cause)
			if atomic.AddInt64(&seen, 1) == *max {
				cancel()
			}
			return nil
		}, contracts.SubscribeOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	fmt.Printf("waiting for friendship status changes on %s\n", subscription.Queue)
	<-subscription.Done()
	fmt.Printf("printed %d status changes\n", atomic.LoadInt64(&seen))
}
