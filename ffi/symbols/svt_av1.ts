/**
 * Symbol table of libSvtAv1Enc (SVT-AV1's encoder library). Every call returns an `EbErrorType`
 * (0 = ok), read as u32 so that 0x80001005 stays positive.
 * @module
 */
import type { SymbolTable } from "../runtime/types.ts";

const common = {
  // const char *svt_av1_get_version(void);
  svt_av1_get_version: { parameters: [], result: "pointer" },
  // EbErrorType svt_av1_enc_parse_parameter(EbSvtAv1EncConfiguration *config, const char *name, const char *value);
  svt_av1_enc_parse_parameter: { parameters: ["buffer", "buffer", "buffer"], result: "u32" },
  // EbErrorType svt_av1_enc_set_parameter(EbComponentType *svt_enc_component, EbSvtAv1EncConfiguration *pComponentParameterStructure);
  svt_av1_enc_set_parameter: { parameters: ["pointer", "buffer"], result: "u32" },
  // EbErrorType svt_av1_enc_init(EbComponentType *svt_enc_component);
  svt_av1_enc_init: { parameters: ["pointer"], result: "u32" },
  // EbErrorType svt_av1_enc_stream_header(EbComponentType *svt_enc_component, EbBufferHeaderType **output_stream_ptr);
  svt_av1_enc_stream_header: { parameters: ["pointer", "buffer"], result: "u32" },
  // EbErrorType svt_av1_enc_stream_header_release(EbBufferHeaderType *stream_header_ptr);
  svt_av1_enc_stream_header_release: { parameters: ["pointer"], result: "u32" },
  // EbErrorType svt_av1_enc_send_picture(EbComponentType *svt_enc_component, EbBufferHeaderType *p_buffer);
  svt_av1_enc_send_picture: { parameters: ["pointer", "buffer"], result: "u32" },
  // EbErrorType svt_av1_enc_get_packet(EbComponentType *svt_enc_component, EbBufferHeaderType **p_buffer, uint8_t pic_send_done);
  svt_av1_enc_get_packet: { parameters: ["pointer", "buffer", "u8"], result: "u32" },
  // void svt_av1_enc_release_out_buffer(EbBufferHeaderType **p_buffer);
  svt_av1_enc_release_out_buffer: { parameters: ["buffer"], result: "void" },
  // EbErrorType svt_av1_enc_deinit(EbComponentType *svt_enc_component);
  svt_av1_enc_deinit: { parameters: ["pointer"], result: "u32" },
  // EbErrorType svt_av1_enc_deinit_handle(EbComponentType *svt_enc_component);
  svt_av1_enc_deinit_handle: { parameters: ["pointer"], result: "u32" },
} as const satisfies SymbolTable;

/** SVT-AV1 1.x and 2.x: `init_handle` takes an application data pointer. */
export const svtAv1Symbols1 = {
  ...common,
  // EbErrorType svt_av1_enc_init_handle(EbComponentType **p_handle, void *p_app_data, EbSvtAv1EncConfiguration *config_ptr);
  svt_av1_enc_init_handle: { parameters: ["buffer", "pointer", "buffer"], result: "u32" },
} as const satisfies SymbolTable;

/** SVT-AV1 3.0 and later: `init_handle` lost its application data pointer. */
export const svtAv1Symbols3 = {
  ...common,
  // EbErrorType svt_av1_enc_init_handle(EbComponentType **p_handle, EbSvtAv1EncConfiguration *config_ptr);
  svt_av1_enc_init_handle: { parameters: ["buffer", "buffer"], result: "u32" },
} as const satisfies SymbolTable;

/**
 * The calls that block, as Deno's nonblocking calls (each returns a Promise), for an encoder whose calls
 * run on the caller's thread (`host: "caller"`): `send_picture` waits while the input pool is full,
 * `get_packet` with `pic_send_done` = 1 until a packet exists (and under low delay on 2.x and later even
 * with 0), `init` allocates every buffer and starts the library's threads, `deinit` joins them. The same
 * in every version.
 */
export const svtAv1BlockingSymbols = {
  svt_av1_enc_send_picture: { ...common.svt_av1_enc_send_picture, nonblocking: true },
  svt_av1_enc_get_packet: { ...common.svt_av1_enc_get_packet, nonblocking: true },
  svt_av1_enc_init: { ...common.svt_av1_enc_init, nonblocking: true },
  svt_av1_enc_deinit: { ...common.svt_av1_enc_deinit, nonblocking: true },
} as const satisfies SymbolTable;

/** Just enough to read the version of a library before choosing its table. */
export const svtAv1VersionSymbols = {
  svt_av1_get_version: common.svt_av1_get_version,
} as const satisfies SymbolTable;

/** EbErrorType values the project reacts to. */
export const SvtStatus = {
  ok: 0,
  insufficientResources: 0x80001000,
  undefined: 0x80001001,
  invalidComponent: 0x80001004,
  badParameter: 0x80001005,
  destroyThreadFailed: 0x80002012,
  semaphoreUnresponsive: 0x80002021,
  destroySemaphoreFailed: 0x80002022,
  createMutexFailed: 0x80002030,
  mutexUnresponsive: 0x80002031,
  destroyMutexFailed: 0x80002032,
  noErrorEmptyQueue: 0x80002033,
  noErrorFifoShutdown: 0x80002034,
} as const;

/** EbAv1PictureType values. */
export const SvtPictureType = {
  inter: 0,
  altRef: 1,
  intraOnly: 2,
  key: 3,
  nonRef: 4,
  showExisting: 5,
  forwardKey: 6,
  switchFrame: 7,
  /** `EB_AV1_INVALID_PICTURE`: "let the encoder decide", what every ordinary input picture carries. */
  invalid: 0xff,
} as const;

/** Buffer header flags. */
export const SvtBufferFlag = { endOfStream: 0x1 } as const;

/** EbColorFormat values. */
export const SvtColorFormat = { yuv400: 0, yuv420: 1, yuv422: 2, yuv444: 3 } as const;
