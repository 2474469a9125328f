/**
 * Symbol table of librav1e's C API (stable from 0.5 to 0.8). Enum arguments are C `int`s (`i32`);
 * `RaRational` is passed by value, which on LP64 SysV and AAPCS64 is two `u64` arguments.
 * @module
 */
import type { SymbolTable } from "../runtime/types.ts";

/** Every function the encoder uses. */
export const rav1eSymbols = {
  // const char *rav1e_version_full(void);
  rav1e_version_full: { parameters: [], result: "pointer" },
  // RaConfig *rav1e_config_default(void);
  rav1e_config_default: { parameters: [], result: "pointer" },
  // void rav1e_config_unref(RaConfig *cfg);
  rav1e_config_unref: { parameters: ["pointer"], result: "void" },
  // int rav1e_config_parse(RaConfig *cfg, const char *key, const char *value);
  rav1e_config_parse: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  // int rav1e_config_parse_int(RaConfig *cfg, const char *key, int value);
  rav1e_config_parse_int: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  // void rav1e_config_set_time_base(RaConfig *cfg, RaRational time_base);
  rav1e_config_set_time_base: { parameters: ["pointer", "u64", "u64"], result: "void" },
  // int rav1e_config_set_pixel_format(RaConfig *cfg, uint8_t bit_depth, RaChromaSampling subsampling, RaChromaSamplePosition chroma_pos, RaPixelRange pixel_range);
  rav1e_config_set_pixel_format: { parameters: ["pointer", "u8", "i32", "i32", "i32"], result: "i32" },
  // int rav1e_config_set_color_description(RaConfig *cfg, RaMatrixCoefficients matrix, RaColorPrimaries primaries, RaTransferCharacteristics transfer);
  rav1e_config_set_color_description: { parameters: ["pointer", "i32", "i32", "i32"], result: "i32" },
  // RaContext *rav1e_context_new(const RaConfig *cfg);
  rav1e_context_new: { parameters: ["pointer"], result: "pointer" },
  // void rav1e_context_unref(RaContext *ctx);
  rav1e_context_unref: { parameters: ["pointer"], result: "void" },
  // RaData *rav1e_container_sequence_header(const RaContext *ctx);
  rav1e_container_sequence_header: { parameters: ["pointer"], result: "pointer" },
  // void rav1e_data_unref(RaData *data);
  rav1e_data_unref: { parameters: ["pointer"], result: "void" },
  // RaFrame *rav1e_frame_new(const RaContext *ctx);
  rav1e_frame_new: { parameters: ["pointer"], result: "pointer" },
  // void rav1e_frame_unref(RaFrame *frame);
  rav1e_frame_unref: { parameters: ["pointer"], result: "void" },
  // int rav1e_frame_set_type(RaFrame *frame, RaFrameTypeOverride frame_type);
  rav1e_frame_set_type: { parameters: ["pointer", "i32"], result: "i32" },
  // void rav1e_frame_fill_plane(RaFrame *frame, int plane, const uint8_t *data, size_t data_len, ptrdiff_t stride, int bytewidth);
  rav1e_frame_fill_plane: {
    parameters: ["pointer", "i32", "pointer", "usize", "i64", "i32"],
    result: "void",
  },
  // RaEncoderStatus rav1e_send_frame(RaContext *ctx, RaFrame *frame);
  rav1e_send_frame: { parameters: ["pointer", "pointer"], result: "i32" },
  // RaEncoderStatus rav1e_receive_packet(RaContext *ctx, RaPacket **pkt);
  rav1e_receive_packet: { parameters: ["pointer", "buffer"], result: "i32" },
  // void rav1e_packet_unref(RaPacket *pkt);
  rav1e_packet_unref: { parameters: ["pointer"], result: "void" },
  // const char *rav1e_status_to_str(RaEncoderStatus status);
  rav1e_status_to_str: { parameters: ["i32"], result: "pointer" },
} as const satisfies SymbolTable;

/**
 * The calls that take long, as Deno's nonblocking calls (each returns a Promise), for an encoder whose
 * calls run on the caller's thread (`host: "caller"`): `receive_packet` does the encoding work, and
 * `context_unref` waits for the encoder's own threads.
 */
export const rav1eBlockingSymbols = {
  rav1e_receive_packet: { ...rav1eSymbols.rav1e_receive_packet, nonblocking: true },
  rav1e_context_unref: { ...rav1eSymbols.rav1e_context_unref, nonblocking: true },
} as const satisfies SymbolTable;

/** Just enough to read the version of a library before using it. */
export const rav1eVersionSymbols = {
  rav1e_version_full: rav1eSymbols.rav1e_version_full,
} as const satisfies SymbolTable;
