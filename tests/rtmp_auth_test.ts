// RTMP publishing to a server that demands authentication (Adobe's `authmod=adobe` challenge, Limelight's
// `authmod=llnw` digest): a small server in tests/_helpers checks each response with the formula
// computed on its own, FFmpeg's own client checks that server, and each accepted publish decodes.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { EncoderError } from "../lib/errors.ts";
import { testSource } from "../lib/io/testsrc.ts";
import { createEncodeStream } from "../lib/stream/encode_stream.ts";
import { createSink } from "../lib/stream/sinks.ts";
import type { Frame } from "../lib/types.ts";
import { needs } from "./_helpers/encode.ts";
import { AuthRtmpServer, type AuthRtmpServerOptions } from "./_helpers/rtmp_auth_server.ts";
import { dav1dPublishFrames, parseFlvVideoTags, publishes } from "./_helpers/rtmp_servers.ts";
import { record } from "./_helpers/sink_harness.ts";

const source = testSource({ width: 96, height: 64, frames: 30 });
const config = { ...source.info, preset: 12, lowDelay: true, keyint: 10, crf: 40, threads: 1 };
const fast = { initialDelay: 20, maxDelay: 200, jitter: 0 } as const;
const tools = needs("dav1d");

function frames(): ReadableStream<Frame> {
  let n = 0;
  return new ReadableStream<Frame>({
    pull(c) {
      if (n < source.info.frameCount!) c.enqueue(source.frame(n++));
      else c.close();
    },
  });
}

async function withServer(options: AuthRtmpServerOptions, body: (s: AuthRtmpServer) => Promise<void>) {
  const server = new AuthRtmpServer(options);
  await server.listen();
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

/** The accepted publish arrived whole: 30 frames from a key frame, every one decoded by dav1d. */
function assertPublished(server: AuthRtmpServer) {
  assert.equal(server.published.length, 1);
  const list = publishes(parseFlvVideoTags(server.flv(0)));
  assert.equal(list.length, 1);
  assert.ok(list[0].ended, "SequenceEnd came through");
  assert.deepEqual(list[0].frames.map((f) => f.frame), [...Array(30).keys()]);
  assert.ok(list[0].frames[0].key);
  assert.equal(dav1dPublishFrames(list[0]), 30);
}

/** Publishes the test source to `url`; resolves with the sink's error, or undefined. */
async function publish(url: string, options: Record<string, unknown> = {}) {
  const sink = createSink(url, { info: source.info, ...fast, ...options });
  const reconnects = record(sink, "reconnect");
  const err = await frames().pipeThrough(createEncodeStream(config)).pipeTo(sink).then(
    () => undefined,
    (e: EncoderError) => e,
  );
  return { err, reconnects, sink };
}

test(
  "rtmp authmod=adobe: need auth, then the challenge, then our response; the publish decodes",
  tools,
  async () => {
    await withServer({ method: "adobe", user: "alice", password: "s3cr@t &x" }, async (server) => {
      // The URL's user:password, percent-encoded.
      const url = server.url.replace("rtmp://", "rtmp://alice:s3cr%40t%20%26x@");
      const { err, reconnects } = await publish(url);
      assert.equal(err, undefined, err?.message);
      assert.deepEqual(
        server.connections.map((c) => c.answer.replace(/\?reason=needauth.*/, "?reason=needauth")),
        [
          "[ AccessManager.Reject ] : [ code=403 need auth; authmod=adobe ] : ",
          "[ AccessManager.Reject ] : [ authmod=adobe ] : ?reason=needauth",
          "accepted",
        ],
      );
      assert.equal(server.connections[0].app, "live");
      assert.equal(server.connections[1].app, "live?authmod=adobe&user=alice");
      assert.match(
        server.connections[2].app,
        /^live\?authmod=adobe&user=alice&challenge=[0-9a-f]{8}&response=\S+&opaque=/,
      );
      assert.equal(
        server.connections[2].tcUrl,
        `rtmp://127.0.0.1:${server.port}/${server.connections[2].app}`,
      );
      // The exchange is inside one connect: the sink saw no reconnection.
      assert.equal(reconnects.length, 0);
      assertPublished(server);
    });
  },
);

test(
  "rtmp authmod=adobe without opaque: the response hashes the challenge; user and password as options",
  tools,
  async () => {
    await withServer({ method: "adobe", user: "bob", password: "pw", opaque: false }, async (server) => {
      const { err } = await publish(server.url.replace("rtmp://", "rtmp://wrong:wrong@"), {
        user: "bob",
        password: "pw",
      });
      assert.equal(err, undefined, err?.message);
      assert.equal(server.connections.at(-1)!.answer, "accepted");
      assert.doesNotMatch(server.connections.at(-1)!.app, /opaque/);
      assertPublished(server);
    });
  },
);

test("rtmp authmod=llnw: the nonce answered with the digest; the publish decodes", tools, async () => {
  await withServer({ method: "llnw", user: "carol", password: "hunter2" }, async (server) => {
    const { err } = await publish(server.url.replace("rtmp://", "rtmp://carol:hunter2@"));
    assert.equal(err, undefined, err?.message);
    assert.equal(server.connections.length, 3);
    assert.match(
      server.connections[2].app,
      /^live\?authmod=llnw&user=carol&nonce=[0-9a-f]+&cnonce=[0-9a-f]{8}&nc=00000001&response=[0-9a-f]{32}$/,
    );
    assertPublished(server);
  });
});

test(
  "rtmp auth: a wrong password, an unknown user or no credentials fail at once with what to fix",
  tools,
  async () => {
    await withServer({ method: "adobe", user: "alice", password: "right" }, async (server) => {
      const wrong = await publish(server.url.replace("rtmp://", "rtmp://alice:wrong@"));
      assert.ok(wrong.err instanceof EncoderError);
      assert.equal(wrong.err.code, "IO_ERROR");
      assert.match(
        wrong.err.message,
        /refused the password of user "alice" \(authmod=adobe\): check the password/,
      );
      assert.equal(wrong.reconnects.length, 0, "no reconnection with the same password");
      assert.equal(wrong.sink.state, "failed");
      assert.equal(server.connections.at(-1)!.answer.endsWith("?reason=authfailed"), true);

      const before = server.connections.length;
      const stranger = await publish(server.url.replace("rtmp://", "rtmp://mallory:x@"));
      assert.match(stranger.err!.message, /does not know the user "mallory"/);
      assert.equal(server.connections.length - before, 2);

      const anonymous = await publish(server.url);
      assert.match(
        anonymous.err!.message,
        /asks for a user and password \(authmod=adobe\): put them in the URL/,
      );
      assert.equal(anonymous.reconnects.length, 0);
      assert.equal(server.published.length, 0);
    });
  },
);

// FFmpeg's RTMP client (libavformat/rtmpproto.c) answers the same server: its response is accepted, so the
// server's formula is FFmpeg's, not only ours.
for (const method of ["adobe", "llnw"] as const) {
  test(`rtmp authmod=${method}: the test server accepts FFmpeg's own response`, needs("ffmpeg"), async () => {
    await withServer({ method, user: "dave", password: "pa55" }, async (server) => {
      const url = server.url.replace("rtmp://", "rtmp://dave:pa55@");
      const ffmpeg = spawn("ffmpeg", [
        ...["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=10"],
        ...["-frames:v", "5", "-c:v", "flv1", "-f", "flv", url],
      ], { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      ffmpeg.stderr!.on("data", (c: Uint8Array) => (stderr += new TextDecoder().decode(c)));
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => ffmpeg.kill("SIGKILL"), 60_000);
        ffmpeg.once("exit", (c) => (clearTimeout(timer), resolve(c)));
      });
      assert.equal(code, 0, stderr);
      assert.deepEqual(server.connections.map((c) => c.answer === "accepted"), [false, false, true]);
      // 5 video tags after the FLV header.
      assert.equal(server.published[0]?.length, 1 + 5, stderr);
    });
  });
}
