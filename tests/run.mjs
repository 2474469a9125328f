// Runs the whole test suite in Deno, in Bun and in Node (over the sources compiled to .cache/node/, since
// Node 20 cannot run TypeScript), then counts the three runtimes' JUnit reports into one closing line
// "N passed, N failed" (no runner prints one). Run by `npm test` and `.ci/run`.
// Usage: node tests/run.mjs [--deno-only|--bun-only|--node-only] [test files...]
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const args = process.argv.slice(2);
const only = args.find((a) => a === "--deno-only" || a === "--bun-only" || a === "--node-only");
const wanted = (runtime) => !only || only === `--${runtime}-only`;
const files = args.filter((a) => !a.startsWith("--"));
const targets = files.length ? files : ["tests/"];
const reports = join(root, ".cache", "junit");
mkdirSync(reports, { recursive: true });

// A runner that hangs (a test leaving a handle open) is killed rather than holding CI to its limit.
const RUNNER_TIMEOUT_MS = Number(process.env.AV1_STREAM_TEST_TIMEOUT_MS ?? 25 * 60 * 1000);

function run(cmd, argv, env = {}) {
  const started = Date.now();
  // SVT-AV1 logs its configuration on every encoder at its default level; tests keep errors and warnings.
  const r = spawnSync(cmd, argv, {
    cwd: root,
    stdio: "inherit",
    env: { SVT_LOG: "1", ...process.env, ...env },
    timeout: RUNNER_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
  if (r.error?.code === "ETIMEDOUT") {
    console.log(`${cmd} ${argv[0]}: killed after ${RUNNER_TIMEOUT_MS / 1000} s`);
  }
  return { status: r.status ?? 1, seconds: (Date.now() - started) / 1000 };
}

// Libraries and reference tools first, so the tests find them (installs with apt where it can).
const build = run(bin("deno"), ["run", "-A", "build.ts", "--dev"]);
if (build.status !== 0) console.error("build.ts --dev failed; tests needing native tools will fail");

function count(xmlPath) {
  if (!existsSync(xmlPath)) return null;
  const xml = readFileSync(xmlPath, "utf8");
  let passed = 0, failed = 0, skipped = 0;
  // Leaf test cases only: either self-closing or with a body that we inspect for failure / skipped.
  const re = /<testcase\b[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const body = m[2] ?? "";
    if (/<(failure|error)\b/.test(body)) failed++;
    else if (/<skipped\b/.test(body)) skipped++;
    else passed++;
  }
  return { passed, failed, skipped };
}

const results = [];
if (wanted("deno")) {
  const xml = join(reports, "deno.xml");
  rmSync(xml, { force: true });
  const r = run(bin("deno"), [
    "test",
    "-A",
    "--no-check",
    `--junit-path=${xml}`,
    ...targets,
  ]);
  results.push({ runtime: "deno", ...r, counts: count(xml) });
}
if (wanted("bun")) {
  const xml = join(reports, "bun.xml");
  rmSync(xml, { force: true });
  const r = run(bin("bun"), [
    "test",
    // bunfig.toml's [test] timeout is not read by bun 1.4 (a slow test failed at its 5 s default): say it here.
    "--timeout=120000",
    "--reporter=junit",
    `--reporter-outfile=${xml}`,
    ...targets.map((t) => t.startsWith("./") ? t : `./${t}`),
  ]);
  results.push({ runtime: "bun", ...r, counts: count(xml) });
}

if (wanted("node")) {
  const xml = join(reports, "node.xml");
  rmSync(xml, { force: true });
  const r = runNode(xml);
  results.push({ runtime: "node", ...r, counts: r.compiled ? count(xml) : null });
}

/**
 * Compiles the project for Node (tsconfig.node.json, into .cache/node/), links in beside it the folders the
 * compiled modules find by their own location (native builds, fixtures, pages, node_modules), and runs
 * `node --test` over the compiled test files.
 */
function runNode(xml) {
  const out = join(root, ".cache", "node");
  rmSync(out, { recursive: true, force: true });
  const tsc = run(bin("tsc"), ["-p", "tsconfig.node.json"]);
  if (tsc.status !== 0) {
    console.log("tsc -p tsconfig.node.json failed: the Node run is counted as 1 failure");
    return { ...tsc, compiled: false };
  }
  const links = [["build"], ["node_modules"], ["tests", "fixtures"], ["examples", "browser"]];
  for (const parts of links) {
    const to = join(out, ...parts);
    if (!existsSync(to)) symlinkSync(join(root, ...parts), to);
  }
  const compiled = (t) => join(out, t.replace(/\.ts$/, ".js"));
  const testFiles = targets.flatMap((t) =>
    t.endsWith(".ts")
      ? [compiled(t)]
      : readdirSync(compiled(t)).filter((f) => /_test\.js$/.test(f)).sort().map((f) => join(compiled(t), f))
  );
  const r = run(process.execPath, [
    // Node 20's WebSocket client (global in 22) for the WebSocket sink.
    ...(Number(process.versions.node.split(".")[0]) < 22 ? ["--experimental-websocket"] : []),
    "--test",
    "--test-reporter=spec",
    "--test-reporter-destination=stdout",
    "--test-reporter=junit",
    `--test-reporter-destination=${xml}`,
    ...testFiles,
  ]);
  return { ...r, seconds: r.seconds + tsc.seconds, compiled: true };
}

let passed = 0, failed = 0, skipped = 0;
for (const r of results) {
  if (!r.counts) {
    console.log(
      `${r.runtime}: no JUnit report (exit ${r.status}) after ${
        r.seconds.toFixed(0)
      } s: counted as 1 failure`,
    );
    failed++;
    continue;
  }
  // A runner that crashed after writing its report still fails the run.
  const crashed = r.status !== 0 && r.counts.failed === 0;
  console.log(
    `${r.runtime}: ${r.counts.passed} passed, ${r.counts.failed} failed, ${r.counts.skipped} skipped in ${
      r.seconds.toFixed(0)
    } s`
      + (crashed ? ` (runner exited ${r.status}: counted as 1 failure)` : ""),
  );
  passed += r.counts.passed;
  failed += r.counts.failed + (crashed ? 1 : 0);
  skipped += r.counts.skipped;
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 ? 1 : 0);
