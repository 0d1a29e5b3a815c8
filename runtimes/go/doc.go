// Package eventbus is the Go runtime of eventbus: typed CloudEvents over RabbitMQ, at parity
// with the Python SDK on the wire and on the broker, so Python, Node and Go replicas of one
// service share one queue.
//
// Generated contract modules (eventbus codegen go) hold the event structs, their embedded JSON
// Schemas and thin typed wrappers; everything else lives here:
//
//   - publishing with windowed publisher confirms tracked by delivery tag, mandatory routing
//     (an unroutable or nacked publish is an error), batches (PublishMany) and delays (0 s to
//     7 days, through the shared delay queues);
//   - consuming with a pool of goroutines bounded by the prefetch, handler time limits,
//     retries with exponential backoff and jitter through the delay queues, and a dead-letter
//     queue (<queue>.dlq) for what cannot be handled, with the same eventbus- headers as Python;
//   - reconnection with backoff that re-declares the topology and restores consumers, and a
//     graceful shutdown on SIGTERM (Bus.Run).
//
// A minimal service:
//
//	bus, err := eventbus.Connect(ctx, eventbus.Options{Service: "analytics"})
//	_, err = eventbus.Subscribe(ctx, bus, contracts.FriendshipStatusChangedV1Contract,
//		func(ctx context.Context, event contracts.FriendshipStatusChangedV1, meta eventbus.EventContext) error {
//			return nil // or eventbus.RetryLater(30*time.Second), or eventbus.Park("reason")
//		}, eventbus.SubscribeOptions{})
//	err = bus.Run(ctx) // until SIGTERM or SIGINT, then drains
package eventbus
