/**
 * Start-up cost, side by side in one run: (1) one frame of 720p from process start to the file closed,
 * our CLI in Deno, Bun and Node against SvtAv1EncApp with the same settings, and each runtime's bare start
 * (`--version`, which loads the CLI but no encoder) as its floor; (2) in a warm process, `create()` to
 * ready against the library's own set-up calls alone (bench/startup_api.ts, `setupTimes`), both backends.
 * Contenders alternate run by run; medians and minimums over the runs. Writes "Start-up" in
 * bench/results.md.
 *
 * Usage: deno run -A bench/startup.ts [--runs N]
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import process from "node:process";
import { clip, compileForNode, libraryVersion, measure, writeResultsSection } from "./harness.ts";

const root = new URL("../", import.meta.url).pathname;
const tmp = `${root}bench/tmp`;
mkdirSync(tmp, { recursive: true });
const bin = (name: string) => `${root}node_modules/.bin/${name}`;
const runsArg = process.argv.indexOf("--runs");
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 7;
const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const loadBefore = load();
const node = compileForNode(root);
const input = await clip(tmp, { width: 1280, height: 720, frames: 1 });
const settings = ["--preset", "10", "--crf", "35"];

const runtimes: { name: string; run: (script: string, args: string[]) => [string, string[]] }[] = [
  { name: "Deno", run: (s, a) => [bin("deno"), ["run", "-A", `${root}${s}.ts`, ...a]] },
  { name: "Bun", run: (s, a) => [bin("bun"), [`${root}${s}.ts`, ...a]] },
  { name: "Node", run: (s, a) => ["node", [`${node}${s}.js`, ...a]] },
];

const oneFrame: { name: string; cmd: [string, string[]] }[] = [
  { name: "SvtAv1EncApp", cmd: ["SvtAv1EncApp", ["-i", input, "-b", `${tmp}/s-app.ivf`, ...settings]] },
  ...runtimes.flatMap((r) => [
    {
      name: `CLI (${r.name})`,
      cmd: r.run("cli", ["-i", input, "-o", `${tmp}/s-${r.name}.ivf`, ...settings, "-q"]),
    },
    { name: `CLI --version (${r.name})`, cmd: r.run("cli", ["--version"]) },
  ]),
];
const times = new Map<string, number[]>(oneFrame.map((c) => [c.name, []]));
for (let i = 0; i < runs; i++) {
  for (const c of oneFrame) {
    const m = await measure(...c.cmd);
    times.get(c.name)!.push(m.seconds * 1000);
    process.stderr.write(`one frame run ${i + 1}/${runs} ${c.name}: ${(m.seconds * 1000).toFixed(0)} ms\n`);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const app = median(times.get("SvtAv1EncApp")!);
const oneRows = oneFrame.map((c) => {
  const t = times.get(c.name)!;
  const m = median(t);
  const vsApp = c.name.includes("--version") ? "—" : `${m - app >= 0 ? "+" : ""}${(m - app).toFixed(0)}`;
  return `| ${c.name} | ${m.toFixed(0)} | ${Math.min(...t).toFixed(0)} | ${vsApp} |`;
});

const apiRows: string[] = [];
for (const codec of ["svt-av1", "rav1e"]) {
  for (const r of runtimes) {
    const [cmd, args] = r.run("bench/startup_api", [codec, "1280", "720", "12"]);
    const out = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, SVT_LOG: "1" } });
    const line = out.stdout.trim().split("\n").pop() ?? "";
    if (out.status !== 0 || !line.startsWith("{")) {
      throw new Error(`${r.name} startup_api ${codec} failed: ${out.stderr.slice(-500)}`);
    }
    const j = JSON.parse(line);
    const f = (x: number) => x.toFixed(1);
    apiRows.push(
      `| ${codec} | ${r.name} | ${f(j.cold.totalMs)} / ${f(j.cold.libraryMs)} | ${f(j.warm.totalMs)} | ${
        f(j.warm.threadMs)
      } | ${f(j.warm.libraryMs)} | ${f(j.oursMedianMs)} | ${f(j.oursMaxMs)} |`,
    );
    process.stderr.write(`${codec} ${r.name}: ${line}\n`);
  }
}

const versions = spawnSync(bin("deno"), ["run", "-A", `${root}cli.ts`, "--version"], { encoding: "utf8" })
  .stdout.trim().split("\n").slice(1).join("; ");
const body =
  `Written by \`deno run -A bench/startup.ts\` (av1-stream ${libraryVersion(root)}, ${
    new Date().toISOString()
  }, ${versions}; Deno ${runtimeVersion("deno")}, Bun ${runtimeVersion("bun")}, Node ${
    runtimeVersion("node")
  }; `
  + `2 cores, load average ${loadBefore} before and ${load()} after).

One frame of 1280x720 (ffmpeg's testsrc2), preset 10, CRF 35, from process start to the file closed; ${runs} runs per
contender, alternated. \`CLI --version\` starts the runtime and loads the CLI without an encoder: the floor
of each runtime's start.

| contender | median ms | min ms | − SvtAv1EncApp ms |
| --------- | --------: | -----: | ----------------: |
${oneRows.join("\n")}

In a warm process (bench/startup_api.ts): \`create()\` of a 1280x720 encoder (SVT-AV1 preset 10 CRF 35, rav1e
speed 10) then \`close()\`, 12 times after a first, cold one, from \`setupTimes\`: total from the call to
ready, the time on the encoder thread, and the library's own set-up calls alone; "ours" is total − library.

| backend | runtime | cold total / library ms | warm total ms | thread ms | library ms | ours median ms | ours max ms |
| ------- | ------- | ----------------------: | ------------: | --------: | ---------: | -------------: | ----------: |
${apiRows.join("\n")}
`;
writeResultsSection(`${root}bench/results.md`, "Start-up", body);
console.log(body);

function runtimeVersion(name: string): string {
  const out = spawnSync(name === "node" ? "node" : bin(name), ["--version"], { encoding: "utf8" }).stdout;
  return /(\d+\.\d+\.\d+)/.exec(out)?.[1] ?? "?";
}
