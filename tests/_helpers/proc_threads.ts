/**
 * The kernel's view of a process's threads, for the report of a process that stopped making progress.
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";

/**
 * One line per thread of `pid`: its id, name, state, wait channel and CPU ticks (user + system), from
 * /proc/PID/task. Empty where /proc or the process is not there.
 */
export function threadStates(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map((tid) => {
      const read = (f: string) => {
        try {
          return readFileSync(`/proc/${pid}/task/${tid}/${f}`, "utf8").trim();
        } catch {
          return "?";
        }
      };
      const stat = read("stat").replace(/^.*\) /, "").split(" ");
      return `${tid} ${read("comm")} ${stat[0]} wchan=${read("wchan")} ticks=${
        Number(stat[11]) + Number(stat[12])
      }`;
    });
  } catch {
    return [];
  }
}
