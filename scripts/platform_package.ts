#!/usr/bin/env -S deno run -A
/**
 * Makes the prebuilt platform package `@av1-stream/linux-x64-gnu`: SVT-AV1 3.1.2 (`libSvtAv1Enc.so.3`)
 * and rav1e 0.8.1 (`librav1e.so.0.8`) from Debian's pinned amd64 packages (SHA-256 checked, see
 * ffi/platform.ts), each with its Debian copyright file, which carries the library's licence and the
 * Alliance for Open Media patent licence. The loader looks for this package in `node_modules` after the
 * environment overrides and `build/`, before the system's libraries.
 *
 * ```sh
 * deno run -A scripts/platform_package.ts --out build/npm        # the package folder
 * deno run -A scripts/platform_package.ts --out build/npm --pack # and its tarball beside it (npm pack)
 * ```
 *
 * For a release, the main package's manifest names it in `optionalDependencies` at the same version
 * (`--release-manifest FILE` writes that manifest), the way sharp and node-av ship their platform
 * packages: npm installs it where its `os`, `cpu` and `libc` match and skips it elsewhere.
 * @module
 */
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { fetchDebianPackages, sharedLibraryIn } from "../ffi/fetch_debian.ts";
import { DEBIAN_BUILDS, PREBUILT_PACKAGES } from "../ffi/platform.ts";
import { VERSION } from "../lib/version.ts";

const flag = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

const target = PREBUILT_PACKAGES.find((p) => p.built)!;
const out = resolve(flag("--out") ?? "build/npm");
const dir = join(out, target.name.replace("/", "+"));
const builds = [
  DEBIAN_BUILDS.find((b) => b.library === "svt-av1" && b.select === "3")!,
  DEBIAN_BUILDS.find((b) => b.library === "rav1e" && b.select === "0.8")!,
];

rmSync(dir, { recursive: true, force: true });
mkdirSync(join(dir, "lib"), { recursive: true });
const work = join(out, ".unpacked");
const lines: string[] = [];
for (const b of builds) {
  const packages = b.packages.filter((p) => p.kind === "library");
  const [fetched] = fetchDebianPackages(packages, work);
  const lib = sharedLibraryIn(fetched, b.library === "svt-av1" ? "libSvtAv1Enc.so" : "librav1e.so");
  copyFileSync(lib.path, join(dir, "lib", lib.soname));
  chmodSync(join(dir, "lib", lib.soname), 0o644);
  mkdirSync(join(dir, "licenses", b.library), { recursive: true });
  copyFileSync(
    join(fetched.root, "usr/share/doc", fetched.pkg.name, "copyright"),
    join(dir, "licenses", b.library, "copyright"),
  );
  lines.push(
    `| ${
      b.library === "svt-av1" ? "SVT-AV1" : "rav1e"
    } ${b.version} | \`lib/${lib.soname}\` | Debian ${fetched.pkg.suite} \`${fetched.pkg.name}\` ${fetched.pkg.version} | \`${fetched.pkg.sha256}\` |`,
  );
}
rmSync(work, { recursive: true, force: true });

writeFileSync(
  join(dir, "package.json"),
  JSON.stringify(
    {
      name: target.name,
      version: VERSION,
      description: `Prebuilt SVT-AV1 ${builds[0].version} and rav1e ${
        builds[1].version
      } shared libraries for av1-stream on ${target.platform} ${target.arch} (${target.libc})`,
      license: "BSD-3-Clause-Clear AND BSD-2-Clause",
      os: [target.platform],
      cpu: [target.arch],
      libc: [target.libc],
      files: ["lib/", "licenses/", "README.md"],
      repository: { type: "git", url: "git+https://github.com/av1-stream/av1-stream.git" },
    },
    null,
    2,
  ) + "\n",
);
writeFileSync(
  join(dir, "README.md"),
  `# ${target.name}

The native libraries av1-stream encodes with, prebuilt for ${target.platform} ${target.arch} with ${target.libc}
2.34 or later. av1-stream's loader finds them here after \`SVTAV1_LIB_PATH\`/\`RAV1E_LIB_PATH\` and its
\`build/\` folder, before the system's libraries; \`av1-stream --version\` names the file it took.

| library | file | from | SHA-256 of the .deb |
| ------- | ---- | ---- | ------------------- |
${lines.join("\n")}

Licences: \`licenses/svt-av1/copyright\` (SVT-AV1: BSD-3-Clause-Clear) and \`licenses/rav1e/copyright\`
(rav1e: BSD-2-Clause), Debian's copyright files of the packages above; both carry the Alliance for Open
Media Patent License 1.0. Made by \`scripts/platform_package.ts\` in av1-stream's repository.
`,
);
console.log(`${target.name} ${VERSION} is in ${dir}`);

if (process.argv.includes("--pack")) {
  const r = spawnSync("npm", ["pack", "--json", "--pack-destination", out, dir], { encoding: "utf8" });
  if (r.status !== 0) {
    console.error(r.stderr);
    process.exit(1);
  }
  const info = JSON.parse(r.stdout.slice(r.stdout.indexOf("[")))[0] as { filename: string; size: number };
  console.log(`${join(out, info.filename)} (${(info.size / 1e6).toFixed(1)} MB)`);
}

const manifest = flag("--release-manifest");
if (manifest) {
  const main = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  main.optionalDependencies = { ...main.optionalDependencies, [target.name]: VERSION };
  writeFileSync(manifest, JSON.stringify(main, null, 2) + "\n");
  console.log(`${manifest}: av1-stream ${VERSION} with ${target.name} ${VERSION} as an optional dependency`);
}
