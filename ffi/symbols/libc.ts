/**
 * The few libc calls the module makes: taking SVT-AV1's threads out of real-time scheduling when running
 * as root, glibc's malloc controls that keep the encoder threads' native heap from holding freed memory,
 * and the file calls that make and take private copies of a library (ffi/private_copy.ts).
 * @module
 */
import type { SymbolTable } from "../runtime/types.ts";

export const libcSymbols = {
  // uid_t geteuid(void);
  geteuid: { parameters: [], result: "u32" },
  // int sched_getscheduler(pid_t pid);
  sched_getscheduler: { parameters: ["i32"], result: "i32" },
  // int sched_setscheduler(pid_t pid, int policy, const struct sched_param *param);
  sched_setscheduler: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  // long syscall(long number, ...); called with three integer arguments (raw setresuid)
  syscall: { parameters: ["i64", "i64", "i64", "i64"], result: "i64" },
  // int setenv(const char *name, const char *value, int overwrite);
  setenv: { parameters: ["buffer", "buffer", "i32"], result: "i32" },
  // int usleep(useconds_t usec);
  usleep: { parameters: ["u32"], result: "i32" },
  // int setpriority(int which, id_t who, int prio);
  setpriority: { parameters: ["i32", "u32", "i32"], result: "i32" },
  // int malloc_trim(size_t pad); glibc: returns freed pages of every arena to the system
  malloc_trim: { parameters: ["usize"], result: "i32", optional: true },
  // int mallopt(int param, int value); glibc
  mallopt: { parameters: ["i32", "i32"], result: "i32", optional: true },
  // int malloc_info(int options, FILE *stream); glibc: the heap's state as XML
  malloc_info: { parameters: ["i32", "pointer"], result: "i32", optional: true },
  // FILE *fopen(const char *path, const char *mode);
  fopen: { parameters: ["buffer", "buffer"], result: "pointer" },
  // int fclose(FILE *stream);
  fclose: { parameters: ["pointer"], result: "i32" },
  // int memfd_create(const char *name, unsigned int flags); glibc 2.27 and later, musl 1.1.20
  memfd_create: { parameters: ["buffer", "u32"], result: "i32", optional: true },
  // int open(const char *path, int flags, ...); called with two arguments
  open: { parameters: ["buffer", "i32"], result: "i32" },
  // ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count);
  sendfile: { parameters: ["i32", "i32", "pointer", "usize"], result: "i64" },
  // int fcntl(int fd, int cmd, ...); called with a struct flock * (F_OFD_SETLK / F_OFD_GETLK)
  fcntl: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
} as const satisfies SymbolTable;

/**
 * `malloc_trim` as Deno's nonblocking call, for a release made on the caller's own thread (`host:
 * "caller"`): after a 360p or 720p encoder it took 4-10 ms on the idle machine and 40-56 ms at load 19, which
 * must not hold the caller's event loop.
 */
export const libcNonblockingSymbols = {
  malloc_trim: { ...libcSymbols.malloc_trim, nonblocking: true },
} as const satisfies SymbolTable;

/** `mallopt` parameters (glibc's malloc.h). */
export const Mallopt = { trimThreshold: -1, mmapThreshold: -3, arenaMax: -8 } as const;

/** Linux scheduling policies. */
export const SchedPolicy = { other: 0, fifo: 1, rr: 2, batch: 3, idle: 5 } as const;

/** `SYS_setresuid` by architecture: the raw call changes the calling thread's ids only (glibc's wrapper
 * changes every thread's). */
export const SYS_SETRESUID: Record<string, number> = { x64: 117, arm64: 147 };

/** `PRIO_PROCESS` for setpriority: on Linux a thread id names one thread. */
export const PRIO_PROCESS = 0;
