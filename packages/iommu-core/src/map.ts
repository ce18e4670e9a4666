/**
 * Map, unmap, page-size selection and IOTLB gather/sync (iommu.c `iommu_pgsize`, `iommu_map`,
 * `iommu_map_nosync`, `iommu_sync_map`, `iommu_map_sg`, `__iommu_unmap`, `iommu_unmap`, `iommu_unmap_fast`,
 * `iommu_iova_to_phys`; include/linux/iommu.h gather helpers).
 *
 * Changes (additive only): `iommuMapSg` (`iommu_map_sg`, moved here from dma-iommu.ts).
 *
 * @remarks
 * Error style: `iommuMap*` throw `ErrnoError` where Linux returns `-errno` (after unrolling what was
 * mapped, as Linux does); `iommuUnmap*` return the bytes unmapped (0 on error, as Linux);
 * `iommuIovaToPhys` returns 0n for "no translation". Addresses and sizes are `bigint` (u64).
 * The gather is io-pgtable's `IommuIotlbGather` (byte addresses as numbers).
 */

import { ErrnoError } from '@iommu-ts/base';
import { IommuIotlbGather } from '@iommu-ts/io-pgtable';
import {
  __IOMMU_DOMAIN_PAGING,
  IOMMU_DOMAIN_BLOCKED,
  IOMMU_DOMAIN_IDENTITY,
  type IommuDomain,
} from './domain.js';

/** `GFP_KERNEL` (0 in this model: may sleep). */
export const GFP_KERNEL = 0;
/** `GFP_ATOMIC` marker bit (informational). */
export const GFP_ATOMIC = 1 << 0;
/** `__GFP_DMA`: refused by `iommuMap` (warn, `EINVAL`). */
export const __GFP_DMA = 1 << 1;
/** `__GFP_HIGHMEM`: refused by `iommuMap`. */
export const __GFP_HIGHMEM = 1 << 2;
/** `__GFP_DMA32`: refused by `iommuMap`. */
export const __GFP_DMA32 = 1 << 3;
/** `__GFP_COMP`: refused by `iommuMap`. */
export const __GFP_COMP = 1 << 4;

/** Result of {@link iommuPgsize}: the page size to use and how many such pages. */
export interface IommuPgsizeResult {
  /** Page size in bytes. */
  pgsize: number;
  /** Number of pages of `pgsize` to map or unmap in one driver call. */
  count: number;
}

// Bit scans on a non-zero u64 through its two 32-bit halves (Math.clz32), not bit by bit.
const ffs64 = (x: bigint): number => {
  const lo = Number(x & 0xffff_ffffn);
  if (lo !== 0) return 31 - Math.clz32(lo & -lo);
  const hi = Number((x >> 32n) & 0xffff_ffffn);
  return 63 - Math.clz32(hi & -hi);
};
const fls64 = (x: bigint): number => {
  const hi = Number((x >> 32n) & 0xffff_ffffn);
  return hi !== 0 ? 63 - Math.clz32(hi) : 31 - Math.clz32(Number(x & 0xffff_ffffn));
};
const bitsUpTo = (n: number): bigint => (1n << BigInt(n + 1)) - 1n;

/**
 * `iommu_pgsize(domain, iova, paddr, size, &count)`: choose the largest page size allowed by
 * `size` and by the alignment of `iova | paddr`, and how many of them to use before a larger size
 * becomes possible.
 *
 * @param pgsizeBitmap - the domain's page sizes
 * @param iova - the IOVA (u64)
 * @param paddr - the physical address (u64); unmap passes `iova`
 * @param size - bytes left (u64, positive)
 * @throws Error if no page size fits (Linux `BUG_ON`; prevented by the callers' alignment check)
 */
export function iommuPgsize(
  pgsizeBitmap: bigint,
  iova: bigint,
  paddr: bigint,
  size: bigint,
): IommuPgsizeResult {
  const merge = iova | paddr;
  let pgsizes = pgsizeBitmap & bitsUpTo(fls64(size));
  if (merge !== 0n) pgsizes &= bitsUpTo(ffs64(merge));
  if (pgsizes === 0n) throw new Error('iommu_pgsize: no suitable page size (BUG)');
  const idx = fls64(pgsizes);
  const pgsize = 1n << BigInt(idx);
  let span = size;
  const bigger = pgsizeBitmap & ~bitsUpTo(idx);
  if (bigger !== 0n) {
    const next = 1n << BigInt(ffs64(bigger));
    if (((iova ^ paddr) & (next - 1n)) === 0n) {
      const offset = next - (merge & (next - 1n));
      const offsetEnd = offset + next;
      if (offsetEnd <= 0xffff_ffff_ffff_ffffn && offsetEnd <= size) span = offset;
    }
  }
  return { pgsize: Number(pgsize), count: Number(span >> BigInt(idx)) };
}

function minPagesz(domain: IommuDomain): bigint {
  return 1n << BigInt(ffs64(domain.pgsizeBitmap));
}

/**
 * `iommu_map_nosync(domain, iova, paddr, size, prot, gfp)`: map without `iotlb_sync_map`.
 *
 * @remarks
 * Loops over {@link iommuPgsize} calling the driver's `mapPages`; on a driver error, unmaps what this
 * call mapped and throws the error (the intended behaviour; spec §11.3 baseline regression not
 * reproduced). `size` 0 maps nothing.
 *
 * @throws ErrnoError `EINVAL` for a non-paging domain, bad GFP flags, or `iova | paddr | size` not a
 *   multiple of the smallest page size; `ENODEV` without `mapPages` or page sizes; the driver's error
 */
export function iommuMapNosync(
  domain: IommuDomain,
  iova: bigint,
  paddr: bigint,
  size: bigint,
  prot: number,
  gfp = GFP_KERNEL,
): void {
  if ((domain.type & __IOMMU_DOMAIN_PAGING) === 0)
    throw new ErrnoError('EINVAL', 'domain is not a paging domain');
  const mapPages = domain.ops.mapPages;
  if (!mapPages || domain.pgsizeBitmap === 0n) throw new ErrnoError('ENODEV', 'domain cannot map');
  if (gfp & (__GFP_COMP | __GFP_DMA | __GFP_DMA32 | __GFP_HIGHMEM))
    throw new ErrnoError('EINVAL', 'bad gfp flags for iommu_map');
  const min = minPagesz(domain);
  if ((iova | paddr | size) % min !== 0n)
    throw new ErrnoError(
      'EINVAL',
      `unaligned: iova 0x${iova.toString(16)} pa 0x${paddr.toString(16)} size 0x${size.toString(16)} min_pagesz 0x${min.toString(16)}`,
    );
  const origIova = iova;
  const origSize = size;
  let err: unknown = null;
  while (size > 0n) {
    const { pgsize, count } = iommuPgsize(domain.pgsizeBitmap, iova, paddr, size);
    let mapped = 0;
    try {
      mapped = mapPages.call(domain.ops, domain, iova, paddr, pgsize, count, prot, gfp);
    } catch (e) {
      const m = (e as { mapped?: unknown }).mapped;
      mapped = typeof m === 'number' ? m : 0;
      err = e;
    }
    size -= BigInt(mapped);
    if (err !== null) break;
    if (mapped === 0) {
      err = new ErrnoError('EINVAL', 'driver mapped nothing');
      break;
    }
    iova += BigInt(mapped);
    paddr += BigInt(mapped);
  }
  if (err !== null) {
    iommuUnmap(domain, origIova, origSize - size);
    throw err;
  }
}

/**
 * `iommu_sync_map(domain, iova, size)`: the driver's `iotlbSyncMap`, if any.
 * @throws ErrnoError the driver's error
 */
export function iommuSyncMap(domain: IommuDomain, iova: bigint, size: bigint): void {
  domain.ops.iotlbSyncMap?.(domain, iova, size);
}

/**
 * `iommu_map(domain, iova, paddr, size, prot, gfp)`: map then sync; a sync failure unmaps the
 * whole range and is thrown.
 *
 * @param domain - a paging domain
 * @param iova - first IOVA (u64)
 * @param paddr - first physical address (u64)
 * @param size - bytes (u64)
 * @param prot - `IOMMU_READ | IOMMU_WRITE | ...`
 * @param gfp - allocation flags, default `GFP_KERNEL`
 * @throws ErrnoError see {@link iommuMapNosync}
 */
export function iommuMap(
  domain: IommuDomain,
  iova: bigint,
  paddr: bigint,
  size: bigint,
  prot: number,
  gfp = GFP_KERNEL,
): void {
  iommuMapNosync(domain, iova, paddr, size, prot, gfp);
  try {
    iommuSyncMap(domain, iova, size);
  } catch (e) {
    iommuUnmap(domain, iova, size);
    throw e;
  }
}

/**
 * One entry for {@link iommuMapSg}: the physical location and length of a buffer (a structural
 * subset of the DMA layer's `Scatterlist`).
 */
export interface IommuSgEntry {
  /** Physical address of the entry's page, bytes. */
  readonly page: number;
  /** Byte offset of the buffer from `page`. */
  readonly offset: number;
  /** Buffer length in bytes. */
  readonly length: number;
  /**
   * `sg_dma_is_bus_address`: the entry is reached through a PCI bus address (P2P DMA) and is not
   * mapped in the IOMMU. Absent means false.
   */
  readonly busAddress?: boolean;
}

/**
 * `iommu_map_sg(domain, iova, sg, nents, prot, gfp)`: map the entries back to back from `iova`.
 *
 * @remarks
 * Entries whose physical addresses follow on from each other are merged into one run, and each run
 * goes through {@link iommuMapNosync}; entries flagged {@link IommuSgEntry.busAddress} are skipped
 * (they still end the current run when not contiguous with it). After the last run a single
 * {@link iommuSyncMap} covers everything mapped. If any step fails, everything this call mapped is
 * unmapped and the error is thrown (Linux returns it as a negative value).
 *
 * @param domain - a paging domain
 * @param iova - first IOVA (u64)
 * @param sg - the entries, in order
 * @param prot - `IOMMU_READ | IOMMU_WRITE | ...`
 * @param gfp - allocation flags, default `GFP_KERNEL`
 * @returns the number of bytes mapped (Linux `ssize_t` result)
 * @throws ErrnoError as {@link iommuMapNosync}, or the driver's `iotlbSyncMap` error
 */
export function iommuMapSg(
  domain: IommuDomain,
  iova: bigint,
  sg: readonly IommuSgEntry[],
  prot: number,
  gfp = GFP_KERNEL,
): bigint {
  let done = 0n;
  let runStart = 0;
  let runLen = 0;
  const flushRun = (): void => {
    iommuMapNosync(domain, iova + done, BigInt(runStart), BigInt(runLen), prot, gfp);
    done += BigInt(runLen);
    runLen = 0;
  };
  try {
    for (const ent of sg) {
      const phys = ent.page + ent.offset;
      if (runLen !== 0 && phys !== runStart + runLen) flushRun();
      if (ent.busAddress) continue;
      if (runLen === 0) runStart = phys;
      runLen += ent.length;
    }
    if (runLen !== 0) flushRun();
    iommuSyncMap(domain, iova, done);
  } catch (e) {
    iommuUnmap(domain, iova, done);
    throw e;
  }
  return done;
}

function unmapInner(domain: IommuDomain, iova: bigint, size: bigint, gather: IommuIotlbGather): bigint {
  if ((domain.type & __IOMMU_DOMAIN_PAGING) === 0) return 0n;
  const unmapPages = domain.ops.unmapPages;
  if (!unmapPages || domain.pgsizeBitmap === 0n) return 0n;
  const min = minPagesz(domain);
  if ((iova | size) % min !== 0n) return 0n;
  let unmapped = 0n;
  while (unmapped < size) {
    const { pgsize, count } = iommuPgsize(domain.pgsizeBitmap, iova, iova, size - unmapped);
    const n = unmapPages.call(domain.ops, domain, iova, pgsize, count, gather);
    if (n === 0) break;
    // A driver that does not use the gather still gets its iotlb_sync.
    if (gather.start >= gather.end) gather.addRange(Number(iova), Number(size));
    iova += BigInt(n);
    unmapped += BigInt(n);
  }
  return unmapped;
}

/**
 * `iommu_unmap(domain, iova, size)`: unmap and sync.
 *
 * @returns bytes unmapped: `iova + result` is where unmapping stopped; 0 for a non-paging domain,
 *   missing ops, misalignment, or nothing mapped at `iova`. A block mapped by one `iommuMap` cannot
 *   be split: unmapping part of it returns 0 (io-pgtable-arm).
 */
export function iommuUnmap(domain: IommuDomain, iova: bigint, size: bigint): bigint {
  const gather = new IommuIotlbGather();
  const r = unmapInner(domain, iova, size, gather);
  iommuIotlbSync(domain, gather);
  return r;
}

/**
 * `iommu_unmap_fast(domain, iova, size, gather)`: unmap, leaving the sync to the caller.
 * @returns bytes unmapped, as {@link iommuUnmap}
 */
export function iommuUnmapFast(
  domain: IommuDomain,
  iova: bigint,
  size: bigint,
  gather: IommuIotlbGather,
): bigint {
  return unmapInner(domain, iova, size, gather);
}

/**
 * `iommu_iova_to_phys(domain, iova)`: IDENTITY → `iova`; BLOCKED → 0n; else the driver's
 * `iovaToPhys` (0n if it has none).
 */
export function iommuIovaToPhys(domain: IommuDomain, iova: bigint): bigint {
  if (domain.type === IOMMU_DOMAIN_IDENTITY) return iova;
  if (domain.type === IOMMU_DOMAIN_BLOCKED) return 0n;
  return domain.ops.iovaToPhys?.(domain, iova) ?? 0n;
}

/**
 * `iommu_iotlb_sync(domain, gather)`: call the driver's `iotlbSync` if it exists and the gather is
 * non-empty (`start < end`), then re-initialise the gather.
 */
export function iommuIotlbSync(domain: IommuDomain, gather: IommuIotlbGather): void {
  if (domain.ops.iotlbSync && gather.start < gather.end) domain.ops.iotlbSync(domain, gather);
  gather.init();
}

/** `iommu_flush_iotlb_all(domain)`: the driver's `flushIotlbAll`, if any. */
export function iommuFlushIotlbAll(domain: IommuDomain): void {
  domain.ops.flushIotlbAll?.(domain);
}

/**
 * `iommu_iotlb_gather_add_page(domain, gather, iova, size)`: sync first if the page size changes or
 * the range is disjoint, then record the page.
 */
export function iommuIotlbGatherAddPage(
  domain: IommuDomain,
  gather: IommuIotlbGather,
  iova: number,
  size: number,
): void {
  if ((gather.pgsize !== 0 && gather.pgsize !== size) || gather.isDisjoint(iova, size))
    iommuIotlbSync(domain, gather);
  gather.pgsize = size;
  gather.addRange(iova, size);
}

/** `iommu_iotlb_gather_queued(gather)`: whether flush-queue mode suppresses per-page invalidation. */
export function iommuIotlbGatherQueued(gather: IommuIotlbGather | null): boolean {
  return gather?.queued ?? false;
}
