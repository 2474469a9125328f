// The modules a user imports must not wait on a top-level `await`. Bun and Deno deliver a message to a
// Worker as soon as its first module starts to evaluate; one that comes while the worker's imports still
// wait finds no `onmessage` and is dropped. A user's worker that imports this library and then sets
// `onmessage` lost the first message posted to it (examples/edge_pool.ts's `init`, in a whole-suite Bun
// run: its encoder was never created and the test timed out after 120 s), once ffi/runtime/system.ts
// picked its implementation with `await import()`.
//
// The check: a module graph without a top-level `await` evaluates in one synchronous job, so a microtask
// queued by the first import has not run when the importing module's body runs; any `await` in between,
// even of a value already there, lets it run first.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

// Node runs the tests compiled under .cache/node/: the manifest is read at the repository's root, and the
// modules run are the compiled ones.
const here = dirname(fileURLToPath(import.meta.url));
const compiled = import.meta.url.endsWith(".js");
const root = [join(here, ".."), join(here, "../../..")].find((d) => existsSync(join(d, "deno.json")))!;
const tree = join(here, "..");

/** The entry points a user imports, by export name; "./build" is a script (it runs on import). */
function libraryEntries(): [string, string][] {
  const exports = JSON.parse(readFileSync(join(root, "deno.json"), "utf8")).exports as Record<string, string>;
  return Object.entries(exports).filter(([name]) => name !== "./build").map(([name, path]) => [
    name,
    join(tree, compiled ? path.replace(/\.ts$/, ".js") : path),
  ]);
}

/** Runs a module that imports `entry` in a new process of this runtime: "sync" or "async", or the error. */
function evaluation(dir: string, entry: string): string {
  const probe = join(dir, `probe_${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(
    probe,
    [
      `import "./tick.mjs";`,
      `import ${JSON.stringify(pathToFileURL(entry).href)};`,
      `console.log(globalThis.__ticked ? "async" : "sync");`,
    ].join("\n"),
  );
  const args = "Deno" in globalThis ? ["run", "-A", "--no-check", probe] : [probe];
  const r = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 60_000 });
  const out = r.stdout.trim().split("\n").at(-1) ?? "";
  return out === "sync" || out === "async" ? out : `exit ${r.status ?? r.signal}: ${r.stderr.slice(-500)}`;
}

test("no module a user imports (deno.json's exports) waits on a top-level await", () => {
  const dir = mkdtempSync(join(tmpdir(), "av1-graph-"));
  try {
    writeFileSync(join(dir, "tick.mjs"), "queueMicrotask(() => (globalThis.__ticked = true));\n");
    // The probe itself: a module that awaits is seen, one that does not is not.
    writeFileSync(join(dir, "awaits.mjs"), "await null;\n");
    writeFileSync(join(dir, "plain.mjs"), "export const x = 1;\n");
    assert.equal(evaluation(dir, join(dir, "awaits.mjs")), "async");
    assert.equal(evaluation(dir, join(dir, "plain.mjs")), "sync");
    const waiting: string[] = [];
    for (const [name, entry] of libraryEntries()) {
      // The BullMQ entry loads its optional peer with `await import()`, which must wait (a worker that
      // uses it sets `onmessage` before importing it); docs/conventions.md says so.
      if (name === "./chunked/distributed") continue;
      const result = evaluation(dir, entry);
      if (result !== "sync") waiting.push(`${name}: ${result}`);
    }
    assert.deepEqual(waiting, [], "entry points whose module graph waits on a top-level await");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
