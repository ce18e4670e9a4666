/**
 * The build-time parameters of a modelled VT-d DMA-remapping unit (what its CAP and ECAP registers
 * advertise, plus the model's cache sizes and timings) and the CAP/ECAP values computed from them.
 *
 * @remarks
 * Field meanings follow the VT-d CAP (digest §1.2) and ECAP (§1.3) registers. Defaults describe a
 * modern scalable-mode unit with every feature the Linux driver can use turned on (QI, ATS, PRI,
 * PASID, nesting, second-level A/D, supervisor and execute requests, 2 MiB/1 GiB pages, 5-level
 * first-level paging), with QEMU's register layout (IVA/IOTLB at 0xF0, fault records at 0x220).
 */

import { ErrnoError } from '@iommu-ts/base';

/** A page-table depth the unit can walk: 3 (39-bit), 4 (48-bit) or 5 (57-bit) levels. */
export type VtdLevels = 3 | 4 | 5;

/**
 * Parameters of one modelled VT-d unit. Everything is fixed at construction; the register view is
 * {@link vtdCapEcap}.
 */
export interface VtdHwConfig {
  /** VER register value (major 7:4, minor 3:0). Default 0x10 (1.0, as QEMU). */
  readonly version: number;
  /** Host (physical) address width in bits, 32 … 52: output addresses and table pointers at or above it are reserved. */
  readonly haw: number;
  /** CAP.ND: domain-ID field encoding 0 … 6 → 2^(4 + 2·ND) domains (see {@link vtdDomainCount}). */
  readonly nd: number;
  /** CAP.AFL: advanced fault logging (deprecated; always false in the model). */
  readonly afl: boolean;
  /** CAP.RWBF: software must flush the write buffer (GCMD.WBF) after table updates. */
  readonly rwbf: boolean;
  /** CAP.PLMR: protected low-memory region registers implemented. */
  readonly plmr: boolean;
  /** CAP.PHMR: protected high-memory region registers implemented. */
  readonly phmr: boolean;
  /** CAP.CM: caching mode (not-present and erroneous entries may be cached). */
  readonly cachingMode: boolean;
  /** CAP.SAGAW: the second-level depths supported (non-empty subset of 3, 4, 5). */
  readonly sagaw: readonly VtdLevels[];
  /** CAP.MGAW + 1: maximum guest (input) address width in bits, 30 … 64. */
  readonly mgaw: number;
  /** CAP.ZLR: zero-length reads supported. */
  readonly zlr: boolean;
  /** CAP.FRO: offset of the first fault recording register in 16-byte units (QEMU 0x22 → 0x220). */
  readonly fro: number;
  /** CAP.SLLPS bit 0: second-level 2 MiB pages. */
  readonly sl2MPages: boolean;
  /** CAP.SLLPS bit 1: second-level 1 GiB pages (requires {@link VtdHwConfig.sl2MPages}). */
  readonly sl1GPages: boolean;
  /** CAP.PSI: page-selective IOTLB invalidation. */
  readonly psi: boolean;
  /** CAP.NFR + 1: number of fault recording registers, 1 … 256. */
  readonly numFaultRecords: number;
  /** CAP.MAMV: largest address-mask value of a page-selective invalidation, 0 … 63. */
  readonly mamv: number;
  /** CAP.DWD: write draining (DW bit of invalidations). */
  readonly dwd: boolean;
  /** CAP.DRD: read draining (DR bit of invalidations). */
  readonly drd: boolean;
  /** CAP.FL1GP: first-level 1 GiB pages. */
  readonly fl1gp: boolean;
  /** CAP.PI: posted interrupts. */
  readonly pi: boolean;
  /** CAP.FL5LP: first-level 5-level paging. */
  readonly fl5lp: boolean;
  /** CAP.ECMDS: enhanced command interface. */
  readonly ecmds: boolean;
  /** CAP.ESIRTPS: SIRTP also invalidates the interrupt-remapping caches. */
  readonly esirtps: boolean;
  /** CAP.ESRTPS: SRTP also invalidates every DMA-remapping cache. */
  readonly esrtps: boolean;

  /** ECAP.C: page-walk coherency (legacy structures and second-level tables). */
  readonly coherent: boolean;
  /** ECAP.QI: queued invalidation. */
  readonly qi: boolean;
  /** ECAP.DT: device-TLB (ATS) support. */
  readonly dt: boolean;
  /** ECAP.IR: interrupt remapping (registers only; interrupts are not remapped by the model). */
  readonly ir: boolean;
  /** ECAP.EIM: extended interrupt mode (x2APIC). */
  readonly eim: boolean;
  /** ECAP.PT: pass-through translation type. */
  readonly pt: boolean;
  /** ECAP.SC: snoop control. */
  readonly sc: boolean;
  /** ECAP.IRO: IOTLB register block offset in 16-byte units (QEMU 0x0F → IVA 0xF0, IOTLB 0xF8). */
  readonly iro: number;
  /** ECAP.MHMV: largest handle-mask value of an interrupt-entry-cache invalidation, 0 … 15. */
  readonly mhmv: number;
  /** ECAP.MTS: memory type support. */
  readonly mts: boolean;
  /** ECAP.NEST: nested translation (PGTT = 011). */
  readonly nest: boolean;
  /** ECAP.PRS: page requests (PRI) supported. */
  readonly prs: boolean;
  /** ECAP.ERS: execute requests supported. */
  readonly ers: boolean;
  /** ECAP.SRS: supervisor requests supported. */
  readonly srs: boolean;
  /** ECAP.NWFS: no-write flag of ATS translation requests honoured. */
  readonly nwfs: boolean;
  /** ECAP.EAFS: extended-accessed flag in first-level entries. */
  readonly eafs: boolean;
  /** ECAP.PSS + 1: PASID width in bits, 1 … 20. */
  readonly pasidBits: number;
  /** ECAP.PASID: PASID support. */
  readonly pasid: boolean;
  /** ECAP.DIT: device-TLB invalidation throttling (PFSID valid). */
  readonly dit: boolean;
  /** ECAP.PDS: page-request drain (PD bit of the wait descriptor). */
  readonly pds: boolean;
  /** ECAP.SMTS: scalable-mode translation (TTM = 01, 256-bit descriptors). */
  readonly smts: boolean;
  /** ECAP.VCS: virtual command support. */
  readonly vcs: boolean;
  /** ECAP.SLADS: second-level accessed/dirty bits. */
  readonly slads: boolean;
  /** ECAP.SLTS: second-level translation in scalable mode (PGTT = 010). */
  readonly slts: boolean;
  /** ECAP.FLTS: first-level translation (PGTT = 001). */
  readonly flts: boolean;
  /** ECAP.SMPWC: scalable-mode page-walk coherency. */
  readonly smpwc: boolean;
  /** ECAP.RPS: the context entry's RID_PASID field is honoured (else RID_PASID is 0). */
  readonly rps: boolean;
  /** ECAP.PMS: performance monitoring. */
  readonly pms: boolean;
  /** ECAP.ADMS: abort-DMA mode (TTM = 11). */
  readonly adms: boolean;
  /** ECAP.RPRIVS: RID_PRIV field of the scalable-mode context entry. */
  readonly rprivs: boolean;
  /** ECAP.SMS: stop-marker support. */
  readonly sms: boolean;

  /** Entries of the model's IOTLB (leaf translations). */
  readonly iotlbCapacity: number;
  /** Entries of the model's paging-structure (PDE) caches, all levels together. */
  readonly pdeCacheCapacity: number;
  /** Entries of the model's context cache. */
  readonly contextCacheCapacity: number;
  /** Entries of the model's PASID cache. */
  readonly pasidCacheCapacity: number;
  /**
   * Scheduler delay (ns) between an IQT write and the processing of the new descriptors; 0 runs
   * them in the next scheduler step.
   */
  readonly iqLatencyNs: number;
  /**
   * How long (ns) the unit waits for the ATS Invalidate Completions of earlier device-TLB
   * invalidations before an invalidation wait descriptor reports a time-out (FSTS.ITE).
   */
  readonly devTlbInvTimeoutNs: number;
}

/** Default parameters (see the file comment). */
export const VTD_HW_CONFIG_DEFAULTS: VtdHwConfig = Object.freeze({
  version: 0x10,
  haw: 46,
  nd: 6,
  afl: false,
  rwbf: false,
  plmr: false,
  phmr: false,
  cachingMode: false,
  sagaw: Object.freeze([3, 4, 5] as VtdLevels[]),
  mgaw: 57,
  zlr: false,
  fro: 0x22,
  sl2MPages: true,
  sl1GPages: true,
  psi: true,
  numFaultRecords: 8,
  mamv: 18,
  dwd: true,
  drd: true,
  fl1gp: true,
  pi: false,
  fl5lp: true,
  ecmds: false,
  esirtps: false,
  esrtps: false,
  coherent: true,
  qi: true,
  dt: true,
  ir: false,
  eim: false,
  pt: true,
  sc: true,
  iro: 0x0f,
  mhmv: 0,
  mts: false,
  nest: true,
  prs: true,
  ers: true,
  srs: true,
  nwfs: true,
  eafs: false,
  pasidBits: 20,
  pasid: true,
  dit: false,
  pds: true,
  smts: true,
  vcs: false,
  slads: true,
  slts: true,
  flts: true,
  smpwc: true,
  rps: true,
  pms: false,
  adms: false,
  rprivs: false,
  sms: false,
  iotlbCapacity: 512,
  pdeCacheCapacity: 256,
  contextCacheCapacity: 128,
  pasidCacheCapacity: 256,
  iqLatencyNs: 0,
  devTlbInvTimeoutNs: 1_000_000,
} satisfies VtdHwConfig);

function intIn(name: string, v: number, lo: number, hi: number): void {
  if (!Number.isInteger(v) || v < lo || v > hi)
    throw new ErrnoError('EINVAL', `VT-d config ${name}=${v} not in ${lo}…${hi}`);
}

/**
 * Merge overrides into the defaults and check the result.
 * @param overrides - fields to change
 * @returns a frozen, validated config
 * @throws ErrnoError `EINVAL` for an out-of-range number, an empty or invalid SAGAW, 1 GiB pages
 *   without 2 MiB pages, register blocks that overlap the architectural registers, or a feature
 *   whose prerequisite is off (PASID/PRS/nesting/first- or second-level without scalable mode,
 *   PRS without QI, nesting without both levels)
 */
export function resolveVtdHwConfig(overrides: Partial<VtdHwConfig> = {}): VtdHwConfig {
  const c: VtdHwConfig = { ...VTD_HW_CONFIG_DEFAULTS, ...overrides };
  intIn('version', c.version, 0, 0xff);
  intIn('haw', c.haw, 32, 52);
  intIn('nd', c.nd, 0, 6);
  intIn('mgaw', c.mgaw, 30, 64);
  intIn('fro', c.fro, 0, 0x3ff);
  intIn('numFaultRecords', c.numFaultRecords, 1, 256);
  intIn('mamv', c.mamv, 0, 63);
  intIn('iro', c.iro, 0, 0x3ff);
  intIn('mhmv', c.mhmv, 0, 15);
  intIn('pasidBits', c.pasidBits, 1, 20);
  intIn('iotlbCapacity', c.iotlbCapacity, 1, 1 << 24);
  intIn('pdeCacheCapacity', c.pdeCacheCapacity, 1, 1 << 24);
  intIn('contextCacheCapacity', c.contextCacheCapacity, 1, 1 << 24);
  intIn('pasidCacheCapacity', c.pasidCacheCapacity, 1, 1 << 24);
  intIn('iqLatencyNs', c.iqLatencyNs, 0, Number.MAX_SAFE_INTEGER);
  intIn('devTlbInvTimeoutNs', c.devTlbInvTimeoutNs, 0, Number.MAX_SAFE_INTEGER);
  if (c.sagaw.length === 0 || c.sagaw.some((l) => l !== 3 && l !== 4 && l !== 5))
    throw new ErrnoError(
      'EINVAL',
      `VT-d config sagaw=[${c.sagaw.join(',')}] must be a non-empty subset of 3,4,5`,
    );
  if (c.sl1GPages && !c.sl2MPages)
    throw new ErrnoError('EINVAL', 'VT-d config: 1 GiB pages need 2 MiB pages');
  // Register blocks must not overlap the architectural registers (up to 0xF0 at least).
  if (c.iro * 16 < 0xf0)
    throw new ErrnoError('EINVAL', `VT-d config iro=${c.iro} overlaps the register file`);
  if (c.fro * 16 < 0xf0)
    throw new ErrnoError('EINVAL', `VT-d config fro=${c.fro} overlaps the register file`);
  const iroLo = c.iro * 16;
  const froLo = c.fro * 16;
  const froHi = froLo + c.numFaultRecords * 16;
  if (iroLo < froHi && froLo < iroLo + 16)
    throw new ErrnoError('EINVAL', 'VT-d config: IOTLB registers overlap the fault recording registers');
  const needSm = (name: string, on: boolean): void => {
    if (on && !c.smts) throw new ErrnoError('EINVAL', `VT-d config: ${name} needs scalable mode (smts)`);
  };
  needSm('pasid', c.pasid);
  needSm('flts', c.flts);
  needSm('nest', c.nest);
  needSm('slads', c.slads);
  if (c.prs && !(c.pasid || c.smts)) throw new ErrnoError('EINVAL', 'VT-d config: prs needs scalable mode');
  if (c.prs && !c.qi) throw new ErrnoError('EINVAL', 'VT-d config: prs needs qi (page group responses)');
  if (c.smts && !c.qi) throw new ErrnoError('EINVAL', 'VT-d config: smts needs qi');
  if (c.nest && !(c.flts && c.slts)) throw new ErrnoError('EINVAL', 'VT-d config: nest needs flts and slts');
  if (c.eim && !c.ir) throw new ErrnoError('EINVAL', 'VT-d config: eim needs ir');
  return Object.freeze({ ...c, sagaw: Object.freeze([...c.sagaw]) });
}

/**
 * Number of domain IDs the unit supports (CAP.ND decoded).
 * @param config - the unit's config
 * @returns 2^(4 + 2·ND): 16 … 65536
 */
export function vtdDomainCount(config: Pick<VtdHwConfig, 'nd'>): number {
  return 1 << (4 + 2 * config.nd);
}

/**
 * Size of the unit's MMIO window in bytes: everything up to the end of the IOTLB register pair and
 * the last fault recording register, rounded up to 4 KiB (as Linux's `map_iommu` sizes it).
 * @param config - the unit's config
 * @returns a multiple of 4096
 */
export function vtdMmioSize(config: Pick<VtdHwConfig, 'iro' | 'fro' | 'numFaultRecords'>): number {
  const end = Math.max(config.iro * 16 + 16, config.fro * 16 + config.numFaultRecords * 16, 0x1000);
  return Math.ceil(end / 0x1000) * 0x1000;
}

/** The CAP and ECAP register values of a config (see {@link vtdCapEcap}). */
export interface VtdCapEcap {
  /** The 64-bit CAP register (offset 0x008). */
  readonly cap: bigint;
  /** The 64-bit ECAP register (offset 0x010). */
  readonly ecap: bigint;
}

const b = (on: boolean, bit: number): bigint => (on ? 1n << BigInt(bit) : 0n);
const f = (v: number, shift: number): bigint => BigInt(v) << BigInt(shift);

/**
 * Encode a config into the CAP and ECAP register values (digest §1.2, §1.3).
 * @param config - a config (use {@link resolveVtdHwConfig} to validate it first)
 * @returns the two 64-bit values
 */
export function vtdCapEcap(config: VtdHwConfig): VtdCapEcap {
  let sagaw = 0;
  for (const l of config.sagaw) sagaw |= 1 << (l - 2);
  const sllps = (config.sl2MPages ? 1 : 0) | (config.sl1GPages ? 2 : 0);
  const cap =
    f(config.nd, 0) |
    b(config.afl, 3) |
    b(config.rwbf, 4) |
    b(config.plmr, 5) |
    b(config.phmr, 6) |
    b(config.cachingMode, 7) |
    f(sagaw, 8) |
    f(config.mgaw - 1, 16) |
    b(config.zlr, 22) |
    f(config.fro, 24) |
    f(sllps, 34) |
    b(config.psi, 39) |
    f(config.numFaultRecords - 1, 40) |
    f(config.mamv, 48) |
    b(config.dwd, 54) |
    b(config.drd, 55) |
    b(config.fl1gp, 56) |
    b(config.pi, 59) |
    b(config.fl5lp, 60) |
    b(config.ecmds, 61) |
    b(config.esirtps, 62) |
    b(config.esrtps, 63);
  const ecap =
    b(config.coherent, 0) |
    b(config.qi, 1) |
    b(config.dt, 2) |
    b(config.ir, 3) |
    b(config.eim, 4) |
    b(config.pt, 6) |
    b(config.sc, 7) |
    f(config.iro, 8) |
    f(config.mhmv, 20) |
    b(config.mts, 25) |
    b(config.nest, 26) |
    b(config.prs, 29) |
    b(config.ers, 30) |
    b(config.srs, 31) |
    b(config.nwfs, 33) |
    b(config.eafs, 34) |
    f(config.pasidBits - 1, 35) |
    b(config.pasid, 40) |
    b(config.dit, 41) |
    b(config.pds, 42) |
    b(config.smts, 43) |
    b(config.vcs, 44) |
    b(config.slads, 45) |
    b(config.slts, 46) |
    b(config.flts, 47) |
    b(config.smpwc, 48) |
    b(config.rps, 49) |
    b(config.pms, 51) |
    b(config.adms, 52) |
    b(config.rprivs, 53) |
    b(config.sms, 58);
  return { cap, ecap };
}
