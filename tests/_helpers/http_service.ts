/**
 * What the tests of the HTTP encode service (examples/http_service.ts) share: a service on a free
 * loopback port for the length of a test, and a bounded wait.
 * @module
 */
import { type EncodeService, startService } from "../../examples/http_service.ts";

/** Runs `f` against a service started with `options` on a free port, and closes it afterwards. */
export async function withService(
  options: Parameters<typeof startService>[0],
  f: (s: EncodeService) => Promise<void>,
): Promise<void> {
  const service = await startService({ port: 0, ...options });
  try {
    await f(service);
  } finally {
    await service.close();
  }
}

/**
 * Waits (bounded) until `f()` is true; the bound is a failure, not a timing assertion. `what` names what
 * is awaited in the error, or gives it when the wait fails (to show the last state seen).
 */
export async function eventually(
  f: () => boolean | Promise<boolean>,
  what: string | (() => string),
  ms = 20_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) {
      throw new Error(`Still waiting for ${typeof what === "function" ? what() : what} after ${ms} ms`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
