/**
 * The few libc calls used to take SVT-AV1's threads out of real-time scheduling when running as root.
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
  // int capget(cap_user_header_t hdrp, cap_user_data_t datap);
  capget: { parameters: ["buffer", "buffer"], result: "i32" },
  // int capset(cap_user_header_t hdrp, const cap_user_data_t datap);
  capset: { parameters: ["buffer", "buffer"], result: "i32" },
  // int setenv(const char *name, const char *value, int overwrite);
  setenv: { parameters: ["buffer", "buffer", "i32"], result: "i32" },
  // int setpriority(int which, id_t who, int prio);
  setpriority: { parameters: ["i32", "u32", "i32"], result: "i32" },
} as const satisfies SymbolTable;

/** Linux scheduling policies. */
export const SchedPolicy = { other: 0, fifo: 1, rr: 2, batch: 3, idle: 5 } as const;

/** `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set. */
export const CAPABILITY_VERSION_3 = 0x20080522;

/** `CAP_SYS_NICE`: what lets a root thread make itself real-time. */
export const CAP_SYS_NICE = 23;

/** `PRIO_PROCESS` for setpriority: on Linux a thread id names one thread. */
export const PRIO_PROCESS = 0;
