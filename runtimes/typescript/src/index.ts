/**
 * @eventbus/runtime: CloudEvents over RabbitMQ for Node, at parity with the eventbus Python SDK
 * (same wire format, queue arguments, retry/delay/park topology and `eventbus-` headers). The
 * generated contract packages import it; see docs/runtime-typescript.md.
 */
export { DEFAULT_URL, EventBus } from "./bus.js";
export type { BusOptions, PublishOptions, RequestOptions, SubscribeOptions, SubscriptionHandle } from "./bus.js";
export { redactUrl } from "./connection.js";
export { defineContract } from "./contract.js";
export type { ContractSpec, EventContract } from "./contract.js";
export type { EventContext, Middleware, MiddlewareContext } from "./context.js";
export type { Handler } from "./consumer.js";
export {
  DELAY_LEVELS,
  DELAY_PREFIX,
  DELIVER_EXCHANGE,
  delayRoute,
  delayTicks,
  delayTopology,
  landingQueue,
  levelName,
  MAX_DELAY_MS,
  targetBindingKey,
  TICK_MS,
  UNROUTABLE_QUEUE,
} from "./delay.js";
export type { Binding, DelayRoute, DelayTopology, ExchangeSpec } from "./delay.js";
export { buildHeaders, formatTime, HEADER_PREFIX, JSON_CONTENT_TYPE, parseEnvelope, SPECVERSION, STRUCTURED_CONTENT_TYPE } from "./envelope.js";
export type { CloudEventAttributes, IncomingEnvelope } from "./envelope.js";
export {
  ConfigurationError,
  ConnectionFailedError,
  ContractError,
  EnvelopeError,
  EventBusError,
  EventValidationError,
  HandlerControl,
  HandlerTimeoutError,
  ParkMessage,
  PublishError,
  PublishNackedError,
  PublishTimeoutError,
  RemoteTaskError,
  RequestTimeoutError,
  RetryLater,
  TopologyError,
  TopologyMismatchError,
  UnroutableError,
} from "./errors.js";
export type { SchemaViolation } from "./errors.js";
export type { JsonValue } from "./json.js";
export { checkRaw, decodeUtf8, DEFAULT_LIMITS, inputLimits, loadJson } from "./limits.js";
export type { InputLimits } from "./limits.js";
export { SILENT_LOGGER } from "./logger.js";
export type { Logger } from "./logger.js";
export {
  ATTEMPT_HEADER,
  attemptOf,
  DELIVER_AT_HEADER,
  ERROR_HEADER,
  ERROR_TYPE_HEADER,
  FIRST_FAILURE_HEADER,
  LAST_FAILURE_HEADER,
  ORIGINAL_EXCHANGE_HEADER,
  ORIGINAL_QUEUE_HEADER,
  ORIGINAL_ROUTING_KEY_HEADER,
  PARKED_AT_HEADER,
  parkHeaders,
  REASON_HEADER,
  RETRY_DELAY_HEADER,
  retryHeaders,
  TRACEBACK_HEADER,
} from "./parking.js";
export type { ParkReason } from "./parking.js";
export { DEFAULT_RETRY, failureReason, RetryPolicy } from "./retry.js";
export type { ErrorMatcher, Retry, RetryOptions } from "./retry.js";
export {
  consumerQueueName,
  deadLetterQueueName,
  DEFAULT_DELIVERY_LIMIT,
  describeMismatch,
  queueSpecs,
  SAFETY_NET_ARGUMENTS,
  withoutSafetyNet,
} from "./topology.js";
export type { QueueSpec, QueueType } from "./topology.js";
export { DIRECT_REPLY_TO } from "./publisher.js";
export { isKnownContract, lookupContract, registerContract } from "./contract.js";
export { errorReply, okReply, readReply, REPLY_STATUS_HEADER } from "./replies.js";
export type { RequestProperties } from "./replies.js";
export { isTaskResult, result } from "./results.js";
export type { HandlerResult, TaskResult } from "./results.js";
export { RedisRevocations, REVOKED_PREFIX, revocationKeys } from "./revocations.js";
export type { RevocationStore } from "./revocations.js";
export {
  advance,
  encodeSlip,
  frameFromJson,
  frameToJson,
  MAX_SLIP_BYTES,
  MAX_SLIP_DEPTH,
  parseSlip,
  reportId,
  SLIP_HEADER,
  SlipError,
  STEP_HEADER,
  stepBody,
  stepEventId,
  StepResultError,
  WORKFLOW_HEADER,
  WORKFLOW_NAMESPACE,
} from "./slip.js";
export type { Action, Frame, GroupFrame, JoinAction, JoinFrame, PublishAction, Slip, StepFrame, StepInput } from "./slip.js";
export { completedReport, failedReport, readStep, REPORTS_EXCHANGE, STEP_COMPLETED_TYPE, stepMessages, WORKFLOW_FAILED_TYPE } from "./steps.js";
export type { Completed, StepInfo, WorkflowFailure } from "./steps.js";
