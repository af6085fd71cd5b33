/**
 * The FUSE codec: decode and encode every FUSE request, reply and
 * notification through protocol 7.45, version- and flag-aware, pure (no I/O).
 *
 * - {@link FUSE_OPS} / {@link fuseOp}: the one opcode table (names, layouts,
 *   reply shapes, minor versions) that printers, the dissector and the
 *   backend read; {@link FUSE_NOTIFY} for notifications.
 * - {@link decodeRequest} / {@link decodeReply}: bytes (one buffer or
 *   descriptor-chain segments) → records; payloads stay views of the input.
 *   They throw only {@link DecodeError}; unknown opcodes decode as raw records.
 *   A message a capture cut decodes as far as it goes with
 *   {@link FuseDecodeOptions.truncatedFrom}, marked `truncated: {have, want}`.
 * - {@link encodeRequest} / {@link encodeReply} (and `*Segments`): records →
 *   the exact bytes a kernel / daemon sends, lengths computed.
 * - {@link FuseSession}: the negotiated minor and INIT flags, learnt from INIT.
 *
 * @example
 * ```ts
 * const session = new FuseSession();
 * const req = decodeRequest(segments, session);
 * const reply = decodeReply(replyBytes, req, session);
 * ```
 *
 * @module
 */

export {
  decodeReply,
  decodeRequest,
  encodeErrorReply,
  encodeReply,
  encodeReplySegments,
  encodeRequest,
  encodeRequestSegments,
  IN_HEADER_SIZE,
  OUT_HEADER_SIZE,
} from "./_fuse_codec.ts";
export type {
  FuseDecodeOptions,
  FuseDirent,
  FuseDirentInit,
  FuseExtension,
  FuseInHeader,
  FuseInHeaderInit,
  FuseOutHeader,
  FuseReply,
  FuseReplyInit,
  FuseRequest,
  FuseRequestInit,
  FuseSecctxEntry,
  FuseTruncation,
  StructInit,
} from "./_fuse_codec.ts";
export { decodeName, encodeName } from "./_fuse_bytes.ts";
export * from "./fuse_flags.ts";
export * from "./fuse_layouts.ts";
export * from "./fuse_session.ts";
export * from "./fuse_table.ts";
// The layout language the tables are written in, so this module stands alone.
export { BitNames, DecodeError, EncodeError, formatField, Layout, ValueNames } from "./struct.ts";
export type { Decoded, Display, FieldSpec, FieldValue, ScalarType } from "./struct.ts";
