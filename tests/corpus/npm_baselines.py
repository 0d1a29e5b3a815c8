"""json-schema-to-typescript and quicktype (Go) on the corpus: the tools a user would otherwise pick.

Both get the same self-contained schema per contract as datamodel-code-generator (what the
contract reaches, bundled). json-schema-to-typescript writes types only, so "round-tripped" for it
means a valid payload, written as a literal, is assignable to the root type (``tsc --strict``);
quicktype's Go is compiled as one module (a package per schema) and each valid payload goes
through ``UnmarshalRoot`` and ``Marshal``. Neither validates, so must-reject payloads do not apply.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.corpus.corpus import Entry
from tests.toolchain.builds import ensure_node_modules, have_go, link_node_modules

HERE = Path(__file__).resolve().parent
Result = dict[str, Any]
Outcome = tuple[bool, bool, list[Result] | None]  # generated, compiled, each valid payload's result


def run_baselines(build: Path, bundles: dict[str, dict[str, Any]], entries: dict[str, Entry]
                  ) -> dict[str, dict[str, Outcome]]:
    """``{tool: {relative: (generated, compiled, payload results or None)}}`` for both npm tools."""
    folder = build / "baselines"
    folder.mkdir(parents=True, exist_ok=True)
    numbers = {relative: str(index) for index, relative in enumerate(sorted(bundles))}
    for relative, bundle in bundles.items():
        # The root wrapped as a property, so its type has a known name (Root["root"]) whatever the schema says.
        definitions = bundle.pop("$defs", None)
        wrapped: dict[str, Any] = {"type": "object", "properties": {"root": bundle}, "required": ["root"],
                                   "additionalProperties": False}
        if definitions:
            wrapped["$defs"] = definitions
        text = json.dumps(wrapped).replace('"$ref": "#"', '"$ref": "#/properties/root"')
        (folder / f"{numbers[relative]}.json").write_text(text, encoding="utf-8")
    ensure_node_modules()
    output = subprocess.run(["node", str(HERE / "baselines.mjs"), str(folder)], capture_output=True, text=True,
                            timeout=1800)
    if output.returncode != 0:
        raise RuntimeError(f"baselines.mjs failed: {output.stderr[-2000:]}")
    generated = json.loads(output.stdout)
    return {
        "json-schema-to-typescript": _jsts(folder, numbers, generated, entries),
        "quicktype": _quicktype(folder, numbers, generated, entries),
    }


def _jsts(folder: Path, numbers: dict[str, str], generated: dict[str, Any], entries: dict[str, Entry]
          ) -> dict[str, Outcome]:
    project = folder / "jsts"
    for relative, n in numbers.items():
        if generated[n]["jsts"] is None:
            for index, payload in enumerate(entries[relative].valid):
                (project / f"p{n}_{index}.ts").write_text(
                    f'import type {{ Root }} from "./s{n}";\n\n'
                    f'export const value: Root["root"] = {json.dumps(payload)};\n',
                    encoding="utf-8")
    (project / "tsconfig.json").write_text(json.dumps({"compilerOptions": {
        "strict": True, "noEmit": True, "target": "es2022", "module": "commonjs", "skipLibCheck": True,
        "types": []}, "include": ["*.ts"]}), encoding="utf-8")
    link_node_modules(project)
    compiler = ensure_node_modules() / "typescript" / "bin" / "tsc"
    output = subprocess.run(["node", str(compiler), "-p", str(project)], capture_output=True, text=True, timeout=1800)
    failing = set(re.findall(r"^([sp][0-9_]+)\.ts\(", output.stdout, re.M))
    results: dict[str, Outcome] = {}
    for relative, n in numbers.items():
        if generated[n]["jsts"] is not None:
            results[relative] = (False, False, None)
            continue
        compiled = f"s{n}" not in failing
        payloads = entries[relative].valid
        outcome: list[Result] = [
            {"ok": True, "data": payload} if f"p{n}_{index}" not in failing
            else {"ok": False, "error": "not assignable"}
            for index, payload in enumerate(payloads)
        ]
        results[relative] = (True, compiled, outcome if compiled else None)
    return results


_MAIN = """package main

import (
\t"encoding/json"
\t"fmt"
\t"os"
{imports}
)

var roundTrips = map[string]func([]byte) ([]byte, error){{
{entries}
}}

func main() {{
\tdata, err := os.ReadFile(os.Args[1])
\tif err != nil {{
\t\tpanic(err)
\t}}
\tvar items []struct {{
\t\tKey  string          `json:"key"`
\t\tData json.RawMessage `json:"data"`
\t}}
\tif err := json.Unmarshal(data, &items); err != nil {{
\t\tpanic(err)
\t}}
\tresults := []map[string]interface{{}}{{}}
\tfor _, item := range items {{
\t\tout, err := roundTrips[item.Key](item.Data)
\t\tif err != nil {{
\t\t\tresults = append(results, map[string]interface{{}}{{"ok": false, "error": err.Error()}})
\t\t\tcontinue
\t\t}}
\t\tresults = append(results, map[string]interface{{}}{{"ok": true, "data": json.RawMessage(out)}})
\t}}
\tencoded, _ := json.Marshal(results)
\tfmt.Println(string(encoded))
}}
"""


def _quicktype(folder: Path, numbers: dict[str, str], generated: dict[str, Any], entries: dict[str, Entry]
               ) -> dict[str, Outcome]:
    module = folder / "quicktype"
    results: dict[str, Outcome] = {
        relative: (False, False, None) for relative, n in numbers.items() if generated[n]["quicktype"] is not None}
    if not have_go():
        raise RuntimeError("Go and the Debian Go libraries are missing: .ci/run installs them")
    (module / "go.mod").write_text("module quicktype.corpus\n\ngo 1.19\n", encoding="utf-8")
    env = {**os.environ, "GOWORK": "off", "GOPROXY": "off", "GOFLAGS": "-mod=mod", "GOSUMDB": "off"}
    candidates = {n for n in numbers.values() if generated[n]["quicktype"] is None}
    vet = subprocess.run(["go", "build", *(f"./q{n}" for n in sorted(candidates))], cwd=module, capture_output=True,
                         text=True, timeout=1800, env=env)
    broken = set(re.findall(r"^# quicktype\.corpus/q([0-9]+)", vet.stderr, re.M))
    ok = sorted(candidates - broken, key=int)
    imports = "\n".join(f'\tq{n} "quicktype.corpus/q{n}"' for n in ok)
    lines = "\n".join(
        f'\t"{n}": func(d []byte) ([]byte, error) {{ r, err := q{n}.UnmarshalRoot(d); '
        f'if err != nil {{ return nil, err }}; '
        f'return r.Marshal() }},' for n in ok)
    (module / "main.go").write_text(_MAIN.format(imports=imports, entries=lines), encoding="utf-8")
    subprocess.run(["go", "build", "-o", "roundtrip", "."], cwd=module, check=True, capture_output=True, timeout=1800,
                   env=env)
    by_number = {n: relative for relative, n in numbers.items()}
    items = [{"key": n, "data": {"root": payload}} for n in ok for payload in entries[by_number[n]].valid]
    (folder / "quicktype-items.json").write_text(json.dumps(items), encoding="utf-8")
    output = subprocess.run([str(module / "roundtrip"), str(folder / "quicktype-items.json")], capture_output=True,
                            text=True, timeout=600, check=True)
    answers = iter(json.loads(output.stdout))
    for n in sorted(candidates, key=int):
        relative = by_number[n]
        if n in broken:
            results[relative] = (True, False, None)
            continue
        outcome = []
        for _ in entries[relative].valid:
            answer = next(answers)
            if answer["ok"] and isinstance(answer["data"], dict) and "root" in answer["data"]:
                outcome.append({"ok": True, "data": answer["data"]["root"]})
            else:
                outcome.append({"ok": False, "error": answer.get("error") or "root dropped"})
        results[relative] = (True, True, outcome)
    return results
