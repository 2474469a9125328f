/**
 * Symbol table of libsrt's C API (1.4 and 1.5: Debian's `libsrt1.5-gnutls`), with the option numbers,
 * error codes, socket states and the `SRT_TRACEBSTATS` offsets the SRT sink uses. Values are from
 * `srt/srt.h` 1.5.1; the stats offsets were measured with `offsetof` against that header (LP64), and
 * every field read here predates 1.4 (the struct only grows at its end).
 * @module
 */
import type { SymbolTable } from "../runtime/types.ts";

/** Every function the SRT sink's worker calls. `SRTSOCKET` is a C `int`. */
export const srtSymbols = {
  // int srt_startup(void);
  srt_startup: { parameters: [], result: "i32" },
  // int srt_cleanup(void);
  srt_cleanup: { parameters: [], result: "i32" },
  // uint32_t srt_getversion(void);
  srt_getversion: { parameters: [], result: "u32" },
  // SRTSOCKET srt_create_socket(void);
  srt_create_socket: { parameters: [], result: "i32" },
  // int srt_setsockflag(SRTSOCKET u, SRT_SOCKOPT opt, const void* optval, int optlen);
  srt_setsockflag: { parameters: ["i32", "i32", "buffer", "i32"], result: "i32" },
  // int srt_getsockflag(SRTSOCKET u, SRT_SOCKOPT opt, void* optval, int* optlen);
  srt_getsockflag: { parameters: ["i32", "i32", "buffer", "buffer"], result: "i32" },
  // int srt_connect(SRTSOCKET u, const struct sockaddr* name, int namelen);
  srt_connect: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  // int srt_sendmsg2(SRTSOCKET u, const char* buf, int len, SRT_MSGCTRL *mctrl);
  srt_sendmsg2: { parameters: ["i32", "buffer", "i32", "pointer"], result: "i32" },
  // int srt_close(SRTSOCKET u);
  srt_close: { parameters: ["i32"], result: "i32" },
  // SRT_SOCKSTATUS srt_getsockstate(SRTSOCKET u);
  srt_getsockstate: { parameters: ["i32"], result: "i32" },
  // const char* srt_getlasterror_str(void);
  srt_getlasterror_str: { parameters: [], result: "pointer" },
  // int srt_getlasterror(int* errno_loc);
  srt_getlasterror: { parameters: ["buffer"], result: "i32" },
  // void srt_clearlasterror(void);
  srt_clearlasterror: { parameters: [], result: "void" },
  // int srt_getrejectreason(SRTSOCKET sock);
  srt_getrejectreason: { parameters: ["i32"], result: "i32" },
  // const char* srt_rejectreason_str(int id);
  srt_rejectreason_str: { parameters: ["i32"], result: "pointer" },
  // int srt_bistats(SRTSOCKET u, SRT_TRACEBSTATS* perf, int clear, int instantaneous);
  srt_bistats: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
} as const satisfies SymbolTable;

/** Just enough to read the version of a candidate library. */
export const srtVersionSymbols = {
  // uint32_t srt_getversion(void);
  srt_getversion: { parameters: [], result: "u32" },
} as const satisfies SymbolTable;

/** `SRT_SOCKOPT` values used by the sink. */
export const SrtOption = {
  /** int (bool): blocking send. */
  sndsyn: 1,
  /** int ms: how long a blocking send waits for room before `SRT_EASYNCSND`/`SRT_ETIMEOUT`. */
  sndtimeo: 13,
  /** int ms: sets the receiver's and the peer's TSBPD latency. */
  latency: 23,
  /** string of 10 to 79 characters: enables AES encryption. */
  passphrase: 26,
  /** int: 16, 24 or 32 (AES key length in bytes). */
  pbkeylen: 27,
  /** int ms: how long `srt_connect` tries. */
  conntimeo: 36,
  /** string of at most 512 characters: the stream id the listener sees. */
  streamid: 46,
  /** int: payload bytes per UDP packet; 1316 in live mode. */
  payloadsize: 49,
  /** int (SRT_TRANSTYPE): 0 live, 1 file. */
  transtype: 50,
  /** int ms: a peer silent this long is gone (default 5000). */
  peeridletimeo: 55,
  /** int (bytes): unacknowledged bytes in the send buffer (get only). */
  snddata: 19,
} as const;

/** `SRT_TRANSTYPE`. */
export const SrtTransType = { live: 0, file: 1 } as const;

/** Largest message of live mode: 7 MPEG-TS packets, what one UDP packet carries. */
export const SRT_LIVE_PAYLOAD_SIZE = 1316;

/** `SRT_SOCKSTATUS`. */
export const SrtSockStatus = {
  init: 1,
  opened: 2,
  listening: 3,
  connecting: 4,
  connected: 5,
  broken: 6,
  closing: 7,
  closed: 8,
  nonexist: 9,
} as const;

/** `SRT_ERRNO` values the sink tells apart. */
export const SrtErrno = {
  /** No answer to the handshake within the connect timeout. */
  enoserver: 1001,
  /** The listener rejected the connection (a wrong passphrase, a stream id it refuses). */
  econnrej: 1002,
  /** Encryption could not be set up. */
  esecfail: 1004,
  /** The connection was lost. */
  econnlost: 2001,
  /** Not connected. */
  enoconn: 2002,
  /** The socket is no longer valid. */
  einvsock: 5004,
  /** Non-blocking send: no room. */
  easyncsnd: 6001,
  /** Blocking send timed out waiting for room. */
  etimeout: 6003,
} as const;

/** `SRT_REJECT_REASON` values the sink names (from `srt_getrejectreason`). */
export const SrtRejectReason = {
  /** Wrong passphrase. */
  badsecret: 10,
  /** A passphrase was expected and not given, or given and not expected. */
  unsecure: 11,
  /** The connection timed out. */
  timeout: 16,
} as const;

/** Offsets in `SRT_TRACEBSTATS` (`struct CBytePerfMon`, 496 bytes in 1.5.1). */
export const SrtStatsLayout = {
  /** Allocation for the struct: larger than any version's. */
  size: 1024,
  msTimeStamp: 0, // int64
  pktSentTotal: 8, // int64
  pktSndLossTotal: 24, // int
  pktRetransTotal: 32, // int
  pktSndDropTotal: 64, // int
  byteSentTotal: 80, // uint64
  mbpsSendRate: 184, // double
  msRTT: 328, // double
  mbpsBandwidth: 336, // double
  pktSndBuf: 364, // int
  byteSndBuf: 368, // int
  msSndBuf: 372, // int
} as const;
