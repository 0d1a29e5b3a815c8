/**
 * A handler's typed result. A handler that has a result returns `result(CONTRACT, data)`: the data of
 * an event of that contract, named by the contract so the runtime can validate it, send it as the
 * `ok` reply of a request (a CloudEvent of that contract) and hand it to the next workflow step. A
 * handler with no result returns nothing, as before; the generated `subscribe…` wrappers take both.
 *
 *   await subscribeSquareV1(bus, (task) => result(WFDEMO_SQUARED_V1, { n: task.n, square: task.n ** 2 }));
 */
import type { EventContract } from "./contract.js";

const RESULT = Symbol("eventbus.result");

/** The data of one event of `contract`: what a handler returns as its result. */
export interface TaskResult<T = unknown> {
  readonly contract: EventContract<T>;
  readonly data: T;
  readonly [RESULT]: true;
}

/** What a handler may return: nothing, or a typed result. */
export type HandlerResult = void | undefined | TaskResult<unknown>;

/** A handler's result: `data` as an event of `contract` (validated when it is used). */
export function result<T>(contract: EventContract<T>, data: T): TaskResult<T> {
  return { contract, data, [RESULT]: true };
}

/** Whether `value` was made by `result()`. */
export function isTaskResult(value: unknown): value is TaskResult<unknown> {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[RESULT] === true;
}
