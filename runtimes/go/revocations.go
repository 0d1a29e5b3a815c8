package eventbus

import (
	"time"

	"github.com/gomodule/redigo/redis"
	amqp "github.com/rabbitmq/amqp091-go"
)

// Cancel and revoke at dispatch (docs/wire-format.md, "Cancel and revoke"): cancel(workflow)
// and revoke(event id) set eventbus:revoked:<id> in Redis. A bus with Options.RevocationsURL
// checks, before it runs a delivery that carries eventbus-workflow-id or eventbus-deliver-at,
// whether the workflow or the event is revoked, in one EXISTS with both keys; a revoked
// delivery is acked and dropped without running or forwarding anything. Other deliveries cost
// no lookup. A store that cannot answer never drops anything: the delivery goes back to its
// queue after a pause.

// RevokedPrefix is the revocation store's key prefix.
const RevokedPrefix = "eventbus:revoked:"

const revocationTimeout = 2 * time.Second

type revocations struct{ pool *redis.Pool }

func newRevocations(url string) *revocations {
	return &revocations{pool: &redis.Pool{
		MaxIdle: 8, IdleTimeout: time.Minute,
		Dial: func() (redis.Conn, error) {
			return redis.DialURL(url, redis.DialConnectTimeout(revocationTimeout),
				redis.DialReadTimeout(revocationTimeout), redis.DialWriteTimeout(revocationTimeout))
		},
	}}
}

// needsCheck says whether a delivery is one that may have been revoked.
func needsCheck(headers amqp.Table) bool {
	_, step := headers[WorkflowHeader]
	_, delayed := headers[DeliverAtHeader]
	return step || delayed
}

// revoked says whether any of ids (empty ones skipped) is revoked.
func (r *revocations) revoked(ids ...string) (bool, error) {
	keys := make([]interface{}, 0, len(ids))
	for _, id := range ids {
		if id != "" {
			keys = append(keys, RevokedPrefix+id)
		}
	}
	if len(keys) == 0 {
		return false, nil
	}
	conn := r.pool.Get()
	defer conn.Close()
	found, err := redis.Int(conn.Do("EXISTS", keys...))
	return found > 0, err
}

func (r *revocations) close() error { return r.pool.Close() }
