// Enhanced FLV tags for AV1, AMF0 and RTMP URLs, without a server.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { parseAv1C } from "../lib/av1/mod.ts";
import { EncoderError } from "../lib/errors.ts";
import { decodeAmf0, encodeAmf0 } from "../lib/transport/rtmp/amf.ts";
import { flvFormat } from "../lib/transport/rtmp/flv.ts";
import {
  adobeAuthQuery,
  chunkMessage,
  llnwAuthQuery,
  parseRtmpUrl,
  rtmpTransport,
} from "../lib/transport/rtmp/rtmp.ts";
import type { Packet } from "../lib/types.ts";
import { parseFlvVideoTags } from "./_helpers/rtmp_servers.ts";

const SH = [0x0a, 0x0a, 0x00, 0x00, 0x00, 0x03, 0xb4, 0xfd, 0x93, 0xef, 0xe4, 0x01];
const KEY = new Uint8Array([0x12, 0x00, ...SH, 0x1a, 0x02, 0x10, 0x00]);
const INTER = new Uint8Array([0x12, 0x00, 0x32, 0x01, 0x00]);
const info = { width: 64, height: 64, fps: { num: 30, den: 1 } };
const packet = (data: Uint8Array, timestamp: number, keyFrame: boolean): Packet => ({
  data,
  timestamp,
  duration: 1,
  keyFrame,
});

function bytesOf(parts: (Uint8Array | Promise<Uint8Array>)[]): Uint8Array {
  const list = parts as Uint8Array[];
  const out = new Uint8Array(list.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of list) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

test("flvFormat: SequenceStart with av1C, then CodedFrames without temporal delimiters, ms timestamps", () => {
  const flv = flvFormat(info);
  const tags = parseFlvVideoTags(bytesOf([
    flv.header(),
    flv.packet(packet(KEY, 0, true)),
    flv.packet(packet(INTER, 1, false)),
    flv.packet(packet(INTER, 30, false)),
    flv.end!(),
  ]));
  assert.deepEqual(tags.map((t) => [t.frameType, t.packetType, t.timestamp, t.fourCC]), [
    [1, 0, 0, "av01"],
    [1, 1, 0, "av01"],
    [2, 1, 33, "av01"],
    [2, 1, 1000, "av01"],
    [1, 2, 1000, "av01"],
  ]);
  const av1C = parseAv1C(tags[0].payload);
  assert.equal(av1C.configOBUs[0], 0x0a);
  assert.deepEqual([...tags[1].payload], [...KEY.subarray(2)]);
  assert.deepEqual([...tags[2].payload], [...INTER.subarray(2)]);
});

test("flvFormat: every connection starts with the FLV header and a SequenceStart again", () => {
  const flv = flvFormat(info);
  const first = bytesOf([flv.header(), flv.packet(packet(KEY, 0, true))]);
  const again = bytesOf([
    flv.header(),
    flv.packet(packet(KEY, 10, true)),
    flv.packet(packet(INTER, 11, false)),
  ]);
  assert.deepEqual(parseFlvVideoTags(first).map((t) => t.packetType), [0, 1]);
  assert.deepEqual(parseFlvVideoTags(again).map((t) => t.packetType), [0, 1, 1]);
  // A key frame later on the same connection with the same sequence header: no new SequenceStart.
  const fileHeader = new Uint8Array([0x46, 0x4c, 0x56, 1, 1, 0, 0, 0, 9, 0, 0, 0, 0]);
  const later = parseFlvVideoTags(bytesOf([fileHeader, flv.packet(packet(KEY, 20, true))]));
  assert.deepEqual(later.map((t) => t.packetType), [1]);
});

test("flvFormat: a connection must start at a key frame that has (or was given) a sequence header", () => {
  const flv = flvFormat(info);
  flv.header();
  assert.throws(() => flv.packet(packet(INTER, 0, false)), (e: unknown) => e instanceof EncoderError);
  const noHeader = new Uint8Array([0x12, 0x00, 0x1a, 0x02, 0x10, 0x00]);
  assert.throws(() => flv.packet(packet(noHeader, 0, true)), /sequence header/);
  const given = flvFormat(info, { sequenceHeader: new Uint8Array(SH) });
  given.header();
  assert.deepEqual(
    parseFlvVideoTags(bytesOf([given.header(), given.packet(packet(noHeader, 0, true))])).length,
    2,
  );
});

test("encodeAmf0 and decodeAmf0 round-trip a connect command with a strict-array fourCcList", () => {
  const values = ["connect", 1, { app: "live", fourCcList: ["av01"], ok: true, none: null }];
  assert.deepEqual(decodeAmf0(encodeAmf0(values)), values);
  const meta = decodeAmf0(encodeAmf0(["onMetaData", new Map([["width", 64]])]));
  assert.deepEqual(meta[1], new Map([["width", 64]]));
  assert.throws(() => decodeAmf0(new Uint8Array([0x02, 0x00, 0x05, 0x61])), /Malformed AMF0/);
});

test("parseRtmpUrl: app, key, default port 1935; bad URLs rejected", () => {
  assert.deepEqual(parseRtmpUrl("rtmp://example.com/live/abc?t=1"), {
    host: "example.com",
    port: 1935,
    app: "live",
    key: "abc?t=1",
    secure: false,
    tcUrl: "rtmp://example.com:1935/live",
  });
  assert.equal(parseRtmpUrl("rtmp://127.0.0.1:1940/app/inst/key").app, "app/inst");
  for (const bad of ["rtmp://host", "rtmp://host/app", "rtmp://host:0/a/b", "tcp://host:1/a/b"]) {
    assert.throws(() => parseRtmpUrl(bad), /rtmp\[s\]:\/\/\[user:password@\]host\[:port\]\/app\/key/, bad);
  }
});

test("parseRtmpUrl: rtmps:// defaults to port 443; user:password@ is decoded and kept out of tcUrl", () => {
  assert.deepEqual(parseRtmpUrl("rtmps://a%40b:p%3Ass%20w@[::1]/live/key"), {
    host: "::1",
    port: 443,
    secure: true,
    app: "live",
    key: "key",
    tcUrl: "rtmps://[::1]:443/live",
    user: "a@b",
    password: "p:ss w",
  });
  assert.equal(parseRtmpUrl("RTMPS://h:8443/a/k").port, 8443);
  assert.equal(parseRtmpUrl("rtmp://user@h/a/k").password, undefined);
  // The message of a bad URL does not repeat its password.
  assert.throws(() => parseRtmpUrl("rtmp://u:secret@h/app"), (e: Error) => !e.message.includes("secret"));
  assert.throws(() => parseRtmpUrl("rtmp://u:%zz@h/a/k"), /percent-encoded/);
  assert.throws(
    () => rtmpTransport("rtmp://h/a/k", { tls: { rejectUnauthorized: false } }),
    /tls options apply to rtmps:\/\/ only/,
  );
});

test("adobeAuthQuery and llnwAuthQuery: FFmpeg's formulas, worked by hand with node:crypto", () => {
  const md5 = (s: string, enc: "base64" | "hex") => createHash("md5").update(s).digest(enc);
  const key = md5("u" + "SALT" + "pw", "base64");
  assert.equal(
    adobeAuthQuery("u", "pw", { salt: "SALT", challenge: "CH", opaque: "OP" }, "0badf00d"),
    `?authmod=adobe&user=u&challenge=0badf00d&response=${md5(key + "OP" + "0badf00d", "base64")}&opaque=OP`,
  );
  // Without opaque the server's challenge is hashed, and no opaque is sent back.
  assert.equal(
    adobeAuthQuery("u", "pw", { salt: "SALT", challenge: "CH" }, "0badf00d"),
    `?authmod=adobe&user=u&challenge=0badf00d&response=${md5(key + "CH" + "0badf00d", "base64")}`,
  );
  const ha1 = md5("u:live:pw", "hex");
  const ha2 = md5("publish:/live/_definst_", "hex");
  assert.equal(
    llnwAuthQuery("u", "pw", "live", "N", "C"),
    `?authmod=llnw&user=u&nonce=N&cnonce=C&nc=00000001&response=${
      md5(`${ha1}:N:00000001:C:auth:${ha2}`, "hex")
    }`,
  );
  // An application with its instance is not given the default one.
  assert.match(
    llnwAuthQuery("u", "pw", "app/inst", "N", "C"),
    new RegExp(`response=${md5(`${ha1}:N:00000001:C:auth:${md5("publish:/app/inst", "hex")}`, "hex")}$`),
  );
});

test("chunkMessage splits a message into chunks of chunkSize, repeating an extended timestamp", () => {
  const payload = new Uint8Array(300).map((_, i) => i & 0xff);
  const plain = chunkMessage(6, 9, 1, 1000, payload, 128);
  assert.equal(plain.length, 12 + 300 + 2);
  assert.equal(plain[12 + 128], 0xc6);
  const ext = chunkMessage(6, 9, 1, 0x1000000, payload, 128);
  assert.equal(ext.length, 12 + 4 + 300 + 2 * 5);
  assert.deepEqual([...ext.subarray(1, 4)], [0xff, 0xff, 0xff]);
  assert.deepEqual([...ext.subarray(12 + 4 + 128 + 1, 12 + 4 + 128 + 5)], [1, 0, 0, 0]);
});
