/**
 * A workflow step's messages, with no I/O (docs/wire-format.md, "Workflows: the routing slip"), the
 * same as the Python SDK's (eventbus/workflows/_forward.py, _reports.py):
 *
 * - `readStep`: the step headers of a delivery and its slip, parsed strictly before the handler runs
 *   (a bad one is parked `invalid_slip`);
 * - `stepMessages`: `advance`'s Publish actions as messages, each body validated against its step's
 *   contract first, so a result that does not fit fails the step that produced it
 *   (`workflow_result_invalid`), never the next one half-way;
 * - `completedReport` / `failedReport`: the reports on the topic exchange `eventbus.workflow`
 *   (confirmed, not mandatory), with deterministic ids.
 */
import { isKnownContract, lookupContract } from "./contract.js";
import type { JsonValue } from "./json.js";
import { wrapEncoded } from "./outgoing.js";
import type { OutgoingMessage } from "./publisher.js";
import {
  type Action,
  encodeSlip,
  frameToJson,
  type JoinAction,
  parseSlip,
  reportId,
  SLIP_HEADER,
  type Slip,
  SlipError,
  STEP_HEADER,
  stepEventId,
  StepResultError,
  WORKFLOW_HEADER,
} from "./slip.js";

export const REPORTS_EXCHANGE = "eventbus.workflow";
export const STEP_COMPLETED_TYPE = "eventbus.workflow.step_completed.v1";
export const WORKFLOW_FAILED_TYPE = "eventbus.workflow.failed.v1";

/**
 * The workflow headers of one delivery, read as Python reads them (eventbus/workflows/_runtime.py): a
 * missing or empty id or step reads as "unknown"; `error` when the step must be parked `invalid_slip`.
 */
export interface StepInfo {
  readonly workflowId: string;
  readonly step: string;
  readonly slip?: Slip;
  readonly error?: SlipError;
}

function text(value: unknown): string {
  if (Buffer.isBuffer(value)) return value.toString("utf8");
  return typeof value === "string" ? value : "";
}

/**
 * The step a delivery is, or undefined when it is none: a delivery is a step when it carries
 * `eventbus-workflow-id` or `eventbus-workflow-slip`. Its slip is parsed strictly, naming only contracts
 * known here; a step without its id, step id or slip, or with a bad slip, has `error`.
 */
export function readStep(headers: Readonly<Record<string, unknown>>, known: (type: string) => boolean = isKnownContract): StepInfo | undefined {
  if (!(WORKFLOW_HEADER in headers) && !(SLIP_HEADER in headers)) return undefined;
  const workflowId = text(headers[WORKFLOW_HEADER]);
  const step = text(headers[STEP_HEADER]);
  const missing = [WORKFLOW_HEADER, STEP_HEADER, SLIP_HEADER].filter((name) => !(name in headers) || (name !== SLIP_HEADER && text(headers[name]) === ""));
  if (missing.length > 0) return { workflowId: workflowId || "unknown", step: step || "unknown", error: new SlipError(`a workflow step without ${missing.join(", ")}`) };
  try {
    return { workflowId, step, slip: parseSlip(headers[SLIP_HEADER], known) };
  } catch (error) {
    if (error instanceof SlipError) return { workflowId, step, error };
    throw error;
  }
}

/** The messages of `actions`' publishes (validated, with step ids and slips), and its join. */
export function stepMessages(actions: readonly Action[], workflowId: string, source: string): { messages: OutgoingMessage[]; join?: JoinAction } {
  const messages: OutgoingMessage[] = [];
  let join: JoinAction | undefined;
  for (const action of actions) {
    if (action.kind === "join") {
      join = action;
      continue;
    }
    const frame = action.frame;
    const contract = lookupContract(frame.type);
    if (contract === undefined) throw new StepResultError(`step ${frame.step}: contract ${frame.type} is not known here`);
    const problems = contract.violations(action.body);
    if (problems.length > 0) {
      const detail = problems.slice(0, 5).map((p) => `${p.instancePath}: ${p.message}`).join("; ");
      throw new StepResultError(`the input of step ${frame.step} breaks ${frame.type}: ${detail}`);
    }
    const headers = { [WORKFLOW_HEADER]: workflowId, [STEP_HEADER]: frame.step, [SLIP_HEADER]: encodeSlip(action.slip) };
    const message = wrapEncoded(contract, Buffer.from(JSON.stringify(action.body), "utf8"), { source, id: stepEventId(workflowId, frame.step), headers });
    messages.push({ ...message, exchange: frame.exchange, routingKey: frame.routingKey });
  }
  return { messages, join };
}

function report(type: string, name: string, id: string, data: Record<string, JsonValue>, source: string): OutgoingMessage {
  const kind = { type, exchange: REPORTS_EXCHANGE, routingKey: type, schemaId: `https://eventbus.dev/schemas/workflow/${name}.v1.schema.json` };
  return wrapEncoded(kind, Buffer.from(JSON.stringify(data), "utf8"), { source, id, mandatory: false });
}

export interface Completed {
  readonly workflowId: string;
  readonly step: string;
  readonly type: string;
  readonly attempt: number;
  readonly startedAt: Date;
  readonly finishedAt?: Date;
  readonly resultType: string | null;
  readonly join?: JoinAction;
}

/** The `step_completed` report of a step (with its join, when its result belongs to one). */
export function completedReport(completed: Completed, source: string): OutgoingMessage {
  const join = completed.join;
  const data: Record<string, JsonValue> = {
    workflow_id: completed.workflowId,
    step: completed.step,
    type: completed.type,
    attempt: completed.attempt,
    started_at: completed.startedAt.toISOString(),
    finished_at: (completed.finishedAt ?? new Date()).toISOString(),
    result_type: completed.resultType,
    join:
      join === undefined
        ? null
        : { group: join.frame.join, index: join.frame.index, size: join.frame.size, result: join.result, next: join.next.map(frameToJson), on_error: join.onError.map(frameToJson) },
  };
  return report(STEP_COMPLETED_TYPE, "step_completed", reportId(completed.workflowId, completed.step, "completed"), data, source);
}

/** The data of `eventbus.workflow.failed.v1`: also the input of the workflow's `on_error` steps. */
export interface WorkflowFailure {
  readonly workflow_id: string;
  readonly step: string;
  readonly type: string;
  readonly message_id: string;
  readonly attempt: number;
  readonly reason: string;
  readonly error_type: string;
  readonly error: string;
  readonly queue: string;
  readonly failed_at: string;
}

/** The `failed` report of a parked step (the public `workflow.failed` event). */
export function failedReport(failure: WorkflowFailure, source: string): OutgoingMessage {
  return report(WORKFLOW_FAILED_TYPE, "failed", reportId(failure.workflow_id, failure.step, "failed"), { ...failure }, source);
}
