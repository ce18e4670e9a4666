/**
 * `struct iopt_area`: a range of IOVA in one io_pagetable backed by a slice of an `iopt_pages`,
 * and the functions of pages.c that move that slice's PFNs into and out of IOMMU domains
 * (`iopt_area_fill_domain(s)`, `iopt_area_unfill_domain(s)`, `batch_to_domain`,
 * `batch_iommu_map_small`, `iopt_area_unmap_domain`).
 *
 * @remarks
 * IOVAs are `bigint` (u64); page indexes are numbers. The area starts `pageOffset` bytes into
 * page `pagesStart` of its pages and ends inside page `pagesLast`. Mapping gives `iommuMap` the
 * longest runs of physically contiguous PFNs so the core can pick large page sizes, or one
 * `PAGE_SIZE` mapping per page when the io_pagetable has large pages disabled (which keeps every
 * page individually unmappable for VFIO type1 v1 splitting).
 *
 * Error style: throws `ErrnoError`; a failed fill leaves domains, pins and counters unchanged.
 */

import type { IntervalTreeNode } from '@iommu-ts/interval-tree';
import { type IommuDomain, iommuMap, iommuUnmap } from '@iommu-ts/iommu-core';
import type { IoPagetable } from './io-pagetable.js';
import { IOPT_PAGE_SIZE, type IoptIndexRange, type IoptPages } from './pages.js';

const PAGE = IOPT_PAGE_SIZE;
const BPAGE = BigInt(IOPT_PAGE_SIZE);

/**
 * One area of an {@link IoPagetable}; see the file comment.
 */
export class IoptArea {
  /** The io_pagetable holding the area (`iopt`). */
  readonly iopt: IoPagetable;
  /** The pages supplying the PFNs (`pages`); the area holds one reference. */
  readonly pages: IoptPages;
  /** First IOVA (`node.start`). */
  readonly iova: bigint;
  /** Last IOVA, inclusive (`node.last`). */
  readonly lastIova: bigint;
  /** Bytes into the first page where the area starts (`page_offset`). */
  readonly pageOffset: number;
  /** First page index in `pages` (`pages_node.start`). */
  readonly pagesStart: number;
  /** Last page index in `pages`, inclusive (`pages_node.last`). */
  readonly pagesLast: number;
  /** `IOMMU_READ | IOMMU_WRITE | ...` used for every domain mapping (`iommu_prot`). */
  readonly iommuProt: number;
  /**
   * The domain designated as holding this area's PFNs (`storage_domain`): the first domain it was
   * filled into, moved to a remaining domain when that one is removed; null while the area is in
   * no domain. The PFNs themselves live in the pages' store in this model.
   */
  storageDomain: IommuDomain | null = null;
  /** In-kernel access pins made through this area (`num_accesses`). */
  numAccesses = 0;
  /** Set while an unmap is asking accesses to let go: new access pins/rw fail (`prevent_access`). */
  preventAccess = false;
  /** Objects (HW queues) locking the area; unmap fails with EBUSY while non-zero (`num_locks`). */
  numLocks = 0;
  /** The node in the io_pagetable's area tree, while inserted. */
  node: IntervalTreeNode<bigint, IoptArea> | null = null;
  /** The node in `pages.domainsItree`, while the area is filled into domains (`pages_node`). */
  pagesNode: IntervalTreeNode<number, IoptArea> | null = null;

  /**
   * Areas are created by the io_pagetable (`iopt_insert_area`).
   * @param iopt - owner
   * @param pages - PFN supplier (the caller hands over one reference)
   * @param iova - first IOVA
   * @param lastIova - last IOVA
   * @param startByte - byte offset of `iova` in `pages` (u64)
   * @param iommuProt - mapping permissions
   * @internal
   */
  constructor(
    iopt: IoPagetable,
    pages: IoptPages,
    iova: bigint,
    lastIova: bigint,
    startByte: bigint,
    iommuProt: number,
  ) {
    this.iopt = iopt;
    this.pages = pages;
    this.iova = iova;
    this.lastIova = lastIova;
    this.iommuProt = iommuProt;
    this.pageOffset = Number(startByte % BPAGE);
    this.pagesStart = Number(startByte / BPAGE);
    this.pagesLast = Number((startByte + (lastIova - iova)) / BPAGE);
  }

  /** Length in bytes (`iopt_area_length`). */
  get length(): bigint {
    return this.lastIova - this.iova + 1n;
  }

  /**
   * Byte offset in the pages of `iova` (`iopt_area_start_byte`).
   * @param iova - an IOVA inside the area
   */
  startByte(iova: bigint): bigint {
    return iova - this.iova + BigInt(this.pageOffset) + BigInt(this.pagesStart) * BPAGE;
  }

  /**
   * Page index of `iova` (`iopt_area_iova_to_index`).
   * @param iova - an IOVA inside the area
   */
  iovaToIndex(iova: bigint): number {
    return Number(this.startByte(iova) / BPAGE);
  }

  /**
   * First IOVA of page `index` inside the area (`iopt_area_index_to_iova`): the area's start for
   * its first page.
   * @param index - a page index of the area
   */
  indexToIova(index: number): bigint {
    if (index === this.pagesStart) return this.iova;
    return this.iova - BigInt(this.pageOffset) + BigInt(index - this.pagesStart) * BPAGE;
  }

  /**
   * Last IOVA of page `index` inside the area (`iopt_area_index_to_iova_last`).
   * @param index - a page index of the area
   */
  indexToIovaLast(index: number): bigint {
    if (index === this.pagesLast) return this.lastIova;
    return this.iova - BigInt(this.pageOffset) + BigInt(index - this.pagesStart + 1) * BPAGE - 1n;
  }

  // ---- domains ----

  /**
   * Map the whole area into `domain` from the pages' stored PFNs (`batch_to_domain`); every index
   * must be pinned. On failure whatever this call mapped is unmapped again.
   * @param domain - a paging domain
   * @throws ErrnoError the `iommuMap` error (alignment `EINVAL`, driver errors)
   */
  mapDomain(domain: IommuDomain): void {
    const pages = this.pages;
    const small = this.iopt.largePagesDisabled;
    const end = this.lastIova + 1n;
    const prot = this.iommuProt;
    let iova = this.iova;
    let pageOffset = this.pageOffset;
    let i = this.pagesStart;
    const last = this.pagesLast;
    try {
      while (i <= last) {
        const pfn = pages.pfnAt(i);
        let n = 1;
        while (i + n <= last && pages.pfnAt(i + n) === pfn + n) n++;
        let next = iova + BigInt(n * PAGE - pageOffset);
        if (next > end) next = end;
        const pa = BigInt(pfn * PAGE + pageOffset);
        if (small) {
          // batch_iommu_map_small: one PAGE_SIZE mapping per page.
          for (let off = 0n; iova + off < next; off += BPAGE) {
            try {
              iommuMap(domain, iova + off, pa + off, BPAGE, prot);
            } catch (e) {
              iova += off;
              throw e;
            }
          }
        } else {
          iommuMap(domain, iova, pa, next - iova, prot);
        }
        iova = next;
        pageOffset = 0;
        i += n;
      }
    } catch (e) {
      if (iova !== this.iova) iommuUnmap(domain, this.iova, iova - this.iova);
      throw e;
    }
  }

  /**
   * Unmap the whole area from `domain` without unpinning (`iopt_area_unmap_domain`).
   * @param domain - a domain the area is mapped into
   * @returns bytes unmapped (the area's length unless the driver misbehaves)
   */
  unmapDomain(domain: IommuDomain): bigint {
    return iommuUnmap(domain, this.iova, this.length);
  }

  /**
   * `iopt_area_fill_domain(area, domain)`: map the area into one more domain, pinning what nobody
   * holds yet (only when the area is in no domain so far); the first domain becomes the storage
   * domain.
   * @param domain - the domain being added to the io_pagetable
   * @throws ErrnoError pin errors, `ENOMEM` (RLIMIT_MEMLOCK), map errors; nothing changes on failure
   */
  fillDomain(domain: IommuDomain): void {
    const pages = this.pages;
    const pinned = pages.fillHoles(this.pagesStart, this.pagesLast);
    this.mapAndAccount([domain], pinned);
    if (this.storageDomain === null) {
      this.storageDomain = domain;
      this.pagesNode = pages.domainsItree.insert(this.pagesStart, this.pagesLast, this);
    }
  }

  /**
   * `iopt_area_fill_domains(area, pages)`: map a new area into every domain of its io_pagetable,
   * pinning once; the first domain becomes the storage domain. No domains: nothing happens (and
   * nothing is pinned).
   * @param domains - the io_pagetable's domains, in order
   * @throws ErrnoError pin errors, `ENOMEM` (RLIMIT_MEMLOCK), map errors; nothing changes on failure
   */
  fillDomains(domains: readonly IommuDomain[]): void {
    const first = domains[0];
    if (first === undefined) return;
    const pages = this.pages;
    const pinned = pages.fillHoles(this.pagesStart, this.pagesLast);
    this.mapAndAccount(domains, pinned);
    this.storageDomain = first;
    this.pagesNode = pages.domainsItree.insert(this.pagesStart, this.pagesLast, this);
  }

  private mapAndAccount(domains: readonly IommuDomain[], pinned: readonly IoptIndexRange[]): void {
    let mapped = 0;
    try {
      for (const d of domains) {
        this.mapDomain(d);
        mapped++;
      }
      this.pages.updatePinned();
    } catch (e) {
      for (let k = 0; k < mapped; k++) this.unmapDomain(domains[k] as IommuDomain);
      this.pages.unpinRanges(pinned);
      throw e;
    }
  }

  /**
   * `iopt_area_unfill_domains(area, pages)`: unmap the area from every domain, then unpin and
   * uncharge what nobody else holds (area destruction).
   * @param domains - the io_pagetable's domains
   */
  unfillDomains(domains: readonly IommuDomain[]): void {
    if (this.storageDomain === null) return;
    for (const d of domains) this.unmapDomain(d);
    this.leaveDomainsTree();
  }

  /**
   * `iopt_area_unfill_domain(area, pages, domain)` for the last domain of the io_pagetable: unmap it,
   * leave the pages' domain tree and unpin what nobody else holds.
   * @param domain - the domain being removed
   */
  unfillDomain(domain: IommuDomain): void {
    this.unmapDomain(domain);
    this.leaveDomainsTree();
  }

  private leaveDomainsTree(): void {
    if (this.pagesNode !== null) {
      this.pages.domainsItree.remove(this.pagesNode);
      this.pagesNode = null;
    }
    this.storageDomain = null;
    this.pages.unfillHoles(this.pagesStart, this.pagesLast);
  }
}
