// The Node runtime (@eventbus/runtime) beside raw amqplib, in the same run, as ratios.
//
//   (cd runtimes/typescript && npm ci && npm run build)
//   node bench/node_runtime.mjs [--count 10000] [--rounds 3] [--window 500] [--prefetch 200]
//
// Publish: the runtime's publishMany (schema validation, CloudEvents headers, mandatory, confirms
// tracked per message, up to --window unconfirmed) against a raw amqplib ConfirmChannel publishing
// the same prebuilt bytes and headers with the same window. Consume: the runtime's subscribe (raw
// limits, envelope, duplicate-key and int64 checks, Ajv validation, context, time limit, ack)
// against raw amqplib acking every delivery without looking at it, same prefetch. Rounds are
// interleaved; medians and ratios are printed, then the runtime's CPU µs per message and the
// per-step costs measured without a broker ("where the time goes"). The event is the real
// chat.conversation.ended.v1 contract (about 735 bytes) on the private exchange bench.node.
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const runtimeDir = join(root, "runtimes", "typescript");
const runtime = await import(join(runtimeDir, "dist", "index.js"));
const amqp = createRequire(join(runtimeDir, "package.json"))("amqplib");

const option = (name, fallback) => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};
const COUNT = option("count", 10_000);
const ROUNDS = option("rounds", 3);
const WINDOW = option("window", 500);
const PREFETCH = option("prefetch", 200);
const BROKER = process.env.EVENTBUS_URL ?? "amqp://guest:guest@127.0.0.1:5672/%2F";
const EXCHANGE = "bench.node";
const TYPE = "chat.conversation.ended.v1";

// -- the contract, compiled from the contract files as the generated package embeds them --------

function schemas(dir, found = {}) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) schemas(path, found);
    else if (name.endsWith(".schema.json")) {
      const schema = JSON.parse(readFileSync(path, "utf8"));
      found[schema.$id] = schema;
    }
  }
  return found;
}
const SCHEMAS = schemas(join(root, "contracts"));
const real = Object.values(SCHEMAS).find((schema) => schema["x-eventbus"]?.type === TYPE);
const contract = runtime.defineContract({ type: TYPE, exchange: EXCHANGE, routingKey: TYPE, schemaId: real.$id }, SCHEMAS);

function makeEvents(count) {
  const event = (n, participants) => {
    const people = Array.from({ length: participants }, (_, k) => `user_${String(k).padStart(5, "0")}`);
    return {
      ...real.examples[0],
      conversation_id: `conv_bench_${String(n).padStart(8, "0")}_${randomUUID().replaceAll("-", "").slice(0, 20)}`,
      participants: people,
      messages_by_participant: Object.fromEntries(people.map((p, i) => [p, 10 + i])),
      message_count: people.reduce((sum, _, i) => sum + 10 + i, 0),
    };
  };
  let participants = 2;
  while (JSON.stringify(event(0, participants)).length < 735) participants++;
  return Array.from({ length: count }, (_, n) => event(n, participants));
}

// -- raw amqplib --------------------------------------------------------------------------------

function rawMessages(events) {
  return events.map((event) => {
    const id = randomUUID();
    const headers = runtime.buildHeaders({ id, source: "/services/bench", type: TYPE, time: new Date().toISOString(), dataschema: real.$id });
    return { body: Buffer.from(JSON.stringify(event)), options: { contentType: "application/json", deliveryMode: 2, messageId: id, type: TYPE, appId: "/services/bench", timestamp: Math.floor(Date.now() / 1000), headers, mandatory: true } };
  });
}

async function rawPublish(channel, messages, routingKey = TYPE) {
  let inFlight = 0;
  let wake = () => undefined;
  const done = [];
  for (const message of messages) {
    while (inFlight >= WINDOW) await new Promise((resolve) => (wake = resolve));
    inFlight++;
    done.push(
      new Promise((resolve, reject) =>
        channel.publish(EXCHANGE, routingKey, message.body, message.options, (error) => {
          inFlight--;
          wake();
          if (error) reject(error);
          else resolve();
        }),
      ),
    );
  }
  await Promise.all(done);
}

async function rawConsume(connection, queue, count, result) {
  const channel = await connection.createChannel();
  await channel.prefetch(PREFETCH);
  let seen = 0;
  let cpuBefore = 0;
  let started = 0;
  await new Promise((resolve) => {
    void channel.consume(queue, (message) => {
      if (seen === 0) [cpuBefore, started] = [cpu(), performance.now()]; // from the first delivery, as for the runtime
      channel.ack(message);
      if (++seen === count) resolve();
    });
  });
  const seconds = (performance.now() - started) / 1000;
  result.rawConsumeCpuUs = (cpu() - cpuBefore) / (count - 1);
  await channel.close();
  return seconds;
}

// -- one round ------------------------------------------------------------------------------------

async function declareQueue(channel, name) {
  const [main] = runtime.queueSpecs(name);
  await channel.assertQueue(name, { durable: true, arguments: main.arguments });
  await channel.bindQueue(name, EXCHANGE, name); // routed by its own name: publishes of one round reach only it
}

const cpu = () => {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
};

async function round(index, connection, control) {
  const tag = `${process.pid}-${index}`;
  const events = makeEvents(COUNT);
  const result = {};
  const deletions = [];

  // publish: raw
  const rawSink = `bench-node-raw-pub-${tag}`;
  await declareQueue(control, rawSink);
  deletions.push(rawSink);
  const channel = await connection.createConfirmChannel();
  let cpuBefore = cpu();
  let started = performance.now();
  await rawPublish(channel, rawMessages(events), rawSink);
  result.rawPublish = COUNT / ((performance.now() - started) / 1000);
  result.rawPublishCpuUs = (cpu() - cpuBefore) / COUNT;

  // publish: the runtime (a contract whose routing key reaches this round's queue only)
  const sink = `bench-node-rt-pub-${tag}`;
  await declareQueue(control, sink);
  deletions.push(sink);
  const routed = runtime.defineContract({ type: TYPE, exchange: EXCHANGE, routingKey: sink, schemaId: real.$id }, SCHEMAS);
  const bus = await runtime.EventBus.connect({ url: BROKER, service: "bench-node", publishWindow: WINDOW, prefetch: PREFETCH });
  await bus.publish(routed, events[0]); // declarations, once per connection, outside the timing
  cpuBefore = cpu();
  started = performance.now();
  await bus.publishMany(routed, events.slice(1));
  result.runtimePublish = (COUNT - 1) / ((performance.now() - started) / 1000);
  result.runtimePublishCpuUs = (cpu() - cpuBefore) / (COUNT - 1);

  // consume: raw, no validation (the queue the raw publish filled)
  result.rawConsume = (COUNT - 1) / (await rawConsume(connection, rawSink, COUNT, result));

  // consume: the runtime with full validation (its own queue, filled by raw publishes beforehand)
  const service = `bench-node-${tag}`;
  const queue = `${service}.${TYPE}`;
  deletions.push(queue, `${queue}.dlq`);
  await declareQueue(control, queue);
  await rawPublish(channel, rawMessages(events), queue);
  const consumer = await runtime.EventBus.connect({ url: BROKER, service, prefetch: PREFETCH });
  let handled = 0;
  let finish = () => undefined;
  const finished = new Promise((resolve) => (finish = resolve));
  // timed from the first delivery: declaring the queue and the shared delay topology is set-up, not per message
  await consumer.subscribe(contract, () => {
    if (handled++ === 0) [cpuBefore, started] = [cpu(), performance.now()];
    if (handled === COUNT) finish();
  }, { queue, bindingKeys: [queue] });
  await finished;
  result.runtimeConsume = (COUNT - 1) / ((performance.now() - started) / 1000);
  result.runtimeConsumeCpuUs = (cpu() - cpuBefore) / (COUNT - 1);

  await consumer.close();
  await bus.close();
  await channel.close();
  for (const name of deletions) await control.deleteQueue(name).catch(() => undefined);
  return result;
}

// -- where the time goes: per-step costs without a broker ------------------------------------------

function micro() {
  const events = makeEvents(2_000);
  const messages = rawMessages(events);
  const time = (label, fn) => {
    for (let i = 0; i < 2_000; i++) fn(i % events.length); // warm up
    const started = performance.now();
    const n = 20_000;
    for (let i = 0; i < n; i++) fn(i % events.length);
    return [label, ((performance.now() - started) * 1000) / n];
  };
  return [
    time("encode (Ajv validate + JSON.stringify)", (i) => contract.encode(events[i])),
    time("buildHeaders (CloudEvents)", () => runtime.buildHeaders({ id: "x", source: "/s", type: TYPE, time: "2026-01-01T00:00:00Z", dataschema: real.$id })),
    time("checkRaw (size, depth scan)", (i) => runtime.checkRaw(messages[i].body)),
    time("parseEnvelope (headers)", (i) => runtime.parseEnvelope(messages[i].options.headers, "application/json", messages[i].body)),
    time("loadJson (UTF-8, parse, dup keys, int64)", (i) => runtime.loadJson(messages[i].body)),
    time("JSON.parse alone", (i) => JSON.parse(messages[i].body.toString())),
    time("decode (loadJson + Ajv validate)", (i) => contract.decode(messages[i].body)),
  ];
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function main() {
  const connection = await amqp.connect(BROKER);
  const control = await connection.createChannel();
  await control.assertExchange(EXCHANGE, "topic", { durable: true });
  const rounds = [];
  for (let index = 0; index < ROUNDS; index++) rounds.push(await round(index, connection, control));
  await connection.close();
  const m = (key) => median(rounds.map((r) => r[key]));
  const rows = [
    ["publish", m("rawPublish"), m("runtimePublish"), 0.9],
    ["consume (runtime validates, raw does not)", m("rawConsume"), m("runtimeConsume"), 0.6],
  ];
  console.log(`count ${COUNT}, rounds ${ROUNDS}, window ${WINDOW}, prefetch ${PREFETCH}; medians in msg/s`);
  console.log("| | raw amqplib | @eventbus/runtime | ratio | goal |");
  console.log("|---|---:|---:|---:|---:|");
  for (const [label, raw, ours, goal] of rows) {
    console.log(`| ${label} | ${raw.toFixed(0)} | ${ours.toFixed(0)} | ${(ours / raw).toFixed(2)} | ≥ ${goal} |`);
  }
  console.log(`CPU µs per message (this process): publish raw ${m("rawPublishCpuUs").toFixed(1)}, runtime ${m("runtimePublishCpuUs").toFixed(1)}; consume raw ${m("rawConsumeCpuUs").toFixed(1)}, runtime ${m("runtimeConsumeCpuUs").toFixed(1)}`);
  console.log("\nper-step CPU, no broker (µs per message):");
  for (const [label, us] of micro()) console.log(`  ${label.padEnd(44)} ${us.toFixed(2)}`);
  console.log(JSON.stringify({ rounds }));
}

await main();
