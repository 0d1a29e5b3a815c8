// The corpus baselines on the npm side: what a user would pick instead of eventbus codegen.
//
//   node baselines.mjs DIR
//
// DIR holds one self-contained schema per corpus contract (<n>.json, what the contract reaches,
// bundled). For each, json-schema-to-typescript writes DIR/jsts/s<n>.ts (types only, root type
// `Root`) and quicktype writes DIR/quicktype/q<n>/root.go (package q<n>, `UnmarshalRoot` and
// `Root.Marshal`). Prints {"<n>": {"jsts": error|null, "quicktype": error|null}} on stdout.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(new URL("../toolchain/package.json", import.meta.url));
const { compile } = require("json-schema-to-typescript");
const { quicktype, InputData, JSONSchemaInput, FetchingJSONSchemaStore } = require("quicktype-core");

async function jsts(schema, out) {
  const ts = await compile(schema, "Root", { bannerComment: "", additionalProperties: true, format: false,
    declareExternallyReferenced: true, cwd: "/nonexistent" });
  writeFileSync(out, ts);
}

async function goTypes(schema, name, out) {
  const input = new JSONSchemaInput(new FetchingJSONSchemaStore());
  await input.addSource({ name: "Root", schema: JSON.stringify(schema) });
  const data = new InputData();
  data.addInput(input);
  const result = await quicktype({ inputData: data, lang: "go", rendererOptions: { package: name } });
  mkdirSync(join(out, name), { recursive: true });
  writeFileSync(join(out, name, "root.go"), result.lines.join("\n"));
}

async function main() {
  const dir = process.argv[2];
  mkdirSync(join(dir, "jsts"), { recursive: true });
  mkdirSync(join(dir, "quicktype"), { recursive: true });
  const report = {};
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".json")).sort()) {
    const n = file.replace(/\.json$/, "");
    const text = readFileSync(join(dir, file), "utf8");
    const entry = { jsts: null, quicktype: null };
    try {
      await jsts(JSON.parse(text), join(dir, "jsts", `s${n}.ts`));
    } catch (error) {
      entry.jsts = String(error).slice(0, 300);
    }
    try {
      await goTypes(JSON.parse(text), `q${n}`, join(dir, "quicktype"));
    } catch (error) {
      entry.quicktype = String(error).slice(0, 300);
    }
    report[n] = entry;
  }
  process.stdout.write(JSON.stringify(report));
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
