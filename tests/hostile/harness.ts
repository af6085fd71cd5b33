/**
 * The hostile-guest harness: a back-end under test started through the CLI
 * (`vfstrace serve`, or `vfstrace trace` in front of the C virtiofsd), the
 * built-in front-end connected to it, and helpers that send well-formed or
 * deliberately broken requests and classify what came back.
 *
 * One back-end process serves many cases: a session is replaced only when a
 * case leaves it unusable (the process died, the request queue stopped).
 *
 * @module
 */
import {
  type Completion,
  type DriverQueue,
  FrontendMemory,
  type SubmitOptions,
  VhostUserFrontend,
} from "../../client/mod.ts";
import {
  decodeReply,
  decodeRequest,
  encodeRequest,
  type FuseRequestInit,
  FuseSession,
  Opcode,
  type OpcodeName,
} from "../../decode/fuse.ts";
import { eventfdWrite } from "../../sys/mod.ts";
import { C_VIRTIOFSD } from "../../vm/mod.ts";

const CLI = new URL("../../cmd/vfstrace.ts", import.meta.url).pathname;

/** Which back-end a session runs against. */
export type TargetKind = "serve" | "trace";

/** How a hostile request ended, as the guest sees it. */
export type Outcome =
  /** A FUSE reply came back. */
  | { kind: "reply"; error: number; unique: bigint; outLen: number; usedLen: number }
  /** The chain came back used with length 0 (refused, or a request without reply). */
  | { kind: "empty" }
  /** Nothing came back within the time limit. */
  | { kind: "timeout" }
  /** The client's queue failed (the device broke the used ring, or the connection ended). */
  | { kind: "queue-failed"; message: string };

/** A back-end process and the front-end talking to it. */
export class HostileSession {
  /** serve or trace. */
  readonly kind: TargetKind;
  /** Temporary directory holding everything of this session. */
  readonly dir: string;
  /** The shared directory. */
  readonly share: string;
  /** The capture the back-end (serve --capture, trace -w) writes. */
  readonly capture: string;
  /** The front-end. */
  readonly fe: VhostUserFrontend;
  /** Queues: 0 hiprio, 1 requests. */
  readonly queues: DriverQueue[];
  /** The client's FUSE session (minor from the INIT reply). */
  readonly fuse: FuseSession;
  /** Shared guest memory (two regions, back to back). */
  readonly memory: FrontendMemory;
  #proc: Deno.ChildProcess;
  #stderr: { text: string };
  #status: Promise<Deno.CommandStatus>;
  #exited: Deno.CommandStatus | undefined;
  #unique = 100n;
  /** Node ids and handles set up by {@link prepare}. */
  readonly fixture = { file: 0n, dir: 0n };

  private constructor(
    kind: TargetKind,
    dir: string,
    proc: Deno.ChildProcess,
    stderr: { text: string },
    fe: VhostUserFrontend,
    queues: DriverQueue[],
    memory: FrontendMemory,
  ) {
    this.kind = kind;
    this.dir = dir;
    this.share = `${dir}/share`;
    this.capture = `${dir}/capture.pcapng`;
    this.#proc = proc;
    this.#stderr = stderr;
    this.#status = proc.status.then((s) => (this.#exited = s));
    this.fe = fe;
    this.queues = queues;
    this.memory = memory;
    this.fuse = new FuseSession();
  }

  /** Starts the back-end, connects, sets up two queues of 64 and sends INIT. */
  static async start(
    kind: TargetKind,
    options: { init?: boolean } = {},
  ): Promise<HostileSession> {
    const dir = await Deno.makeTempDir({ prefix: `vfstrace-hostile-${kind}-` });
    const share = `${dir}/share`;
    await Deno.mkdir(share);
    await Deno.writeTextFile(`${share}/file.txt`, "hello hostile world\n");
    await Deno.mkdir(`${share}/sub`);
    const socket = `${dir}/vfs.sock`;
    const capture = `${dir}/capture.pcapng`;
    const args = kind === "serve"
      ? ["serve", "--socket-path", socket, "--shared-dir", share, "--xattr", "--capture", capture]
      : [
        "trace",
        "--socket-path",
        socket,
        "-w",
        capture,
        "-q",
        "--snaplen",
        "0",
        "--",
        C_VIRTIOFSD,
        "--socket-path={socket}",
        "-o",
        `source=${share}`,
        "-o",
        "xattr",
      ];
    const proc = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--allow-all", CLI, ...args],
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = { text: "" };
    void (async () => {
      for await (const c of proc.stderr.pipeThrough(new TextDecoderStream())) {
        stderr.text = (stderr.text + c).slice(-65536);
      }
    })();
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        if ((await Deno.stat(socket)).isSocket) break;
      } catch { /* not yet */ }
      if (Date.now() > deadline) {
        proc.kill("SIGKILL");
        throw new Error(`${kind}: no socket after 30 s\n${stderr.text}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    // Two regions back to back in guest-physical space: a buffer may straddle them.
    const memory = FrontendMemory.create({ size: 8 << 20, regions: 2 });
    // The socket file exists from bind(); connecting before listen() is refused: retry.
    let fe: VhostUserFrontend | undefined;
    for (let i = 0; fe === undefined; i++) {
      try {
        fe = VhostUserFrontend.connect(socket, { name: `hostile ${kind}` });
      } catch (err) {
        if (i > 100 || !/ECONNREFUSED/.test(String(err))) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const queues = await fe.start({ memory, queues: 2, queueSize: 64 });
    const s = new HostileSession(kind, dir, proc, stderr, fe, queues, memory);
    if (options.init === false) return s;
    const init = await s.call("INIT", {
      arg: { major: 7, minor: 38, "max_readahead": 131072, flags: 0x7fffffff, flags2: 0 },
    }, { nodeid: 0n });
    if (init.kind !== "reply" || init.error !== 0) {
      throw new Error(`${kind}: INIT failed: ${JSON.stringify(init, bigintJson)}`);
    }
    await s.prepare();
    return s;
  }

  /** The exit status once the process ended. */
  get exited(): Deno.CommandStatus | undefined {
    return this.#exited;
  }

  /** The back-end's stderr so far (last 64 KiB). */
  get stderr(): string {
    return this.#stderr.text;
  }

  /** A fresh FUSE unique. */
  unique(): bigint {
    return this.#unique += 2n;
  }

  /** Looks up file.txt and sub/ so cases can use their node ids. */
  async prepare(): Promise<void> {
    this.fixture.file = await this.lookup("file.txt");
    this.fixture.dir = await this.lookup("sub");
  }

  /** LOOKUP of a name in the root; the node id (throws when it fails). */
  async lookup(name: string): Promise<bigint> {
    const r = await this.callRaw("LOOKUP", { names: [name] });
    if (r.outcome.kind !== "reply" || r.outcome.error !== 0 || r.bytes === undefined) {
      throw new Error(`LOOKUP ${name}: ${JSON.stringify(r.outcome, bigintJson)}`);
    }
    return new DataView(r.bytes.buffer, r.bytes.byteOffset).getBigUint64(16, true);
  }

  /** Encodes a well-formed request (unique assigned) with the client's session. */
  encode(name: OpcodeName, init: Omit<FuseRequestInit, "header"> = {}, nodeid = 1n): Uint8Array {
    return encodeRequest({
      header: { opcode: Opcode[name], unique: this.unique(), nodeid, uid: 0, gid: 0, pid: 1 },
      ...init,
    }, this.fuse);
  }

  /** Sends a well-formed request and classifies the outcome. */
  async call(
    name: OpcodeName,
    init: Omit<FuseRequestInit, "header"> = {},
    options: { nodeid?: bigint; queue?: number; capacity?: number } = {},
  ): Promise<Outcome> {
    return (await this.callRaw(name, init, options)).outcome;
  }

  /** Like {@link call}, also returning the reply bytes. */
  async callRaw(
    name: OpcodeName,
    init: Omit<FuseRequestInit, "header"> = {},
    options: { nodeid?: bigint; queue?: number; capacity?: number } = {},
  ): Promise<{ outcome: Outcome; bytes: Uint8Array | undefined }> {
    const bytes = this.encode(name, init, options.nodeid ?? 1n);
    const req = decodeRequest(bytes, new FuseSession({ minor: this.fuse.minor }));
    const r = await this.submitRaw(bytes, options.capacity ?? 1 << 16, {
      queue: options.queue ?? 1,
    });
    if (r.outcome.kind === "reply" && r.bytes !== undefined && r.outcome.error === 0) {
      decodeReply(r.bytes, req, this.fuse); // INIT updates the session
    }
    return r;
  }

  /** Submits arbitrary readable bytes; raw chain mutation through `options.mutate`. */
  async submit(
    readable: Uint8Array | readonly Uint8Array[],
    capacity: number,
    options: SubmitOptions & { queue?: number; timeoutMs?: number; kick?: boolean } = {},
  ): Promise<Outcome> {
    return (await this.submitRaw(readable, capacity, options)).outcome;
  }

  /** {@link submit}, also returning the reply bytes. */
  async submitRaw(
    readable: Uint8Array | readonly Uint8Array[],
    capacity: number,
    options: SubmitOptions & { queue?: number; timeoutMs?: number; kick?: boolean } = {},
  ): Promise<{ outcome: Outcome; bytes: Uint8Array | undefined }> {
    const { queue = 1, timeoutMs = 5000, kick = false, ...submitOptions } = options;
    const q = this.queues[queue]!;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((
      r,
    ) => (timer = setTimeout(() => r("timeout"), timeoutMs)));
    const p = q.submit(readable, capacity, submitOptions);
    // A mutation that bypasses the driver's publish needs its own kick.
    if (kick) queueMicrotask(() => queueMicrotask(() => eventfdWrite(q.kickFd)));
    let done: Completion | "timeout";
    try {
      done = await Promise.race([p, timeout]);
    } catch (err) {
      clearTimeout(timer);
      return {
        outcome: { kind: "queue-failed", message: (err as Error).message },
        bytes: undefined,
      };
    }
    clearTimeout(timer);
    p.catch(() => {});
    if (done === "timeout") return { outcome: { kind: "timeout" }, bytes: undefined };
    if (done.len === 0) return { outcome: { kind: "empty" }, bytes: undefined };
    const b = done.bytes;
    if (b.byteLength < 16) {
      return {
        outcome: { kind: "reply", error: NaN, unique: -1n, outLen: -1, usedLen: done.len },
        bytes: b,
      };
    }
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return {
      outcome: {
        kind: "reply",
        outLen: dv.getUint32(0, true),
        error: dv.getInt32(4, true),
        unique: dv.getBigUint64(8, true),
        usedLen: done.len,
      },
      bytes: b,
    };
  }

  /** GETATTR of the root on the request queue: does the back-end still serve? */
  async healthy(timeoutMs = 5000): Promise<boolean> {
    if (!this.fe.connected || this.queues[1]!.closed) return false;
    const bytes = this.encode("GETATTR", { arg: { "getattr_flags": 0, fh: 0n } });
    const o = await this.submit(bytes, 4096, { timeoutMs });
    return o.kind === "reply" && o.error === 0;
  }

  /** Waits up to `ms` for the back-end process to exit; its status or undefined. */
  async waitExit(ms: number): Promise<Deno.CommandStatus | undefined> {
    return await Promise.race([
      this.#status,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), ms)),
    ]);
  }

  /** Disconnects and waits for the back-end to exit (killing it after 10 s). */
  async close(): Promise<Deno.CommandStatus> {
    await this.fe.close({ stopQueues: this.fe.connected }).catch(() => {});
    this.memory.close();
    let st = await this.waitExit(10_000);
    if (st === undefined) {
      try {
        this.#proc.kill("SIGKILL");
      } catch { /* gone */ }
      st = await this.#status;
    }
    return st;
  }
}

/** JSON.stringify replacer for bigints. */
export function bigintJson(_k: string, v: unknown): unknown {
  return typeof v === "bigint" ? v.toString() : v;
}

/** Builds a request by hand: fuse_in_header with `len` = 40 + body + lenDelta, then `body`. */
export function rawRequest(
  opcode: number,
  unique: bigint,
  nodeid: bigint,
  body: Uint8Array,
  options: { lenDelta?: number; len?: number } = {},
): Uint8Array {
  const out = new Uint8Array(40 + body.byteLength);
  const dv = new DataView(out.buffer);
  const len = options.len ?? 40 + body.byteLength + (options.lenDelta ?? 0);
  dv.setUint32(0, len >>> 0, true);
  dv.setUint32(4, opcode >>> 0, true);
  dv.setBigUint64(8, unique, true);
  dv.setBigUint64(16, nodeid, true);
  dv.setUint32(24, 0, true); // uid
  dv.setUint32(28, 0, true); // gid
  dv.setUint32(32, 1, true); // pid
  out.set(body, 40);
  return out;
}
