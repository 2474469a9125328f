// Builds dist/: the npm package's JavaScript and .d.ts (Deno refuses TypeScript under node_modules, and
// Node 20 cannot run it). Run by `npm run build:dist`, by `npm pack`/`npm publish` (prepack) and by the
// package test. Usage: node scripts/build_dist.mjs
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const step = (cmd, args, options = {}) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", ...options });
  if (r.status !== 0) {
    console.error(`build_dist: ${cmd} ${args.join(" ")} failed (exit ${r.status})`);
    process.exit(1);
  }
};

rmSync(join(root, "dist"), { recursive: true, force: true });
// Deno's declarations for the Deno adapter's type check (generated, not committed).
mkdirSync(join(root, "types"), { recursive: true });
const types = spawnSync(bin("deno"), ["types"], { cwd: root, maxBuffer: 64 << 20 });
if (types.status !== 0) {
  console.error("build_dist: `deno types` failed");
  process.exit(1);
}
writeFileSync(join(root, "types", "deno.d.ts"), types.stdout);
for (const config of ["tsconfig.dist.json", "tsconfig.dist.deno.json", "tsconfig.dist.bun.json"]) {
  step(bin("tsc"), ["-p", config]);
}
for (
  const f of [
    "mod.js",
    "mod.d.ts",
    "cli.js",
    "ffi/runtime/deno.js",
    "ffi/runtime/system_deno.js",
    "ffi/runtime/bun.js",
    "ffi/runtime/bun_thread_scope.js",
  ]
) {
  if (!existsSync(join(root, "dist", f))) {
    console.error(`build_dist: dist/${f} is missing`);
    process.exit(1);
  }
}
// The npm bin runs under whatever runs it (node, `bunx`, `deno run npm:`): the shebang names Node.
const cli = join(root, "dist", "cli.js");
const text = readFileSync(cli, "utf8").replace(/^#!.*\n/, "");
writeFileSync(cli, "#!/usr/bin/env node\n" + text);
chmodSync(cli, 0o755);
console.log("dist/ built");
