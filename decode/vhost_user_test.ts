import assert from "node:assert/strict";
import { DecodeError, EncodeError } from "./struct.ts";
import {
  decodeMessage,
  decodeVirtioFsConfig,
  encodeMessage,
  encodeVirtioFsConfig,
  expectedFds,
  formatMessage,
  lookupMessage,
  messageLength,
  parseHeader,
  VHOST_USER_BACKEND_MESSAGES,
  VHOST_USER_FRONTEND_MESSAGES,
  VHOST_USER_FRONTEND_REQUEST_NAMES,
  VHOST_USER_FS_DAX_BACKEND_MESSAGES,
  VHOST_USER_HEADER_SIZE,
  VHOST_USER_MAX_FDS,
  VHOST_USER_MAX_PAYLOAD,
  VHOST_USER_PROTOCOL_F,
  VHOST_USER_PROTOCOL_FEATURES,
  VIRTIO_FEATURES,
  VIRTIO_FS_FEATURES,
  vringIndexPayload,
} from "./vhost_user.ts";
import { allSamples, sampleRegion } from "./_vhost_user_samples.ts";

/** Header + payload, built by hand so malformed messages are possible. */
function raw(request: number, flags: number, payload: Uint8Array, size = payload.byteLength) {
  const out = new Uint8Array(VHOST_USER_HEADER_SIZE + payload.byteLength);
  const v = new DataView(out.buffer);
  v.setUint32(0, request, true);
  v.setUint32(4, flags, true);
  v.setUint32(8, size, true);
  out.set(payload, VHOST_USER_HEADER_SIZE);
  return out;
}

function u64le(...values: bigint[]): Uint8Array {
  const out = new Uint8Array(8 * values.length);
  values.forEach((x, i) => new DataView(out.buffer).setBigUint64(8 * i, x, true));
  return out;
}

function u32le(...values: number[]): Uint8Array {
  const out = new Uint8Array(4 * values.length);
  values.forEach((x, i) => new DataView(out.buffer).setUint32(4 * i, x, true));
  return out;
}

function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

const FE = { channel: "frontend" } as const;

Deno.test("vhost-user tables: every message of the current spec, by number and name", () => {
  const frontend: Record<string, number> = {
    GET_FEATURES: 1,
    SET_FEATURES: 2,
    SET_OWNER: 3,
    RESET_OWNER: 4,
    SET_MEM_TABLE: 5,
    SET_LOG_BASE: 6,
    SET_LOG_FD: 7,
    SET_VRING_NUM: 8,
    SET_VRING_ADDR: 9,
    SET_VRING_BASE: 10,
    GET_VRING_BASE: 11,
    SET_VRING_KICK: 12,
    SET_VRING_CALL: 13,
    SET_VRING_ERR: 14,
    GET_PROTOCOL_FEATURES: 15,
    SET_PROTOCOL_FEATURES: 16,
    GET_QUEUE_NUM: 17,
    SET_VRING_ENABLE: 18,
    SEND_RARP: 19,
    NET_SET_MTU: 20,
    SET_BACKEND_REQ_FD: 21,
    IOTLB_MSG: 22,
    SET_VRING_ENDIAN: 23,
    GET_CONFIG: 24,
    SET_CONFIG: 25,
    CREATE_CRYPTO_SESSION: 26,
    CLOSE_CRYPTO_SESSION: 27,
    POSTCOPY_ADVISE: 28,
    POSTCOPY_LISTEN: 29,
    POSTCOPY_END: 30,
    GET_INFLIGHT_FD: 31,
    SET_INFLIGHT_FD: 32,
    GPU_SET_SOCKET: 33,
    RESET_DEVICE: 34,
    VRING_KICK: 35,
    GET_MAX_MEM_SLOTS: 36,
    ADD_MEM_REG: 37,
    REM_MEM_REG: 38,
    SET_STATUS: 39,
    GET_STATUS: 40,
    GET_SHARED_OBJECT: 41,
    SET_DEVICE_STATE_FD: 42,
    CHECK_DEVICE_STATE: 43,
    GET_SHMEM_CONFIG: 44,
    GET_VRING_BASE_SKIP_DRAIN: 45,
  };
  assert.equal(VHOST_USER_FRONTEND_MESSAGES.size, Object.keys(frontend).length);
  for (const [name, n] of Object.entries(frontend)) {
    assert.equal(VHOST_USER_FRONTEND_MESSAGES.get(n)?.name, name);
    assert.equal(lookupMessage("frontend", `VHOST_USER_${name}`)?.request, n);
  }
  assert.equal(VHOST_USER_FRONTEND_REQUEST_NAMES.format(21), "SET_BACKEND_REQ_FD");
  assert.equal(lookupMessage("frontend", "SET_SLAVE_REQ_FD")?.request, 21);

  const backend: Record<string, number> = {
    BACKEND_IOTLB_MSG: 1,
    BACKEND_CONFIG_CHANGE_MSG: 2,
    BACKEND_VRING_HOST_NOTIFIER_MSG: 3,
    BACKEND_VRING_CALL: 4,
    BACKEND_VRING_ERR: 5,
    BACKEND_SHARED_OBJECT_ADD: 6,
    BACKEND_SHARED_OBJECT_REMOVE: 7,
    BACKEND_SHARED_OBJECT_LOOKUP: 8,
    BACKEND_SHMEM_MAP: 9,
    BACKEND_SHMEM_UNMAP: 10,
  };
  assert.equal(VHOST_USER_BACKEND_MESSAGES.size, Object.keys(backend).length);
  for (const [name, n] of Object.entries(backend)) {
    assert.equal(VHOST_USER_BACKEND_MESSAGES.get(n)?.name, name);
  }
  assert.equal(lookupMessage("backend", "VHOST_USER_SLAVE_IOTLB_MSG")?.request, 1);
  const dax = { BACKEND_FS_MAP: 6, BACKEND_FS_UNMAP: 7, BACKEND_FS_SYNC: 8, BACKEND_FS_IO: 9 };
  for (const [name, n] of Object.entries(dax)) {
    assert.equal(VHOST_USER_FS_DAX_BACKEND_MESSAGES.get(n)?.name, name);
    assert.equal(lookupMessage("backend", n, "virtio-fs-dax")?.name, name);
    assert.equal(lookupMessage("backend", name.replace("BACKEND_", "SLAVE_"))?.request, n);
  }
  assert.equal(lookupMessage("backend", 6)?.name, "BACKEND_SHARED_OBJECT_ADD");
  assert.equal(lookupMessage("frontend", 0), undefined);
  assert.equal(lookupMessage("frontend", "NO_SUCH_MESSAGE"), undefined);
});

Deno.test("vhost-user round trip: every form of every message, requests and replies", () => {
  const samples = allSamples();
  const covered = new Set<string>();
  for (const s of samples) {
    const input = {
      channel: s.channel,
      request: s.spec.name,
      isReply: s.isReply,
      payload: s.payload,
    };
    const bytes = encodeMessage(input);
    const label = `${s.spec.name} ${s.isReply ? "reply" : "request"} ${s.form.payload}`;
    const m = decodeMessage(bytes, s.fdCount, { channel: s.channel, dialect: s.dialect });
    assert.equal(m.name, s.spec.name, label);
    assert.equal(m.request, s.spec.request, label);
    assert.equal(m.isReply, s.isReply, label);
    assert.equal(m.size, bytes.byteLength - VHOST_USER_HEADER_SIZE, label);
    assert.equal(m.form, s.form, label);
    assert.deepEqual(m.payload, s.payload, label);
    assert.equal(m.fds.ok, true, label);
    // The decoded message re-encodes to the same bytes, by number too.
    assert.deepEqual(encodeMessage(m), bytes, label);
    assert.deepEqual(
      encodeMessage({ ...input, request: s.spec.request, dialect: s.dialect }),
      bytes,
    );
    covered.add(`${s.channel}/${s.spec.dialect ?? ""}/${s.spec.name}/${s.isReply}`);
  }
  // Both sides of every entry of all three tables were exercised.
  const entries = [
    ...VHOST_USER_FRONTEND_MESSAGES.values(),
    ...VHOST_USER_BACKEND_MESSAGES.values(),
    ...VHOST_USER_FS_DAX_BACKEND_MESSAGES.values(),
  ];
  assert.equal(covered.size, entries.length * 2);
  assert.ok(samples.length > 120, `${samples.length} samples`);
});

Deno.test("vhost-user: the same number decodes differently as request and as reply", () => {
  const req = decodeMessage(encodeMessage({ channel: "frontend", request: 1 }), 0, FE);
  assert.deepEqual(req.payload, { kind: "empty" });
  const rep = decodeMessage(raw(1, 0x5, u64le(0x1_7500_0000n)), 0, FE);
  assert.equal(rep.isReply, true);
  assert.deepEqual(rep.payload, { kind: "u64", value: 0x1_7500_0000n });
  assert.match(formatMessage(rep), /^GET_FEATURES reply VIRTIO_F_NOTIFY_ON_EMPTY\|/);

  // POSTCOPY_ADVISE: the reply carries the userfaultfd, the request nothing.
  assert.equal(decodeMessage(raw(28, 0x1, new Uint8Array(0)), 0, FE).fds.max, 0);
  assert.equal(decodeMessage(raw(28, 0x5, new Uint8Array(0)), 1, FE).fds.min, 1);

  // A REPLY_ACK to a message that has no reply of its own is a u64.
  const ack = decodeMessage(raw(13, 0x5, u64le(0n)), 0, FE);
  assert.equal(ack.name, "SET_VRING_CALL");
  assert.deepEqual(ack.payload, { kind: "u64", value: 0n });
  assert.equal(ack.form.note, "REPLY_ACK: 0 is success");
});

Deno.test("vhost-user: SET_MEM_TABLE with two regions and two fds, as QEMU sends it", () => {
  const payload = cat(
    u32le(2, 0),
    u64le(0n, 0x8000_0000n, 0x7f12_3400_0000n, 0n),
    u64le(0x1_0000_0000n, 0x4000_0000n, 0x7f12_b400_0000n, 0x8000_0000n),
  );
  const bytes = raw(5, 0x9, payload);
  assert.equal(bytes.byteLength, 12 + 8 + 2 * 32);
  const m = decodeMessage(bytes, 2, FE);
  assert.equal(m.name, "SET_MEM_TABLE");
  assert.equal(m.needReply, true);
  assert.deepEqual(m.fds, { count: 2, min: 2, max: 2, rule: "one per region (2)", ok: true });
  assert.deepEqual(m.payload, {
    kind: "memory_table",
    xen: false,
    padding: 0,
    regions: [
      {
        guestPhysAddr: 0n,
        memorySize: 0x8000_0000n,
        userspaceAddr: 0x7f12_3400_0000n,
        mmapOffset: 0n,
      },
      {
        guestPhysAddr: 0x1_0000_0000n,
        memorySize: 0x4000_0000n,
        userspaceAddr: 0x7f12_b400_0000n,
        mmapOffset: 0x8000_0000n,
      },
    ],
  });
  assert.deepEqual(encodeMessage(m), bytes);
  assert.match(formatMessage(m), /SET_MEM_TABLE request NEED_REPLY fds=2 nregions=2 \[0\]/);
  // The REPLY_ACK that follows.
  assert.equal(decodeMessage(raw(5, 0x5, u64le(0n)), 0, FE).payload.kind, "u64");
  // The postcopy ack QEMU sends after the back-end's reply: 8 bytes, no fds.
  const pcAck = decodeMessage(raw(5, 0x1, u64le(0n)), 0, FE);
  assert.deepEqual(pcAck.payload, { kind: "memory_table", regions: [], xen: false, padding: 0 });
  // Xen regions are 40 bytes; nregions and the size tell which.
  const xen = encodeMessage({
    channel: "frontend",
    request: "SET_MEM_TABLE",
    payload: {
      kind: "memory_table",
      xen: true,
      regions: [sampleRegion(0, true), sampleRegion(1, true)],
    },
  });
  assert.equal(xen.byteLength, 12 + 8 + 2 * 40);
  const xm = decodeMessage(xen, 2, FE);
  assert.equal(xm.payload.kind === "memory_table" && xm.payload.regions[1]?.domid, 8);
});

Deno.test("vhost-user: SET_VRING_KICK/CALL/ERR fds follow the NOFD bit", () => {
  const withFd = encodeMessage({ ...FE, request: "SET_VRING_KICK", payload: vringIndexPayload(5) });
  assert.equal(decodeMessage(withFd, 1, FE).fds.rule, "one (NOFD clear)");
  assert.throws(() => decodeMessage(withFd, 0, FE), /came with 0 fds, expected one/);
  const noFd = encodeMessage({
    ...FE,
    request: "SET_VRING_CALL",
    payload: vringIndexPayload(5, true),
  });
  const m = decodeMessage(noFd, 0, FE);
  assert.deepEqual(m.payload, { kind: "vring_index", value: 0x105n, index: 5, noFd: true });
  assert.equal(formatMessage(m), "SET_VRING_CALL request 5|NOFD");
  assert.throws(() => decodeMessage(noFd, 1, FE), /came with 1 fds, expected none \(NOFD set\)/);
  assert.deepEqual(expectedFds({ ...FE, request: 14, payload: vringIndexPayload(0) }), {
    min: 1,
    max: 1,
    rule: "one (NOFD clear)",
  });
  assert.throws(() => vringIndexPayload(256), EncodeError);
});

Deno.test("vhost-user feature names: the C virtiofsd (QEMU 7.2) negotiation", () => {
  // libvhost-user 7.2 offers these, plus PAGEFAULT when userfaultfd works.
  const offered = 0x8c2bn;
  assert.deepEqual(VHOST_USER_PROTOCOL_FEATURES.names(offered), [
    "MQ",
    "LOG_SHMFD",
    "REPLY_ACK",
    "BACKEND_REQ",
    "BACKEND_SEND_FD",
    "HOST_NOTIFIER",
    "CONFIGURE_MEM_SLOTS",
  ]);
  assert.equal(
    VHOST_USER_PROTOCOL_FEATURES.parse([
      "MQ",
      "LOG_SHMFD",
      "SLAVE_REQ",
      "HOST_NOTIFIER",
      "SLAVE_SEND_FD",
      "REPLY_ACK",
      "CONFIGURE_MEM_SLOTS",
    ]),
    offered,
  );
  assert.equal(
    VHOST_USER_PROTOCOL_FEATURES.bit("SLAVE_REQ"),
    VHOST_USER_PROTOCOL_FEATURES.bit("BACKEND_REQ"),
  );
  assert.equal(VHOST_USER_PROTOCOL_FEATURES.format(offered | 1n << 8n).includes("PAGEFAULT"), true);
  const m = decodeMessage(raw(15, 0x5, u64le(offered)), 0, FE);
  assert.match(formatMessage(m), /MQ\|LOG_SHMFD\|REPLY_ACK\|BACKEND_REQ\|/);

  // Every protocol feature bit of the spec has a name; bit 24 does not.
  const all = (1n << 24n) - 1n;
  assert.equal(VHOST_USER_PROTOCOL_FEATURES.names(all).length, 24);
  assert.equal(VHOST_USER_PROTOCOL_FEATURES.format(1n << 24n), "0x1000000");
  assert.equal(VHOST_USER_PROTOCOL_F.DEVICE_STATE, 19);
  assert.equal(VHOST_USER_PROTOCOL_F.SHMEM, 22);
  assert.equal(VHOST_USER_PROTOCOL_FEATURES.bit("MTU"), 1n << 4n);

  // Its virtio features: VERSION_1 and the ring/vhost bits libvhost-user adds.
  assert.deepEqual(VIRTIO_FS_FEATURES.names(0x1_7500_0000n), [
    "VIRTIO_F_NOTIFY_ON_EMPTY",
    "VHOST_F_LOG_ALL",
    "VIRTIO_RING_F_INDIRECT_DESC",
    "VIRTIO_RING_F_EVENT_IDX",
    "VHOST_USER_F_PROTOCOL_FEATURES",
    "VIRTIO_F_VERSION_1",
  ]);
});

Deno.test("vhost-user feature names: every virtio bit by number", () => {
  const bits: Record<string, number> = {
    VIRTIO_F_NOTIFY_ON_EMPTY: 24,
    VHOST_F_LOG_ALL: 26,
    VIRTIO_F_ANY_LAYOUT: 27,
    VIRTIO_RING_F_INDIRECT_DESC: 28,
    VIRTIO_RING_F_EVENT_IDX: 29,
    VHOST_USER_F_PROTOCOL_FEATURES: 30,
    VIRTIO_F_VERSION_1: 32,
    VIRTIO_F_ACCESS_PLATFORM: 33,
    VIRTIO_F_RING_PACKED: 34,
    VIRTIO_F_IN_ORDER: 35,
    VIRTIO_F_ORDER_PLATFORM: 36,
    VIRTIO_F_SR_IOV: 37,
    VIRTIO_F_NOTIFICATION_DATA: 38,
    VIRTIO_F_NOTIF_CONFIG_DATA: 39,
    VIRTIO_F_RING_RESET: 40,
    VIRTIO_F_ADMIN_VQ: 41,
  };
  for (const [name, bit] of Object.entries(bits)) {
    assert.deepEqual(VIRTIO_FEATURES.names(1n << BigInt(bit)), [name]);
  }
  assert.deepEqual(VIRTIO_FS_FEATURES.names(1n), ["VIRTIO_FS_F_NOTIFICATION"]);
  assert.deepEqual(VIRTIO_FEATURES.names(1n), ["0x1"]);
  assert.equal(VIRTIO_FEATURES.parse(["VIRTIO_F_IOMMU_PLATFORM"]), 1n << 33n);
  assert.equal(VIRTIO_FEATURES.format(1n << 42n), "0x40000000000");
});

interface Bad {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly fds?: number;
  readonly channel?: "frontend" | "backend";
  readonly unknown?: "error";
  readonly fragments: readonly string[];
  readonly offset: number;
}

const memTable2 = cat(u32le(2, 0), u64le(0n, 1n, 2n, 3n), u64le(4n, 5n, 6n, 7n));

const MALFORMED: readonly Bad[] = [
  { name: "empty input", bytes: new Uint8Array(0), fragments: ["header", "truncated"], offset: 0 },
  {
    name: "11-byte header",
    bytes: new Uint8Array(11),
    fragments: ["needs 12 bytes, 11 available"],
    offset: 0,
  },
  {
    name: "version 0",
    bytes: raw(1, 0x0, new Uint8Array(0)),
    fragments: ["request 1", "flags.version is 0"],
    offset: 4,
  },
  {
    name: "version 2",
    bytes: raw(1, 0x6, new Uint8Array(0)),
    fragments: ["flags.version is 2"],
    offset: 4,
  },
  {
    name: "reserved flag bit",
    bytes: raw(1, 0x11, new Uint8Array(0)),
    fragments: ["reserved flag bits 0x10"],
    offset: 4,
  },
  {
    name: "NEED_REPLY on a reply",
    bytes: raw(1, 0xd, u64le(0n)),
    fragments: ["NEED_REPLY on a reply"],
    offset: 4,
  },
  {
    name: "size beyond the maximum",
    bytes: raw(2, 0x1, new Uint8Array(0), VHOST_USER_MAX_PAYLOAD + 1),
    fragments: [`size ${VHOST_USER_MAX_PAYLOAD + 1} exceeds`],
    offset: 8,
  },
  {
    name: "size says more than follows",
    bytes: raw(2, 0x1, new Uint8Array(4), 8),
    fragments: ["SET_FEATURES request", "payload truncated", "size 8 but 4 bytes follow"],
    offset: 16,
  },
  {
    name: "size says less than follows",
    bytes: raw(2, 0x1, new Uint8Array(12), 8),
    fragments: ["SET_FEATURES request", "4 bytes after the 8-byte payload"],
    offset: 20,
  },
  {
    name: "unknown request, strict",
    bytes: raw(99, 0x1, new Uint8Array(0)),
    unknown: "error",
    fragments: ["unknown request number 99"],
    offset: 0,
  },
  {
    name: "u64 message with 4 bytes",
    bytes: raw(2, 0x1, new Uint8Array(4)),
    fragments: ["SET_FEATURES request", "payload size 4 is wrong", "expected 8 (u64)"],
    offset: 8,
  },
  {
    name: "payload on a message without one",
    bytes: raw(1, 0x1, u64le(0n)),
    fragments: ["GET_FEATURES request", "payload size 8 is wrong", "expected 0 (empty)"],
    offset: 8,
  },
  {
    name: "reply of the wrong size",
    bytes: raw(11, 0x5, new Uint8Array(4)),
    fragments: ["GET_VRING_BASE reply", "payload size 4 is wrong"],
    offset: 8,
  },
  {
    name: "nregions above 8",
    bytes: raw(5, 0x1, cat(u32le(9, 0), new Uint8Array(9 * 32))),
    fds: 8,
    fragments: ["SET_MEM_TABLE request", "VhostUserMemory.nregions 9 exceeds 8"],
    offset: 12,
  },
  {
    name: "nregions disagreeing with the size",
    bytes: raw(5, 0x1, cat(u32le(3, 0), memTable2.subarray(8))),
    fds: 3,
    fragments: ["nregions 3 inconsistent with payload size 72"],
    offset: 12,
  },
  {
    name: "memory table of a size no region count gives",
    bytes: raw(5, 0x1, new Uint8Array(20)),
    fragments: ["SET_MEM_TABLE request", "payload size 20 is wrong", "8 + 32·n"],
    offset: 8,
  },
  {
    name: "SET_MEM_TABLE missing an fd",
    bytes: raw(5, 0x1, memTable2),
    fds: 1,
    fragments: ["SET_MEM_TABLE request", "came with 1 fds", "one per region (2)"],
    offset: 0,
  },
  {
    name: "SET_MEM_TABLE with an extra fd",
    bytes: raw(5, 0x1, memTable2),
    fds: 3,
    fragments: ["came with 3 fds", "one per region (2)"],
    offset: 0,
  },
  {
    name: "SET_VRING_KICK with NOFD set and an fd",
    bytes: raw(12, 0x1, u64le(0x100n)),
    fds: 1,
    fragments: ["SET_VRING_KICK request", "expected none (NOFD set)"],
    offset: 0,
  },
  {
    name: "SET_VRING_ERR without NOFD and without an fd",
    bytes: raw(14, 0x1, u64le(1n)),
    fragments: ["SET_VRING_ERR request", "came with 0 fds", "expected one (NOFD clear)"],
    offset: 0,
  },
  {
    name: "SET_LOG_FD without its fd",
    bytes: raw(7, 0x1, new Uint8Array(0)),
    fragments: ["SET_LOG_FD request", "expected exactly 1"],
    offset: 0,
  },
  {
    name: "GET_FEATURES reply with an fd",
    bytes: raw(1, 0x5, u64le(0n)),
    fds: 1,
    fragments: ["GET_FEATURES reply", "came with 1 fds, expected exactly 0"],
    offset: 0,
  },
  {
    name: "more fds than a message can carry",
    bytes: raw(5, 0x1, memTable2),
    fds: VHOST_USER_MAX_FDS + 1,
    fragments: ["SET_MEM_TABLE request", "9 fds, at most 8"],
    offset: 0,
  },
  {
    name: "negative fd count",
    bytes: raw(3, 0x1, new Uint8Array(0)),
    fds: -1,
    fragments: ["fd count -1 is not a count"],
    offset: 0,
  },
  {
    name: "config size field disagreeing with the payload",
    bytes: raw(24, 0x1, cat(u32le(0, 10, 0), new Uint8Array(8))),
    fragments: ["GET_CONFIG request", "VhostUserConfig.size 10 disagrees with the 8 bytes"],
    offset: 16,
  },
  {
    name: "config space larger than 256 bytes",
    bytes: raw(25, 0x1, cat(u32le(0, 257, 0), new Uint8Array(257))),
    fragments: ["SET_CONFIG request", "payload size 269 is wrong"],
    offset: 8,
  },
  {
    name: "GET_INFLIGHT_FD reply with an fd for an empty area",
    bytes: raw(31, 0x5, new Uint8Array(24)),
    fds: 1,
    fragments: ["GET_INFLIGHT_FD reply", "expected none (mmap_size 0)"],
    offset: 0,
  },
  {
    name: "shared memory config with too many regions",
    bytes: raw(44, 0x5, cat(u32le(257, 0), new Uint8Array(2048))),
    fragments: ["GET_SHMEM_CONFIG reply", "nregions 257 exceeds 256"],
    offset: 12,
  },
  {
    name: "SET_DEVICE_STATE_FD without the pipe",
    bytes: raw(42, 0x1, u32le(0, 0)),
    fragments: ["SET_DEVICE_STATE_FD request", "expected exactly 1"],
    offset: 0,
  },
  {
    name: "crypto session not a multiple of 8",
    bytes: raw(26, 0x1, new Uint8Array(12)),
    fragments: ["CREATE_CRYPTO_SESSION request", "payload size 12 is wrong"],
    offset: 8,
  },
  {
    name: "backend host notifier without fd and without NOFD",
    bytes: raw(3, 0x1, u64le(1n, 0x1000n, 0n)),
    channel: "backend",
    fragments: ["backend BACKEND_VRING_HOST_NOTIFIER_MSG request", "expected one (NOFD clear)"],
    offset: 0,
  },
  {
    name: "backend SHMEM_MAP of the wrong size",
    bytes: raw(9, 0x1, new Uint8Array(32)),
    fds: 1,
    channel: "backend",
    fragments: ["BACKEND_SHMEM_MAP request", "payload size 32 is wrong", "expected 40"],
    offset: 8,
  },
];

Deno.test("vhost-user malformed input: DecodeError naming message, field and offset", () => {
  for (const c of MALFORMED) {
    assert.throws(
      () =>
        decodeMessage(c.bytes, c.fds ?? 0, {
          channel: c.channel ?? "frontend",
          ...(c.unknown ? { unknown: c.unknown } : {}),
        }),
      (e: unknown) => {
        assert.ok(e instanceof DecodeError, `${c.name}: ${String(e)}`);
        for (const f of c.fragments) assert.ok(e.message.includes(f), `${c.name}: ${e.message}`);
        assert.equal(e.offset, c.offset, `${c.name}: ${e.message}`);
        return true;
      },
      c.name,
    );
  }
});

Deno.test("vhost-user: unknown numbers decode raw by default, fd mismatches can be reported", () => {
  const m = decodeMessage(raw(99, 0x9, new Uint8Array([1, 2, 3])), 2, FE);
  assert.equal(m.known, false);
  assert.equal(m.name, "unknown message 99");
  assert.deepEqual(m.payload, { kind: "raw", bytes: new Uint8Array([1, 2, 3]) });
  assert.equal(m.spec, undefined);
  assert.deepEqual(encodeMessage(m), raw(99, 0x9, new Uint8Array([1, 2, 3])));

  const r = decodeMessage(raw(7, 0x1, new Uint8Array(0)), 0, { ...FE, fds: "report" });
  assert.deepEqual(r.fds, { count: 0, min: 1, max: 1, rule: "exactly 1", ok: false });
});

Deno.test("vhost-user header helpers for a framing layer", () => {
  const bytes = encodeMessage({
    ...FE,
    request: "SET_FEATURES",
    needReply: true,
    payload: { kind: "u64", value: 1n },
  });
  assert.deepEqual(parseHeader(bytes), {
    request: 2,
    flags: 0x9,
    size: 8,
    isReply: false,
    needReply: true,
  });
  assert.equal(messageLength(bytes.subarray(0, 11)), undefined);
  assert.equal(messageLength(bytes.subarray(0, 12)), 20);
  const two = cat(new Uint8Array(3), bytes);
  assert.equal(messageLength(two, 3), 20);
  assert.equal(parseHeader(two, 3).request, 2);
  assert.throws(() => messageLength(raw(1, 0x2, new Uint8Array(0))), DecodeError);
  assert.throws(() => parseHeader(bytes, 9), /needs 12 bytes, 11 available/);
});

Deno.test("vhost-user backend channel: current messages and the virtio-fs DAX dialect", () => {
  const BE = { channel: "backend" } as const;
  const sharedAdd = encodeMessage({
    ...BE,
    request: "BACKEND_SHARED_OBJECT_ADD",
    payload: { kind: "shared_object", uuid: new Uint8Array(16).fill(0xab) },
  });
  assert.equal(decodeMessage(sharedAdd, 0, BE).name, "BACKEND_SHARED_OBJECT_ADD");
  assert.match(formatMessage(decodeMessage(sharedAdd, 0, BE)), /uuid=abababab-abab-abab-abab-/);

  // FS_MAP (8-entry VhostUserFSSlaveMsg, 256 bytes) shares number 6.
  const z = () => Array.from({ length: 8 }, () => 0n);
  const fsMap = encodeMessage({
    ...BE,
    request: "SLAVE_FS_MAP",
    needReply: true,
    payload: { kind: "fs_backend", fdOffset: z(), cOffset: z(), len: z(), flags: z() },
  });
  assert.equal(fsMap.byteLength, 12 + 256);
  const m = decodeMessage(fsMap, 1, BE);
  assert.equal(m.name, "BACKEND_FS_MAP");
  assert.equal(m.legacyName, "SLAVE_FS_MAP");
  assert.equal(m.spec?.dialect, "virtio-fs-dax");
  assert.throws(() => decodeMessage(fsMap, 1, { ...BE, dialect: "current" }), /payload size 256/);
  const reply = raw(6, 0x5, u64le(0n));
  assert.equal(decodeMessage(reply, 0, BE).name, "BACKEND_SHARED_OBJECT_ADD");
  assert.equal(decodeMessage(reply, 0, { ...BE, dialect: "virtio-fs-dax" }).name, "BACKEND_FS_MAP");
  assert.equal(lookupMessage("backend", 9, "virtio-fs-dax")?.name, "BACKEND_FS_IO");
});

Deno.test("vhost-user encode errors are EncodeError", () => {
  const bad: [string, () => unknown][] = [
    ["unknown name", () => encodeMessage({ ...FE, request: "NOPE" })],
    [
      "wrong payload kind",
      () =>
        encodeMessage({
          ...FE,
          request: "SET_FEATURES",
          payload: { kind: "vring_state", index: 0, num: 0 },
        }),
    ],
    [
      "reply with NEED_REPLY",
      () => encodeMessage({ ...FE, request: 1, isReply: true, needReply: true }),
    ],
    ["too many regions", () =>
      encodeMessage({
        ...FE,
        request: "SET_MEM_TABLE",
        payload: {
          kind: "memory_table",
          xen: false,
          regions: Array.from({ length: 9 }, (_, i) => sampleRegion(i)),
        },
      })],
    [
      "u64 out of range",
      () =>
        encodeMessage({
          ...FE,
          request: "SET_FEATURES",
          payload: { kind: "u64", value: 1n << 64n },
        }),
    ],
    [
      "u32 out of range",
      () =>
        encodeMessage({
          ...FE,
          request: "SET_VRING_NUM",
          payload: { kind: "vring_state", index: -1, num: 0 },
        }),
    ],
    [
      "unknown number with a typed payload",
      () => encodeMessage({ ...FE, request: 99, payload: { kind: "u64", value: 0n } }),
    ],
    [
      "config too large",
      () =>
        encodeMessage({
          ...FE,
          request: "SET_CONFIG",
          payload: { kind: "config", offset: 0, flags: 0, data: new Uint8Array(257) },
        }),
    ],
  ];
  for (const [name, f] of bad) assert.throws(f, EncodeError, name);
});

Deno.test("virtio-fs config space: decode and encode, with and without notify_buf_size", () => {
  const cfg = encodeVirtioFsConfig({ tag: "myfs", numRequestQueues: 1 });
  assert.equal(cfg.byteLength, 40);
  assert.deepEqual(decodeVirtioFsConfig(cfg), {
    tag: "myfs",
    tagBytes: cat(new TextEncoder().encode("myfs"), new Uint8Array(32)),
    numRequestQueues: 1,
  });
  const full = encodeVirtioFsConfig({ tag: "t", numRequestQueues: 4, notifyBufSize: 4096 });
  assert.equal(full.byteLength, 44);
  assert.equal(decodeVirtioFsConfig(full).notifyBufSize, 4096);
  // As it comes back in a GET_CONFIG reply.
  const reply = encodeMessage({
    ...FE,
    request: "GET_CONFIG",
    isReply: true,
    payload: { kind: "config", offset: 0, flags: 0, data: full },
  });
  const m = decodeMessage(reply, 0, FE);
  assert.equal(m.payload.kind, "config");
  if (m.payload.kind === "config") assert.equal(decodeVirtioFsConfig(m.payload.data).tag, "t");
  assert.throws(() => decodeVirtioFsConfig(new Uint8Array(39)), DecodeError);
  assert.throws(
    () => encodeVirtioFsConfig({ tag: "x".repeat(37), numRequestQueues: 1 }),
    EncodeError,
  );
});

Deno.test("vhost-user decode copies: decoded payloads do not alias the input buffer", () => {
  const data = new Uint8Array([1, 2, 3, 4]);
  const bytes = encodeMessage({
    ...FE,
    request: "SET_CONFIG",
    payload: { kind: "config", offset: 0, flags: 0, data },
  });
  const m = decodeMessage(bytes, 0, FE);
  bytes.fill(0);
  assert.equal(m.payload.kind === "config" && m.payload.data[3], 4);
});
