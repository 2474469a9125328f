// Adds the other platforms' optional binary packages (deno, bun, dprint, typescript) to package-lock.json.
// The registry reachable here serves only this platform's binaries, so a lock made here lacks them, and
// `npm ci` on a fresh clone then fails. Each added entry carries its os/cpu/libc so npm skips it here.
// Usage: node .ci/fix_lock.mjs   (run after every `npm install`)
import { readFileSync, writeFileSync } from "node:fs";

const path = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(path, "utf8"));
const packages = lock.packages;

function platformOf(name) {
  const n = name.toLowerCase();
  const os = /darwin|macos/.test(n) ? "darwin" : /win32|windows/.test(n) ? "win32" : /freebsd/.test(n)
    ? "freebsd"
    : /android/.test(n)
    ? "android"
    : /linux/.test(n)
    ? "linux"
    : undefined;
  const cpu = /arm64|aarch64/.test(n)
    ? "arm64"
    : /x64|x86_64|amd64/.test(n)
    ? "x64"
    : /arm/.test(n)
    ? "arm"
    : undefined;
  const libc = /musl/.test(n) ? "musl" : /glibc|gnu/.test(n) && os === "linux" ? "glibc" : undefined;
  return { os, cpu, libc };
}

let added = 0;
for (const [key, entry] of Object.entries(packages)) {
  if (!entry.optionalDependencies) continue;
  const base = key === "" ? "node_modules/" : `${key}/node_modules/`;
  for (const [dep, range] of Object.entries(entry.optionalDependencies)) {
    if (packages[`node_modules/${dep}`] || packages[`${base}${dep}`]) continue;
    const { os, cpu, libc } = platformOf(dep);
    if (!os && !cpu) continue;
    const version = String(range).replace(/^[\^~=]/, "");
    const item = { version, dev: entry.dev || undefined, optional: true };
    if (os) item.os = [os];
    if (cpu) item.cpu = [cpu];
    if (libc) item.libc = [libc];
    packages[`node_modules/${dep}`] = item;
    added++;
  }
}
// Keep npm's key order: sorted after the root entry.
const sorted = { "": packages[""] };
for (const k of Object.keys(packages).filter((k) => k !== "").sort()) sorted[k] = packages[k];
lock.packages = sorted;
writeFileSync(path, JSON.stringify(lock, null, 2) + "\n");
console.log(`fix_lock: added ${added} optional platform entries`);
