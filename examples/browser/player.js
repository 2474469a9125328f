// The browser side of the HTTP service's /live WebSocket: a streaming WebM demuxer (EBML elements of
// unknown size included, as live WebM writes them) that hands each SimpleBlock to the browser's own
// VideoDecoder, and draws every decoded frame to the canvas. Results land in `window.playerResult` for
// the end-to-end test.

const SEGMENT = 0x18538067;
const CLUSTER = 0x1f43b675;
const TRACKS = 0x1654ae6b;
const TRACK_ENTRY = 0xae;
const VIDEO = 0xe0;
const BLOCK_GROUP = 0xa0;
const EBML = 0x1a45dfa3;
/** Elements whose children we read in place (so their size, often unknown when live, never matters). */
const MASTERS = new Set([SEGMENT, CLUSTER, TRACKS, TRACK_ENTRY, VIDEO, BLOCK_GROUP]);
const CODEC_ID = 0x86;
const PIXEL_WIDTH = 0xb0;
const PIXEL_HEIGHT = 0xba;
const CODEC_PRIVATE = 0x63a2;
const CLUSTER_TIMECODE = 0xe7;
const SIMPLE_BLOCK = 0xa3;
const BLOCK = 0xa1;

/** Reads an EBML variable-length integer at `at`: { value, length, unknown } or null if incomplete. */
function readVint(bytes, at, keepMarker) {
  if (at >= bytes.length) return null;
  const first = bytes[at];
  let length = 1;
  while (length <= 8 && !(first & (0x80 >> (length - 1)))) length++;
  if (length > 8) throw new Error(`Bad EBML varint at ${at}`);
  if (at + length > bytes.length) return null;
  let value = keepMarker ? first : first & (0xff >> length);
  let allOnes = value === (0xff >> length);
  for (let i = 1; i < length; i++) {
    value = value * 256 + bytes[at + i];
    if (bytes[at + i] !== 0xff) allOnes = false;
  }
  return { value, length, unknown: !keepMarker && allOnes };
}

function readUint(bytes) {
  let v = 0;
  for (const b of bytes) v = v * 256 + b;
  return v;
}

/** A push parser: `push(bytes)` as they arrive; callbacks for the track and each block. */
class WebmDemuxer {
  #buffer = new Uint8Array(0);
  #pos = 0;
  #clusterTime = 0;
  track = { codecId: "", width: 0, height: 0, codecPrivate: null };
  #trackDone = false;

  constructor(onTrack, onBlock) {
    this.onTrack = onTrack;
    this.onBlock = onBlock;
  }

  push(chunk) {
    const rest = this.#buffer.subarray(this.#pos);
    const next = new Uint8Array(rest.length + chunk.length);
    next.set(rest);
    next.set(chunk, rest.length);
    this.#buffer = next;
    this.#pos = 0;
    this.#parse();
  }

  #parse() {
    const b = this.#buffer;
    while (true) {
      const id = readVint(b, this.#pos, true);
      if (!id) return;
      const size = readVint(b, this.#pos + id.length, false);
      if (!size) return;
      const start = this.#pos + id.length + size.length;
      if (MASTERS.has(id.value)) {
        if (id.value === CLUSTER) this.#trackReady();
        this.#pos = start;
        continue;
      }
      if (size.unknown) throw new Error(`Unknown size on element 0x${id.value.toString(16)}`);
      const end = start + size.value;
      if (end > b.length) return;
      this.#element(id.value, b.subarray(start, end));
      this.#pos = end;
    }
  }

  #trackReady() {
    if (this.#trackDone) return;
    this.#trackDone = true;
    this.onTrack(this.track);
  }

  #element(id, data) {
    switch (id) {
      case EBML:
        return; // header: DocType etc., not needed
      case CODEC_ID:
        this.track.codecId = new TextDecoder().decode(data);
        return;
      case PIXEL_WIDTH:
        this.track.width = readUint(data);
        return;
      case PIXEL_HEIGHT:
        this.track.height = readUint(data);
        return;
      case CODEC_PRIVATE:
        this.track.codecPrivate = data.slice();
        return;
      case CLUSTER_TIMECODE:
        this.#clusterTime = readUint(data);
        return;
      case SIMPLE_BLOCK:
      case BLOCK: {
        this.#trackReady();
        const track = readVint(data, 0, false);
        const relative = (data[track.length] << 24 >> 16) | data[track.length + 1];
        const flags = data[track.length + 2];
        const payload = data.slice(track.length + 3);
        const key = id === SIMPLE_BLOCK ? (flags & 0x80) !== 0 : hasSequenceHeader(payload);
        this.onBlock({ timecode: this.#clusterTime + relative, key, data: payload });
        return;
      }
    }
  }
}

/** True when an AV1 temporal unit carries a sequence header OBU (SVT-AV1 and rav1e repeat it at key frames). */
function hasSequenceHeader(tu) {
  let at = 0;
  while (at < tu.length) {
    const header = tu[at];
    const type = (header >> 3) & 15;
    const ext = (header >> 2) & 1;
    const hasSize = (header >> 1) & 1;
    if (type === 1) return true;
    if (!hasSize) return false;
    const leb = readLeb128(tu, at + 1 + ext);
    at += 1 + ext + leb.length + leb.value;
  }
  return false;
}

function readLeb128(bytes, at) {
  let value = 0;
  for (let i = 0; i < 8; i++) {
    const b = bytes[at + i];
    value += (b & 0x7f) * 2 ** (7 * i);
    if (!(b & 0x80)) return { value, length: i + 1 };
  }
  throw new Error("Bad leb128");
}

/** `av01.P.LLT.DD` from the av1C record in CodecPrivate. */
function codecFromAv1C(av1c) {
  const profile = av1c[1] >> 5;
  const level = av1c[1] & 31;
  const tier = av1c[2] >> 7 ? "H" : "M";
  const high = (av1c[2] >> 6) & 1;
  const twelve = (av1c[2] >> 5) & 1;
  const depth = high ? (twelve ? 12 : 10) : 8;
  return `av01.${profile}.${String(level).padStart(2, "0")}${tier}.${String(depth).padStart(2, "0")}`;
}

const result = {
  done: false,
  error: null,
  codec: "",
  blocks: 0,
  keyBlocks: 0,
  frames: 0,
  width: 0,
  height: 0,
  trackWidth: 0,
  trackHeight: 0,
  bytes: 0,
  decodeErrors: 0,
  closeCode: 0,
};
globalThis.playerResult = result;

const status = document.getElementById("status");
const canvas = document.getElementById("view");
const ctx = canvas.getContext("2d");
const show = () => (status.textContent = JSON.stringify(result, null, 2));

function fail(e) {
  result.error = String(e?.message ?? e);
  result.done = true;
  show();
}

async function main() {
  if (typeof VideoDecoder === "undefined") throw new Error("This browser has no WebCodecs VideoDecoder");
  const decoder = new VideoDecoder({
    output(frame) {
      result.frames++;
      result.width = frame.displayWidth;
      result.height = frame.displayHeight;
      if (canvas.width !== frame.displayWidth) canvas.width = frame.displayWidth;
      if (canvas.height !== frame.displayHeight) canvas.height = frame.displayHeight;
      ctx.drawImage(frame, 0, 0);
      frame.close();
    },
    error(e) {
      result.decodeErrors++;
      fail(e);
    },
  });
  const demuxer = new WebmDemuxer(
    async (track) => {
      result.trackWidth = track.width;
      result.trackHeight = track.height;
      result.codec = track.codecPrivate ? codecFromAv1C(track.codecPrivate) : "av01.0.08M.08";
      // A live viewer wants each frame out as soon as it is decoded: without the hint Chromium's decoder
      // keeps frames back for its frame threads (bench/latency.ts: received → decoded 56-69 ms at the
      // median instead of 1.5 ms, 640x360 at 30 fps).
      const config = {
        codec: result.codec,
        codedWidth: track.width,
        codedHeight: track.height,
        optimizeForLatency: true,
      };
      const support = await VideoDecoder.isConfigSupported(config);
      if (!support.supported) throw new Error(`VideoDecoder does not support ${result.codec}`);
      decoder.configure(config);
    },
    (block) => {
      result.blocks++;
      if (block.key) result.keyBlocks++;
      // The track callback configures asynchronously; blocks wait for it in order.
      pending = pending.then(() =>
        decoder.decode(
          new EncodedVideoChunk({
            type: block.key ? "key" : "delta",
            timestamp: block.timecode * 1000,
            data: block.data,
          }),
        )
      );
    },
  );
  let pending = Promise.resolve();
  const wrap = demuxer.onTrack;
  demuxer.onTrack = (track) => (pending = pending.then(() => wrap(track)));

  const params = new URLSearchParams(location.search);
  const ws = new WebSocket(`ws://${location.host}/live?${params}`);
  ws.binaryType = "arraybuffer";
  ws.onmessage = (e) => {
    const bytes = new Uint8Array(e.data);
    result.bytes += bytes.length;
    try {
      demuxer.push(bytes);
    } catch (err) {
      fail(err);
    }
  };
  ws.onerror = () => {};
  ws.onclose = async (e) => {
    result.closeCode = e.code;
    try {
      await pending;
      if (decoder.state === "configured") await decoder.flush();
      if (e.code !== 1000) throw new Error(`The stream ended with close code ${e.code} ${e.reason}`);
      result.done = true;
      show();
    } catch (err) {
      fail(err);
    }
  };
  setInterval(show, 250);
}

main().catch(fail);
