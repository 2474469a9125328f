/**
 * Encodes a Y4M file (or the built-in test source) to an IVF file with SVT-AV1.
 *
 * ```sh
 * deno run -A examples/encode_file.ts in.y4m out.ivf
 * bun examples/encode_file.ts in.y4m out.ivf
 * bun examples/encode_file.ts            # test source → /tmp/example.ivf
 * ```
 * @module
 */
import process from "node:process";
import { fileReadable, ivfFileSink, IvfWriter, SvtAv1Encoder, testSource, Y4mReader } from "../mod.ts";

const [inputPath, outputPath = "/tmp/example.ivf"] = process.argv.slice(2);
const input = inputPath
  ? await Y4mReader.open(await fileReadable(inputPath))
  : testSource({ width: 640, height: 360, frames: 60 });

await using encoder = await SvtAv1Encoder.create({ ...input.info, preset: 10, crf: 35, logLevel: "error" });
const ivf = new IvfWriter(await ivfFileSink(outputPath), input.info);

// Feed frames and drain packets at the same time: encode() resolves when SVT-AV1 takes the frame, so a
// slow writer holds the reader back instead of letting frames pile up in memory.
const pump = (async () => {
  for await (const frame of input.frames()) await encoder.encode(frame);
  await encoder.flush();
})();
let bytes = 0;
for await (const packet of encoder.packets()) {
  await ivf.writePacket(packet);
  bytes += packet.data.byteLength;
}
await pump;
await ivf.close();
console.log(`${ivf.frameCount} frames, ${bytes} bytes of AV1 (${encoder.version}) in ${outputPath}`);
