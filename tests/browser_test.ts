import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { startService } from "../examples/http_service.ts";
import { launchChromium, needsChromium } from "./_helpers/browser_chromium.ts";

const ARTIFACTS = join(import.meta.dirname ?? "tests", "..", ".cache", "artifacts");

interface PlayerResult {
  done: boolean;
  error: string | null;
  codec: string;
  blocks: number;
  keyBlocks: number;
  frames: number;
  width: number;
  height: number;
  trackWidth: number;
  trackHeight: number;
  bytes: number;
  decodeErrors: number;
  closeCode: number;
}

test(
  "browser: chromium decodes every frame of the live WebM stream with its own VideoDecoder",
  needsChromium(),
  async () => {
    const service = await startService({ port: 0, maxConcurrent: 2, timeoutMs: 60_000 });
    let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
    try {
      browser = await launchChromium();
      const page = await browser.context.newPage();
      const logs: string[] = [];
      page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
      page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
      const frames = 45;
      await page.goto(`${service.url}/?width=160&height=120&frames=${frames}&preset=13&keyint=15`);
      await page.waitForFunction(
        () => (globalThis as { playerResult?: { done: boolean } }).playerResult?.done,
        null,
        {
          timeout: 25_000,
        },
      );
      const result = await page.evaluate(() =>
        (globalThis as unknown as { playerResult: PlayerResult }).playerResult
      );
      assert.equal(result.error, null, `${result.error}\n${logs.join("\n")}`);
      assert.equal(result.closeCode, 1000);
      assert.match(result.codec, /^av01\.0\.\d\dM\.08$/);
      assert.equal(result.blocks, frames, "one WebM block per frame");
      assert.equal(result.keyBlocks, 3, "a key frame every 15 frames");
      assert.equal(result.frames, frames, "every frame decodes");
      assert.equal(result.decodeErrors, 0);
      assert.deepEqual([result.width, result.height], [160, 120]);
      assert.deepEqual([result.trackWidth, result.trackHeight], [160, 120]);
      mkdirSync(ARTIFACTS, { recursive: true });
      const shot = await page.locator("#view").screenshot({
        path: join(ARTIFACTS, "browser_decoded_frame.png"),
      });
      assert.ok(shot.length > 100, "the screenshot of the decoded frame is a PNG");
      assert.equal(service.liveEncoders, 0);
    } finally {
      await browser?.close();
      await service.close();
    }
  },
);
