/**
 * The real-guest test rig: boot a throwaway Linux guest under QEMU against any
 * vhost-user-fs backend, run a workload on the virtiofs mount, and check the
 * results in the guest and on the host.
 *
 * ```ts
 * import { bootGuest, builtinWorkload, prepareGuest, Virtiofsd } from "./vm/mod.ts";
 * const prepared = await prepareGuest({ workload: builtinWorkload("posix") });
 * const daemon = await Virtiofsd.start({ socketPath: "/tmp/fs.sock", sharedDir: "/tmp/share" });
 * const report = await bootGuest(prepared, { socketPath: "/tmp/fs.sock", sharedDir: "/tmp/share" });
 * await daemon.stop();
 * console.log(report.passed, report.bootToPoweroffMs);
 * ```
 *
 * @module
 */
export { cacheDir, sha256Hex } from "./cache.ts";
export {
  type EnsureDepsOptions,
  ensureHostDeps,
  type GuestToolchain,
  guestToolchain,
  HOST_TOOLS,
  type HostTools,
  missingTools,
  TOOLCHAIN_TOOLS,
} from "./deps.ts";
export {
  GuestError,
  GuestSetupError,
  HostCommandError,
  type HostTool,
  InitramfsError,
  KernelError,
  MissingDependencyError,
  QemuError,
  QemuTimeoutError,
  VirtiofsdError,
} from "./errors.ts";
export {
  compileHelper,
  GUEST_HELPERS,
  type GuestHelper,
  HELPER_CFLAGS,
  helpersId,
  installHelpers,
} from "./guest_helpers.ts";
export {
  bootGuest,
  type BootGuestOptions,
  DEFAULT_TAG,
  DEFAULT_TIMEOUT_MS,
  type GuestReport,
  type PreparedGuest,
  prepareGuest,
  type PrepareGuestOptions,
  runPassed,
} from "./guest.ts";
export {
  ensureInitramfs,
  type EnsureInitramfsOptions,
  type Initramfs,
  initramfsKey,
  type InitramfsKeyInputs,
  renderInitScript,
  ROOT_INIT_PARAM,
  TAG_PARAM,
} from "./initramfs.ts";
export {
  ensureKernel,
  type EnsureKernelOptions,
  GUEST_MODULES,
  type GuestKernel,
  KERNEL_META_PACKAGE,
  parseKernelPackage,
  resolveKernelPackage,
} from "./kernel.ts";
export {
  type CheckResult,
  type CheckStatus,
  emptyParsedConsole,
  type Expectation,
  GUEST_LIBRARY,
  MISSING_HELPERS_DIR,
  parseConsole,
  parseConsoleLine,
  type ParsedConsole,
  type SetupError,
  type StatField,
} from "./protocol.ts";
export {
  buildQemuArgs,
  cleanConsoleLine,
  DEFAULT_MEMORY_MIB,
  type GuestRun,
  type QemuOptions,
  runGuest,
  type RunGuestOptions,
  validateTag,
} from "./qemu.ts";
export {
  GETFATTR,
  hostXattr,
  type HostXattrOptions,
  safeRelativePath,
  sha256File,
  verifyHost,
} from "./verify.ts";
export {
  busyboxRootfs,
  copyTree,
  DEBIAN_MIRROR,
  DEBIAN_SUITE,
  type DebianRootfsOptions,
  ensureDebianRootfs,
  installRootInit,
  renderRootInit,
  ROOT_INIT_PATH,
  rootInitAppend,
} from "./rootfs.ts";
export { C_VIRTIOFSD, Virtiofsd, type VirtiofsdOptions } from "./virtiofsd.ts";
export {
  BUILTIN_WORKLOADS,
  builtinWorkload,
  type BuiltinWorkloadName,
  isBuiltinWorkload,
  type Workload,
  workloadFromFile,
} from "./workloads.ts";
