/**
 * One error tree, mirroring the Python SDK's (eventbus/_exceptions.py), so a log line or an alert
 * reads the same whichever language raised it:
 *
 *   EventBusError
 *   ├── ConfigurationError         bad settings or arguments, caught before touching the broker
 *   ├── ContractError              an event type no contract here describes
 *   ├── EventValidationError       data that breaks its contract (violations list every reason)
 *   ├── EnvelopeError              missing or malformed CloudEvents attributes, or bad JSON (reason: a stable code)
 *   ├── TopologyError              a declaration the broker refused
 *   │   └── TopologyMismatchError  an existing queue/exchange has other arguments (the difference is named)
 *   ├── ConnectionFailedError      no broker answered within the bound
 *   ├── PublishError               a publish not known to be safely on a queue
 *   │   ├── UnroutableError        returned by the broker (mandatory, no queue bound)
 *   │   ├── PublishNackedError     negatively confirmed
 *   │   └── PublishTimeoutError    no confirm in time (never raised for a confirm that arrived)
 *   └── HandlerTimeoutError        a handler ran past its time limit (a failed attempt)
 *
 *   HandlerControl                 thrown by a handler on purpose (not failures)
 *   ├── ParkMessage                "dead-letter this now"
 *   └── RetryLater                 "try again in N ms" (counts as an attempt)
 */

export class EventBusError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class ConfigurationError extends EventBusError {}

export class ContractError extends EventBusError {}

/** One reason a value breaks its JSON Schema: where in the data, where in the schema, why. */
export interface SchemaViolation {
  readonly instancePath: string;
  readonly schemaPath: string;
  readonly message: string;
}

function describe(violation: SchemaViolation): string {
  return `${violation.instancePath || "/"}: ${violation.message} (schema ${violation.schemaPath})`;
}

export class EventValidationError extends EventBusError {
  readonly reason = "schema_invalid";
  constructor(
    readonly eventType: string,
    readonly violations: readonly SchemaViolation[],
  ) {
    const more = violations.length > 5 ? ` (+${violations.length - 5} more)` : "";
    super(`${eventType}: ${violations.slice(0, 5).map(describe).join("; ")}${more}`);
  }
}

/** A delivery that cannot be an event of ours; `reason` is the stable code the DLQ shows. */
export class EnvelopeError extends EventBusError {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export class TopologyError extends EventBusError {}

/** An existing entity was declared before with other arguments; `detail` says which and how. */
export class TopologyMismatchError extends TopologyError {
  constructor(
    readonly entity: string,
    readonly detail: string,
  ) {
    super(`${entity} already exists with other arguments: ${detail}`);
  }
}

export class ConnectionFailedError extends EventBusError {}

export class PublishError extends EventBusError {
  constructor(
    message: string,
    readonly eventType?: string,
    readonly eventId?: string,
  ) {
    super(message);
  }
}

export class UnroutableError extends PublishError {}
export class PublishNackedError extends PublishError {}
export class PublishTimeoutError extends PublishError {}

export class HandlerTimeoutError extends EventBusError {
  constructor(
    readonly limitMs: number,
    readonly eventType?: string,
    readonly eventId?: string,
  ) {
    super(`handler for ${eventType ?? "event"} ${eventId ?? ""} ran past its ${limitMs / 1000}s time limit`);
  }
}

/**
 * The handler of a request failed for good on the responder's side (its last attempt, or the
 * request was parked): `remoteType` is the responder's exception type (Python: `module.Class`, Node:
 * the error's name) and `remoteMessage` its message, as in the responder's parked copy.
 */
export class RemoteTaskError extends EventBusError {
  constructor(
    readonly remoteType: string,
    readonly remoteMessage: string,
    readonly eventType?: string,
    readonly eventId?: string,
  ) {
    super(`${eventType ?? "request"} ${eventId ?? ""} failed remotely: ${remoteType}: ${remoteMessage}`);
  }
}

/** No reply to a request within its timeout; nothing of it is left on the broker (direct reply-to). */
export class RequestTimeoutError extends EventBusError {
  constructor(
    readonly timeoutMs: number,
    readonly eventType?: string,
    readonly eventId?: string,
  ) {
    super(`no reply to ${eventType ?? "request"} ${eventId ?? ""} within ${timeoutMs / 1000}s`);
  }
}

/** Thrown by a handler on purpose to steer what happens to the message; not a failure. */
export class HandlerControl extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Throw from a handler to send the message to the dead-letter queue at once, with this reason. */
export class ParkMessage extends HandlerControl {
  constructor(reason = "parked_by_handler") {
    super(reason, reason);
  }
}

/**
 * Throw from a handler to try the message again after `delayMs`. It counts as a failed attempt:
 * after the handler's `maxAttempts` the message is parked, so nothing is postponed forever.
 */
export class RetryLater extends HandlerControl {
  readonly delayMs: number;
  constructor(delayMs: number, reason = "retry_requested") {
    if (!(delayMs >= 0)) throw new RangeError(`RetryLater delay must not be negative, got ${delayMs} ms`);
    super(reason, `${reason}: retry in ${delayMs / 1000}s`);
    this.delayMs = delayMs;
  }
}
