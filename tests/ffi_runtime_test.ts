import assert from "node:assert/strict";
import { test } from "node:test";
import { ffiRuntime, runtimeName, startThread } from "../ffi/runtime/mod.ts";
import type { SymbolTable } from "../ffi/runtime/types.ts";

// libc calls that exercise each part of the FfiRuntime contract; every adapter must give the same answers.
const libcProbe = {
  // void *memmove(void *dest, const void *src, size_t n); with n = 0 it returns dest: the address koffi,
  // Deno and Bun passed for a buffer argument.
  memmove: { parameters: ["buffer", "buffer", "usize"], result: "pointer" },
  // void *memset(void *s, int c, size_t n); on a raw address
  memset: { parameters: ["pointer", "i32", "usize"], result: "pointer" },
  // char *getenv(const char *name);
  getenv: { parameters: ["buffer"], result: "pointer" },
  // long long llabs(long long j);
  llabs: { parameters: ["i64"], result: "i64" },
  // unsigned long strtoul(const char *s, char **end, int base);
  strtoul: { parameters: ["buffer", "pointer", "i32"], result: "u64" },
  // int abs(int j);
  abs: { parameters: ["i32"], result: "i32" },
  av1_stream_no_such_symbol: { parameters: [], result: "void", optional: true },
} as const satisfies SymbolTable;

const cstr = (s: string) => new TextEncoder().encode(s + "\0");

test("the runtime is detected and has an FFI adapter", async () => {
  const name = runtimeName();
  assert.ok(name === "deno" || name === "bun" || name === "node", `runtime ${name}`);
  const rt = await ffiRuntime();
  assert.equal(rt.name, name);
});

test("a library opens with its symbols; a missing optional symbol is left out", async () => {
  const rt = await ffiRuntime();
  const lib = rt.open("libc.so.6", libcProbe);
  try {
    assert.equal(typeof lib.symbols.abs, "function");
    assert.equal(lib.symbols.abs(-7), 7);
    assert.equal("av1_stream_no_such_symbol" in lib.symbols, false);
  } finally {
    lib.close();
  }
});

test("a missing library or required symbol throws an error naming it", async () => {
  const rt = await ffiRuntime();
  assert.throws(() => rt.open("/nonexistent/libnothing.so", libcProbe), /libnothing/);
  assert.throws(
    () => rt.open("libc.so.6", { av1_stream_no_such_symbol: { parameters: [], result: "void" } }),
    /av1_stream_no_such_symbol/,
  );
});

test("pointers cross as bigint: buffer addresses, raw writes, reads and copies agree", async () => {
  const rt = await ffiRuntime();
  const lib = rt.open("libc.so.6", libcProbe);
  try {
    // Over its own ArrayBuffer: Bun moves a small typed array's bytes when its buffer is first asked for
    // (by subarray() or .buffer), so an address taken before that goes stale.
    const buf = new Uint8Array(new ArrayBuffer(64));
    const address = lib.symbols.memmove(buf, buf, 0n);
    assert.equal(typeof address, "bigint");
    assert.notEqual(address, 0n);
    assert.equal(rt.addressOf(buf), address);
    assert.equal(rt.addressOf(buf.subarray(8)), address + 8n);
    lib.symbols.memset(address + 4n, 0xab, 4n);
    assert.deepEqual([...buf.subarray(0, 9)], [0, 0, 0, 0, 0xab, 0xab, 0xab, 0xab, 0]);
    const view = new DataView(buf.buffer);
    view.setUint32(16, 0xfedcba98, true);
    view.setInt32(20, -5, true);
    view.setBigUint64(24, 0x1234_5678_9abc_def0n, true);
    view.setFloat64(32, 2.5, true);
    assert.equal(rt.readU8(address, 4), 0xab);
    assert.equal(rt.readU32(address, 16), 0xfedcba98);
    assert.equal(rt.readI32(address, 20), -5);
    assert.equal(rt.readU64(address, 24), 0x1234_5678_9abc_def0n);
    assert.equal(rt.readF64(address, 32), 2.5);
    const copy = rt.copyOut(address, 4, 5);
    assert.deepEqual([...copy], [0xab, 0xab, 0xab, 0xab, 0]);
    assert.equal(copy.byteOffset, 0);
    assert.equal(copy.buffer.byteLength, 5);
    buf[4] = 1;
    assert.equal(copy[0], 0xab, "copyOut copies");
    assert.equal(rt.copyOut(address, 0, 0).byteLength, 0);
  } finally {
    lib.close();
  }
});

test("64-bit results are bigint, C strings read back, a NULL pointer is 0n", async () => {
  const rt = await ffiRuntime();
  const lib = rt.open("libc.so.6", libcProbe);
  try {
    assert.equal(lib.symbols.llabs(-(2n ** 60n)), 2n ** 60n);
    assert.equal(lib.symbols.llabs(-3n), 3n);
    assert.equal(lib.symbols.strtoul(cstr("18446744073709551615"), 0n, 10), 2n ** 64n - 1n);
    process.env.AV1_STREAM_FFI_PROBE = "héllo";
    const p = lib.symbols.getenv(cstr("AV1_STREAM_FFI_PROBE"));
    // Deno's and Node's process.env write through to the C environment; Bun keeps its own copy.
    if (p !== 0n) assert.equal(rt.readCString(p), "héllo");
    assert.equal(lib.symbols.getenv(cstr("AV1_STREAM_NO_SUCH_VARIABLE")), 0n);
  } finally {
    lib.close();
  }
});

test("a thread runs a module with the web worker scope and exchanges transferred buffers", async () => {
  await ffiRuntime();
  const thread = startThread(new URL("./_helpers/echo_thread.ts", import.meta.url));
  try {
    const reply = await new Promise<{ sum: number; length: number }>((resolve, reject) => {
      thread.onmessage = (e) => resolve(e.data);
      thread.onerror = (e) => reject(new Error(e.message));
      const data = new Uint8Array([1, 2, 3, 4]);
      thread.postMessage({ data }, [data.buffer]);
      assert.equal(data.byteLength, 0, "the buffer was transferred");
    });
    assert.deepEqual(reply, { sum: 10, length: 4 });
  } finally {
    thread.terminate();
  }
});

test("a thread whose module sets onmessage after a top-level await gets every message sent as it started", async () => {
  // Bun's Worker dropped the messages that came before: an encoder thread's set-up and first init, so
  // that encoder's creation waited for ever.
  await ffiRuntime();
  const thread = startThread(new URL("./_helpers/late_thread.ts", import.meta.url));
  try {
    const got: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`only ${got.length} of 3 replies in 20 s`)), 20_000);
      thread.onmessage = (e) => {
        got.push(e.data.n);
        if (got.length === 3) {
          clearTimeout(deadline);
          resolve();
        }
      };
      thread.onerror = (e) => reject(new Error(e.message));
      for (const n of [1, 2]) thread.postMessage({ n });
      setTimeout(() => thread.postMessage({ n: 3 }), 300);
    });
    assert.deepEqual(got, [1, 2, 3]);
  } finally {
    thread.terminate();
  }
});

test("a thread that keeps its payloads past its handler reads them intact (no view into reused space)", async () => {
  await ffiRuntime();
  const thread = startThread(new URL("./_helpers/deferred_thread.ts", import.meta.url));
  try {
    // One payload at a time, each after the last was acknowledged: the sender then reuses the space the
    // thread has given back.
    let value = 0;
    const intact = await new Promise<boolean[]>((resolve, reject) => {
      const send = () => {
        value++;
        const data = new Uint8Array(96 * 1024).fill(value);
        thread.postMessage({ data, value }, [data.buffer]);
      };
      thread.onmessage = (e) => {
        if (Array.isArray(e.data)) resolve(e.data);
        else if (value < 24) send();
        else thread.postMessage({ report: true });
      };
      thread.onerror = (e) => reject(new Error(e.message));
      send();
    });
    assert.deepEqual(intact, new Array(24).fill(true));
  } finally {
    thread.terminate();
  }
});

test("an error thrown in a thread reaches onerror with its message", async () => {
  await ffiRuntime();
  const thread = startThread(new URL("./_helpers/echo_thread.ts", import.meta.url));
  try {
    const message = await new Promise<string>((resolve) => {
      thread.onerror = (e) => {
        e.preventDefault?.();
        resolve(e.message);
      };
      thread.postMessage({ fail: "echo thread asked to fail" });
    });
    assert.match(message, /echo thread asked to fail/);
  } finally {
    thread.terminate();
  }
});
