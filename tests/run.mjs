// Runs the whole test suite in Deno, in Bun and in Node (over the sources compiled to .cache/node/, since
// Node 20 cannot run TypeScript), then counts the three runtimes' JUnit reports into one closing line
// "N passed, N failed" (no runner prints one). Run by `npm test` and `.ci/run`.
// Usage: node tests/run.mjs [--deno-only|--bun-only|--node-only] [--matrix] [test files...]
// A whole-suite run (or --matrix) also runs the behaviour and bit-exact tests against SVT-AV1 2.3.0 and
// rav1e 0.7.1 (with their own reference tools), and the behaviour tests against SVT-AV1 3.1.2 and rav1e 0.8.1.
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
  const failures = [];
  // Leaf test cases only: either self-closing or with a body that we inspect for failure / skipped.
  const re = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const body = m[3] ?? "";
    if (/<(failure|error)\b/.test(body)) {
      failed++;
      failures.push(failureLine(m[1], body));
    } else if (/<skipped\b/.test(body)) skipped++;
    else passed++;
  }
  return { passed, failed, skipped, failures };
}

// "file > test: first line of the message", so a failed run's last lines say what failed.
function failureLine(attributes, body) {
  const attr = (name) => {
    const m = new RegExp(`\\b${name}="([^"]*)"`).exec(attributes);
    return m ? unescapeXml(m[1]) : "";
  };
  const message = /<(?:failure|error)\b[^>]*?\bmessage="([^"]*)"/.exec(body)?.[1]
    ?? /<(?:failure|error)\b[^>]*>([\s\S]*?)<\/(?:failure|error)>/.exec(body)?.[1] ?? "";
  const where = [attr("file") || attr("classname"), attr("name")].filter(Boolean).join(" > ");
  const first = unescapeXml(message).trim().split("\n")[0].slice(0, 200);
  return first ? `${where}: ${first}` : where;
}

function unescapeXml(text) {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(/&amp;/g, "&");
}

const results = [];
function runDeno(name, files, env = {}) {
  const xml = join(reports, `${name}.xml`);
  rmSync(xml, { force: true });
  const r = run(bin("deno"), ["test", "-A", "--no-check", `--junit-path=${xml}`, ...files], env);
  return { ...r, counts: count(xml) };
}

function runBun(name, files, env = {}) {
  const xml = join(reports, `${name}.xml`);
  rmSync(xml, { force: true });
  const r = run(bin("bun"), [
    "test",
    // bunfig.toml's [test] timeout is not read by bun 1.4 (a slow test failed at its 5 s default): say it here.
    "--timeout=120000",
    "--reporter=junit",
    `--reporter-outfile=${xml}`,
    ...files.map((t) => t.startsWith("./") ? t : `./${t}`),
  ], env);
  return { ...r, counts: count(xml) };
}

if (wanted("deno")) results.push({ runtime: "deno", ...runDeno("deno", targets) });
if (wanted("bun")) results.push({ runtime: "bun", ...runBun("bun", targets) });

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

// The library-version matrix: the whole run above used the system's SVT-AV1 and rav1e; the behaviour tests
// run again with each of Debian's newer builds, fetched by build.ts into build/ (the checked .debs are
// cached per machine, outside the clone) and removed after. SVT-AV1 2.3.0 and rav1e 0.7.1 come with their
// own SvtAv1EncApp and rav1e CLI, so the bit-exact tests run against them; 3.1.2 and 0.8.1 have no tool
// that runs here, and their streams are checked by decoding every frame with dav1d
// (tests/library_versions_test.ts). Only on a whole-suite run (or with --matrix), and never over
// libraries a user put in build/ themselves.
const MATRIX_PASSES = [
  { svt: ["2", "2.3"], rav1e: ["0.7", "0.7.1"], label: "SVT-AV1 2.3.0, rav1e 0.7.1" },
  { svt: ["3", "3.1"], rav1e: ["0.8", "0.8.1"], label: "SVT-AV1 3.1.2, rav1e 0.8.1" },
];
const MATRIX_FILES = [
  "tests/svt_av1_reference_test.ts",
  "tests/rav1e_reference_test.ts",
  "tests/library_versions_test.ts",
  "tests/svt_av1_encoder_test.ts",
  "tests/rav1e_encoder_test.ts",
  "tests/webcodecs_av1_registration_test.ts",
];
if ((files.length === 0 && !only) || args.includes("--matrix")) {
  const buildDir = join(root, "build");
  const ours = (f) => f.startsWith("libSvtAv1Enc.so") || f.startsWith("librav1e.so");
  const clean = () => {
    for (const f of existsSync(buildDir) ? readdirSync(buildDir) : []) {
      if (ours(f)) rmSync(join(buildDir, f), { force: true });
    }
    for (const tool of ["SvtAv1EncApp", "rav1e", ".real"]) {
      rmSync(join(buildDir, "bin", tool), { recursive: true, force: true });
    }
  };
  if (existsSync(buildDir) && readdirSync(buildDir).some(ours)) {
    console.log("matrix: build/ holds libraries of its own; the newer-library passes are left out");
  } else {
    for (const pass of MATRIX_PASSES) {
      const fetched = run(bin("deno"), [
        "run",
        "-A",
        "build.ts",
        "--svt-av1",
        pass.svt[0],
        "--rav1e",
        pass.rav1e[0],
      ]);
      if (fetched.status !== 0) {
        console.log(`matrix: build.ts could not fetch ${pass.label}: counted as 1 failure`);
        results.push({ runtime: `matrix fetch (${pass.label})`, ...fetched, counts: null });
      } else {
        const env = { AV1_STREAM_EXPECT_SVT_AV1: `${pass.svt[1]}.`, AV1_STREAM_EXPECT_RAV1E: pass.rav1e[1] };
        const tag = pass.svt[0];
        results.push({
          runtime: `deno (${pass.label})`,
          ...runDeno(`deno-matrix-${tag}`, MATRIX_FILES, env),
        });
        results.push({ runtime: `bun (${pass.label})`, ...runBun(`bun-matrix-${tag}`, MATRIX_FILES, env) });
      }
      clean();
    }
  }
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
  for (const line of r.counts.failures) console.log(`  failed: ${line}`);
  passed += r.counts.passed;
  failed += r.counts.failed + (crashed ? 1 : 0);
  skipped += r.counts.skipped;
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 ? 1 : 0);
