/**
 * The Node side of tests/conformance/test_workflows_node.py, built on the workflow demo's generated
 * package (examples/workflows/generated/typescript) and the runtime:
 *
 *   worker URL SERVICE [--revocations REDIS_URL] [--single-active]
 *     runs the demo's Node steps: tasks.wfdemo.notify.v1 → a tasks.wfdemo.record.v1 result (trail +
 *     ["node"], a message), tasks.wfdemo.square.v1 → a tasks.wfdemo.squared.v1 result (throws when
 *     `fail` is true; one attempt); with --single-active the square queue is declared with
 *     singleActiveConsumer. Prints "ready" once it consumes; closes on SIGTERM.
 *
 *   request URL TYPE DATA_JSON REPLY_TYPE|- TIMEOUT_MS
 *     one request; prints {"ok":true,"data":…} or {"error":NAME,"remoteType":…,"remoteMessage":…}.
 */
import {
  CONTRACTS, EventBus, type EventContract, RemoteTaskError, result, subscribeNotifyV1, subscribeSquareV1,
  WFDEMO_RECORD_V1, WFDEMO_SQUARED_V1,
} from "../pkg/src/index.js";

function print(record: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

function contractOf(type: string): EventContract<unknown> {
  const contract = (CONTRACTS as Readonly<Record<string, EventContract<unknown>>>)[type];
  if (contract === undefined) throw new Error(`unknown event type ${type}`);
  return contract;
}

async function worker(url: string, service: string, rest: readonly string[]): Promise<void> {
  const at = rest.indexOf("--revocations");
  const bus = await EventBus.connect({
    url, service, revocationsUrl: at === -1 ? undefined : rest[at + 1], revocationsTimeoutMs: 2_000,
    logger: { debug: () => undefined, info: (m, f) => console.error(m, JSON.stringify(f ?? {})), warn: (m, f) => console.error(m, JSON.stringify(f ?? {})), error: (m, f) => console.error(m, JSON.stringify(f ?? {})) },
  });
  const once = { retry: { maxAttempts: 1 } };
  await subscribeNotifyV1(bus, (task) =>
    result(WFDEMO_RECORD_V1, { user_id: task.user_id, points: task.points, message: `${task.user_id} has ${task.points} points`, trail: [...task.trail, "node"] }), once);
  await subscribeSquareV1(bus, (task) => {
    if (task.fail === true) throw new Error(`square ${task.n} failed on purpose`);
    return result(WFDEMO_SQUARED_V1, { n: task.n, square: task.n * task.n });
  }, { ...once, singleActiveConsumer: rest.includes("--single-active") });
  console.error("ready");
  await bus.closeOnSignals();
}

async function request(url: string, type: string, data: string, replyType: string, timeoutMs: number): Promise<void> {
  const bus = await EventBus.connect({ url, service: "node-caller" });
  try {
    const reply = replyType === "-" ? undefined : contractOf(replyType);
    const answer = reply === undefined
      ? await bus.request(contractOf(type), JSON.parse(data), { timeoutMs })
      : await bus.request(contractOf(type), JSON.parse(data), { reply, timeoutMs });
    print({ ok: true, data: answer ?? null });
  } catch (error) {
    if (error instanceof RemoteTaskError) print({ error: error.name, remoteType: error.remoteType, remoteMessage: error.remoteMessage });
    else print({ error: error instanceof Error ? error.name : String(error), message: String(error) });
  } finally {
    await bus.close(1_000);
  }
}

const [mode, ...args] = process.argv.slice(2);
if (mode === "worker") await worker(args[0], args[1], args.slice(2));
else if (mode === "request") await request(args[0], args[1], args[2], args[3], Number(args[4]));
else throw new Error(`unknown mode ${mode}`);
