/**
 * A NIC descriptor ring in memory, as a simple network card uses it (the legacy e1000 layout: 16
 * bytes per descriptor). The driver posts descriptors with the CPU, the device fetches them and
 * writes back completion status by DMA; both sides go through a {@link MemAccess}, so the device's
 * side really crosses the IOMMU.
 *
 * Descriptor layout (little-endian):
 * - bytes 0–7: buffer address (an IOVA)
 * - bytes 8–9: length (RX: buffer size posted, packet length written back; TX: packet length)
 * - byte 11: command (TX: {@link TX_CMD_EOP}, {@link TX_CMD_RS})
 * - byte 12: status ({@link DESC_STATUS_DD}, {@link DESC_STATUS_EOP})
 * - byte 13: errors (0)
 */

import type { MemAccess } from './mem-access.js';

/** Bytes per descriptor. */
export const DESC_SIZE = 16;
/** Status: descriptor done (the device finished with it). */
export const DESC_STATUS_DD = 0x01;
/** Status: end of packet (the buffer holds a packet's last byte). */
export const DESC_STATUS_EOP = 0x02;
/** TX command: end of packet. */
export const TX_CMD_EOP = 0x01;
/** TX command: report status (write DD back when sent). */
export const TX_CMD_RS = 0x08;

/** One descriptor, decoded. */
export interface Descriptor {
  /** Buffer address (IOVA). */
  readonly addr: bigint;
  /** Length in bytes (0–65535). */
  readonly length: number;
  /** Command byte. */
  readonly cmd: number;
  /** Status byte. */
  readonly status: number;
  /** Errors byte. */
  readonly errors: number;
}

/**
 * Encode a descriptor.
 * @param d - the descriptor
 * @returns its 16 bytes
 */
export function encodeDescriptor(d: Descriptor): Uint8Array {
  const out = new Uint8Array(DESC_SIZE);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, d.addr, true);
  v.setUint16(8, d.length, true);
  out[11] = d.cmd;
  out[12] = d.status;
  out[13] = d.errors;
  return out;
}

/**
 * Decode a descriptor.
 * @param bytes - at least 16 bytes
 * @returns the descriptor
 */
export function decodeDescriptor(bytes: Uint8Array): Descriptor {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    addr: v.getBigUint64(0, true),
    length: v.getUint16(8, true),
    cmd: bytes[11] ?? 0,
    status: bytes[12] ?? 0,
    errors: bytes[13] ?? 0,
  };
}

/** A ring of `count` descriptors at IOVA `base`. */
export class DescRing {
  /**
   * @param base - IOVA of descriptor 0 (16-byte aligned)
   * @param count - descriptors in the ring, 1 or more
   * @throws Error for a misaligned base or an empty ring
   */
  constructor(
    readonly base: bigint,
    readonly count: number,
  ) {
    if (base % BigInt(DESC_SIZE) !== 0n) throw new Error('descriptor ring must be 16-byte aligned');
    if (!Number.isInteger(count) || count < 1) throw new Error('descriptor ring needs at least one entry');
  }

  /** Bytes the ring occupies. */
  get bytes(): number {
    return this.count * DESC_SIZE;
  }

  /**
   * @param index - descriptor index (taken modulo the ring size)
   * @returns the IOVA of that descriptor
   */
  addrOf(index: number): bigint {
    return this.base + BigInt((index % this.count) * DESC_SIZE);
  }

  /**
   * Read a descriptor.
   * @param mem - CPU or device side
   * @param index - descriptor index
   * @returns the descriptor
   * @throws what `mem` throws
   */
  read(mem: MemAccess, index: number): Descriptor {
    return decodeDescriptor(mem.read(this.addrOf(index), DESC_SIZE));
  }

  /**
   * Write a descriptor.
   * @param mem - CPU or device side
   * @param index - descriptor index
   * @param d - the descriptor
   * @throws what `mem` throws
   */
  write(mem: MemAccess, index: number, d: Descriptor): void {
    mem.write(this.addrOf(index), encodeDescriptor(d));
  }
}

/**
 * Driver: post an empty receive buffer (status cleared).
 * @param cpu - the driver's view of memory
 * @param ring - the RX ring
 * @param index - descriptor index
 * @param buf - buffer IOVA
 * @param size - buffer size in bytes
 */
export function rxPost(cpu: MemAccess, ring: DescRing, index: number, buf: bigint, size: number): void {
  ring.write(cpu, index, { addr: buf, length: size, cmd: 0, status: 0, errors: 0 });
}

/**
 * Device: receive one packet into the next posted buffer — fetch the descriptor by DMA, DMA the
 * packet into its buffer, write the descriptor back with the length and DD | EOP.
 * @param dev - the device's DMA view
 * @param ring - the RX ring
 * @param index - descriptor index
 * @param packet - the received frame
 * @returns the buffer IOVA the packet went to
 * @throws DmaFaultError from the DMA; Error when the descriptor is not posted (DD set) or its
 *   buffer is too small
 */
export function deviceRx(dev: MemAccess, ring: DescRing, index: number, packet: Uint8Array): bigint {
  const d = ring.read(dev, index);
  if ((d.status & DESC_STATUS_DD) !== 0) throw new Error(`RX descriptor ${index} not posted (DD set)`);
  if (d.length < packet.length)
    throw new Error(`RX descriptor ${index}: buffer of ${d.length} bytes < ${packet.length}`);
  dev.write(d.addr, packet);
  ring.write(dev, index, {
    addr: d.addr,
    length: packet.length,
    cmd: 0,
    status: DESC_STATUS_DD | DESC_STATUS_EOP,
    errors: 0,
  });
  return d.addr;
}

/**
 * Driver: post a packet for transmission (the packet is already in its buffer).
 * @param cpu - the driver's view of memory
 * @param ring - the TX ring
 * @param index - descriptor index
 * @param buf - buffer IOVA
 * @param length - packet length in bytes
 */
export function txPost(cpu: MemAccess, ring: DescRing, index: number, buf: bigint, length: number): void {
  ring.write(cpu, index, { addr: buf, length, cmd: TX_CMD_EOP | TX_CMD_RS, status: 0, errors: 0 });
}

/**
 * Device: transmit one posted packet — fetch the descriptor, read the packet by DMA, write DD back.
 * @param dev - the device's DMA view
 * @param ring - the TX ring
 * @param index - descriptor index
 * @returns the packet bytes the device read
 * @throws DmaFaultError from the DMA; Error when the descriptor is already done
 */
export function deviceTx(dev: MemAccess, ring: DescRing, index: number): Uint8Array {
  const d = ring.read(dev, index);
  if ((d.status & DESC_STATUS_DD) !== 0) throw new Error(`TX descriptor ${index} already done`);
  const packet = dev.read(d.addr, d.length);
  if ((d.cmd & TX_CMD_RS) !== 0) ring.write(dev, index, { ...d, status: DESC_STATUS_DD });
  return packet;
}
