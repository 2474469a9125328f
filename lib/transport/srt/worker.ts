/**
 * Worker entry that owns one SRT caller socket. `srt_connect` blocks for up to the connect timeout and
 * `srt_sendmsg2` blocks while the send buffer is full, so both run here, never on the caller's thread.
 * Messages are handled one after another; between them a timer reads the socket's state and statistics.
 * @module
 */
import { openSrt } from "../../../ffi/load.ts";
import { ffiRuntime } from "../../../ffi/runtime/mod.ts";
import type { FfiRuntime, NativeLibrary } from "../../../ffi/runtime/types.ts";
import {
  SRT_LIVE_PAYLOAD_SIZE,
  SrtErrno,
  SrtOption,
  SrtRejectReason,
  SrtSockStatus,
  SrtStatsLayout,
  type srtSymbols,
  SrtTransType,
} from "../../../ffi/symbols/srt.ts";
import type { FromSrtWorker, SrtConnectRequest, SrtLinkStats, ToSrtWorker } from "./srt.ts";

interface WorkerScope {
  onmessage: ((e: MessageEvent<ToSrtWorker>) => void) | null;
  postMessage(message: FromSrtWorker): void;
  close(): void;
}

const scope = globalThis as unknown as WorkerScope;
const STATS_PERIOD_MS = 250;

let rt: FfiRuntime;
let lib: NativeLibrary<typeof srtSymbols> | undefined;
let sock = -1;
let started = false;
let lost = false;
let latency = 120;
let timer: ReturnType<typeof setInterval> | undefined;
const chunk = new Uint8Array(SRT_LIVE_PAYLOAD_SIZE);
const statsBuf = new Uint8Array(SrtStatsLayout.size);
const statsView = new DataView(statsBuf.buffer);

const post = (m: FromSrtWorker) => scope.postMessage(m);

function int(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v, true);
  return b;
}

/** The last SRT error of this thread: its number, the library's sentence and a POSIX-style code. */
function lastError(what: string): { code: string; message: string; srtErrno: number } {
  const s = lib!.symbols;
  const srtErrno = s.srt_getlasterror(new Uint8Array(4));
  const text = rt.readCString(s.srt_getlasterror_str());
  let code = "EIO";
  let detail = text;
  if (srtErrno === SrtErrno.enoserver) code = "ETIMEDOUT";
  else if (srtErrno === SrtErrno.econnrej) {
    code = "ECONNREFUSED";
    const reason = sock >= 0 ? s.srt_getrejectreason(sock) : -1;
    if (reason >= 0) detail += ` (${rt.readCString(s.srt_rejectreason_str(reason))})`;
    if (reason === SrtRejectReason.badsecret || reason === SrtRejectReason.unsecure) {
      detail += ": check the passphrase on both sides";
    }
    if (reason === SrtRejectReason.timeout) code = "ETIMEDOUT";
  } else if (srtErrno === SrtErrno.econnlost || srtErrno === SrtErrno.einvsock) code = "ECONNRESET";
  else if (srtErrno === SrtErrno.enoconn) code = "ENOTCONN";
  else if (srtErrno === SrtErrno.esecfail) code = "EACCES";
  s.srt_clearlasterror();
  return { code, message: `SRT ${what} failed: ${detail}`, srtErrno };
}

function setFlag(opt: number, value: Uint8Array, name: string) {
  if (lib!.symbols.srt_setsockflag(sock, opt, value, value.length) !== 0) {
    throw lastError(`setting ${name}`);
  }
}

function readStats(): SrtLinkStats | undefined {
  if (sock < 0 || lib!.symbols.srt_bistats(sock, statsBuf, 0, 1) !== 0) return undefined;
  const L = SrtStatsLayout;
  return {
    rttMs: statsView.getFloat64(L.msRTT, true),
    sendRateKbps: statsView.getFloat64(L.mbpsSendRate, true) * 1000,
    bandwidthKbps: statsView.getFloat64(L.mbpsBandwidth, true) * 1000,
    bytesSent: Number(statsView.getBigUint64(L.byteSentTotal, true)),
    packetsSent: Number(statsView.getBigInt64(L.pktSentTotal, true)),
    packetsRetransmitted: statsView.getInt32(L.pktRetransTotal, true),
    packetsLost: statsView.getInt32(L.pktSndLossTotal, true),
    packetsDropped: statsView.getInt32(L.pktSndDropTotal, true),
    unackedBytes: statsView.getInt32(L.byteSndBuf, true),
  };
}

/** Reports a broken socket once, even while nothing is being written. */
function checkState(): boolean {
  if (lost || sock < 0) return !lost;
  const state = lib!.symbols.srt_getsockstate(sock);
  if (state === SrtSockStatus.connected) return true;
  lost = true;
  post({
    t: "lost",
    code: "ECONNRESET",
    message: state === SrtSockStatus.broken
      ? "The SRT connection broke: the peer closed it or was silent past the idle timeout"
      : `The SRT socket is no longer connected (state ${state})`,
    srtErrno: SrtErrno.econnlost,
  });
  return false;
}

function tick() {
  if (!checkState()) return stopTimer();
  const stats = readStats();
  if (stats) post({ t: "stats", stats });
}

function stopTimer() {
  if (timer !== undefined) clearInterval(timer);
  timer = undefined;
}

async function connect(req: SrtConnectRequest) {
  rt = await ffiRuntime();
  // Never dlclose libsrt: its own threads may outlive this worker's socket.
  lib = openSrt(rt, req.location);
  const s = lib.symbols;
  if (s.srt_startup() < 0) throw lastError("startup");
  started = true;
  sock = s.srt_create_socket();
  if (sock < 0) throw lastError("create_socket");
  const o = req.options;
  latency = o.latency ?? 120;
  setFlag(SrtOption.transtype, int(SrtTransType.live), "SRTO_TRANSTYPE");
  setFlag(SrtOption.payloadsize, int(SRT_LIVE_PAYLOAD_SIZE), "SRTO_PAYLOADSIZE");
  setFlag(SrtOption.sndsyn, int(1), "SRTO_SNDSYN");
  setFlag(SrtOption.sndtimeo, int(o.sendTimeout), "SRTO_SNDTIMEO");
  setFlag(SrtOption.conntimeo, int(o.connectTimeout), "SRTO_CONNTIMEO");
  setFlag(SrtOption.peeridletimeo, int(o.peerIdleTimeout), "SRTO_PEERIDLETIMEO");
  if (o.latency !== undefined) setFlag(SrtOption.latency, int(o.latency), "SRTO_LATENCY");
  if (o.passphrase) {
    setFlag(SrtOption.passphrase, new TextEncoder().encode(o.passphrase), "SRTO_PASSPHRASE");
    if (o.pbkeylen) setFlag(SrtOption.pbkeylen, int(o.pbkeylen), "SRTO_PBKEYLEN");
  }
  if (o.streamId) setFlag(SrtOption.streamid, new TextEncoder().encode(o.streamId), "SRTO_STREAMID");
  // Blocks until the handshake completes or SRTO_CONNTIMEO passes.
  if (s.srt_connect(sock, req.sockaddr, req.sockaddr.length) < 0) throw lastError(`connect to ${req.name}`);
  post({ t: "connected" });
  tick();
  timer = setInterval(tick, STATS_PERIOD_MS);
}

/** Sends `data` as live-mode messages of at most 1316 bytes. */
function write(data: Uint8Array) {
  const s = lib!.symbols;
  for (let at = 0; at < data.length; at += SRT_LIVE_PAYLOAD_SIZE) {
    const n = Math.min(SRT_LIVE_PAYLOAD_SIZE, data.length - at);
    chunk.set(data.subarray(at, at + n));
    while (true) {
      if (s.srt_sendmsg2(sock, chunk, n, 0n) >= 0) break;
      const err = lastError("send");
      // A blocking send that found no room within SRTO_SNDTIMEO sent nothing: try again.
      if (err.srtErrno === SrtErrno.etimeout || err.srtErrno === SrtErrno.easyncsnd) continue;
      throw err;
    }
  }
  post({ t: "written", bytes: data.length });
}

/** Waits until the peer acknowledged every byte and its latency window passed, then closes. */
async function end(timeout: number) {
  const s = lib!.symbols;
  const deadline = performance.now() + timeout;
  const value = new Uint8Array(4);
  const len = new Uint8Array(4);
  while (true) {
    if (!checkState()) return;
    new DataView(len.buffer).setInt32(0, 4, true);
    if (s.srt_getsockflag(sock, SrtOption.snddata, value, len) !== 0) throw lastError("reading SRTO_SNDDATA");
    if (new DataView(value.buffer).getInt32(0, true) === 0) break;
    if (performance.now() > deadline) {
      throw { code: "ETIMEDOUT", message: `The SRT peer did not acknowledge the end within ${timeout} ms` };
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  // An acknowledgement means the listener's socket has the bytes; it holds each packet for its latency
  // before handing it on. Stay connected until the last ones went through.
  await new Promise((r) => setTimeout(r, latency + 50));
  if (!checkState()) return;
  tick();
  close();
  post({ t: "ended" });
}

function close() {
  stopTimer();
  if (sock >= 0) lib!.symbols.srt_close(sock);
  sock = -1;
  if (started) lib!.symbols.srt_cleanup();
  started = false;
}

let chain: Promise<void> = Promise.resolve();
scope.onmessage = (e) => {
  const msg = e.data;
  chain = chain.then(() => handle(msg)).catch((err) => {
    const { code, message, srtErrno } = err as { code?: string; message?: string; srtErrno?: number };
    if (msg.t === "connect") {
      close();
      post({ t: "error", code: code ?? "EIO", message: message ?? String(err) });
    } else if (!lost) {
      lost = true;
      stopTimer();
      post({ t: "lost", code: code ?? "EIO", message: message ?? String(err), srtErrno: srtErrno ?? -1 });
    }
  });
};

async function handle(msg: ToSrtWorker): Promise<void> {
  switch (msg.t) {
    case "connect":
      return await connect(msg);
    case "write":
      if (lost) return;
      return write(msg.data);
    case "end":
      if (lost) return;
      return await end(msg.timeout);
    case "close":
      close();
      post({ t: "closed" });
      scope.onmessage = null;
      return;
  }
}
