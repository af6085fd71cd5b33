/**
 * The hostile-guest corpus: descriptor chains, ring indices and FUSE
 * requests no honest guest sends, generated combinatorially. Each case says
 * what the guest may see (a reply with an error, the chain returned empty,
 * nothing at all when the queue is declared broken) and what the recording
 * must say about it.
 *
 * @module
 */
import type { RawChainInfo } from "../../client/mod.ts";
import {
  DESC_SIZE,
  DescFlags,
  type RawDescriptor,
  type SplitQueueDriver,
} from "../../virtq/mod.ts";
import { encodeRequest, FuseSession, Opcode, type OpcodeName } from "../../decode/fuse.ts";
import { Errno } from "../../sys/errno.ts";
import { fuseSamples } from "../../decode/_fuse_samples.ts";
import type { HostileSession, Outcome } from "./harness.ts";
import { rawRequest } from "./harness.ts";

/** What a case must produce. */
export interface Expect {
  /** Outcomes the guest may see. */
  outcomes: readonly Outcome["kind"][];
  /** For `vfstrace serve`: the errnos (positive) an error reply may carry; any when absent. */
  serveErrno?: readonly number[];
  /** A malformed_chain note whose reason contains this, or one of these separated by '|'. */
  chainReason?: string;
  /** The request record is flagged MALFORMED (its fuse_in_header lies). */
  requestMalformed?: boolean;
  /** The queue is declared broken (a queue_broken note); the session is replaced after. */
  breaksQueue?: boolean;
  /** The client's queue may be unusable afterwards: the session is replaced after. */
  restart?: boolean;
  /**
   * The guest corrupts its own rings: the request queue may stop (the device
   * declares it broken); only the process's survival is required.
   */
  mayBreak?: boolean;
}

/** What a case's run reports beyond the outcome. */
export interface RunResult {
  /** What the guest saw. */
  outcome: Outcome;
  /** The FUSE unique of the hostile request, when it has one. */
  unique?: bigint;
  /** Guest memory the device should not have written was written. */
  memoryProblem?: string;
}

/** One hostile case. */
export interface HostileCase {
  /** Unique name. */
  name: string;
  /** Family (for the summary). */
  group: string;
  /** Needs a session without INIT. */
  preInit?: boolean;
  /** Sends the hostile input. */
  run(s: HostileSession): Promise<RunResult>;
  /** The expected outcome. */
  expect: Expect;
}

const ANY_REPLY: Expect = { outcomes: ["reply", "empty"] };
const ERROR_REPLY = (errno?: readonly number[]): Expect => ({
  outcomes: ["reply"],
  ...(errno === undefined ? {} : { serveErrno: errno }),
});
const REFUSED = (reason: string): Expect => ({ outcomes: ["empty"], chainReason: reason });

// ------------------------------------------------------------------ helpers

function getattr(s: HostileSession): Uint8Array {
  return s.encode("GETATTR", { arg: { "getattr_flags": 0, fh: 0n } });
}

function uniqueOf(b: Uint8Array): bigint {
  return new DataView(b.buffer, b.byteOffset).getBigUint64(8, true);
}

/** Reads the descriptor indices of the direct chain at `head` (as the driver just wrote it). */
function chainIndices(s: HostileSession, queue: number, head: number): number[] {
  const q = s.queues[queue]!;
  const out: number[] = [];
  let i = head;
  for (let k = 0; k < q.size; k++) {
    out.push(i);
    const d = s.memory.view(q.rings.desc + DESC_SIZE * i, DESC_SIZE);
    const dv = new DataView(d.buffer, d.byteOffset, 16);
    if ((dv.getUint16(12, true) & DescFlags.NEXT) === 0) break;
    i = dv.getUint16(14, true);
  }
  return out;
}

function readDesc(s: HostileSession, addr: number): RawDescriptor {
  const d = s.memory.view(addr, DESC_SIZE);
  const dv = new DataView(d.buffer, d.byteOffset, 16);
  return {
    addr: dv.getBigUint64(0, true),
    len: dv.getUint32(8, true),
    flags: dv.getUint16(12, true),
    next: dv.getUint16(14, true),
  };
}

/** A chain's descriptors as a list to rewrite, for direct and indirect chains alike. */
interface Editable {
  descs: RawDescriptor[];
  write(descs: RawDescriptor[]): void;
}

function editable(
  s: HostileSession,
  queue: number,
  driver: SplitQueueDriver,
  head: number,
  info: RawChainInfo,
): Editable {
  if (info.indirectTable !== undefined) {
    const n = info.readable.length + info.writable.length;
    const t = info.indirectTable;
    const descs = Array.from({ length: n }, (_, k) => readDesc(s, t + DESC_SIZE * k));
    return { descs, write: (d) => driver.writeTable(t, d) };
  }
  const idx = chainIndices(s, queue, head);
  const base = s.queues[queue]!.rings.desc;
  const descs = idx.map((i) => readDesc(s, base + DESC_SIZE * i));
  return {
    descs,
    write: (d) => d.forEach((x, k) => driver.writeDescriptor(idx[k]!, x)),
    // next fields in `descs` are table indices: for direct chains they are ring indices.
  };
}

/**
 * Sends GETATTR as [header 16 bytes, rest] + a 4 KiB writable buffer, rewritten by
 * `edit`. The reply buffer is filled with a pattern first: afterwards the device
 * must have written nothing past what the rewritten descriptor offered (nothing
 * at all when it refused the chain), and nothing into the request.
 */
function chainCase(
  name: string,
  indirect: boolean,
  edit: (e: Editable, s: HostileSession, head: number) => void,
  expect: Expect,
): HostileCase {
  return {
    name: `${indirect ? "indirect" : "direct"}: ${name}`,
    group: "descriptor chain",
    expect,
    run: async (s) => {
      const b = getattr(s);
      let w: { addr: number; len: number } | undefined;
      let saved: { addr: number; bytes: Uint8Array }[] = [];
      let offered = 0;
      const outcome = await s.submit([b.subarray(0, 16), b.subarray(16)], 4096, {
        indirect,
        mutate: (driver, head, info) => {
          const wb = info.writable[0]!;
          w = { addr: Number(wb.addr), len: wb.len };
          s.memory.view(w.addr, w.len).fill(0xee);
          saved = info.readable.map((r) => ({
            addr: Number(r.addr),
            bytes: s.memory.view(r.addr, r.len).slice(),
          }));
          const e = editable(s, 1, driver, head, info);
          edit(e, s, head);
          const d = e.descs[2];
          if (
            d !== undefined && (d.flags & DescFlags.WRITE) !== 0 &&
            BigInt(d.addr) === BigInt(w.addr)
          ) {
            offered = Math.min(d.len, w.len);
          }
          e.write(e.descs);
        },
      });
      let memoryProblem: string | undefined;
      if (w !== undefined && outcome.kind !== "queue-failed") {
        // A refused chain is not written at all; otherwise only the offered bytes (the spec
        // lets a device write more than it reports in used.len, never past the buffer).
        const from = outcome.kind === "empty" && expect.chainReason !== undefined ? 0 : offered;
        const rest = s.memory.view(w.addr + from, w.len - from);
        const at = rest.findIndex((x) => x !== 0xee);
        if (at >= 0) {
          memoryProblem = `the device wrote byte ${from + at} of a ${from}-byte reply buffer`;
        }
        for (const r of saved) {
          const now = s.memory.view(r.addr, r.bytes.byteLength);
          if (now.some((x, i) => x !== r.bytes[i])) {
            memoryProblem = "the device wrote into the request";
          }
        }
      }
      return { outcome, unique: uniqueOf(b), ...(memoryProblem ? { memoryProblem } : {}) };
    },
  };
}

function memEnd(s: HostileSession): bigint {
  const r = s.memory.regions.at(-1)!;
  return r.guestPhysAddr + BigInt(r.size);
}

function regionBoundary(s: HostileSession): bigint {
  const r = s.memory.regions[1]!;
  return r.guestPhysAddr;
}

// ------------------------------------------------------------------ chain cases

function chainCases(): HostileCase[] {
  const out: HostileCase[] = [];
  const set = (d: RawDescriptor, patch: Partial<RawDescriptor>): RawDescriptor => ({
    ...d,
    ...patch,
  });
  for (const indirect of [false, true]) {
    const loopReason = "loop";
    // Loops: the last descriptor points back.
    out.push(chainCase("loop to the head", indirect, (e, _s, head) => {
      const last = e.descs.length - 1;
      e.descs[last] = set(e.descs[last]!, {
        flags: e.descs[last]!.flags | DescFlags.NEXT,
        next: indirect ? 0 : head,
      });
    }, REFUSED(loopReason)));
    out.push(chainCase("descriptor pointing to itself", indirect, (e) => {
      // Descriptor 0's next is descriptor 1's index; descriptor 1 points to it.
      const d0 = e.descs[0]!;
      e.descs[1] = set(e.descs[1]!, { next: indirect ? 1 : d0.next });
    }, REFUSED(loopReason)));
    for (const next of [64, 1000, 0xffff]) {
      out.push(chainCase(`next ${next} out of range`, indirect, (e) => {
        e.descs[1] = set(e.descs[1]!, { next });
      }, REFUSED("next-out-of-range")));
    }
    out.push(chainCase("writable before readable", indirect, (e) => {
      e.descs[0] = set(e.descs[0]!, { flags: e.descs[0]!.flags | DescFlags.WRITE });
    }, REFUSED("writable-before-readable")));
    out.push(chainCase("readable after the writable buffer", indirect, (e) => {
      // The reply buffer becomes device-readable, at the end: readable after writable? no:
      // all readable then: a request with no room for the reply.
      e.descs[2] = set(e.descs[2]!, { flags: e.descs[2]!.flags & ~DescFlags.WRITE });
    }, { outcomes: ["empty"] }));
    // Addresses: each applied to the header (readable) and to the reply buffer (writable).
    const addrCases: [string, (s: HostileSession) => { addr: bigint; len?: number }][] = [
      ["address 0", () => ({ addr: 0n })],
      ["address 0xfff", () => ({ addr: 0xfffn })],
      ["address at the end of memory", (s) => ({ addr: memEnd(s) })],
      ["crossing the end of memory", (s) => ({ addr: memEnd(s) - 8n, len: 16 })],
      ["straddling two regions", (s) => ({ addr: regionBoundary(s) - 8n, len: 4096 })],
      ["address 2^63", () => ({ addr: 1n << 63n })],
      ["address wrapping 2^64", () => ({ addr: (1n << 64n) - 8n, len: 4096 })],
    ];
    for (const [label, at] of addrCases) {
      for (const which of [0, 2]) {
        out.push(
          chainCase(`${which === 0 ? "header" : "reply buffer"} ${label}`, indirect, (e, s) => {
            const a = at(s);
            e.descs[which] = set(e.descs[which]!, {
              addr: a.addr,
              ...(a.len === undefined ? {} : { len: a.len }),
            });
          }, REFUSED("address-out-of-range")),
        );
      }
    }
    // Buffers over the queue's own rings: the device writes its reply into the rings
    // it is walking. It must not be confused into touching anything else.
    const rings: [string, (s: HostileSession) => number][] = [
      ["the descriptor table", (s) => s.queues[1]!.rings.desc],
      ["the avail ring", (s) => s.queues[1]!.rings.avail],
      ["the used ring", (s) => s.queues[1]!.rings.used],
    ];
    for (const [label, at] of rings) {
      out.push({
        ...chainCase(`reply buffer over ${label}`, indirect, (e, s) => {
          e.descs[2] = set(e.descs[2]!, { addr: at(s), len: 64 });
        }, {
          outcomes: ["reply", "empty", "timeout", "queue-failed"],
          mayBreak: true,
          restart: true,
        }),
        // The pattern check does not apply: the buffer moved.
      });
      out.push(chainCase(`header read from ${label}`, indirect, (e, s) => {
        e.descs[0] = set(e.descs[0]!, { addr: at(s), len: 16 });
      }, {
        outcomes: ["reply", "empty", "timeout", "queue-failed"],
        mayBreak: true,
        restart: true,
      }));
    }
    out.push(chainCase("length 0xffffffff header", indirect, (e) => {
      e.descs[0] = set(e.descs[0]!, { len: 0xffffffff });
    }, REFUSED("address-out-of-range")));
    out.push(chainCase("length 0xffffffff reply buffer", indirect, (e) => {
      e.descs[2] = set(e.descs[2]!, { len: 0xffffffff });
    }, REFUSED("length-overflow|address-out-of-range")));
    out.push(chainCase("reply buffer longer than its region", indirect, (e, s) => {
      e.descs[2] = set(e.descs[2]!, { len: s.memory.regions[0]!.size + 1 });
    }, REFUSED("address-out-of-range")));
    out.push(chainCase("zero-length header descriptor", indirect, (e) => {
      e.descs[0] = set(e.descs[0]!, { len: 0 });
    }, { outcomes: ["reply", "empty"], serveErrno: [Errno.EINVAL] }));
    out.push(chainCase("zero-length reply buffer", indirect, (e) => {
      e.descs[2] = set(e.descs[2]!, { len: 0 });
    }, { outcomes: ["empty"] }));
    out.push(chainCase("reply buffer of 8 bytes", indirect, (e) => {
      e.descs[2] = set(e.descs[2]!, { len: 8 });
    }, { outcomes: ["empty"] }));
    out.push(chainCase("reply buffer of 100 bytes (GETATTR needs 120)", indirect, (e) => {
      e.descs[2] = set(e.descs[2]!, { len: 100 });
    }, { outcomes: ["empty", "reply"], serveErrno: [Errno.ERANGE] }));
    out.push(chainCase("every descriptor zero-length", indirect, (e) => {
      e.descs = e.descs.map((d) => set(d, { len: 0 }));
    }, { outcomes: ["empty"] }));
  }

  // Indirect tables themselves.
  const indirectHead = (
    name: string,
    patch: (s: HostileSession, head: RawDescriptor, table: number) => RawDescriptor,
    expect: Expect,
    extra?: (driver: SplitQueueDriver, s: HostileSession, table: number) => void,
  ): HostileCase => ({
    name: `indirect table: ${name}`,
    group: "indirect table",
    expect,
    run: async (s) => {
      const b = getattr(s);
      const outcome = await s.submit([b.subarray(0, 16), b.subarray(16)], 4096, {
        indirect: true,
        mutate: (driver, head, info) => {
          const d = readDesc(s, s.queues[1]!.rings.desc + DESC_SIZE * head);
          extra?.(driver, s, info.indirectTable!);
          driver.writeDescriptor(head, patch(s, d, info.indirectTable!));
        },
      });
      return { outcome, unique: uniqueOf(b) };
    },
  });
  out.push(indirectHead("INDIRECT with NEXT", (_s, d) => ({
    ...d,
    flags: DescFlags.INDIRECT | DescFlags.NEXT,
    next: 1,
  }), REFUSED("indirect-with-next")));
  for (const len of [0, 8, 17, 47]) {
    out.push(
      indirectHead(
        `table length ${len}`,
        (_s, d) => ({ ...d, len }),
        REFUSED("bad-indirect-length"),
      ),
    );
  }
  out.push(indirectHead("INDIRECT and WRITE", (_s, d) => ({
    ...d,
    flags: DescFlags.INDIRECT | DescFlags.WRITE,
  }), { outcomes: ["reply", "empty"] }));
  out.push(
    indirectHead(
      "table outside memory",
      (s, d) => ({ ...d, addr: memEnd(s) + 4096n }),
      REFUSED("address-out-of-range"),
    ),
  );
  out.push(indirectHead("table straddling two regions", (s, d) => ({
    ...d,
    addr: regionBoundary(s) - 16n,
  }), REFUSED("address-out-of-range")));
  out.push(indirectHead("table at address 2^64 - 16", (_s, d) => ({
    ...d,
    addr: (1n << 64n) - 16n,
  }), REFUSED("address-out-of-range")));
  out.push(indirectHead("table of 2^20 entries", (_s, d) => ({ ...d, len: 16 << 20 }), {
    outcomes: ["empty"],
  }));
  // Nested: the first table entry is itself indirect, pointing at a copy of the table.
  out.push(
    indirectHead(
      "indirect inside indirect",
      (_s, d) => d,
      REFUSED("nested-indirect"),
      (driver, s, table) => {
        const copy = s.memory.alloc(3 * DESC_SIZE, 16);
        s.memory.view(copy.addr, 48).set(s.memory.view(table, 48));
        driver.writeTable(table, [{
          addr: copy.addr,
          len: 48,
          flags: DescFlags.INDIRECT,
          next: 0,
        }]);
      },
    ),
  );
  out.push(
    indirectHead(
      "indirect inside indirect, self-referencing",
      (_s, d) => d,
      REFUSED("nested-indirect"),
      (driver, _s, table) => {
        driver.writeTable(table, [{ addr: table, len: 48, flags: DescFlags.INDIRECT, next: 0 }]);
      },
    ),
  );
  // Chains longer than the queue (64) through an indirect table: Linux writes up to
  // ~260 (a 1 MiB request) whatever the ring size, so 65 and 300 must be served;
  // 1025 and 4096 are more than any guest sends.
  for (const n of [65, 300, 1025, 4096]) {
    out.push({
      name: `indirect table: chain of ${n} descriptors (queue size 64)`,
      group: "indirect table",
      expect: n <= 300
        ? { outcomes: ["reply"], serveErrno: [0] }
        : { outcomes: ["empty"], chainReason: "chain-too-long" },
      run: async (s) => {
        const b = getattr(s);
        const outcome = await s.submit(b, 4096, {
          indirect: true,
          mutate: (driver, head, info) => {
            const table = s.memory.alloc(n * DESC_SIZE, 16);
            const r = info.readable[0]!;
            const w = info.writable[0]!;
            const entries: RawDescriptor[] = [];
            // The header, then 1-byte slices of the reply buffer, the last one the rest.
            entries.push({ addr: r.addr, len: r.len, flags: DescFlags.NEXT, next: 1 });
            for (let k = 1; k < n; k++) {
              entries.push({
                addr: BigInt(w.addr) + BigInt(k - 1),
                len: k < n - 1 ? 1 : w.len - (n - 2),
                flags: DescFlags.WRITE | (k < n - 1 ? DescFlags.NEXT : 0),
                next: k < n - 1 ? k + 1 : 0,
              });
            }
            driver.writeTable(table.addr, entries);
            driver.writeDescriptor(head, {
              addr: table.addr,
              len: n * DESC_SIZE,
              flags: DescFlags.INDIRECT,
              next: 0,
            });
          },
        });
        return { outcome, unique: uniqueOf(b) };
      },
    });
  }
  return out;
}

// ------------------------------------------------------------------ ring cases (hiprio)

function ringCases(): HostileCase[] {
  const out: HostileCase[] = [];
  for (const bad of [64, 65, 1000, 0xffff]) {
    out.push({
      name: `avail ring entry ${bad} (queue size 64) after a good request`,
      group: "ring",
      expect: { outcomes: ["reply"], chainReason: "head-out-of-range" },
      run: async (s) => {
        const b = getattr(s);
        const outcome = await s.submit(b, 4096, {
          queue: 0,
          mutate: (driver) => driver.pushAvail(bad),
        });
        return { outcome, unique: uniqueOf(b) };
      },
    });
  }
  for (const jump of [65, 1000, 0x8000, 0xffff]) {
    out.push({
      name: `avail idx jumps by ${jump}`,
      group: "ring",
      expect: { outcomes: ["timeout"], breaksQueue: true },
      run: async (s) => {
        const b = getattr(s);
        const outcome = await s.submit(b, 4096, {
          queue: 0,
          timeoutMs: 1500,
          kick: true,
          mutate: (driver) => driver.setAvailIdx(driver.availIdx + jump),
        });
        return { outcome, unique: uniqueOf(b) };
      },
    });
  }
  out.push({
    name: "head made available twice in one kick",
    group: "ring",
    // The device may serve it twice (used twice: our driver then gives up on the queue)
    // or refuse the second while the first is in flight.
    expect: { outcomes: ["reply", "queue-failed"], restart: true },
    run: async (s) => {
      const b = getattr(s);
      const outcome = await s.submit(b, 4096, {
        queue: 0,
        mutate: (driver, head) => driver.pushAvail(head),
      });
      return { outcome, unique: uniqueOf(b) };
    },
  });
  return out;
}

// ------------------------------------------------------------------ FUSE cases

/** A request built by hand on the request queue. */
function fuseCase(
  name: string,
  group: string,
  build: (s: HostileSession, unique: bigint) => Uint8Array | Uint8Array[],
  expect: Expect,
  options: { capacity?: number; queue?: number; preInit?: boolean } = {},
): HostileCase {
  return {
    name,
    group,
    expect,
    ...(options.preInit ? { preInit: true } : {}),
    run: async (s) => {
      const unique = s.unique();
      const outcome = await s.submit(build(s, unique), options.capacity ?? 65536, {
        queue: options.queue ?? 1,
      });
      return { outcome, unique };
    },
  };
}

function u32s(...v: number[]): Uint8Array {
  const b = new Uint8Array(4 * v.length);
  const dv = new DataView(b.buffer);
  v.forEach((x, i) => dv.setUint32(4 * i, x >>> 0, true));
  return b;
}

function u64s(...v: bigint[]): Uint8Array {
  const b = new Uint8Array(8 * v.length);
  const dv = new DataView(b.buffer);
  v.forEach((x, i) => dv.setBigUint64(8 * i, BigInt.asUintN(64, x), true));
  return b;
}

function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

const enc = new TextEncoder();
const z = (s: string) => enc.encode(s + "\0");

/** Re-encodes a well-formed request with a new unique. */
function withUnique(b: Uint8Array, unique: bigint): Uint8Array {
  const c = b.slice();
  new DataView(c.buffer).setBigUint64(8, unique, true);
  return c;
}

function headerLenCases(): HostileCase[] {
  const out: HostileCase[] = [];
  const bases: [string, (s: HostileSession) => Uint8Array][] = [
    ["GETATTR", getattr],
    ["LOOKUP", (s) => s.encode("LOOKUP", { names: ["file.txt"] })],
    ["STATFS", (s) => s.encode("STATFS")],
    ["WRITE", (s) =>
      s.encode("WRITE", {
        arg: { fh: 0n, offset: 0n, size: 5, "write_flags": 0, "lock_owner": 0n, flags: 0 },
        data: enc.encode("hello"),
      }, s.fixture.file)],
  ];
  const lies: [string, (n: number) => number][] = [
    ["0", () => 0],
    ["1", () => 1],
    ["39", () => 39],
    ["40 (header only)", () => 40],
    ["one short", (n) => n - 1],
    ["8 short", (n) => n - 8],
    ["one long", (n) => n + 1],
    ["4 KiB long", (n) => n + 4096],
    ["0xffffffff", () => 0xffffffff],
  ];
  for (const [op, build] of bases) {
    for (const [label, len] of lies) {
      if (op === "STATFS" && label.startsWith("40")) continue; // its true length
      out.push(fuseCase(
        `${op}: fuse_in_header.len ${label}`,
        "header len lies",
        (s, unique) => {
          const b = withUnique(build(s), unique);
          const dv = new DataView(b.buffer);
          dv.setUint32(0, len(b.byteLength) >>> 0, true);
          return b;
        },
        { outcomes: ["reply", "empty"], serveErrno: [Errno.EINVAL], requestMalformed: true },
      ));
    }
  }
  // Shorter than the header itself.
  for (const n of [0, 1, 16, 39]) {
    out.push(fuseCase(
      `request of ${n} bytes`,
      "header len lies",
      (_s, unique) =>
        rawRequest(Opcode.GETATTR, unique, 1n, new Uint8Array(16)).subarray(0, n || 1),
      { outcomes: ["reply", "empty"], serveErrno: [Errno.EINVAL], requestMalformed: true },
    ));
  }
  return out;
}

function unknownOpcodeCases(): HostileCase[] {
  return [0, 60, 100, 4095, 4097, 0x7fffffff, 0xffffffff].map((opcode) =>
    fuseCase(
      `unknown opcode ${opcode}`,
      "unknown opcode",
      (_s, unique) => rawRequest(opcode, unique, 1n, new Uint8Array(16)),
      { outcomes: ["reply"], serveErrno: [Errno.ENOSYS, Errno.EINVAL], requestMalformed: true },
    )
  );
}

/** Every opcode with arguments, cut to nothing and to half (header len consistent). */
function truncatedCases(): HostileCase[] {
  const out: HostileCase[] = [];
  const samples = fuseSamples({ minor: 38, flags: 0n });
  const skip = new Set<number>([Opcode.INIT, Opcode.DESTROY, Opcode.CUSE_INIT]);
  const seen = new Set<number>();
  for (const sample of samples) {
    if (skip.has(sample.op.opcode) || seen.has(sample.op.opcode)) continue;
    seen.add(sample.op.opcode);
    const full = encodeRequest(sample.request, new FuseSession({ minor: 38 }));
    const body = full.byteLength - 40;
    if (body === 0) continue;
    const noReply = sample.op.reply.kind === "none";
    for (const [label, keep] of [["no arguments", 0], ["half the arguments", body >> 1]] as const) {
      if (label === "half the arguments" && keep === 0) continue;
      out.push(fuseCase(
        `${sample.op.name}: ${label} (${keep} of ${body} bytes)`,
        "truncated",
        (_s, unique) => {
          const b = withUnique(full.subarray(0, 40 + keep), unique);
          const dv = new DataView(b.buffer);
          dv.setUint32(0, b.byteLength, true);
          // Out of the way of the fixture nodes: an unknown node id.
          dv.setBigUint64(16, 0xdead_0000n + BigInt(sample.op.opcode), true);
          return b;
        },
        noReply
          ? { outcomes: ["empty", "reply"] }
          : { outcomes: ["reply"], serveErrno: [Errno.EINVAL] },
        { queue: noReply ? 0 : 1 },
      ));
    }
  }
  return out;
}

/** Names without NUL, with '/', '..', empty, too long, for every op that takes one. */
function nameCases(): HostileCase[] {
  const out: HostileCase[] = [];
  const variants: [string, Uint8Array, readonly number[] | undefined][] = [
    ["without NUL", enc.encode("noterm"), [Errno.EINVAL]],
    ["with '/'", z("sub/../../escape"), [Errno.EINVAL, Errno.ENOENT, Errno.EPERM]],
    ["'..'", z(".."), undefined],
    ["'/'", z("/"), [Errno.EINVAL, Errno.ENOENT, Errno.EPERM]],
    ["empty", z(""), [Errno.EINVAL, Errno.ENOENT]],
    ["of 300 bytes", z("n".repeat(300)), [Errno.ENAMETOOLONG, Errno.EINVAL, Errno.ENOENT]],
    ["of 5000 bytes", z("n".repeat(5000)), [Errno.ENAMETOOLONG, Errno.EINVAL, Errno.ENOENT]],
  ];
  // op → how its body is made from a name.
  const ops: [OpcodeName, (n: Uint8Array, s: HostileSession) => Uint8Array, bigint | "dir"][] = [
    ["LOOKUP", (n) => n, 1n],
    ["MKDIR", (n) => cat(u32s(0o755, 0o022), n), "dir"],
    ["MKNOD", (n) => cat(u32s(0o100644, 0, 0o022, 0), n), "dir"],
    ["CREATE", (n) => cat(u32s(0o100 /* O_CREAT */ | 2, 0o644, 0o022, 0), n), "dir"],
    ["UNLINK", (n) => n, "dir"],
    ["RMDIR", (n) => n, "dir"],
    ["SYMLINK", (n) => cat(n, z("target")), "dir"],
    ["RENAME", (n, s) => cat(u64s(s.fixture.dir), n, z("renamed")), "dir"],
    ["LINK", (n, s) => cat(u64s(s.fixture.file), n), "dir"],
    ["GETXATTR", (n) => cat(u32s(256, 0), n), 1n],
    ["REMOVEXATTR", (n) => n, "dir"],
  ];
  for (const [op, body, node] of ops) {
    for (const [label, name, errno] of variants) {
      // '..' is a valid lookup (of the shared directory itself at the root).
      const expect: Expect = op === "LOOKUP" && label === "'..'"
        ? { outcomes: ["reply"] }
        : errno === undefined
        ? ERROR_REPLY()
        : ERROR_REPLY(errno);
      out.push(fuseCase(
        `${op} name ${label}`,
        "names",
        (s, unique) =>
          rawRequest(Opcode[op], unique, node === "dir" ? s.fixture.dir : node, body(name, s)),
        op === "GETXATTR" || op === "REMOVEXATTR" ? { outcomes: ["reply"] } : expect,
      ));
    }
  }
  return out;
}

function xattrCases(): HostileCase[] {
  const out: HostileCase[] = [];
  // SETXATTR (pre-SETXATTR_EXT layout): size, flags, name, value.
  const setx = (size: number, value: Uint8Array) => (s: HostileSession, u: bigint) =>
    rawRequest(Opcode.SETXATTR, u, s.fixture.file, cat(u32s(size, 0), z("user.hostile"), value));
  out.push(
    fuseCase(
      "SETXATTR size larger than the value",
      "xattr sizes",
      setx(4096, enc.encode("abc")),
      ERROR_REPLY([Errno.EINVAL]),
    ),
  );
  out.push(
    fuseCase(
      "SETXATTR size 0xffffffff",
      "xattr sizes",
      setx(0xffffffff, enc.encode("abc")),
      ERROR_REPLY([Errno.EINVAL]),
    ),
  );
  out.push(
    fuseCase(
      "SETXATTR size smaller than the value",
      "xattr sizes",
      setx(1, enc.encode("abcdef")),
      ANY_REPLY,
    ),
  );
  out.push(
    fuseCase(
      "SETXATTR value without a name terminator",
      "xattr sizes",
      (s, u) =>
        rawRequest(Opcode.SETXATTR, u, s.fixture.file, cat(u32s(3, 0), enc.encode("user.x"))),
      ERROR_REPLY([Errno.EINVAL]),
    ),
  );
  // GETXATTR / LISTXATTR asking for more than the reply buffer holds.
  for (const [size, cap] of [[65536, 64], [0xffffffff, 4096], [1, 4096], [0, 4096]] as const) {
    out.push(
      fuseCase(
        `GETXATTR size ${size} with ${cap} bytes of reply room`,
        "xattr sizes",
        (s, u) =>
          rawRequest(Opcode.GETXATTR, u, s.fixture.file, cat(u32s(size, 0), z("user.none"))),
        {
          outcomes: ["reply", "empty"],
        },
        { capacity: cap },
      ),
    );
    out.push(
      fuseCase(
        `LISTXATTR size ${size} with ${cap} bytes of reply room`,
        "xattr sizes",
        (s, u) => rawRequest(Opcode.LISTXATTR, u, s.fixture.file, u32s(size, 0)),
        {
          outcomes: ["reply", "empty"],
        },
        { capacity: cap },
      ),
    );
  }
  return out;
}

/** fuse_read_in: fh, offset, size, read_flags, lock_owner, flags, padding. */
function readIn(fh: bigint, offset: bigint, size: number): Uint8Array {
  return cat(u64s(fh, offset), u32s(size, 0), u64s(0n), u32s(0, 0));
}

/** fuse_write_in: fh, offset, size, write_flags, lock_owner, flags, padding. */
function writeIn(fh: bigint, offset: bigint, size: number): Uint8Array {
  return cat(u64s(fh, offset), u32s(size, 0), u64s(0n), u32s(0, 0));
}

/** Opens file.txt (read-write) or sub/ and returns the fh. */
async function open(s: HostileSession, dir: boolean): Promise<bigint> {
  const u = s.unique();
  const b = rawRequest(
    dir ? Opcode.OPENDIR : Opcode.OPEN,
    u,
    dir ? s.fixture.dir : s.fixture.file,
    u32s(dir ? 0 : 2, 0),
  );
  const r = await s.submitRaw(b, 4096);
  if (r.outcome.kind !== "reply" || r.outcome.error !== 0 || r.bytes === undefined) {
    throw new Error(
      `OPEN: ${JSON.stringify(r.outcome, (_k, v) => typeof v === "bigint" ? `${v}` : v)}`,
    );
  }
  return new DataView(r.bytes.buffer, r.bytes.byteOffset).getBigUint64(16, true);
}

async function release(s: HostileSession, fh: bigint, dir: boolean): Promise<void> {
  const b = rawRequest(
    dir ? Opcode.RELEASEDIR : Opcode.RELEASE,
    s.unique(),
    dir ? s.fixture.dir : s.fixture.file,
    cat(u64s(fh), u32s(0, 0), u64s(0n)),
  );
  await s.submit(b, 4096);
}

function sizeCases(): HostileCase[] {
  const out: HostileCase[] = [];
  const withFile = (
    name: string,
    build: (s: HostileSession, u: bigint, fh: bigint) => Uint8Array,
    expect: Expect,
    capacity = 65536,
  ): HostileCase => ({
    name,
    group: "read/write sizes",
    expect,
    run: async (s) => {
      const fh = await open(s, false);
      const unique = s.unique();
      const outcome = await s.submit(build(s, unique, fh), capacity);
      await release(s, fh, false);
      return { outcome, unique };
    },
  });
  for (
    const [size, cap] of [
      [1 << 20, 65536],
      [1 << 24, 4096],
      [0x7fffffff, 4096],
      [0xffffffff, 4096],
      [4096, 20],
    ] as const
  ) {
    out.push(
      withFile(
        `READ size ${size} with ${cap} bytes of reply room`,
        (s, u, fh) => rawRequest(Opcode.READ, u, s.fixture.file, readIn(fh, 0n, size)),
        {
          outcomes: ["reply", "empty"],
        },
        cap,
      ),
    );
  }
  out.push(
    withFile(
      "READ at offset 2^63 - 1",
      (s, u, fh) => rawRequest(Opcode.READ, u, s.fixture.file, readIn(fh, (1n << 63n) - 1n, 4096)),
      ANY_REPLY,
    ),
  );
  out.push(
    withFile(
      "READ at offset 2^64 - 1",
      (s, u, fh) => rawRequest(Opcode.READ, u, s.fixture.file, readIn(fh, (1n << 64n) - 1n, 4096)),
      ANY_REPLY,
    ),
  );
  out.push(
    withFile(
      "WRITE size larger than the data",
      (s, u, fh) =>
        rawRequest(Opcode.WRITE, u, s.fixture.file, cat(writeIn(fh, 0n, 4096), enc.encode("abc"))),
      ERROR_REPLY([Errno.EINVAL]),
    ),
  );
  out.push(
    withFile("WRITE size 0xffffffff", (s, u, fh) =>
      rawRequest(
        Opcode.WRITE,
        u,
        s.fixture.file,
        cat(writeIn(fh, 0n, 0xffffffff), enc.encode("abc")),
      ), ERROR_REPLY([Errno.EINVAL])),
  );
  out.push(
    withFile(
      "WRITE size smaller than the data",
      (s, u, fh) =>
        rawRequest(Opcode.WRITE, u, s.fixture.file, cat(writeIn(fh, 0n, 1), enc.encode("abcdef"))),
      ANY_REPLY,
    ),
  );
  out.push(
    withFile("WRITE of 2 MiB (over max_write)", (s, u, fh) =>
      rawRequest(
        Opcode.WRITE,
        u,
        s.fixture.file,
        cat(writeIn(fh, 0n, 2 << 20), new Uint8Array(2 << 20)),
      ), ANY_REPLY),
  );
  out.push(
    withFile("WRITE at offset 2^63 - 2", (s, u, fh) =>
      rawRequest(
        Opcode.WRITE,
        u,
        s.fixture.file,
        cat(writeIn(fh, (1n << 63n) - 2n, 3), enc.encode("abc")),
      ), ERROR_REPLY()),
  );
  return out;
}

function forgetCases(): HostileCase[] {
  const out: HostileCase[] = [];
  const hiprio: Expect = { outcomes: ["empty", "reply"] };
  const batch = (count: number, items: [bigint, bigint][]) => (_s: HostileSession, u: bigint) =>
    rawRequest(
      Opcode.BATCH_FORGET,
      u,
      0n,
      cat(u32s(count, 0), ...items.map(([n, l]) => u64s(n, l))),
    );
  out.push(
    fuseCase(
      "BATCH_FORGET count 1000 with one item",
      "forget",
      batch(1000, [[0x1234n, 1n]]),
      hiprio,
      { queue: 0 },
    ),
  );
  out.push(
    fuseCase(
      "BATCH_FORGET count 0xffffffff with one item",
      "forget",
      batch(0xffffffff, [[0x1234n, 1n]]),
      hiprio,
      { queue: 0 },
    ),
  );
  out.push(
    fuseCase(
      "BATCH_FORGET count 0 with two items",
      "forget",
      batch(0, [[0x1234n, 1n], [0x1235n, 1n]]),
      hiprio,
      { queue: 0 },
    ),
  );
  out.push(
    fuseCase(
      "BATCH_FORGET half an item",
      "forget",
      (_s, u) => rawRequest(Opcode.BATCH_FORGET, u, 0n, cat(u32s(1, 0), u64s(0x1234n))),
      hiprio,
      { queue: 0 },
    ),
  );
  out.push(
    fuseCase(
      "BATCH_FORGET of unknown nodes",
      "forget",
      batch(3, [[0xdeadn, 1n], [0n, 5n], [(1n << 64n) - 1n, (1n << 64n) - 1n]]),
      hiprio,
      { queue: 0 },
    ),
  );
  out.push(
    fuseCase(
      "BATCH_FORGET of the root, nlookup 2^64 - 1",
      "forget",
      batch(1, [[1n, (1n << 64n) - 1n]]),
      hiprio,
      { queue: 0 },
    ),
  );
  for (const node of [0n, 0xdeadbeefn, (1n << 64n) - 1n]) {
    out.push(
      fuseCase(
        `FORGET of unknown node ${node}`,
        "forget",
        (_s, u) => rawRequest(Opcode.FORGET, u, node, u64s(1n)),
        hiprio,
        { queue: 0 },
      ),
    );
  }
  out.push(
    fuseCase(
      "FORGET of the root, nlookup 2^64 - 1",
      "forget",
      (_s, u) => rawRequest(Opcode.FORGET, u, 1n, u64s((1n << 64n) - 1n)),
      hiprio,
      { queue: 0 },
    ),
  );
  out.push(
    fuseCase(
      "FORGET on the request queue",
      "forget",
      (_s, u) => rawRequest(Opcode.FORGET, u, 0xdeadn, u64s(1n)),
      hiprio,
    ),
  );
  return out;
}

function handleCases(): HostileCase[] {
  const out: HostileCase[] = [];
  const released = (
    name: string,
    dir: boolean,
    build: (s: HostileSession, u: bigint, fh: bigint) => Uint8Array,
    expect: Expect,
  ): HostileCase => ({
    name,
    group: "released handles",
    expect,
    run: async (s) => {
      const fh = await open(s, dir);
      await release(s, fh, dir);
      const unique = s.unique();
      const outcome = await s.submit(build(s, unique, fh), 65536);
      return { outcome, unique };
    },
  });
  const ebadf = ERROR_REPLY([Errno.EBADF]);
  out.push(
    released(
      "READ on a released handle",
      false,
      (s, u, fh) => rawRequest(Opcode.READ, u, s.fixture.file, readIn(fh, 0n, 100)),
      ebadf,
    ),
  );
  out.push(
    released(
      "WRITE on a released handle",
      false,
      (s, u, fh) =>
        rawRequest(Opcode.WRITE, u, s.fixture.file, cat(writeIn(fh, 0n, 3), enc.encode("abc"))),
      ebadf,
    ),
  );
  out.push(
    released(
      "FLUSH on a released handle",
      false,
      (s, u, fh) =>
        rawRequest(Opcode.FLUSH, u, s.fixture.file, cat(u64s(fh), u32s(0, 0), u64s(0n))),
      {
        outcomes: ["reply"],
      },
    ),
  );
  out.push(
    released(
      "FSYNC on a released handle",
      false,
      (s, u, fh) => rawRequest(Opcode.FSYNC, u, s.fixture.file, cat(u64s(fh), u32s(0, 0))),
      ebadf,
    ),
  );
  out.push(
    released(
      "RELEASE twice",
      false,
      (s, u, fh) =>
        rawRequest(Opcode.RELEASE, u, s.fixture.file, cat(u64s(fh), u32s(0, 0), u64s(0n))),
      {
        outcomes: ["reply"],
      },
    ),
  );
  out.push(
    released(
      "READDIR on a released handle",
      true,
      (s, u, fh) => rawRequest(Opcode.READDIR, u, s.fixture.dir, readIn(fh, 0n, 4096)),
      ebadf,
    ),
  );
  out.push(
    released(
      "READDIRPLUS on a released handle",
      true,
      (s, u, fh) => rawRequest(Opcode.READDIRPLUS, u, s.fixture.dir, readIn(fh, 0n, 4096)),
      ebadf,
    ),
  );
  out.push(
    released(
      "RELEASEDIR twice",
      true,
      (s, u, fh) =>
        rawRequest(Opcode.RELEASEDIR, u, s.fixture.dir, cat(u64s(fh), u32s(0, 0), u64s(0n))),
      {
        outcomes: ["reply"],
      },
    ),
  );
  out.push(
    released(
      "READ with a directory handle",
      true,
      (s, u, fh) => rawRequest(Opcode.READ, u, s.fixture.file, readIn(fh, 0n, 100)),
      ERROR_REPLY(),
    ),
  );
  for (const fh of [0n, 0xdeadbeefn, (1n << 64n) - 1n]) {
    out.push(
      fuseCase(
        `READ on never-opened handle ${fh}`,
        "released handles",
        (s, u) => rawRequest(Opcode.READ, u, s.fixture.file, readIn(fh, 0n, 100)),
        ERROR_REPLY(),
      ),
    );
  }
  return out;
}

function sessionCases(): HostileCase[] {
  const out: HostileCase[] = [];
  for (const op of ["GETATTR", "LOOKUP", "STATFS"] as const) {
    out.push(
      fuseCase(
        `${op} before INIT`,
        "session",
        (_s, u) =>
          op === "GETATTR"
            ? rawRequest(Opcode.GETATTR, u, 1n, cat(u32s(0, 0), u64s(0n)))
            : op === "LOOKUP"
            ? rawRequest(Opcode.LOOKUP, u, 1n, z("file.txt"))
            : rawRequest(Opcode.STATFS, u, 1n, new Uint8Array(0)),
        ERROR_REPLY([Errno.EIO]),
        { preInit: true },
      ),
    );
  }
  const init = (minor: number, major = 7) => (_s: HostileSession, u: bigint) =>
    rawRequest(
      Opcode.INIT,
      u,
      0n,
      cat(u32s(major, minor, 131072, 0), u32s(0, ...new Array(11).fill(0))),
    );
  out.push(fuseCase("a second INIT", "session", init(38), ERROR_REPLY([Errno.EIO])));
  out.push(
    fuseCase(
      "a second INIT, major 8",
      "session",
      init(0, 8),
      ERROR_REPLY([Errno.EIO, Errno.EINVAL]),
    ),
  );
  out.push(
    fuseCase(
      "CUSE_INIT on a FUSE device",
      "session",
      (_s, u) => rawRequest(Opcode.CUSE_INIT, u, 0n, u32s(7, 38, 0, 0, ...new Array(8).fill(0))),
      ERROR_REPLY(),
    ),
  );
  out.push({
    name: "DESTROY, then INIT again (a remount on the same device)",
    group: "session",
    expect: { outcomes: ["reply"], serveErrno: [0], restart: true },
    run: async (s) => {
      const d = await s.submit(rawRequest(Opcode.DESTROY, s.unique(), 0n, new Uint8Array(0)), 4096);
      if (d.kind !== "reply" || d.error !== 0) return { outcome: d };
      const unique = s.unique();
      const outcome = await s.submit(init(38)(s, unique), 4096);
      return { outcome, unique };
    },
  });
  out.push({
    name: "two requests with the same unique in one kick",
    group: "session",
    expect: { outcomes: ["reply"], serveErrno: [0] },
    run: async (s) => {
      const b = getattr(s);
      const [one, two] = await Promise.all([s.submit(b, 4096), s.submit(b.slice(), 4096)]);
      const outcome = one.kind === "reply" && one.error === 0 ? two : one;
      return { outcome, unique: uniqueOf(b) };
    },
  });
  out.push({
    name: "GETATTR with unique 0 (the notification id)",
    group: "session",
    // A reply would read as a notification: the chain comes back empty.
    expect: { outcomes: ["empty"] },
    run: async (s) => ({
      outcome: await s.submit(rawRequest(Opcode.GETATTR, 0n, 1n, cat(u32s(0, 0), u64s(0n))), 4096),
      unique: 0n,
    }),
  });
  return out;
}

/** The whole corpus, in the order it runs. */
export function hostileCases(): HostileCase[] {
  const all = [
    ...sessionCases(),
    ...chainCases(),
    ...headerLenCases(),
    ...unknownOpcodeCases(),
    ...truncatedCases(),
    ...nameCases(),
    ...xattrCases(),
    ...sizeCases(),
    ...handleCases(),
    ...forgetCases(),
    ...ringCases(),
  ];
  const names = new Set<string>();
  for (const c of all) {
    if (names.has(c.name)) throw new Error(`duplicate hostile case name ${c.name}`);
    names.add(c.name);
  }
  return all;
}
