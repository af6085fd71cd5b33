/**
 * The line protocol between the guest and the host. The guest's init and the
 * workload print marker lines on the serial console; the host parses them out
 * of whatever else the console shows (kernel messages, workload chatter).
 *
 * Lines (fields separated by single spaces; paths must not contain whitespace):
 *
 * - `VFSTRACE-BEGIN <uptime>`: the share is mounted, the workload starts.
 * - `VFSTRACE-RESULT <name> ok|fail|skip <seconds|-> <detail…>`: one check and
 *   how long it took in the guest (`-` when not timed).
 * - `VFSTRACE-EXPECT <kind> <path> <args…>`: something the host should find in
 *   the shared directory after the guest is gone (see {@linkcode Expectation}).
 *   Extended-attribute values travel as `0x` and lowercase hex (`0x` alone
 *   for an empty value), so any bytes fit on one line.
 * - `VFSTRACE-ERROR <stage> <detail…>`: init could not get to the workload.
 * - `VFSTRACE-END <status> <uptime>`: the workload exited with `status`.
 *
 * @module
 */

/** The common prefix of every marker line. */
export const MARKER_PREFIX = "VFSTRACE-";

/**
 * Guest directory holding, for each helper program the initramfs lacks, a
 * file named after it that says why (read by `vt_need`).
 */
export const MISSING_HELPERS_DIR = "/lib/vfstrace/missing";

/** Outcome of one check. */
export type CheckStatus = "ok" | "fail" | "skip";

/** One check reported by the guest or computed on the host. */
export interface CheckResult {
  /** Short name, e.g. `rename_over`. */
  readonly name: string;
  /** Pass, fail, or skipped (with the reason in `detail`). */
  readonly status: CheckStatus;
  /** Free text: what went wrong, a measurement, or why it was skipped. */
  readonly detail: string;
  /** Guest time the check took, in seconds (10 ms resolution), when timed. */
  readonly seconds?: number | undefined;
}

/** Fields the guest can assert about a path with `expect_stat`. */
export type StatField = "mode" | "size" | "uid" | "gid" | "mtime" | "nlink";

/**
 * Something the guest claims about the shared directory. Paths are relative to
 * the share root.
 */
export type Expectation =
  /** lstat fields as the guest saw them (`mode` is the raw st_mode including the type bits). */
  | {
    readonly kind: "stat";
    readonly path: string;
    readonly fields: Partial<Record<StatField, number>>;
  }
  /** SHA-256 of the file's content, lowercase hex. */
  | { readonly kind: "sha256"; readonly path: string; readonly sha256: string }
  /** The path is a symlink with this target. */
  | { readonly kind: "symlink"; readonly path: string; readonly target: string }
  /** Two paths are hard links to one inode. */
  | { readonly kind: "same"; readonly path: string; readonly other: string }
  /** The path does not exist. */
  | { readonly kind: "absent"; readonly path: string }
  /** The path has extended attribute `name` with this value (lowercase hex, "" when empty). */
  | {
    readonly kind: "xattr";
    readonly path: string;
    readonly name: string;
    readonly valueHex: string;
  }
  /** The path has no extended attribute `name`. */
  | { readonly kind: "noxattr"; readonly path: string; readonly name: string };

/** A failure the guest's init reported before or around the workload. */
export interface SetupError {
  /** Stage (`insmod`, `cmdline`, `mount`, …). */
  readonly stage: string;
  /** What went wrong. */
  readonly detail: string;
}

/** Everything the markers in a console transcript say. */
export interface ParsedConsole {
  /** Guest uptime (s) when the workload started, if it did. */
  beginUptime: number | undefined;
  /** Workload exit status and guest uptime at the end, if it got there. */
  end: { status: number; uptime: number } | undefined;
  /** Checks in the order printed. */
  checks: CheckResult[];
  /** Claims about the shared directory. */
  expectations: Expectation[];
  /** Setup failures reported by init. */
  errors: SetupError[];
  /** Marker lines that could not be parsed (kept so nothing is silently lost). */
  malformed: string[];
}

/** Creates an empty {@linkcode ParsedConsole} to feed lines into. */
export function emptyParsedConsole(): ParsedConsole {
  return {
    beginUptime: undefined,
    end: undefined,
    checks: [],
    expectations: [],
    errors: [],
    malformed: [],
  };
}

const STAT_FIELDS: ReadonlySet<string> = new Set(["mode", "size", "uid", "gid", "mtime", "nlink"]);

/**
 * Parses one console line into `into`. Markers are found anywhere in the line,
 * since kernel output on the same serial port can precede them. Returns true
 * when the line carried a marker.
 */
export function parseConsoleLine(line: string, into: ParsedConsole): boolean {
  const at = line.indexOf(MARKER_PREFIX);
  if (at < 0) return false;
  const text = line.slice(at).replace(/\r$/, "").trimEnd();
  const m = /^VFSTRACE-(BEGIN|RESULT|EXPECT|ERROR|END)(?: (.*))?$/.exec(text);
  if (m === null) return false;
  const kind = m[1];
  const rest = m[2] ?? "";
  const words = rest === "" ? [] : rest.split(" ");
  switch (kind) {
    case "BEGIN": {
      const up = Number(words[0]);
      if (!Number.isFinite(up)) break;
      into.beginUptime = up;
      return true;
    }
    case "END": {
      const status = Number(words[0]);
      const up = Number(words[1]);
      if (!Number.isInteger(status) || !Number.isFinite(up)) break;
      into.end = { status, uptime: up };
      return true;
    }
    case "RESULT": {
      const [name, status, time] = words;
      if (name === undefined || (status !== "ok" && status !== "fail" && status !== "skip")) break;
      if (time === undefined || (time !== "-" && !/^\d+(\.\d+)?$/.test(time))) break;
      into.checks.push({
        name,
        status,
        detail: words.slice(3).join(" ").trim(),
        seconds: time === "-" ? undefined : Number(time),
      });
      return true;
    }
    case "ERROR": {
      const [stage] = words;
      if (stage === undefined) break;
      into.errors.push({ stage, detail: words.slice(1).join(" ").trim() });
      return true;
    }
    case "EXPECT": {
      const e = parseExpectation(words);
      if (e === undefined) break;
      into.expectations.push(e);
      return true;
    }
  }
  into.malformed.push(text);
  return true;
}

/** Parses a whole console transcript. */
export function parseConsole(text: string): ParsedConsole {
  const out = emptyParsedConsole();
  for (const line of text.split("\n")) parseConsoleLine(line, out);
  return out;
}

function parseExpectation(words: string[]): Expectation | undefined {
  const [kind, path, ...args] = words;
  if (kind === undefined || path === undefined || path === "") return undefined;
  switch (kind) {
    case "stat": {
      const fields: Partial<Record<StatField, number>> = {};
      if (args.length === 0) return undefined;
      for (const arg of args) {
        const eq = arg.indexOf("=");
        const key = arg.slice(0, eq);
        const raw = arg.slice(eq + 1);
        if (eq <= 0 || !STAT_FIELDS.has(key)) return undefined;
        // busybox prints the raw mode (%f) in hex, everything else in decimal.
        const value = key === "mode" ? parseInt(raw, 16) : Number(raw);
        if (!/^[0-9a-fA-F]+$/.test(raw) || !Number.isSafeInteger(value)) return undefined;
        fields[key as StatField] = value;
      }
      return { kind, path, fields };
    }
    case "sha256": {
      const [sha] = args;
      if (sha === undefined || !/^[0-9a-f]{64}$/.test(sha)) return undefined;
      return { kind, path, sha256: sha };
    }
    case "symlink": {
      if (args.length === 0) return undefined;
      return { kind, path, target: args.join(" ") };
    }
    case "same": {
      const [other] = args;
      if (other === undefined) return undefined;
      return { kind, path, other };
    }
    case "absent":
      return args.length === 0 ? { kind, path } : undefined;
    case "xattr": {
      const [name, value, ...extra] = args;
      if (name === undefined || value === undefined || extra.length > 0) return undefined;
      const hex = /^0x((?:[0-9a-f]{2})*)$/.exec(value)?.[1];
      if (hex === undefined) return undefined;
      return { kind, path, name, valueHex: hex };
    }
    case "noxattr": {
      const [name, ...extra] = args;
      if (name === undefined || extra.length > 0) return undefined;
      return { kind, path, name };
    }
  }
  return undefined;
}

/**
 * Shell helpers sourced before every workload (busybox ash). They print the
 * marker lines; see the module documentation for their format.
 *
 * - `check NAME CMD [ARGS…]`: runs CMD in a subshell and times it; exit 0
 *   passes (the last output line becomes the detail), 77 skips (output is the
 *   reason), anything else fails (all output is the detail).
 * - `pass|fail|skip NAME [DETAIL]`: report a result directly.
 * - `vt_eq WHAT EXPECTED ACTUAL`: fails with a readable message on mismatch.
 * - `vt_fails TEXT CMD [ARGS…]`: passes when CMD fails and its output
 *   contains TEXT (e.g. an errno name such as `ENODATA`).
 * - `vt_need PROGRAM…`: returns 77 (skip), saying why, unless every PROGRAM is
 *   on the PATH; use as `vt_need vfs_xattr || return 77`.
 * - `vt_drop_caches`: sync and drop the guest page cache, so the next read
 *   goes to the backend.
 * - `vt_uptime`: prints the guest uptime in seconds.
 * - `expect_stat PATH [mode|size|uid|gid|mtime|nlink…]` (default: mode size
 *   uid gid nlink), `expect_sha256 PATH [HEX]`, `expect_symlink PATH`,
 *   `expect_same PATH OTHER`, `expect_absent PATH`, `expect_xattr PATH NAME`
 *   (the value the guest reads now; needs the `vfs_xattr` helper),
 *   `expect_no_xattr PATH NAME`: claims for the host.
 *
 * (In these templates `${"$"}{` stands for a literal shell `${`.)
 */
export const GUEST_LIBRARY = String.raw`# vfstrace guest helpers (generated; see vm/protocol.ts)
VT_ROOT=${"$"}{VT_ROOT:-/mnt}
VT_MISSING=${"$"}{VT_MISSING:-${MISSING_HELPERS_DIR}}
vt_clean() { printf '%s' "$*" | tr '\n\r\t' '   ' | cut -c1-400; }
vt_result() { echo "VFSTRACE-RESULT $1 $2 ${"$"}{vt_secs:--} $(vt_clean "$3")"; }
pass() { vt_result "$1" ok "$2"; }
fail() { vt_result "$1" fail "$2"; }
skip() { vt_result "$1" skip "$2"; }
vt_uptime() { read -r vt_up vt_rest < /proc/uptime && echo "$vt_up"; }
check() {
  vt_name=$1
  shift
  vt_t0=$(vt_uptime)
  vt_out=$( ("$@") 2>&1 )
  vt_rc=$?
  vt_secs=$(echo "$(vt_uptime) $vt_t0" | awk '{ printf "%.2f", $1 - $2 }')
  if [ "$vt_rc" -eq 0 ]; then
    pass "$vt_name" "$(printf '%s\n' "$vt_out" | tail -n 1)"
  elif [ "$vt_rc" -eq 77 ]; then
    skip "$vt_name" "$vt_out"
  else
    fail "$vt_name" "exit $vt_rc: $vt_out"
  fi
  vt_secs=
}
vt_eq() {
  [ "$2" = "$3" ] && return 0
  echo "$1: expected '$2', got '$3'"
  return 1
}
vt_fails() {
  vt_want=$1
  shift
  if vt_got=$("$@" 2>&1); then
    echo "$*: succeeded, expected a failure with $vt_want"
    return 1
  fi
  case $vt_got in *"$vt_want"*) return 0 ;; esac
  echo "$*: expected $vt_want, got: $vt_got"
  return 1
}
vt_need() {
  for vt_prog in "$@"; do
    command -v "$vt_prog" >/dev/null 2>&1 && continue
    if [ -r "$VT_MISSING/$vt_prog" ]; then
      cat "$VT_MISSING/$vt_prog"
    else
      echo "the guest has no $vt_prog"
    fi
    return 77
  done
}
vt_drop_caches() { sync && echo 3 > /proc/sys/vm/drop_caches; }
vt_rel() {
  if [ -d "$1" ] && [ ! -L "$1" ]; then
    vt_p=$(cd "$1" && pwd) || return 1
  else
    vt_d=$(cd "$(dirname "$1")" && pwd) || return 1
    vt_p="$vt_d/$(basename "$1")"
  fi
  case $vt_p in
    "$VT_ROOT"/*) echo "${"$"}{vt_p#"$VT_ROOT"/}" ;;
    *) echo "vt_rel: $1 is outside $VT_ROOT" >&2; return 1 ;;
  esac
}
expect_stat() {
  vt_rp=$(vt_rel "$1") || return 1
  vt_path=$1
  shift
  [ $# -gt 0 ] || set -- mode size uid gid nlink
  vt_fmt=
  for vt_f in "$@"; do
    case $vt_f in
      mode) vt_fmt="$vt_fmt mode=%f" ;;
      size) vt_fmt="$vt_fmt size=%s" ;;
      uid) vt_fmt="$vt_fmt uid=%u" ;;
      gid) vt_fmt="$vt_fmt gid=%g" ;;
      mtime) vt_fmt="$vt_fmt mtime=%Y" ;;
      nlink) vt_fmt="$vt_fmt nlink=%h" ;;
      *) echo "expect_stat: unknown field $vt_f" >&2; return 2 ;;
    esac
  done
  vt_st=$(stat -c "$vt_fmt" "$vt_path") || return 1
  echo "VFSTRACE-EXPECT stat $vt_rp$vt_st"
}
expect_sha256() {
  vt_rp=$(vt_rel "$1") || return 1
  vt_sum=$2
  if [ -z "$vt_sum" ]; then
    vt_sum=$(sha256sum "$1") || return 1
    vt_sum=${"$"}{vt_sum%% *}
  fi
  echo "VFSTRACE-EXPECT sha256 $vt_rp $vt_sum"
}
expect_symlink() {
  vt_rp=$(vt_rel "$1") || return 1
  vt_t=$(readlink "$1") || return 1
  echo "VFSTRACE-EXPECT symlink $vt_rp $vt_t"
}
expect_same() {
  vt_rp=$(vt_rel "$1") || return 1
  vt_ro=$(vt_rel "$2") || return 1
  echo "VFSTRACE-EXPECT same $vt_rp $vt_ro"
}
expect_absent() {
  vt_rp=$(vt_rel "$1") || return 1
  echo "VFSTRACE-EXPECT absent $vt_rp"
}
expect_xattr() {
  vt_rp=$(vt_rel "$1") || return 1
  # pipefail: a failed read must not pass for an empty value.
  vt_hex=$(set -o pipefail; vfs_xattr get "$2" "$1" | od -An -v -tx1 | tr -d ' \n') || return 1
  echo "VFSTRACE-EXPECT xattr $vt_rp $2 0x$vt_hex"
}
expect_no_xattr() {
  vt_rp=$(vt_rel "$1") || return 1
  echo "VFSTRACE-EXPECT noxattr $vt_rp $2"
}
`;
