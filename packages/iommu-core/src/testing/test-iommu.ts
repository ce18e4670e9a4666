/**
 * A small IOMMU driver and its "hardware" for tests of the packages built on iommu-core.
 *
 * Changes (additive only): none yet.
 *
 * @remarks
 * Paging domains are io-pgtable `ARM_64_LPAE_S1` tables (4K granule, 48-bit IOVA, page sizes
 * 4K | 2M | 1G by default) in a {@link PageTableMemory} (io-pgtable's in-memory arena by default, or
 * the machine's `PhysicalMemory`). Static identity and blocked domains; `set_dev_pasid` on every
 * domain type; SVA domains that share an arm64 `Mm`'s CPU page table; reserved regions with a
 * hardware MSI window. The "hardware" side, {@link TestIommu.translate}, walks the descriptors
 * itself (it does not call io-pgtable) and can cache translations in an IOTLB that only
 * `iotlb_sync` / `flush_iotlb_all` invalidate, so a missing invalidation shows.
 *
 * Every driver call is recorded in {@link TestIommu.calls} so tests can assert exactly what the
 * core asked for (e.g. the `(iova, paddr, pgsize, count)` of each `map_pages`).
 */

import { type ErrnoCode, ErrnoError } from '@iommu-ts/base';
import {
  allocIoPgtableOps,
  freeIoPgtableOps,
  InMemoryPageTableMemory,
  type IommuIotlbGather,
  IoPgtableFmt,
  type IoPgtableOps,
  type PageTableMemory,
} from '@iommu-ts/io-pgtable';
import type { Mm } from '@iommu-ts/mm';
import { type Device, PlatformDevice } from '../device.js';
import {
  IOMMU_DOMAIN_BLOCKED,
  IOMMU_DOMAIN_IDENTITY,
  IOMMU_READ,
  IOMMU_WRITE,
  IommuDomain,
  type IommuDomainGeometry,
} from '../domain.js';
import {
  IOMMU_FAULT_PERM_EXEC,
  IOMMU_FAULT_PERM_PRIV,
  IOMMU_FAULT_PERM_WRITE,
  type IommuFault,
  type IommuPageResponse,
} from '../fault.js';
import type { FwNode } from '../fwspec.js';
import { genericDeviceGroup, genericSingleDeviceGroup, type IommuGroup, pciDeviceGroup } from '../group.js';
import { IommuDevice } from '../iommu-device.js';
import { IommuCap, type IommuDevFeature, type IommuDomainOps, type IommuOps } from '../iommu-ops.js';
import type { IommuSubsystem } from '../iommu-subsystem.js';
import type { OfPhandleArgs } from '../of-iommu.js';
import { PciDevice } from '../pci.js';
import { type IommuResvRegion, IommuResvType } from '../resv-region.js';

/** One recorded driver call. */
export type TestIommuCall =
  | { op: 'probe_device' | 'release_device' | 'probe_finalize'; dev: string }
  | { op: 'attach_dev'; dev: string; domain: IommuDomain; old: IommuDomain | null }
  | { op: 'set_dev_pasid'; dev: string; pasid: number; domain: IommuDomain; old: IommuDomain | null }
  | { op: 'map_pages'; iova: bigint; paddr: bigint; pgsize: number; count: number; prot: number }
  | { op: 'unmap_pages'; iova: bigint; pgsize: number; count: number; unmapped: number }
  | { op: 'iotlb_sync'; start: number; end: number }
  | { op: 'iotlb_sync_map'; iova: bigint; size: bigint }
  | { op: 'flush_iotlb_all' }
  | { op: 'domain_free'; domain: IommuDomain }
  | { op: 'page_response'; dev: string; msg: IommuPageResponse }
  | { op: 'mm_invalidate'; domain: IommuDomain; start: number; end: number }
  | { op: 'mm_release'; domain: IommuDomain }
  | { op: 'dev_enable_feat' | 'dev_disable_feat'; dev: string; feat: IommuDevFeature };

/** Why {@link TestIommu.translate} refused an access. */
export type TestIommuFaultReason =
  | 'bad_streamid' // no device with that stream ID / requester ID
  | 'bypass_blocked' // the stream is attached to a blocked domain (or nothing)
  | 'bad_pasid' // no domain at that PASID
  | 'translation' // no valid descriptor
  | 'permission' // mapped, but not for that access
  | 'address_size'; // IOVA above the input size

/** Result of {@link TestIommu.translate}. */
export type TestIommuTranslation =
  | {
      /** Physical address (u64). */
      pa: bigint;
      /** Size of the leaf that translated it (bytes). */
      pgsize: number;
      /** Whether it came from the IOTLB. */
      cached: boolean;
      /** Whether the address is in the untranslated MSI window. */
      msi: boolean;
    }
  | {
      /** Why the access faulted. */
      fault: TestIommuFaultReason;
      /** The domain the stream/PASID is attached to, if any. */
      domain: IommuDomain | null;
    };

/** Options of {@link TestIommu}. */
export interface TestIommuOptions {
  /** Instance name; default `test-iommu`. */
  name?: string;
  /** Firmware node; default `null` (then devices need no fwspec: PCI by RID, platform by `firmwareIds`). */
  fwnode?: FwNode | null;
  /** `max_pasids` of the instance; default 2^20. */
  maxPasids?: number;
  /** Table memory; default a new `InMemoryPageTableMemory`. */
  memory?: PageTableMemory;
  /** Page sizes of paging domains; default 4K | 2M | 1G. */
  pgsizeBitmap?: bigint;
  /** Input address size in bits; default 48. */
  ias?: number;
  /** Hardware MSI window `[start, start + length)`; default 0xFEE0_0000 + 1 MiB; `null` for none. */
  msiWindow?: { start: bigint; length: bigint } | null;
  /** Extra reserved regions per device. */
  resvRegions?: (dev: Device) => IommuResvRegion[];
  /** `def_domain_type`; default no opinion. */
  defDomainType?: (dev: Device) => number;
  /** Group policy: `'auto'` (default: PCI rules for PCI, one group per other device), `'generic'`, `'single'`. */
  grouping?: 'auto' | 'generic' | 'single';
  /** `is_attach_deferred`. */
  isAttachDeferred?: (dev: Device) => boolean;
  /** Cache translations in an IOTLB (invalidated only by `iotlb_sync` / `flush_iotlb_all`). Default false. */
  iotlb?: boolean;
  /** Whether paging domains accept `IOMMU_HWPT_ALLOC_PASID` via `domainAllocPagingFlags`; default uses `domainAllocPaging`. */
  pagingFlags?: boolean;
  /** A static release domain: `'blocked'`, `'identity'` or none (default). */
  releaseDomain?: 'blocked' | 'identity' | null;
}

/** Per stream (device ID) state of the test IOMMU: its RID domain and PASID table. */
interface TestStream {
  dev: Device;
  domain: IommuDomain | null;
  pasids: Map<number, IommuDomain>;
}

/** A paging domain of the test driver: an io-pgtable LPAE stage-1 table. */
export class TestPagingDomain extends IommuDomain {
  /** The io-pgtable instance. */
  readonly pgtbl: IoPgtableOps;
  /** Root table PA (TTBR). */
  readonly ttbr: number;
  /** The driver that allocated it. */
  readonly iommuDriver: TestIommu;

  /** @internal */
  constructor(driver: TestIommu, ops: IommuDomainOps, pgtbl: IoPgtableOps, geometry: IommuDomainGeometry) {
    super(ops, { pgsizeBitmap: pgtbl.cfg.pgsizeBitmap, geometry });
    this.pgtbl = pgtbl;
    this.iommuDriver = driver;
    this.ttbr = Number(pgtbl.cfg.armLpaeS1Cfg?.ttbr ?? 0n);
  }
}

const DESC_VALID = 1n;
const DESC_TABLE = 2n;
const AP_UNPRIV = 1n << 6n;
const AP_RDONLY = 1n << 7n;
const DBM = 1n << 51n;
const UXN = 1n << 54n;
const OA_MASK = ((1n << 48n) - 1n) & ~0xfffn;

/**
 * Walk an LPAE stage-1, 4K-granule table independently of io-pgtable.
 *
 * @param read64 - reads a 64-bit descriptor at a PA
 * @param root - root table PA
 * @param iova - input address
 * @param ias - input size in bits (≤ 48)
 * @returns the leaf descriptor and its size, or `null` for no valid translation
 */
export function lpaeS1Walk(
  read64: (pa: number) => bigint,
  root: number,
  iova: bigint,
  ias: number,
): { desc: bigint; pgsize: number; pa: bigint } | null {
  const levels = Math.ceil((ias - 12) / 9);
  let table = root;
  for (let lvl = 4 - levels; lvl <= 3; lvl++) {
    const shift = 12 + 9 * (3 - lvl);
    const idx = Number(
      (iova >> BigInt(shift)) & (lvl === 4 - levels ? (1n << BigInt(ias - shift)) - 1n : 0x1ffn),
    );
    const desc = read64(table + idx * 8);
    if ((desc & DESC_VALID) === 0n) return null;
    if (lvl < 3 && (desc & DESC_TABLE) !== 0n) {
      table = Number(desc & OA_MASK);
      continue;
    }
    if (lvl === 3 && (desc & DESC_TABLE) === 0n) return null;
    if (lvl === 0) return null;
    const size = 1n << BigInt(shift);
    const pa = (desc & OA_MASK & ~(size - 1n)) | (iova & (size - 1n));
    return { desc, pgsize: Number(size), pa };
  }
  return null;
}

/**
 * The test IOMMU: driver ops ({@link TestIommu.ops}), one instance ({@link TestIommu.iommu}),
 * and the hardware-side {@link TestIommu.translate}.
 */
export class TestIommu {
  /** The registered instance. */
  readonly iommu: IommuDevice;
  /** The driver ops. */
  readonly ops: IommuOps;
  /** Table memory of paging domains. */
  readonly memory: PageTableMemory;
  /** Page sizes of paging domains. */
  readonly pgsizeBitmap: bigint;
  /** Input size. */
  readonly ias: number;
  /** Static identity domain. */
  readonly identityDomain: IommuDomain;
  /** Static blocked domain. */
  readonly blockedDomain: IommuDomain;
  /** Every driver call, in order. */
  readonly calls: TestIommuCall[] = [];
  /** The page responses sent (`page_response` op). */
  readonly pageResponses: { dev: Device; evt: IommuFault; msg: IommuPageResponse }[] = [];
  /** Stream table: stream ID → state. */
  readonly streams = new Map<number, TestStream>();
  /** Make the next `attach_dev` (or `set_dev_pasid`) calls fail with these errnos, in order. */
  readonly failNext: { attach: ErrnoCode[]; setDevPasid: ErrnoCode[]; probe: ErrnoCode[] } = {
    attach: [],
    setDevPasid: [],
    probe: [],
  };
  /**
   * Device-TLB invalidation for a domain's range (set by `TestIommuHw`, which sends the ATS
   * invalidations): called by the SVA domain ops after the IOTLB invalidation. `end` exclusive.
   */
  atcInvalidator: ((domain: IommuDomain, start: bigint, end: bigint) => void) | undefined;
  /**
   * Device-TLB invalidation of everything a device cached for one PASID (set by `TestIommuHw`):
   * called when the domain at that PASID is replaced or removed, as Linux's drivers invalidate
   * the ATC when they tear a PASID entry down.
   */
  atcPasidInvalidator: ((dev: Device, pasid: number) => void) | undefined;
  private readonly options: TestIommuOptions;
  private readonly tlb = new Map<IommuDomain, Map<bigint, { pa: bigint; desc: bigint; pgsize: number }>>();

  /** @param options - see {@link TestIommuOptions} */
  constructor(options: TestIommuOptions = {}) {
    this.options = options;
    this.memory = options.memory ?? new InMemoryPageTableMemory();
    this.pgsizeBitmap = options.pgsizeBitmap ?? 0x4020_1000n;
    this.ias = options.ias ?? 48;
    this.iommu = new IommuDevice(options.name ?? 'test-iommu', {
      fwnode: options.fwnode ?? null,
      maxPasids: options.maxPasids ?? 1 << 20,
    });
    const self = this;
    const streamsOf = (dev: Device) => this.streamIds(dev);
    const attachOps = (kind: 'identity' | 'blocked'): IommuDomainOps => ({
      attachDev(domain, dev, old) {
        self.attachDev(domain, dev, old);
      },
      setDevPasid(domain, dev, pasid, old) {
        self.calls.push({ op: 'set_dev_pasid', dev: dev.name, pasid, domain, old });
        if (kind !== 'blocked') self.takeFailure('setDevPasid');
        for (const sid of streamsOf(dev)) {
          const s = self.streams.get(sid);
          if (!s) continue;
          if (kind === 'blocked') s.pasids.delete(pasid);
          else s.pasids.set(pasid, domain);
        }
        if (old !== null) self.atcPasidInvalidator?.(dev, pasid);
      },
    });
    this.identityDomain = new IommuDomain(attachOps('identity'), { type: IOMMU_DOMAIN_IDENTITY });
    this.blockedDomain = new IommuDomain(attachOps('blocked'), { type: IOMMU_DOMAIN_BLOCKED });
    const pagingOps = this.pagingDomainOps();
    const releaseDomain =
      options.releaseDomain === 'blocked'
        ? this.blockedDomain
        : options.releaseDomain === 'identity'
          ? this.identityDomain
          : undefined;
    const ops: IommuOps = {
      name: 'test-iommu',
      identityDomain: this.identityDomain,
      blockedDomain: this.blockedDomain,
      ...(releaseDomain ? { releaseDomain } : {}),
      capable: (_dev, cap) => cap === IommuCap.CACHE_COHERENCY || cap === IommuCap.DEFERRED_FLUSH,
      probeDevice: (dev) => {
        this.calls.push({ op: 'probe_device', dev: dev.name });
        this.takeFailure('probe');
        const ids = this.streamIds(dev);
        if (ids.length === 0) throw new ErrnoError('ENODEV', `${dev.name}: no stream ID`);
        for (const sid of ids) {
          if (this.streams.has(sid)) throw new ErrnoError('EBUSY', `stream ${sid} already in use`);
        }
        for (const sid of ids) this.streams.set(sid, { dev, domain: null, pasids: new Map() });
        return this.iommu;
      },
      releaseDevice: (dev) => {
        this.calls.push({ op: 'release_device', dev: dev.name });
        for (const sid of this.streamIds(dev)) this.streams.delete(sid);
      },
      probeFinalize: (dev) => {
        this.calls.push({ op: 'probe_finalize', dev: dev.name });
      },
      deviceGroup: (dev): IommuGroup => {
        const mode = options.grouping ?? 'auto';
        if (mode === 'single') return genericSingleDeviceGroup(dev);
        if (mode === 'auto' && dev instanceof PciDevice) return pciDeviceGroup(dev);
        return genericDeviceGroup(dev);
      },
      getResvRegions: (dev) => {
        const out: IommuResvRegion[] = [];
        const msi =
          options.msiWindow === undefined ? { start: 0xfee0_0000n, length: 0x10_0000n } : options.msiWindow;
        if (msi)
          out.push({ start: msi.start, length: msi.length, prot: IOMMU_WRITE, type: IommuResvType.MSI });
        out.push(...dev.firmwareResvRegions.map((r) => ({ ...r })));
        if (options.resvRegions) out.push(...options.resvRegions(dev));
        return out;
      },
      ofXlate: (dev, args: OfPhandleArgs) => {
        dev.iommu?.subsystem.iommuFwspecAddIds(dev, args.args.slice(0, 1));
      },
      pageResponse: (dev, evt, msg) => {
        this.calls.push({ op: 'page_response', dev: dev.name, msg });
        this.pageResponses.push({ dev, evt, msg });
      },
      devEnableFeat: (dev, feat) => {
        this.calls.push({ op: 'dev_enable_feat', dev: dev.name, feat });
      },
      devDisableFeat: (dev, feat) => {
        this.calls.push({ op: 'dev_disable_feat', dev: dev.name, feat });
      },
      domainAllocSva: (_dev, mm) => new TestSvaDomain(this, mm),
      ...(options.defDomainType ? { defDomainType: options.defDomainType } : {}),
      ...(options.isAttachDeferred ? { isAttachDeferred: options.isAttachDeferred } : {}),
      ...(options.pagingFlags
        ? { domainAllocPagingFlags: (_dev: Device | null, _flags: number) => this.allocPaging(pagingOps) }
        : { domainAllocPaging: () => this.allocPaging(pagingOps) }),
    };
    this.ops = ops;
  }

  /** `iommu_device_register` with this driver's ops. @throws ErrnoError as the subsystem does */
  register(sub: IommuSubsystem): void {
    sub.iommuDeviceRegister(this.iommu, this.ops);
  }

  /**
   * The stream IDs a device uses: its fwspec IDs, else its requester ID (PCI) or `firmwareIds`
   * (platform).
   */
  streamIds(dev: Device): number[] {
    const fw = dev.iommu?.fwspec;
    if (fw && fw.ids.length > 0) return [...fw.ids];
    if (dev instanceof PciDevice) return [dev.requesterId];
    if (dev instanceof PlatformDevice) return [...dev.firmwareIds];
    return [];
  }

  /** Throw the next queued `setDevPasid` failure, if any (used by the SVA domain). @internal */
  failNextSetDevPasid(): void {
    this.takeFailure('setDevPasid');
  }

  private takeFailure(kind: 'attach' | 'setDevPasid' | 'probe'): void {
    const code = this.failNext[kind].shift();
    if (code) throw new ErrnoError(code, `injected ${kind} failure`);
  }

  private attachDev(domain: IommuDomain, dev: Device, old: IommuDomain | null): void {
    this.calls.push({ op: 'attach_dev', dev: dev.name, domain, old });
    this.takeFailure('attach');
    for (const sid of this.streamIds(dev)) {
      const s = this.streams.get(sid);
      if (s) s.domain = domain;
    }
  }

  private allocPaging(ops: IommuDomainOps): IommuDomain | null {
    const pending: { domain: TestPagingDomain | null } = { domain: null };
    const pgtbl = allocIoPgtableOps(
      IoPgtableFmt.ARM_64_LPAE_S1,
      {
        quirks: 0,
        pgsizeBitmap: this.pgsizeBitmap,
        ias: this.ias,
        oas: 48,
        coherentWalk: true,
        memory: this.memory,
      },
      pending,
    );
    if (!pgtbl) return null;
    const d = new TestPagingDomain(this, ops, pgtbl, {
      apertureStart: 0n,
      apertureEnd: (1n << BigInt(this.ias)) - 1n,
      forceAperture: true,
    });
    pending.domain = d;
    return d;
  }

  private pagingDomainOps(): IommuDomainOps {
    const self = this;
    return {
      attachDev(domain, dev, old) {
        self.attachDev(domain, dev, old);
      },
      setDevPasid(domain, dev, pasid, old) {
        self.calls.push({ op: 'set_dev_pasid', dev: dev.name, pasid, domain, old });
        self.takeFailure('setDevPasid');
        for (const sid of self.streamIds(dev)) self.streams.get(sid)?.pasids.set(pasid, domain);
        if (old !== null) self.atcPasidInvalidator?.(dev, pasid);
      },
      mapPages(domain, iova, paddr, pgsize, count, prot) {
        self.calls.push({ op: 'map_pages', iova, paddr, pgsize, count, prot });
        return (domain as TestPagingDomain).pgtbl.mapPages(iova, paddr, pgsize, count, prot);
      },
      unmapPages(domain, iova, pgsize, count, gather) {
        const unmapped = (domain as TestPagingDomain).pgtbl.unmapPages(iova, pgsize, count, gather);
        self.calls.push({ op: 'unmap_pages', iova, pgsize, count, unmapped });
        return unmapped;
      },
      iovaToPhys(domain, iova) {
        return BigInt((domain as TestPagingDomain).pgtbl.iovaToPhys(iova));
      },
      iotlbSync(domain, gather: IommuIotlbGather) {
        self.calls.push({ op: 'iotlb_sync', start: gather.start, end: gather.end });
        self.invalidate(domain, BigInt(gather.start), BigInt(gather.end));
      },
      flushIotlbAll(domain) {
        self.calls.push({ op: 'flush_iotlb_all' });
        self.tlb.delete(domain);
      },
      free(domain) {
        self.calls.push({ op: 'domain_free', domain });
        self.tlb.delete(domain);
        freeIoPgtableOps((domain as TestPagingDomain).pgtbl);
      },
    };
  }

  /**
   * Drop the cached translations of `domain` overlapping `[start, end]` (inclusive, bytes), as an
   * IOTLB invalidation by range would.
   * @param domain - the domain
   * @param start - first byte
   * @param end - last byte
   */
  invalidate(domain: IommuDomain, start: bigint, end: bigint): void {
    const t = this.tlb.get(domain);
    if (!t) return;
    for (const [page, e] of t) {
      if (page + BigInt(e.pgsize) - 1n >= start && page <= end) t.delete(page);
    }
  }

  /** The device whose stream ID is `sid`, or `null`. */
  deviceForStream(sid: number): Device | null {
    return this.streams.get(sid)?.dev ?? null;
  }

  /**
   * The hardware: translate one DMA access.
   *
   * @param sid - stream ID (for PCI without firmware: the requester ID)
   * @param pasid - PASID of the transaction, or `null` for none
   * @param iova - the address (u64)
   * @param access - `IOMMU_FAULT_PERM_*` bits (READ/WRITE/EXEC/PRIV)
   * @returns `{pa, pgsize, cached, msi}` or `{fault, domain}`
   */
  translate(sid: number, pasid: number | null, iova: bigint, access: number): TestIommuTranslation {
    const s = this.streams.get(sid);
    if (!s) return { fault: 'bad_streamid', domain: null };
    let domain: IommuDomain | null = s.domain;
    const msi =
      this.options.msiWindow === undefined
        ? { start: 0xfee0_0000n, length: 0x10_0000n }
        : this.options.msiWindow;
    if (
      pasid === null &&
      msi &&
      iova >= msi.start &&
      iova < msi.start + msi.length &&
      access & IOMMU_FAULT_PERM_WRITE
    )
      return { pa: iova, pgsize: 4096, cached: false, msi: true };
    if (pasid !== null) {
      domain = s.pasids.get(pasid) ?? null;
      if (!domain) return { fault: 'bad_pasid', domain: null };
    }
    if (!domain || domain.type === IOMMU_DOMAIN_BLOCKED) return { fault: 'bypass_blocked', domain };
    if (domain.type === IOMMU_DOMAIN_IDENTITY) return { pa: iova, pgsize: 4096, cached: false, msi: false };
    let root: number;
    let read64: (pa: number) => bigint;
    let ias = this.ias;
    if (domain instanceof TestSvaDomain) {
      if (domain.released) return { fault: 'bypass_blocked', domain };
      const mm = domain.mm as Mm;
      root = mm.pgd;
      ias = 48;
      const mem = mm.machine.memory;
      read64 = (pa) => mem.read64(pa);
    } else if (domain instanceof TestPagingDomain) {
      root = domain.ttbr;
      const mem = domain.pgtbl.memory;
      read64 = (pa) => mem.read64(pa);
    } else {
      return { fault: 'translation', domain };
    }
    if (iova >> BigInt(ias) !== 0n) return { fault: 'address_size', domain };
    let cached = false;
    let hit: { pa: bigint; desc: bigint; pgsize: number } | null = null;
    const page = iova & ~0xfffn;
    if (this.options.iotlb) {
      const e = this.tlb.get(domain)?.get(page);
      if (e) {
        hit = e;
        cached = true;
      }
    }
    if (!hit) {
      const w = lpaeS1Walk(read64, root, iova, ias);
      if (!w) return { fault: 'translation', domain };
      hit = { pa: w.pa & ~0xfffn, desc: w.desc, pgsize: w.pgsize };
      if (this.options.iotlb) {
        let t = this.tlb.get(domain);
        if (!t) {
          t = new Map();
          this.tlb.set(domain, t);
        }
        t.set(page, hit);
      }
    }
    const d = hit.desc;
    const writable = (d & AP_RDONLY) === 0n || (d & DBM) !== 0n;
    if (access & IOMMU_FAULT_PERM_WRITE && !writable) return { fault: 'permission', domain };
    if (access & IOMMU_FAULT_PERM_EXEC && (d & UXN) !== 0n) return { fault: 'permission', domain };
    if (!(access & IOMMU_FAULT_PERM_PRIV) && (d & AP_UNPRIV) === 0n) return { fault: 'permission', domain };
    return { pa: hit.pa | (iova & 0xfffn), pgsize: hit.pgsize, cached, msi: false };
  }

  /** Drop every cached translation (as an invalidate-all command would). */
  invalidateAll(): void {
    this.tlb.clear();
  }
}

/**
 * An SVA domain of the test driver: translates through the `Mm`'s arm64 CPU page table. On
 * `mmInvalidate` it drops its IOTLB entries in the range; after `mmRelease` every access through it
 * faults as blocked (what SMMUv3 does by keeping the CD valid with translation disabled).
 */
export class TestSvaDomain extends IommuDomain {
  /** Whether the mm went away while the domain was bound (`mmRelease` ran). */
  released = false;

  /** @internal */
  constructor(driver: TestIommu, mm: Mm) {
    super({
      setDevPasid(domain, dev, pasid, old) {
        driver.calls.push({ op: 'set_dev_pasid', dev: dev.name, pasid, domain, old });
        driver.failNextSetDevPasid();
        for (const sid of driver.streamIds(dev)) driver.streams.get(sid)?.pasids.set(pasid, domain);
        if (old !== null) driver.atcPasidInvalidator?.(dev, pasid);
      },
      mmInvalidate(domain, start, end) {
        driver.calls.push({ op: 'mm_invalidate', domain, start, end });
        driver.invalidate(domain, BigInt(start), BigInt(end) - 1n);
        driver.atcInvalidator?.(domain, BigInt(start), BigInt(end));
      },
      mmRelease(domain) {
        driver.calls.push({ op: 'mm_release', domain });
        (domain as TestSvaDomain).released = true;
        driver.invalidate(domain, 0n, (1n << 64n) - 1n);
        driver.atcInvalidator?.(domain, 0n, 0n);
      },
      free(domain) {
        driver.calls.push({ op: 'domain_free', domain });
      },
    });
    this.mm = mm;
  }
}

/** `IOMMU_READ | IOMMU_WRITE`, the common prot of tests. */
export const TEST_PROT_RW = IOMMU_READ | IOMMU_WRITE;
