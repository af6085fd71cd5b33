/**
 * virtq: split virtqueues over mapped guest memory. The guest memory map
 * (both vhost-user address spaces), the device side of a split queue, the
 * descriptor-chain walker, a driver-side chain builder for tests, and the
 * ring feature bits (packed rings are refused, see features.ts).
 *
 * May import sys/ only.
 *
 * @module
 */
export * from "./errors.ts";
export * from "./features.ts";
export * from "./memory.ts";
export * from "./split.ts";
export * from "./chain.ts";
