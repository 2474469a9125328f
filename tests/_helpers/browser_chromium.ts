/**
 * Headless Debian chromium through playwright-core, with the flags this machine needs (without the
 * background-networking ones chromium's own connections are refused and it stalls) and a fresh profile
 * that is removed on close. playwright-core drives it the same from Deno, Bun and Node.
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext } from "playwright-core";
import { toolPath } from "./encode.ts";

export const CHROMIUM_PATH = "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** `{ skip }` for node:test when chromium or playwright-core is missing. */
export function needsChromium(): { skip?: string } {
  return toolPath("chromium")
    ? {}
    : { skip: "chromium not installed: run deno run -A build.ts --dev (apt-get install chromium)" };
}

/**
 * WebRTC on loopback: candidates on 127.0.0.1 are gathered (chromium leaves out the loopback interface
 * otherwise) and shown as addresses rather than mDNS names (which would need multicast on the other
 * interfaces to resolve).
 */
export const CHROMIUM_WEBRTC_LOOPBACK_ARGS = [
  "--allow-loopback-in-peer-connection",
  "--disable-features=WebRtcHideLocalIpsWithMdns",
  "--autoplay-policy=no-user-gesture-required",
];

/**
 * A headless chromium with a fresh user-data-dir; `close()` ends it and removes the profile. `args` are
 * added to {@linkcode CHROMIUM_ARGS}.
 */
export async function launchChromium(
  options: { args?: string[] } = {},
): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const { chromium } = await import("playwright-core");
  const profile = mkdtempSync(join(tmpdir(), "av1-stream-chromium-"));
  let context: BrowserContext;
  try {
    // launchPersistentContext passes --user-data-dir=<profile> itself.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS, ...(options.args ?? [])],
      timeout: 20_000,
    });
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
