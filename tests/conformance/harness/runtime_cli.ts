/**
 * The Node runtime's side of the cross-language runtime tests: a worker and a publisher with the
 * command lines every language's harness shares (the Go harness implements the same), so one test
 * can run Python, Node and Go replicas side by side.
 *
 *   worker --url URL --service NAME --event TYPE --behaviour ok|fail:N|always-fail
 *          --max-attempts M --first-delay-ms D --factor F --count C [--timeout-s T]
 *          [--jitter J] [--handler-ms H] [--prefetch P]
 *     prints {"lang":"node","id":…,"attempt":…,"at_ms":…,"ok":true|false} per handler call and
 *     exits 0 once C events were handled successfully or parked (or on SIGTERM, after a graceful
 *     close); 2 when T seconds passed first. "ready" goes to stderr once it consumes.
 *
 *   publish --url URL --service NAME --event TYPE --data-file F --count C [--delay-ms D] [--pace-ms P]
 *     prints {"published":N,"at_ms":…} (at_ms: before the first publish) then one line per
 *     confirmed event id; every failed publish is a {"failed":id,"error":…} line on stderr and
 *     makes the exit status 1; {"republished":N} on stderr counts publishes sent again after their
 *     connection was lost before the confirm.
 */
import { readFileSync } from "node:fs";

import { CONTRACTS, EventBus, type EventContract } from "../pkg/src/index.js";

function print(record: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

function flags(argv: readonly string[]): Map<string, string> {
  const found = new Map<string, string>();
  for (let index = 0; index < argv.length; index += 2) {
    if (!argv[index].startsWith("--") || index + 1 >= argv.length) throw new Error(`bad argument ${argv[index]}`);
    found.set(argv[index].slice(2), argv[index + 1]);
  }
  return found;
}

function need(options: Map<string, string>, name: string): string {
  const value = options.get(name);
  if (value === undefined) throw new Error(`--${name} is required`);
  return value;
}

function contractOf(type: string): EventContract<unknown> {
  const contract = (CONTRACTS as Readonly<Record<string, EventContract<unknown>>>)[type];
  if (contract === undefined) throw new Error(`unknown event type ${type}`);
  return contract;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function worker(argv: readonly string[]): Promise<number> {
  const options = flags(argv);
  const behaviour = need(options, "behaviour");
  const failures = behaviour === "always-fail" ? Infinity : behaviour.startsWith("fail:") ? Number(behaviour.slice(5)) : 0;
  if (behaviour !== "ok" && !(failures > 0)) throw new Error(`bad --behaviour ${behaviour}`);
  const maxAttempts = Number(need(options, "max-attempts"));
  const count = Number(need(options, "count"));
  const handlerMs = Number(options.get("handler-ms") ?? "0");
  const bus = await EventBus.connect({
    url: need(options, "url"),
    service: need(options, "service"),
    prefetch: Number(options.get("prefetch") ?? "100"),
    reconnectWindowMs: 30_000,
  });
  const done = new Set<string>();
  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => (finish = resolve));
  await bus.subscribe(
    contractOf(need(options, "event")),
    async (_event, context) => {
      const atMs = Date.now();
      const ok = context.attempt > failures;
      print({ lang: "node", id: context.id, attempt: context.attempt, at_ms: atMs, ok });
      if (handlerMs > 0) await sleep(handlerMs);
      if (ok || context.attempt >= maxAttempts) {
        done.add(context.id); // handled, or parked by the runtime once this attempt fails
        if (done.size >= count) finish(0);
      }
      if (!ok) throw new Error(`induced failure on attempt ${context.attempt}`);
    },
    {
      retry: {
        maxAttempts,
        firstDelay: Number(need(options, "first-delay-ms")),
        factor: Number(need(options, "factor")),
        jitter: Number(options.get("jitter") ?? "0.5"),
      },
    },
  );
  process.stderr.write(`${JSON.stringify({ lang: "node", ready: true })}\n`);
  void bus.closeOnSignals(["SIGTERM"]).then(() => finish(0)); // the runtime's own graceful shutdown
  const timeout = options.get("timeout-s");
  if (timeout !== undefined) setTimeout(() => finish(2), Number(timeout) * 1000).unref();
  const code = await finished;
  await bus.close(5_000); // in-flight handlers finish, their retry or park copies are confirmed (idempotent)
  return code;
}

export async function publish(argv: readonly string[]): Promise<number> {
  const options = flags(argv);
  const contract = contractOf(need(options, "event"));
  const data = contract.check(JSON.parse(readFileSync(need(options, "data-file"), "utf8")));
  const count = Number(need(options, "count"));
  const delay = options.get("delay-ms");
  const paceMs = Number(options.get("pace-ms") ?? "0");
  let republished = 0;
  const quiet = (): void => undefined;
  const logger = { debug: quiet, info: quiet, error: quiet, warn: (message: string) => (republished += message.startsWith("confirm lost") ? 1 : 0) };
  const bus = await EventBus.connect({ url: need(options, "url"), service: need(options, "service"), reconnectWindowMs: 30_000, logger });
  const atMs = Date.now();
  const outcomes: Promise<[string, unknown]>[] = [];
  try {
    for (let index = 0; index < count; index++) {
      const id = `${atMs.toString(36)}-${index}-${Math.random().toString(36).slice(2, 8)}`;
      outcomes.push(
        bus.publish(contract, data, { id, delayMs: delay === undefined ? undefined : Number(delay) }).then(
          () => [id, undefined],
          (error: unknown) => [id, error],
        ),
      );
      if (paceMs > 0) await sleep(paceMs);
    }
    const settled = await Promise.all(outcomes);
    const confirmed = settled.filter(([, error]) => error === undefined).map(([id]) => id);
    print({ published: confirmed.length, at_ms: atMs });
    for (const id of confirmed) process.stdout.write(`${id}\n`);
    for (const [id, error] of settled) {
      if (error !== undefined) process.stderr.write(`${JSON.stringify({ failed: id, error: String(error) })}\n`);
    }
    process.stderr.write(`${JSON.stringify({ republished })}\n`); // confirms lost with a connection, sent again
    return confirmed.length === count ? 0 : 1;
  } finally {
    await bus.close();
  }
}
