/**
 * Where a process's resident memory is: a snapshot taken inside the process (its own heaps' figures:
 * glibc's `malloc_info`, Bun's mimalloc and JavaScriptCore heap) and its `/proc/self/smaps` summed by kind
 * of mapping, so that two snapshots say which allocator's pages grew.
 *
 * `installMemoryProbe(dir)` makes the process write a snapshot to `dir` on every SIGUSR2 (used by
 * bench/service_child.ts, driven by `bench/http_load.ts --memory-probe DIR`); `compareSmaps` and the
 * command line compare two of them:
 *
 *   deno run -A bench/memory_probe.ts before.json after.json
 * @module
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import process from "node:process";
import v8 from "node:v8";
import vm from "node:vm";
import { ffiRuntime } from "../ffi/runtime/mod.ts";
import { libcSymbols } from "../ffi/symbols/libc.ts";

/** glibc's heap (every arena), from malloc_info: arenas, bytes taken from the system, free in bins. */
export interface MallocInfo {
  arenas: number;
  system: number;
  free: number;
  mmapped: number;
}

type Libc = Awaited<ReturnType<typeof openLibc>>;

async function openLibc() {
  try {
    return (await ffiRuntime()).open("libc.so.6", libcSymbols);
  } catch {
    return undefined;
  }
}

let libcHandle: Promise<Libc> | undefined;
/** libc, opened once (undefined where it cannot be). */
export function libcForProbe(): Promise<Libc> {
  libcHandle ??= openLibc();
  return libcHandle;
}

const cString = (s: string) => new TextEncoder().encode(s + "\0");

/** glibc's heap state from malloc_info (undefined off glibc). */
export function mallocInfo(libc: Libc): MallocInfo | undefined {
  if (!libc?.symbols.malloc_info) return undefined;
  const path = `/tmp/av1-stream-malloc-${process.pid}-${Math.random().toString(36).slice(2)}.xml`;
  const file = libc.symbols.fopen(cString(path), cString("w"));
  if (file === 0n) return undefined;
  libc.symbols.malloc_info(0, file);
  libc.symbols.fclose(file);
  const xml = readFileSync(path, "utf8");
  rmSync(path, { force: true });
  // The totals follow the last </heap>.
  const tail = xml.slice(xml.lastIndexOf("</heap>"));
  const size = (re: RegExp) => Number(re.exec(tail)?.[1] ?? 0);
  return {
    arenas: (xml.match(/<heap nr=/g) ?? []).length,
    system: size(/<system type="current" size="(\d+)"/),
    free: size(/<total type="fast" count="\d+" size="(\d+)"/)
      + size(/<total type="rest" count="\d+" size="(\d+)"/),
    mmapped: size(/<total type="mmap" count="\d+" size="(\d+)"/),
  };
}

/** One mapping of /proc/PID/smaps. */
export interface Mapping {
  start: bigint;
  end: bigint;
  perms: string;
  name: string;
  /** kB */
  rss: number;
  anonymous: number;
}

/** Parses /proc/PID/smaps. */
export function parseSmaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  let cur: Mapping | undefined;
  for (const line of text.split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      cur = {
        start: BigInt(`0x${head[1]}`),
        end: BigInt(`0x${head[2]}`),
        perms: head[3],
        name: head[4].trim(),
        rss: 0,
        anonymous: 0,
      };
      out.push(cur);
      continue;
    }
    const field = /^(Rss|Anonymous):\s+(\d+) kB/.exec(line);
    if (field && cur) {
      if (field[1] === "Rss") cur.rss = Number(field[2]);
      else cur.anonymous = Number(field[2]);
    }
  }
  return out;
}

const MiB = 1n << 20n;
/** glibc's per-thread arenas are heaps of at most 64 MiB, aligned to their size. */
const ARENA = 64n * MiB;

/**
 * The kind of a mapping, by what it is named and how it is shaped: files by name; anonymous memory as
 * glibc arena (inside a 64 MiB-aligned heap region), thread stack (8 MiB or its guard), the main heap,
 * or other anonymous memory by the size class of its region (the runtime's allocators reserve large
 * regions: mimalloc arenas of 1 GiB, JavaScriptCore's much larger ones).
 */
export function kindOf(m: Mapping, all: Mapping[]): string {
  if (m.name === "[heap]") return "brk heap (glibc main arena)";
  if (m.name === "[stack]") return "main stack";
  if (m.name.startsWith("[")) return m.name;
  if (m.name) {
    const base = m.name.split("/").pop() ?? m.name;
    return m.perms.includes("x") ? `file ${base} (code)` : `file ${base}`;
  }
  const size = m.end - m.start;
  // A glibc non-main arena: a 64 MiB-aligned region whose read-write head and inaccessible tail together
  // make at most 64 MiB.
  const regionStart = m.start - (m.start % ARENA);
  if (m.start === regionStart || all.some((o) => o.start === regionStart && !o.name && o.end === m.start)) {
    const region = all.filter((o) => !o.name && o.start >= regionStart && o.end <= regionStart + ARENA);
    const span = region.reduce((s, o) => s + (o.end - o.start), 0n);
    const contiguous = region.every((o, i) => i === 0 || region[i - 1].end === o.start);
    if (span === ARENA && contiguous && region.length <= 2) return "glibc thread arena (64 MiB heap)";
  }
  if (size === 8n * MiB || size === 8n * MiB - 4096n || size === 8n * MiB + 4096n) {
    return "thread stack (8 MiB)";
  }
  if (m.perms === "---p" && size <= 64n * 1024n) return "guard page";
  if (size >= 1024n * MiB) return `anonymous region ≥ 1 GiB (${m.perms})`;
  if (size >= 64n * MiB) return `anonymous region 64 MiB - 1 GiB (${m.perms})`;
  if (size >= 4n * MiB) return `anonymous region 4-64 MiB (${m.perms})`;
  return `anonymous region < 4 MiB (${m.perms})`;
}

/** RSS in kB by kind of mapping. */
export function smapsByKind(text: string): Record<string, { rss: number; mappings: number }> {
  const maps = parseSmaps(text);
  const out: Record<string, { rss: number; mappings: number }> = {};
  for (const m of maps) {
    const k = kindOf(m, maps);
    out[k] ??= { rss: 0, mappings: 0 };
    out[k].rss += m.rss;
    out[k].mappings++;
  }
  return out;
}

/**
 * RSS in bytes by owner, from smaps: mimalloc's arenas (Bun's allocator reserves them in 1 GiB regions
 * below the thread stacks' part of the address space), glibc's heap (main and thread arenas), JIT code
 * (the read-write-execute region), and everything else (the executable's and libraries' pages, stacks,
 * the rest of the anonymous memory).
 */
export function rssOwners(text: string): { mimalloc: number; glibc: number; jit: number; other: number } {
  const maps = parseSmaps(text);
  let mimalloc = 0, glibc = 0, jit = 0, total = 0;
  for (const m of maps) {
    total += m.rss;
    const k = kindOf(m, maps);
    if (k.startsWith("glibc") || k.startsWith("brk")) glibc += m.rss;
    else if (!m.name && m.perms === "rwxp") jit += m.rss;
    else if (!m.name && m.perms === "rw-p" && m.end - m.start === 1n << 30n && m.start < 0x700000000000n) {
      mimalloc += m.rss;
    }
  }
  return {
    mimalloc: mimalloc * 1024,
    glibc: glibc * 1024,
    jit: jit * 1024,
    other: (total - mimalloc - glibc - jit) * 1024,
  };
}

/** A snapshot of a process's memory, from inside it. */
export interface MemorySnapshot {
  at: string;
  rss: number;
  heapUsed: number;
  external: number;
  malloc?: MallocInfo;
  /** Bun only: mimalloc's figures (`bun:jsc` memoryUsage) and the calling thread's JavaScriptCore heap. */
  bun?: {
    mimalloc: { current: number; peak: number; currentCommit: number; peakCommit: number };
    heap: { heapSize: number; heapCapacity: number; extraMemorySize: number; objectCount: number };
  };
  /** RSS kB by kind of mapping. */
  smaps: Record<string, { rss: number; mappings: number }>;
  /** The raw smaps text, for mapping-by-mapping comparison. */
  smapsText: string;
  /** The same figures right after a full garbage collection of the calling thread (`--gc` snapshots). */
  collected?: Omit<MemorySnapshot, "collected">;
}

/** A full garbage collection of the calling thread: Bun.gc(true), or V8's gc (exposed for it). */
function collectGarbage(): void {
  const g = globalThis as unknown as { Bun?: { gc(force: boolean): void } };
  if (g.Bun) return g.Bun.gc(true);
  v8.setFlagsFromString("--expose-gc");
  (vm.runInNewContext("gc") as () => void)();
}

/**
 * Takes a snapshot of this process's memory; with `collect`, a second one right after a full garbage
 * collection of the calling thread (what the process holds beyond the garbage it has not collected yet).
 */
export async function memorySnapshot(collect = false): Promise<MemorySnapshot> {
  const snap = await snapshotNow();
  if (collect) {
    collectGarbage();
    snap.collected = await snapshotNow();
  }
  return snap;
}

async function snapshotNow(): Promise<MemorySnapshot> {
  const m = process.memoryUsage();
  const smapsText = readFileSync("/proc/self/smaps", "utf8");
  const snap: MemorySnapshot = {
    at: new Date().toISOString(),
    rss: m.rss,
    heapUsed: m.heapUsed,
    external: m.external,
    malloc: mallocInfo(await libcForProbe()),
    smaps: smapsByKind(smapsText),
    smapsText,
  };
  if ("Bun" in globalThis) {
    const jsc = await import("bun:jsc" as string) as {
      memoryUsage(): NonNullable<MemorySnapshot["bun"]>["mimalloc"];
      heapStats(): NonNullable<MemorySnapshot["bun"]>["heap"];
    };
    const mi = jsc.memoryUsage();
    const h = jsc.heapStats();
    snap.bun = {
      mimalloc: {
        current: mi.current,
        peak: mi.peak,
        currentCommit: mi.currentCommit,
        peakCommit: mi.peakCommit,
      },
      heap: {
        heapSize: h.heapSize,
        heapCapacity: h.heapCapacity,
        extraMemorySize: h.extraMemorySize,
        objectCount: h.objectCount,
      },
    };
  }
  return snap;
}

/**
 * On every SIGUSR2, writes a snapshot (as is and after a full garbage collection of this thread) to
 * `dir/probe-N.json` (N counting from 1; written under another name first and renamed, so that a reader
 * never sees half a file).
 */
export function installMemoryProbe(dir: string): void {
  let n = 0;
  process.on("SIGUSR2", () => {
    const k = ++n;
    void memorySnapshot(true).then((s) => {
      const path = `${dir}/probe-${k}.json`;
      writeFileSync(`${path}.part`, JSON.stringify(s));
      renameSync(`${path}.part`, path);
    });
  });
}

const kb = (n: number) => (n / 1024).toFixed(1);
const mb = (n: number) => (n / (1 << 20)).toFixed(1);

/** What grew between two snapshots: RSS by kind, the in-process figures, and the mappings that grew most. */
export function compareSnapshots(a: MemorySnapshot, b: MemorySnapshot, top = 12): string {
  const lines = [`RSS ${mb(a.rss)} → ${mb(b.rss)} MB (${a.at} → ${b.at})`];
  lines.push(
    `JS heap ${mb(a.heapUsed)} → ${mb(b.heapUsed)} MB, external ${mb(a.external)} → ${mb(b.external)} MB`,
  );
  if (a.malloc && b.malloc) {
    lines.push(
      `glibc heap: system ${mb(a.malloc.system)} → ${mb(b.malloc.system)} MB, free in bins ${
        mb(a.malloc.free)
      } → ${mb(b.malloc.free)} MB, mmapped ${mb(a.malloc.mmapped)} → ${
        mb(b.malloc.mmapped)
      } MB, arenas ${a.malloc.arenas} → ${b.malloc.arenas}`,
    );
  }
  if (a.bun && b.bun) {
    const [x, y] = [a.bun.mimalloc, b.bun.mimalloc];
    lines.push(
      `mimalloc: in use ${mb(x.current)} → ${mb(y.current)} MB, committed ${mb(x.currentCommit)} → ${
        mb(y.currentCommit)
      } MB (peak ${mb(y.peakCommit)})`,
    );
    const [h, i] = [a.bun.heap, b.bun.heap];
    lines.push(
      `main thread's JSC heap: size ${mb(h.heapSize)} → ${mb(i.heapSize)} MB, capacity ${
        mb(h.heapCapacity)
      } → ${mb(i.heapCapacity)} MB, extra ${mb(h.extraMemorySize)} → ${mb(i.extraMemorySize)} MB`,
    );
  }
  lines.push("RSS by kind of mapping, MB (mappings):");
  const kinds = [...new Set([...Object.keys(a.smaps), ...Object.keys(b.smaps)])];
  const rows = kinds.map((k) => {
    const x = a.smaps[k] ?? { rss: 0, mappings: 0 };
    const y = b.smaps[k] ?? { rss: 0, mappings: 0 };
    return { k, x, y, d: y.rss - x.rss };
  }).sort((p, q) => Math.abs(q.d) - Math.abs(p.d));
  for (const r of rows) {
    if (r.x.rss < 512 && r.y.rss < 512 && Math.abs(r.d) < 256) continue;
    lines.push(
      `  ${r.d >= 0 ? "+" : ""}${kb(r.d).padStart(6)}  ${kb(r.x.rss).padStart(7)} → ${
        kb(r.y.rss).padStart(7)
      }  (${r.x.mappings} → ${r.y.mappings})  ${r.k}`,
    );
  }
  // Mapping by mapping: those at the same start address in both, by growth; and new ones.
  const ma = parseSmaps(a.smapsText);
  const mbMaps = parseSmaps(b.smapsText);
  const byStart = new Map(ma.map((m) => [m.start, m]));
  const grown = mbMaps.map((m) => ({
    m,
    d: m.rss - (byStart.get(m.start)?.rss ?? 0),
    old: byStart.get(m.start),
  }))
    .sort((p, q) => q.d - p.d).slice(0, top);
  lines.push(`Mappings that grew most (kB, start address, size, kind):`);
  for (const g of grown) {
    lines.push(
      `  ${g.d >= 0 ? "+" : ""}${g.d}  ${g.old?.rss ?? "new"} → ${g.m.rss}  ${g.m.start.toString(16)} ${
        mb(Number(g.m.end - g.m.start))
      } MB  ${kindOf(g.m, mbMaps)}`,
    );
  }
  return lines.join("\n");
}

/** One line per snapshot: RSS and its owners, as is / after the garbage collection. */
export function seriesLine(label: string, s: MemorySnapshot): string {
  const one = (x: Omit<MemorySnapshot, "collected">) => {
    const o = rssOwners(x.smapsText);
    const js = x.bun ? x.bun.heap.heapCapacity + x.bun.heap.extraMemorySize : x.heapUsed + x.external;
    return `${mb(x.rss)} = mimalloc ${mb(o.mimalloc)} + glibc ${mb(o.glibc)} + jit ${mb(o.jit)} + other ${
      mb(o.other)
    } (JS ${mb(js)})`;
  };
  return `${label}: ${one(s)}${s.collected ? ` | after GC ${one(s.collected)}` : ""}`;
}

if (import.meta.main && process.argv.length >= 3) {
  const files = process.argv.slice(2).filter((a) => a.endsWith(".json"));
  const read = (p: string) => JSON.parse(readFileSync(p, "utf8")) as MemorySnapshot;
  if (process.argv.includes("--series")) {
    for (const f of files) console.log(seriesLine(f.split("/").pop()!.replace(/\.json$/, ""), read(f)));
  } else {
    console.log(compareSnapshots(read(files[0]), read(files[1])));
  }
}
