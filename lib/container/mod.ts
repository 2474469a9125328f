/**
 * Containers: WebM/Matroska and MP4 (progressive and fragmented) writers through mediabunny, one factory
 * for every output format with IVF and OBU, live WebM and fMP4 formats for the network sinks, and a probe
 * that describes IVF, OBU, WebM and MP4 files. mediabunny is imported only when a container needs it.
 *
 * @example
 * ```ts
 * import { formatFromPath, openContainerWriter, probeFile, formatProbe } from "./mod.ts";
 * import { fileSink } from "../io/sink.ts";
 * import { SvtAv1Encoder } from "../encoder/svt_av1.ts";
 * import { testSource } from "../io/testsrc.ts";
 * const path = "/tmp/container_example.mp4";
 * const source = testSource({ width: 160, height: 120, frames: 15 });
 * await using enc = await SvtAv1Encoder.create({ ...source.info, preset: 12 });
 * const out = openContainerWriter(formatFromPath(path)!, await fileSink(path), source.info);
 * const pump = (async () => {
 *   for await (const frame of source.frames()) await enc.encode(frame);
 *   await enc.flush();
 * })();
 * for await (const packet of enc.packets()) await out.writePacket(packet);
 * await pump;
 * await out.close();
 * console.log(formatProbe(await probeFile(path)));
 * ```
 * @module
 */

export {
  fmp4StreamFormat,
  type Fmp4StreamFormatOptions,
  type LiveFormatOptions,
  webmStreamFormat,
  type WebmStreamFormatOptions,
} from "./live.ts";
export { loadMediabunny, type Mediabunny } from "./mediabunny.ts";
export { Mp4Writer, type Mp4WriterOptions } from "./mp4.ts";
export {
  CONTAINER_FORMATS,
  type ContainerFormat,
  formatFromPath,
  openContainerWriter,
  type OpenContainerWriterOptions,
  parseContainerFormat,
} from "./open.ts";
export {
  formatProbe,
  probeBytes,
  probeFile,
  type ProbeFormat,
  type ProbeOptions,
  type ProbeResult,
} from "./probe.ts";
export { WebmWriter, type WebmWriterOptions } from "./webm.ts";
export { type ContainerWriter, MuxingWriter } from "./writer.ts";
