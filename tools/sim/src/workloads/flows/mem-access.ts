/**
 * Two views of the same bytes for flows that model a driver and its device: the CPU side (a user
 * process's memory, reached through its page tables) and the device side (DMA through an endpoint,
 * translated by the IOMMU). Both take device addresses (IOVAs), so a descriptor ring or a buffer
 * pool is written once against {@link MemAccess} and used from either side.
 */

import type { Endpoint } from '@iommu-ts/iommu-core';
import type { Process } from '@iommu-ts/mm';

/** Byte access at device addresses (IOVAs). */
export interface MemAccess {
  /**
   * Read bytes.
   * @param addr - device address (IOVA)
   * @param length - bytes
   * @returns a new buffer with the bytes
   * @throws whatever the path throws: `DmaFaultError` on the device side, `UserFaultError` or an
   *   `Error` naming an unmapped address on the CPU side
   */
  read(addr: bigint, length: number): Uint8Array;
  /**
   * Write bytes.
   * @param addr - device address (IOVA)
   * @param data - the bytes
   * @throws as {@link MemAccess.read}
   */
  write(addr: bigint, data: Uint8Array): void;
}

/**
 * The device side: DMA by an endpoint, waiting for each transfer (a fault throws).
 * @param endpoint - the endpoint model issuing the DMA
 * @returns an accessor whose reads are `readSync` and writes `writeSync` at the IOVA
 */
export function endpointAccess(endpoint: Endpoint): MemAccess {
  return {
    read: (addr, length) => endpoint.readSync(addr, length),
    write: (addr, data) => endpoint.writeSync(addr, data),
  };
}

/**
 * The CPU side: the process's own loads and stores at the user address behind a device address.
 * @param process - the process whose memory holds the bytes
 * @param toVa - device address to user virtual address (throws for an address with no backing)
 * @returns an accessor over `process.read` / `process.write` (user faults throw `UserFaultError`)
 */
export function processAccess(process: Process, toVa: (addr: bigint, length: number) => bigint): MemAccess {
  return {
    read: (addr, length) => process.read(toVa(addr, length), length),
    write: (addr, data) => process.write(toVa(addr, data.length), data),
  };
}
