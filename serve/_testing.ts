/**
 * Test rig for serve/: the built-in front-end (client/) plays QEMU and the
 * guest kernel, a VirtioFsDevice serves a temporary directory, both on one
 * event loop over a socketpair. No QEMU.
 *
 * @module
 */
import { EventLoop, socketpair } from "../sys/mod.ts";
import { type DriverQueue, PROTOCOL_FEATURE, VhostUserFrontend } from "../client/mod.ts";
import {
  decodeReply,
  decodeRequest,
  encodeRequest,
  type FuseReply,
  type FuseRequestInit,
  FuseSession,
  InitFlags,
  Opcode,
  type OpcodeName,
} from "../decode/fuse.ts";
import { VirtioFsDevice, type VirtioFsDeviceOptions } from "./device.ts";

/** A running device, a front-end driving it and the shared directory. */
export interface Rig {
  /** The shared directory (removed by {@link Rig.close}). */
  dir: string;
  /** The device under test. */
  device: VirtioFsDevice;
  /** The front-end. */
  fe: VhostUserFrontend;
  /** Its queues (0 hiprio, 1… requests). */
  queues: DriverQueue[];
  /** The client's FUSE session. */
  session: FuseSession;
  /** Sends a request (unique assigned) and decodes the reply; undefined for no-reply ops. */
  call(
    name: OpcodeName,
    init?: Omit<FuseRequestInit, "header"> & { nodeid?: bigint; uid?: number; gid?: number },
    options?: { capacity?: number; queue?: number },
  ): Promise<FuseReply>;
  /** BATCH_FORGET on hiprio (no reply: resolves once the device returned the chain). */
  forget(items: { nodeid: bigint; nlookup: bigint }[]): Promise<void>;
  /** Sends INIT (minor 38 unless given) and returns the reply. */
  init(minor?: number, flags?: bigint): Promise<FuseReply>;
  /** Tears everything down. */
  close(): Promise<void>;
}

/** Starts a device on a fresh temporary directory and a front-end with its queues. */
export async function rig(
  options: Partial<Omit<VirtioFsDeviceOptions, "fd" | "loop">> & {
    memSlots?: boolean;
    queueSize?: number;
  } = {},
): Promise<Rig> {
  const dir = options.sharedDir ?? await Deno.makeTempDir({ prefix: "vfstrace-serve-test-" });
  const loop = new EventLoop();
  const running = loop.run();
  const [a, b] = socketpair();
  const device = new VirtioFsDevice({ ...options, sharedDir: dir, fd: b, loop });
  const fe = new VhostUserFrontend(a, { loop, name: "test front-end" });
  const queues = await fe.start({
    negotiate: {
      memSlots: options.memSlots ?? false,
      protocolFeatures: PROTOCOL_FEATURE.MQ | PROTOCOL_FEATURE.REPLY_ACK |
        (options.tag === undefined ? 0n : PROTOCOL_FEATURE.CONFIG),
    },
    memory: { size: 16 << 20 },
    queueSize: options.queueSize ?? 128,
  });
  const session = new FuseSession();
  let unique = 1n;
  const call: Rig["call"] = async (name, init = {}, opts = {}) => {
    const { nodeid, uid, gid, ...rest } = init;
    const bytes = encodeRequest({
      header: {
        opcode: Opcode[name],
        unique: unique++,
        nodeid: nodeid ?? 1n,
        uid: uid ?? 0,
        gid: gid ?? 0,
        pid: 1,
      },
      ...rest,
    }, session);
    const req = decodeRequest(bytes, new FuseSession({ minor: session.minor }));
    const done = await queues[opts.queue ?? 1]!.submit(
      bytes,
      opts.capacity ?? 1 << 16,
    );
    return decodeReply(done.bytes.subarray(0, done.len), req, session);
  };
  return {
    dir,
    device,
    fe,
    queues,
    session,
    call,
    forget: async (items) => {
      const bytes = encodeRequest({
        header: { opcode: Opcode.BATCH_FORGET, unique: unique++ },
        items,
      }, session);
      await queues[0]!.submit(bytes, 0);
    },
    init: (minor?: number, flags?: bigint) =>
      call("INIT", {
        arg: {
          major: 7,
          minor: minor ?? 38,
          "max_readahead": 131072,
          flags: Number((flags ?? allInitFlags()) & 0xffff_ffffn),
          flags2: Number((flags ?? allInitFlags()) >> 32n),
        },
      }),
    close: async () => {
      await fe.close();
      await device.closed;
      device.close();
      loop.stop();
      await running;
      await loop.close();
      if (options.sharedDir === undefined) await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Every INIT flag a kernel could offer (low word, INIT_EXT and the high word). */
export function allInitFlags(): bigint {
  let f = 0n;
  for (const [bitValue] of InitFlags.bits) f |= bitValue;
  return f;
}
