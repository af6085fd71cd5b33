/**
 * Host-side verification: after the guest is gone, check the shared directory
 * against what the guest claimed it left there.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { lgetxattr } from "../sys/xattr.ts";
import { runCommand } from "./_exec.ts";
import { exists } from "./cache.ts";
import { HostCommandError } from "./errors.ts";
import type { CheckResult, Expectation, StatField } from "./protocol.ts";

/** Where Debian's attr package installs getfattr. */
export const GETFATTR = "/usr/bin/getfattr";

/**
 * Checks each expectation against `sharedDir` and returns one result per
 * expectation, named `host:<kind>:<path>`. Never throws for a mismatch or a
 * missing file; those are failed checks.
 */
export async function verifyHost(
  sharedDir: string,
  expectations: readonly Expectation[],
): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const e of expectations) {
    const name = `host:${e.kind}:${e.path}`;
    try {
      const problem = await verifyOne(sharedDir, e);
      results.push(
        problem === undefined
          ? { name, status: "ok", detail: describe(e) }
          : { name, status: "fail", detail: problem },
      );
    } catch (err) {
      results.push({
        name,
        status: "fail",
        detail: err instanceof Error ? err.message : String(err),
      });
    }
  }
  return results;
}

/** Rejects paths that could leave the shared directory. */
export function safeRelativePath(path: string): boolean {
  if (path === "" || path.startsWith("/")) return false;
  return path.split("/").every((seg) => seg !== "" && seg !== "." && seg !== "..");
}

/** Streams `path` through SHA-256 and returns the lowercase hex digest. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(1 << 20);
  for (;;) {
    const n = await file.read(buf);
    if (n === null) break;
    hash.update(buf.subarray(0, n));
  }
  return hash.digest("hex");
}

/** Options of {@linkcode hostXattr}. */
export interface HostXattrOptions {
  /**
   * getfattr to use when it exists (default {@linkcode GETFATTR}); `null`
   * reads through libc (FFI) directly.
   */
  getfattr?: string | null;
}

/**
 * Reads extended attribute `name` of `path` on the host, not following a final
 * symlink; `undefined` when the file has no such attribute. Uses getfattr when
 * it is installed, else lgetxattr from libc through FFI (Deno has no xattr API).
 * Throws HostCommandError or SysError for anything but a missing attribute.
 */
export async function hostXattr(
  path: string,
  name: string,
  opts: HostXattrOptions = {},
): Promise<Uint8Array | undefined> {
  const getfattr = opts.getfattr === undefined ? GETFATTR : opts.getfattr;
  if (getfattr === null || !(await exists(getfattr))) return lgetxattr(path, name);
  try {
    const out = await runCommand([
      getfattr,
      "--absolute-names",
      "--no-dereference",
      "--only-values",
      "--name",
      name,
      "--",
      path,
    ]);
    return out.stdout;
  } catch (err) {
    // getfattr's own wording for ENODATA; any other failure is real.
    if (err instanceof HostCommandError && err.stderr.includes(`${name}: No such attribute`)) {
      return undefined;
    }
    throw err;
  }
}

async function verifyOne(root: string, e: Expectation): Promise<string | undefined> {
  for (const p of e.kind === "same" ? [e.path, e.other] : [e.path]) {
    if (!safeRelativePath(p)) return `refusing unsafe path '${p}'`;
  }
  const full = `${root}/${e.path}`;
  switch (e.kind) {
    case "absent":
      return (await lstatOrUndefined(full)) === undefined ? undefined : "exists on the host";
    case "stat": {
      const st = await lstatOrUndefined(full);
      if (st === undefined) return "missing on the host";
      const problems: string[] = [];
      for (const [field, want] of Object.entries(e.fields) as [StatField, number][]) {
        const got = statField(st, field);
        if (got !== want) {
          problems.push(`${field}: guest ${fmt(field, want)}, host ${fmt(field, got)}`);
        }
      }
      return problems.length === 0 ? undefined : problems.join("; ");
    }
    case "sha256": {
      const st = await lstatOrUndefined(full);
      if (st === undefined) return "missing on the host";
      if (!st.isFile) return "not a regular file on the host";
      const got = await sha256File(full);
      return got === e.sha256 ? undefined : `sha256: guest ${e.sha256}, host ${got}`;
    }
    case "symlink": {
      const st = await lstatOrUndefined(full);
      if (st === undefined) return "missing on the host";
      if (!st.isSymlink) return "not a symlink on the host";
      const got = await Deno.readLink(full);
      return got === e.target ? undefined : `target: guest '${e.target}', host '${got}'`;
    }
    case "same": {
      const a = await lstatOrUndefined(full);
      const b = await lstatOrUndefined(`${root}/${e.other}`);
      if (a === undefined || b === undefined) {
        return `missing on the host: ${a === undefined ? e.path : e.other}`;
      }
      if (a.ino !== b.ino || a.dev !== b.dev) {
        return `different inodes on the host (${a.dev}:${a.ino} vs ${b.dev}:${b.ino})`;
      }
      return undefined;
    }
    case "xattr":
    case "noxattr": {
      if ((await lstatOrUndefined(full)) === undefined) return "missing on the host";
      const got = await hostXattr(full, e.name);
      if (e.kind === "noxattr") {
        return got === undefined ? undefined : `${e.name}: present on the host (${showValue(got)})`;
      }
      if (got === undefined) return `${e.name}: absent on the host`;
      const want = fromHex(e.valueHex);
      return equalBytes(got, want)
        ? undefined
        : `${e.name}: guest ${showValue(want)}, host ${showValue(got)}`;
    }
  }
}

/** At most this many bytes of an attribute value are shown in a detail. */
const SHOWN_VALUE_BYTES = 48;

/** A short, printable rendering of a value: quoted text, else hex, with its length. */
function showValue(v: Uint8Array): string {
  const head = v.subarray(0, SHOWN_VALUE_BYTES);
  const more = v.byteLength > head.byteLength ? "…" : "";
  const text = head.every((b) => b >= 0x20 && b < 0x7f)
    ? `'${String.fromCharCode(...head)}${more}'`
    : `0x${toHex(head)}${more}`;
  return `${text} (${v.byteLength} bytes)`;
}

function toHex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);
}

function statField(st: Deno.FileInfo, field: StatField): number | undefined {
  switch (field) {
    case "mode":
      return st.mode ?? undefined;
    case "size":
      return st.size;
    case "uid":
      return st.uid ?? undefined;
    case "gid":
      return st.gid ?? undefined;
    case "nlink":
      return st.nlink ?? undefined;
    case "mtime":
      return st.mtime === null ? undefined : Math.floor(st.mtime.getTime() / 1000);
  }
}

function fmt(field: StatField, v: number | undefined): string {
  if (v === undefined) return "unknown";
  return field === "mode" ? `0${v.toString(8)}` : String(v);
}

function describe(e: Expectation): string {
  switch (e.kind) {
    case "stat":
      return Object.entries(e.fields as Record<StatField, number>)
        .map(([k, v]) => `${k}=${fmt(k as StatField, v)}`)
        .join(" ");
    case "sha256":
      return `sha256 ${e.sha256.slice(0, 16)}…`;
    case "symlink":
      return `-> ${e.target}`;
    case "same":
      return `same inode as ${e.other}`;
    case "absent":
      return "absent";
    case "xattr":
      return `${e.name} = ${showValue(fromHex(e.valueHex))}`;
    case "noxattr":
      return `no ${e.name}`;
  }
}

async function lstatOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}
