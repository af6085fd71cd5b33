/**
 * One call per phase of a guest run: prepare the boot assets (host packages,
 * kernel, initramfs; cached), boot the guest against a backend's socket, and
 * verify the shared directory on the host afterwards.
 *
 * @module
 */
import { ensureHostDeps, type HostTools } from "./deps.ts";
import { ensureInitramfs, type Initramfs } from "./initramfs.ts";
import { ensureKernel, type GuestKernel } from "./kernel.ts";
import type { CheckResult } from "./protocol.ts";
import { type GuestRun, runGuest } from "./qemu.ts";
import { verifyHost } from "./verify.ts";
import type { Workload } from "./workloads.ts";

/** Default virtiofs tag. */
export const DEFAULT_TAG = "vfstrace";

/** Default limit for one boot, generous for TCG on a small machine. */
export const DEFAULT_TIMEOUT_MS = 180_000;

/** Options of {@linkcode prepareGuest}. */
export interface PrepareGuestOptions {
  /** The workload to embed. */
  workload: Workload;
  /** Cache root (default from the environment, see vm/cache.ts). */
  cacheDir?: string;
  /** apt-get install missing host packages when root (default true). */
  installDeps?: boolean;
  /** A specific kernel package instead of the current cloud kernel. */
  kernelPackage?: string;
  /** Called with a line of progress text (downloads, builds). */
  onProgress?: (message: string) => void;
}

/** Everything needed to boot, ready on disk. */
export interface PreparedGuest {
  /** Host tool paths. */
  readonly tools: HostTools;
  /** The guest kernel. */
  readonly kernel: GuestKernel;
  /** The initramfs with the workload. */
  readonly initramfs: Initramfs;
  /** The embedded workload. */
  readonly workload: Workload;
  /** Time spent preparing, in ms (near zero when everything was cached). */
  readonly prepareMs: number;
}

/** Ensures host packages, the kernel and the initramfs for `opts.workload`. */
export async function prepareGuest(opts: PrepareGuestOptions): Promise<PreparedGuest> {
  const t0 = performance.now();
  const progress = opts.onProgress;
  const tools = await ensureHostDeps({
    ...(opts.installDeps === undefined ? {} : { install: opts.installDeps }),
    ...(progress === undefined ? {} : { onProgress: progress }),
  });
  const kernel = await ensureKernel({
    ...(opts.cacheDir === undefined ? {} : { cacheDir: opts.cacheDir }),
    ...(opts.kernelPackage === undefined ? {} : { packageName: opts.kernelPackage }),
    ...(progress === undefined ? {} : { onProgress: progress }),
  });
  const initramfs = await ensureInitramfs({
    kernel,
    workload: opts.workload,
    busybox: tools.busybox,
    cpio: tools.cpio,
    toolchain: tools.toolchain,
    ...(opts.cacheDir === undefined ? {} : { cacheDir: opts.cacheDir }),
    ...(progress === undefined ? {} : { onProgress: progress }),
  });
  return {
    tools,
    kernel,
    initramfs,
    workload: opts.workload,
    prepareMs: Math.round(performance.now() - t0),
  };
}

/** Options of {@linkcode bootGuest}. */
export interface BootGuestOptions {
  /** The backend's vhost-user socket. */
  socketPath: string;
  /** virtiofs tag (default {@linkcode DEFAULT_TAG}). */
  tag?: string;
  /** Time limit for the boot (default {@linkcode DEFAULT_TIMEOUT_MS}). */
  timeoutMs?: number;
  /** Guest RAM in MiB. */
  memoryMiB?: number;
  /**
   * The backend's exported directory as seen from the host. When given, the
   * guest's claims about it are verified after the guest is gone.
   */
  sharedDir?: string;
  /** Live console lines. */
  onConsoleLine?: (line: string) => void;
  /** Extra kernel command-line words (e.g. `vfstrace.init=…` to boot from the share). */
  extraAppend?: readonly string[];
  /**
   * Awaited after the guest powered off and before host verification, e.g. to
   * let the backend exit and release the files.
   */
  afterGuest?: () => Promise<void>;
}

/** The outcome of one guest run. */
export interface GuestReport {
  /** Workload name. */
  readonly workload: string;
  /** Kernel package booted. */
  readonly kernel: string;
  /** virtiofs tag. */
  readonly tag: string;
  /** Checks the guest reported. */
  readonly checks: readonly CheckResult[];
  /** Host-side checks, when a shared directory was given. */
  readonly hostChecks: readonly CheckResult[] | undefined;
  /** The workload script's exit status. */
  readonly workloadStatus: number;
  /** True when no check failed, the workload exited 0 and host checks (if any) passed. */
  readonly passed: boolean;
  /** Time spent preparing assets, in ms. */
  readonly prepareMs: number;
  /** Wall time from starting QEMU to its exit, in ms. */
  readonly bootToPoweroffMs: number;
  /** Guest time spent in the workload, in ms. */
  readonly workloadMs: number | undefined;
  /** The raw run (console, QEMU command line, stderr). */
  readonly run: GuestRun;
}

/** Whether a set of results and a workload status make a passing run. */
export function runPassed(
  checks: readonly CheckResult[],
  workloadStatus: number,
  hostChecks: readonly CheckResult[] | undefined,
): boolean {
  const noFail = (cs: readonly CheckResult[]) => cs.every((c) => c.status !== "fail");
  return workloadStatus === 0 && noFail(checks) && noFail(hostChecks ?? []);
}

/**
 * Boots `prepared` against the backend on `opts.socketPath` and, when
 * `opts.sharedDir` is given, verifies the directory afterwards.
 */
export async function bootGuest(
  prepared: PreparedGuest,
  opts: BootGuestOptions,
): Promise<GuestReport> {
  const tag = opts.tag ?? DEFAULT_TAG;
  const run = await runGuest({
    kernel: prepared.kernel.vmlinuz,
    initrd: prepared.initramfs.path,
    socketPath: opts.socketPath,
    tag,
    qemu: prepared.tools.qemu,
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    ...(opts.memoryMiB === undefined ? {} : { memoryMiB: opts.memoryMiB }),
    ...(opts.onConsoleLine === undefined ? {} : { onConsoleLine: opts.onConsoleLine }),
    ...(opts.extraAppend === undefined ? {} : { extraAppend: opts.extraAppend }),
  });
  await opts.afterGuest?.();
  const hostChecks = opts.sharedDir === undefined
    ? undefined
    : await verifyHost(opts.sharedDir, run.expectations);
  return {
    workload: prepared.workload.name,
    kernel: prepared.kernel.packageName,
    tag,
    checks: run.checks,
    hostChecks,
    workloadStatus: run.workloadStatus,
    passed: runPassed(run.checks, run.workloadStatus, hostChecks),
    prepareMs: prepared.prepareMs,
    bootToPoweroffMs: run.bootToPoweroffMs,
    workloadMs: run.workloadMs,
    run,
  };
}
