/**
 * Benchmarks the rav1e backend against the `rav1e` CLI on the same clips and settings (speed 10, tune
 * psnr on both sides, which gives identical bytes), alternating the contenders and keeping the best of
 * several runs: wall-time ratio, peak RSS and the API's event-loop lag under Deno and Bun. Writes the
 * "rav1e against the rav1e CLI" section of bench/results.md.
 *
 * Usage: deno run -A bench/rav1e_run.ts [--runs N] [--quick]
 * @module
 */
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { locateRav1e } from "../ffi/load.ts";
import {
  benchSetup,
  bestOf,
  clip,
  type Contender,
  libraryVersion,
  toolVersion as version,
  writeResultsSection,
} from "./harness.ts";

const { root, tmp, bin, nodeTree, quick, runs } = benchSetup({ full: 2, quick: 2 });
const SPEED = 10;

const cases = [
  { name: "360p speed 10", width: 640, height: 360, frames: quick ? 20 : 60 },
  { name: "720p speed 10", width: 1280, height: 720, frames: quick ? 10 : 30 },
];
const TARGET = 1.03;

const ours = ["--codec", "rav1e", "--speed", String(SPEED), "--tune", "psnr", "-q"];
const contenders: Contender<(typeof cases)[number]>[] = [
  {
    name: "rav1e CLI",
    command: (
      i,
    ) => ["rav1e", [i, "-o", `${tmp}/rav1e-ref.ivf`, "--speed", String(SPEED), "--tune", "Psnr", "-y"]],
  },
  {
    name: "CLI (Deno)",
    command: (
      i,
    ) => [bin("deno"), ["run", "-A", `${root}cli.ts`, "-i", i, "-o", `${tmp}/r-deno.ivf`, ...ours]],
  },
  {
    name: "CLI (Bun)",
    command: (i) => [bin("bun"), [`${root}cli.ts`, "-i", i, "-o", `${tmp}/r-bun.ivf`, ...ours]],
  },
  {
    name: "API (Deno)",
    command: (
      i,
    ) => [bin("deno"), [
      "run",
      "-A",
      `${root}bench/api_encode.ts`,
      i,
      `${tmp}/r-deno-api.ivf`,
      String(SPEED),
      "-",
      "-",
      "rav1e",
    ]],
  },
  {
    name: "API (Bun)",
    command: (
      i,
    ) => [bin("bun"), [
      `${root}bench/api_encode.ts`,
      i,
      `${tmp}/r-bun-api.ivf`,
      String(SPEED),
      "-",
      "-",
      "rav1e",
    ]],
  },
  {
    name: "CLI (Node)",
    command: (i) => ["node", [`${nodeTree}cli.js`, "-i", i, "-o", `${tmp}/r-node.ivf`, ...ours]],
  },
  {
    name: "API (Node)",
    command: (i) => ["node", [
      `${nodeTree}bench/api_encode.js`,
      i,
      `${tmp}/r-node-api.ivf`,
      String(SPEED),
      "-",
      "-",
      "rav1e",
    ]],
  },
];

const rows: string[] = [];
for (const c of cases) {
  const input = await clip(tmp, c);
  const best = await bestOf(contenders, input, c, runs);
  const cli = best.get("rav1e CLI")!;
  for (const [name, m] of best) {
    const ratio = m.seconds / cli.seconds;
    const verdict = name === "rav1e CLI" ? "" : ratio <= TARGET ? " ✓" : ` (target ≤ ${TARGET})`;
    rows.push(
      `| ${c.name}, ${c.frames} frames | ${name} | ${m.seconds.toFixed(2)} | ${
        (c.frames / m.seconds).toFixed(1)
      } | `
        + `${ratio.toFixed(3)}${verdict} | ${m.peakRssMB.toFixed(0)} | ${m.maxLagMs?.toFixed(1) ?? ""} |`,
    );
  }
}

const rav1e = await locateRav1e();
const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const table = [
  "| clip | contender | best wall s | fps | ratio vs rav1e CLI | peak RSS MB | max event-loop lag ms |",
  "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
  ...rows,
].join("\n");
console.log(table);
writeResultsSection(
  `${root}bench/results.md`,
  "rav1e against the rav1e CLI",
  [
    "Written by `deno run -A bench/rav1e_run.ts`.",
    "",
    `- Date: ${new Date().toISOString()}; ${cpus().length} cores; load average ${load} at the end`,
    `- librav1e ${rav1e.version.text} (${rav1e.path}); ${version("rav1e", ["--version"])}`,
    `- av1-stream ${libraryVersion(root)}; Node ${
      version("node", ["--version"])
    } runs the compiled JavaScript (koffi)`,
    `- Speed ${SPEED}, tune psnr on both sides (identical bytes); best of ${runs} alternating runs; wall time of`,
    "  the whole process, runtime start-up included.",
    "",
    table,
  ].join("\n"),
);
