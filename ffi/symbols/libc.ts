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
  // int setenv(const char *name, const char *value, int overwrite);
  setenv: { parameters: ["buffer", "buffer", "i32"], result: "i32" },
  // int setpriority(int which, id_t who, int prio);
  setpriority: { parameters: ["i32", "u32", "i32"], result: "i32" },
} as const satisfies SymbolTable;

/** Linux scheduling policies. */
export const SchedPolicy = { other: 0, fifo: 1, rr: 2, batch: 3, idle: 5 } as const;

/** `PRIO_PROCESS` for setpriority: on Linux a thread id names one thread. */
export const PRIO_PROCESS = 0;
