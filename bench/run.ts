/**
 * Benchmarks av1-stream against SvtAv1EncApp on the same clips and settings, in one run, alternating the
 * contenders and keeping the best of several runs: wall-time ratio against the app, peak RSS, and the
 * largest event-loop lag of the API under Deno, Bun and Node. Prints a table and writes bench/results.md.
 *
 * Usage: deno run -A bench/run.ts [--runs N] [--quick]
 * @module
 */
import { readFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { locateSvtAv1 } from "../ffi/load.ts";
import {
  benchSetup,
  bestOf,
  clip,
  type Contender,
  libraryVersion,
  toolVersion as version,
  writeResultsSection,
} from "./harness.ts";

const { root, tmp, bin, nodeTree, quick, runs } = benchSetup({ full: 3, quick: 2 });

interface Case {
  name: string;
  width: number;
  height: number;
  frames: number;
  preset: number;
  crf: number;
  target: number;
}
const cases: Case[] = [
  {
    name: "720p preset 10",
    width: 1280,
    height: 720,
    frames: quick ? 30 : 120,
    preset: 10,
    crf: 35,
    target: 1.03,
  },
  {
    name: "360p preset 12",
    width: 640,
    height: 360,
    frames: quick ? 60 : 240,
    preset: 12,
    crf: 35,
    target: 1.03,
  },
];

const settings = (c: Case) => ["--preset", String(c.preset), "--crf", String(c.crf)];
const contenders: Contender<Case>[] = [
  {
    name: "SvtAv1EncApp",
    command: (i, c) => ["SvtAv1EncApp", ["-i", i, "-b", `${tmp}/app.ivf`, ...settings(c)]],
  },
  {
    name: "CLI (Deno)",
    command: (
      i,
      c,
    ) => [bin("deno"), [
      "run",
      "-A",
      `${root}cli.ts`,
      "-i",
      i,
      "-o",
      `${tmp}/deno.ivf`,
      ...settings(c),
      "-q",
    ]],
  },
  {
    name: "CLI (Bun)",
    command: (i, c) => [bin("bun"), [`${root}cli.ts`, "-i", i, "-o", `${tmp}/bun.ivf`, ...settings(c), "-q"]],
  },
  {
    // The app as an unprivileged user runs, without SVT-AV1's real-time threads: the same scheduling as
    // our default (the library's threads demoted), so this ratio shows our own overhead.
    name: "SvtAv1EncApp, not real-time",
    command: (
      i,
      c,
    ) => ["setpriv", [
      "--bounding-set=-sys_nice",
      "SvtAv1EncApp",
      "-i",
      i,
      "-b",
      `${tmp}/app2.ivf`,
      ...settings(c),
    ]],
  },
  {
    name: "API (Deno), real-time threads",
    command: (
      i,
      c,
    ) => [bin("deno"), [
      "run",
      "-A",
      `${root}bench/api_encode.ts`,
      i,
      `${tmp}/deno-rt.ivf`,
      `${c.preset}`,
      `${c.crf}`,
      "realtime",
    ]],
  },
  {
    name: "API (Deno)",
    command: (
      i,
      c,
    ) => [bin("deno"), [
      "run",
      "-A",
      `${root}bench/api_encode.ts`,
      i,
      `${tmp}/deno-api.ivf`,
      `${c.preset}`,
      `${c.crf}`,
    ]],
  },
  {
    name: "API (Bun)",
    command: (
      i,
      c,
    ) => [bin("bun"), [`${root}bench/api_encode.ts`, i, `${tmp}/bun-api.ivf`, `${c.preset}`, `${c.crf}`]],
  },
  {
    name: "CLI (Node)",
    command: (
      i,
      c,
    ) => ["node", [`${nodeTree}cli.js`, "-i", i, "-o", `${tmp}/node.ivf`, ...settings(c), "-q"]],
  },
  {
    name: "API (Node)",
    command: (
      i,
      c,
    ) => ["node", [
      `${nodeTree}bench/api_encode.js`,
      i,
      `${tmp}/node-api.ivf`,
      `${c.preset}`,
      `${c.crf}`,
    ]],
  },
];

const rows: string[] = [];
const svt = await locateSvtAv1();
for (const c of cases) {
  const input = await clip(tmp, c);
  const best = await bestOf(contenders, input, c, runs);
  const app = best.get("SvtAv1EncApp")!;
  const appFair = best.get("SvtAv1EncApp, not real-time")!;
  for (const [name, m] of best) {
    const isApp = name.startsWith("SvtAv1EncApp");
    // Real-time contenders compare with the app as root runs it; the others with the app at equal priority.
    const base = isApp || name.includes("real-time") ? app : appFair;
    const ratio = m.seconds / base.seconds;
    const verdict = isApp ? "" : ratio <= c.target ? " ✓" : ` (target ≤ ${c.target})`;
    const lag = m.maxLagMs === undefined
      ? ""
      : `${m.maxLagMs.toFixed(1)} (create: ${m.createLagMs?.toFixed(1)})`;
    rows.push(
      `| ${c.name}, ${c.frames} frames | ${name} | ${m.seconds.toFixed(2)} | ${
        (c.frames / m.seconds).toFixed(1)
      } | `
        + `${(m.seconds / app.seconds).toFixed(3)} | ${isApp ? "" : `${ratio.toFixed(3)}${verdict}`} | `
        + `${m.peakRssMB.toFixed(0)} | ${lag} |`,
    );
  }
}

const header = [
  "| clip | contender | best wall s | fps | ratio vs app as root | ratio vs app at equal priority | peak RSS MB | max event-loop lag while encoding, ms |",
  "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
];
const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const machine = [
  `- Date: ${new Date().toISOString()}`,
  `- Machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${
    (totalmem() / 2 ** 30).toFixed(0)
  } GiB; load average ${load} at the end`,
  `- SVT-AV1 library ${svt.version.text} (${svt.path}); ${version("SvtAv1EncApp", ["--version"])}`,
  `- av1-stream ${libraryVersion(root)}; ${version(bin("deno"), ["--version"])}; Bun ${
    version(bin("bun"), ["--version"])
  }; Node ${version("node", ["--version"])} (compiled JavaScript, koffi)`,
  `- Best of ${runs} alternating runs; wall time of the whole process, runtime start-up included.`,
  "- As root, SVT-AV1 makes its threads SCHED_FIFO 99; av1-stream creates it under a non-root effective id",
  '  and runs its threads at SCHED_BATCH (threadPriority "batch") so the event loop stays responsive. Our',
  "  default contenders are compared with the app run without CAP_SYS_NICE (`setpriv",
  "  --bounding-set=-sys_nice`, the same scheduling); the real-time contender with the app as root.",
  "- Lag is the worst of all runs of a 1 ms interval timer on the caller's thread; other work on the",
  "  machine shows up in it.",
];
const table = [...header, ...rows].join("\n");
console.log(table);
writeResultsSection(
  `${root}bench/results.md`,
  "SVT-AV1 against SvtAv1EncApp",
  `Written by \`npm run bench\` (bench/run.ts).\n\n${machine.join("\n")}\n\n${table}\n`,
);
