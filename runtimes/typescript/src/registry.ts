/**
 * The contracts this process knows, by event type. Every contract made with `defineContract` (so
 * every contract of a generated package, as soon as it is imported) is registered here; a workflow
 * step's slip may only name contracts found here, because each next step's body is validated
 * against its contract before it is published (docs/wire-format.md, "Bad slips").
 */
import type { EventContract } from "./contract.js";

const contracts = new Map<string, EventContract<unknown>>();

/** Make `contract` known by its type (the last registration of a type wins). */
export function registerContract<T>(contract: EventContract<T>): EventContract<T> {
  contracts.set(contract.type, contract);
  return contract;
}

/** The contract of `type` known in this process, or undefined. */
export function lookupContract(type: string): EventContract<unknown> | undefined {
  return contracts.get(type);
}

/** Whether a contract of `type` is known in this process. */
export function isKnownContract(type: string): boolean {
  return contracts.has(type);
}
