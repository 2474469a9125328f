/**
 * Start-up cost, side by side in one run: (1) one frame of 720p from process start to the file closed,
 * our CLI in Deno, Bun and Node against SvtAv1EncApp with the same settings, and each runtime's bare start
 * (`--help`, which parses the command line and loads no encoder; `--version`, which also finds and opens
 * each library) as its floor; for each, the wall time, the CPU time of the whole process (user + system,
 * every thread: `perf stat`'s task-clock where perf runs, else /usr/bin/time's) and its peak RSS (the
 * kernel's maxrss at exit, not a sample); (2) in a warm process, `create()` to ready against the
 * library's own set-up calls alone (bench/startup_api.ts, `setupTimes`), both backends. Contenders
 * alternate run by run; medians and minimums over the runs. On a loaded machine compare CPU time and RSS,
 * which other work barely moves, rather than wall time. Writes "Start-up" in bench/results.md.
 *
 * Usage: deno run -A bench/startup.ts [--runs N] [--before <dir>] [--before-label <text>]
 * (`--before`: a checkout of an earlier tree, whose CLI runs in the same alternation)
 * @module
 */
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import process from "node:process";
import {
  beforeTree,
  benchOption,
  benchPaths,
  clip,
  compileForNode,
  libraryVersion,
  loadAverage,
  writeResultsSection,
} from "./harness.ts";

const { root, tmp, bin } = benchPaths();
const runs = Number(benchOption("runs") ?? 7);
const { dir: beforeDir, label: beforeLabel } = beforeTree();
const loadBefore = loadAverage();
const node = compileForNode(root);
const nodeBefore = beforeDir ? compileForNode(beforeDir) : undefined;
const input = await clip(tmp, { width: 1280, height: 720, frames: 1 });
const settings = ["--preset", "10", "--crf", "35"];
const perf = spawnSync("perf", ["stat", "-x,", "-e", "task-clock", "--", "true"]).status === 0;

interface Usage {
  wallMs: number;
  cpuMs: number;
  rssMB: number;
}

/**
 * Runs a command to its end: wall time, CPU time of all its threads and its peak RSS. /usr/bin/time
 * reports the maxrss the kernel kept (perf's own, under it, is far smaller than any contender's).
 */
function usage(cmd: string, args: string[]): Usage {
  const rssFile = `${tmp}/startup-time.txt`, cpuFile = `${tmp}/startup-perf.txt`;
  const wrapped = perf
    ? ["perf", "stat", "-x,", "-e", "task-clock", "-o", cpuFile, "--", cmd, ...args]
    : [cmd, ...args];
  const started = performance.now();
  const r = spawnSync("/usr/bin/time", ["-f", "%U %S %M", "-o", rssFile, ...wrapped], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, SVT_LOG: "1" },
  });
  const wallMs = performance.now() - started;
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${r.stderr.toString().slice(-500)}`);
  }
  const [user, sys, maxKB] = readFileSync(rssFile, "utf8").trim().split("\n").pop()!.split(" ").map(Number);
  let cpuMs = (user + sys) * 1000;
  if (perf) {
    const line = readFileSync(cpuFile, "utf8").split("\n").find((l) => l.includes("task-clock"));
    cpuMs = Number(line!.split(",")[0]);
  }
  return { wallMs, cpuMs, rssMB: maxKB / 1024 };
}

const runtimes: {
  name: string;
  run: (tree: string, script: string, args: string[]) => [string, string[]];
}[] = [
  { name: "Deno", run: (t, s, a) => [bin("deno"), ["run", "-A", `${t}${s}.ts`, ...a]] },
  { name: "Bun", run: (t, s, a) => [bin("bun"), [`${t}${s}.ts`, ...a]] },
  { name: "Node", run: (t, s, a) => ["node", [`${t === root ? node : nodeBefore}${s}.js`, ...a]] },
];
const trees: [string, string][] = [[root, ""]];
if (beforeDir) trees.unshift([beforeDir, `, ${beforeLabel}`]);

const oneFrame: { name: string; cmd: [string, string[]]; floor?: boolean }[] = [
  { name: "SvtAv1EncApp", cmd: ["SvtAv1EncApp", ["-i", input, "-b", `${tmp}/s-app.ivf`, ...settings]] },
];
for (const r of runtimes) {
  for (const [tree, label] of trees) {
    const out = `${tmp}/s-${r.name}${label ? "-before" : ""}.ivf`;
    oneFrame.push(
      {
        name: `CLI (${r.name})${label}`,
        cmd: r.run(tree, "cli", ["-i", input, "-o", out, ...settings, "-q"]),
      },
      { name: `CLI --help (${r.name})${label}`, cmd: r.run(tree, "cli", ["--help"]), floor: true },
      { name: `CLI --version (${r.name})${label}`, cmd: r.run(tree, "cli", ["--version"]), floor: true },
    );
  }
}
const results = new Map<string, Usage[]>(oneFrame.map((c) => [c.name, []]));
for (let i = 0; i < runs; i++) {
  for (const c of oneFrame) {
    const u = usage(...c.cmd);
    results.get(c.name)!.push(u);
    process.stderr.write(
      `one frame run ${i + 1}/${runs} ${c.name}: ${u.wallMs.toFixed(0)} ms, CPU ${u.cpuMs.toFixed(0)} ms, ${
        u.rssMB.toFixed(1)
      } MB\n`,
    );
  }
}
// Every contender wrote the same bytes.
const written = oneFrame.filter((c) => !c.floor).map((c) =>
  c.cmd[1][c.cmd[1].indexOf(c.name === "SvtAv1EncApp" ? "-b" : "-o") + 1]
);
const bytes = written.map((f) => readFileSync(f));
const same = bytes.every((b) => b.length === bytes[0].length && b.every((x, j) => x === bytes[0][j]));
for (const f of written) rmSync(f, { force: true });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const pick = (name: string, k: keyof Usage) => median(results.get(name)!.map((u) => u[k]));
const signed = (x: number, digits = 0) => `${x >= 0 ? "+" : ""}${x.toFixed(digits)}`;
const app = {
  wall: pick("SvtAv1EncApp", "wallMs"),
  cpu: pick("SvtAv1EncApp", "cpuMs"),
  rss: pick("SvtAv1EncApp", "rssMB"),
};
const oneRows = oneFrame.map((c) => {
  const us = results.get(c.name)!;
  const wall = pick(c.name, "wallMs"), cpu = pick(c.name, "cpuMs"), rss = pick(c.name, "rssMB");
  const vs = (x: number, ref: number, d = 0) => (c.floor ? "—" : signed(x - ref, d));
  return `| ${c.name} | ${wall.toFixed(0)} | ${Math.min(...us.map((u) => u.wallMs)).toFixed(0)} | ${
    vs(wall, app.wall)
  } | ${cpu.toFixed(0)} | ${vs(cpu, app.cpu)} | ${rss.toFixed(1)} | ${vs(rss, app.rss, 1)} |`;
});

const apiRows: string[] = [];
for (const codec of ["svt-av1", "rav1e"]) {
  for (const r of runtimes) {
    const [cmd, args] = r.run(root, "bench/startup_api", [codec, "1280", "720", "12"]);
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
  + `2 cores, load average ${loadBefore} before and ${loadAverage()} after).

One frame of 1280x720 (ffmpeg's testsrc2), preset 10, CRF 35, from process start to the file closed; ${runs} runs per
contender, alternated${
    beforeDir ? ` ("${beforeLabel}" rows: the CLI of an earlier tree)` : ""
  }; every encode wrote ${
    same ? "the same bytes" : "DIFFERENT BYTES"
  }. \`CLI --help\` starts the runtime and parses the command line, \`--version\` also opens each library:
the floors of each runtime's start. CPU is user + system time of all the process's threads${
    perf ? " (perf stat's task-clock)" : ""
  }, peak RSS the kernel's maxrss; medians.

| contender | wall ms | min wall ms | − app wall ms | CPU ms | − app CPU ms | peak RSS MB | − app RSS MB |
| --------- | ------: | ----------: | ------------: | -----: | -----------: | ----------: | -----------: |
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
