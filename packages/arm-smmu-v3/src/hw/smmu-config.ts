/**
 * The build-time parameters of a modelled SMMUv3 (what its ID registers advertise) and the ID
 * register values computed from them.
 *
 * @remarks
 * Field meanings follow IDR0/IDR1/IDR3/IDR5 of the Arm SMMUv3 architecture (digest §1.3–§1.5).
 * Defaults are a QEMU-like SMMUv3 with the features common silicon (MMU-600/700 class) adds, so
 * that every path of the Linux driver can be exercised: both stages, two-level tables, 20-bit
 * SSIDs, stall and PRI, ATS, HTTU with dirty, RIL, MSIs and SEV.
 */

import { ErrnoError } from '@iommu-ts/base';

/**
 * IDR0.STALL_MODEL: `'stall'` (0, stall and terminate both supported), `'terminate'` (1, stalls not
 * supported: CD.S / STE.S2S are illegal), `'forced'` (2, stalling is mandatory: CD.S=0 and
 * STE.S1STALLD=1 are illegal).
 */
export type SmmuStallModel = 'stall' | 'terminate' | 'forced';

/** IDR0.HTTU: `'none'` (0), `'ha'` (1, access flag), `'hahd'` (2, access flag and dirty state). */
export type SmmuHttu = 'none' | 'ha' | 'hahd';

/** IDR0.TTF: `'aarch64'` (2) or `'aarch32-aarch64'` (3). AArch32-only tables are not modelled. */
export type SmmuTtf = 'aarch64' | 'aarch32-aarch64';

/** Replacement policy of the modelled TLB when it is full. */
export type SmmuTlbReplacement = 'lru' | 'random';

/** Output address sizes IDR5.OAS can encode, in bits. */
export type SmmuOasBits = 32 | 36 | 40 | 42 | 44 | 48 | 52;

/**
 * Parameters of a modelled SMMUv3. Every field is fixed at construction (what the ID registers
 * show); the model also takes its cache sizes and timings from here.
 */
export interface SmmuHwConfig {
  /** IDR0.S1P: stage-1 translation implemented. */
  readonly stage1: boolean;
  /** IDR0.S2P: stage-2 translation implemented. */
  readonly stage2: boolean;
  /** IDR0.TTF: translation table formats. */
  readonly ttf: SmmuTtf;
  /** IDR0.COHACC: coherent access to tables, queues and MSIs. */
  readonly coherent: boolean;
  /** IDR0.BTM: broadcast TLB maintenance supported. */
  readonly btm: boolean;
  /** IDR0.HTTU: hardware access-flag / dirty-state updates. */
  readonly httu: SmmuHttu;
  /** IDR0.HYP: the EL2 StreamWorld (STE.STRW=2, TLBI_EL2_*) is supported. */
  readonly hyp: boolean;
  /** IDR0.ATS: PCIe ATS supported (ATS translation requests, CMD_ATC_INV). */
  readonly ats: boolean;
  /** IDR0.ASID16: 16-bit ASIDs (else 8). */
  readonly asid16: boolean;
  /** IDR0.MSI: MSIs for the queues, GERROR and CMD_SYNC completions. */
  readonly msi: boolean;
  /** IDR0.SEV: CMD_SYNC completion can signal a send-event (CS=SEV). */
  readonly sev: boolean;
  /** IDR0.PRI: PCIe PRI (the PRI queue) supported. */
  readonly pri: boolean;
  /** IDR0.VMID16: 16-bit VMIDs (else 8). */
  readonly vmid16: boolean;
  /** IDR0.CD2L: two-level context descriptor tables supported. */
  readonly twoLevelCdTable: boolean;
  /** IDR0.STALL_MODEL. */
  readonly stallModel: SmmuStallModel;
  /**
   * IDR0.TERM_MODEL: `1` terminated transactions always abort (CD.A=0 illegal); `0` CD.A chooses
   * abort or RAZ/WI.
   */
  readonly termModel: 0 | 1;
  /** IDR0.ST_LEVEL: two-level stream tables supported (else linear only). */
  readonly twoLevelStreamTable: boolean;
  /** IDR1.SIDSIZE: StreamID bits, 0 … 32. */
  readonly sidBits: number;
  /** IDR1.SSIDSIZE: SubstreamID bits, 0 … 20 (0: no substreams). */
  readonly ssidBits: number;
  /** IDR1.CMDQS: log2 of the largest command queue, 0 … 19. */
  readonly cmdqLog2: number;
  /** IDR1.EVENTQS: log2 of the largest event queue, 0 … 19. */
  readonly evtqLog2: number;
  /** IDR1.PRIQS: log2 of the largest PRI queue, 0 … 19 (0 when PRI is off). */
  readonly priqLog2: number;
  /** IDR1.ATTR_TYPES_OVR: STE MTCFG/SHCFG/ALLOCCFG overrides honoured. */
  readonly attrTypesOvr: boolean;
  /** IDR3.HAD: hierarchical attribute disable (CD.HAD0/1). */
  readonly had: boolean;
  /** IDR3.FWB: STE.S2FWB supported. */
  readonly s2fwb: boolean;
  /** IDR3.RIL: range invalidation (TG/NUM/SCALE/TTL of TLBI commands). */
  readonly ril: boolean;
  /** IDR3.BBML: break-before-make level, 0 … 2. */
  readonly bbml: 0 | 1 | 2;
  /** IDR5.OAS: output address size in bits. */
  readonly oas: SmmuOasBits;
  /**
   * IDR5.VAX: 52-bit virtual addresses for stage 1 (input address size 52 instead of 48). The
   * model's largest stage-1 input size (IAS) is {@link smmuIas} of this config.
   */
  readonly vax: boolean;
  /** IDR5.GRAN4K. */
  readonly granule4k: boolean;
  /** IDR5.GRAN16K. */
  readonly granule16k: boolean;
  /** IDR5.GRAN64K. */
  readonly granule64k: boolean;
  /** IDR5.STALL_MAX: most stalled transactions held at once, 0 … 65535 (0 when stalls are off). */
  readonly stallMax: number;
  /** IIDR value (ProductID 31:20, Variant 19:16, Revision 15:12, Implementer 11:0). */
  readonly iidr: number;
  /** AIDR value (ArchMajorRev 7:4, ArchMinorRev 3:0); 1 = SMMUv3.1. */
  readonly aidr: number;
  /** Entries in the model's TLB. */
  readonly tlbCapacity: number;
  /** Replacement policy of the model's TLB. */
  readonly tlbReplacement: SmmuTlbReplacement;
  /** Seed of the TLB's random replacement (deterministic tests). */
  readonly tlbSeed: number;
  /** Entries of the STE cache and of the CD cache each. */
  readonly configCacheCapacity: number;
  /**
   * Scheduler delay (ns) between a CMDQ_PROD write and the consumption of the new commands; 0
   * runs them in the next scheduler step.
   */
  readonly cmdqLatencyNs: number;
  /**
   * How long (ns) a CMD_SYNC waits for ATS Invalidate Completions of earlier CMD_ATC_INVs before
   * giving up with CERROR_ATC_INV_SYNC.
   */
  readonly atcInvTimeoutNs: number;
}

/** Default parameters (see the file comment). */
export const SMMU_HW_CONFIG_DEFAULTS: SmmuHwConfig = Object.freeze({
  stage1: true,
  stage2: true,
  ttf: 'aarch64',
  coherent: true,
  btm: false,
  httu: 'hahd',
  hyp: false,
  ats: true,
  asid16: true,
  msi: true,
  sev: true,
  pri: true,
  vmid16: true,
  twoLevelCdTable: true,
  stallModel: 'stall',
  termModel: 1,
  twoLevelStreamTable: true,
  sidBits: 16,
  ssidBits: 20,
  cmdqLog2: 19,
  evtqLog2: 19,
  priqLog2: 19,
  attrTypesOvr: false,
  had: true,
  s2fwb: false,
  ril: true,
  bbml: 2,
  oas: 48,
  vax: false,
  granule4k: true,
  granule16k: true,
  granule64k: true,
  stallMax: 64,
  iidr: 0x4830_043b,
  aidr: 0x01,
  tlbCapacity: 256,
  tlbReplacement: 'lru',
  tlbSeed: 1,
  configCacheCapacity: 1024,
  cmdqLatencyNs: 0,
  atcInvTimeoutNs: 1_000_000_000,
} satisfies SmmuHwConfig);

/** IDR5.OAS encodings indexed by field value: 32, 36, 40, 42, 44, 48, 52 bits. */
export const SMMU_OAS_BITS: readonly SmmuOasBits[] = Object.freeze([32, 36, 40, 42, 44, 48, 52]);

/**
 * Encode an address size in bits as the 3-bit OAS/IPS/S2PS field.
 * @param bits - 32, 36, 40, 42, 44, 48 or 52
 * @returns 0 … 6
 * @throws ErrnoError `EINVAL` for another size
 */
export function smmuOasEncode(bits: number): number {
  const i = SMMU_OAS_BITS.indexOf(bits as SmmuOasBits);
  if (i < 0) throw new ErrnoError('EINVAL', `no OAS encoding for ${bits} bits`);
  return i;
}

/**
 * Decode a 3-bit OAS/IPS/S2PS field into bits; reserved encodings (7) read as 52.
 * @param field - 0 … 7
 * @returns the size in bits
 */
export function smmuOasDecode(field: number): SmmuOasBits {
  return SMMU_OAS_BITS[Math.min(field & 7, 6)] as SmmuOasBits;
}

/**
 * Largest stage-1 input address size (bits) of an SMMU: 52 with IDR5.VAX, else 48.
 * @param config - the parameters
 */
export function smmuIas(config: Pick<SmmuHwConfig, 'vax'>): number {
  return config.vax ? 52 : 48;
}

function checkInt(name: string, v: number, lo: number, hi: number): void {
  if (!Number.isInteger(v) || v < lo || v > hi)
    throw new ErrnoError('EINVAL', `SMMU config ${name}=${v} is outside ${lo} … ${hi}`);
}

/**
 * Fill a partial configuration with {@link SMMU_HW_CONFIG_DEFAULTS} and check it.
 * @param partial - overrides
 * @returns a frozen full configuration
 * @throws ErrnoError `EINVAL` for an out-of-range number, a config with neither stage, OAS not in
 *   {@link SMMU_OAS_BITS}, no granule, or a stall model of `'terminate'` with `stallMax` other than 0
 */
export function resolveSmmuHwConfig(partial: Partial<SmmuHwConfig> = {}): SmmuHwConfig {
  const c: SmmuHwConfig = { ...SMMU_HW_CONFIG_DEFAULTS, ...partial };
  if (!c.stage1 && !c.stage2) throw new ErrnoError('EINVAL', 'SMMU config: neither stage 1 nor stage 2');
  if (!c.granule4k && !c.granule16k && !c.granule64k)
    throw new ErrnoError('EINVAL', 'SMMU config: no granule');
  smmuOasEncode(c.oas);
  checkInt('sidBits', c.sidBits, 0, 32);
  checkInt('ssidBits', c.ssidBits, 0, 20);
  checkInt('cmdqLog2', c.cmdqLog2, 0, 19);
  checkInt('evtqLog2', c.evtqLog2, 0, 19);
  checkInt('priqLog2', c.priqLog2, 0, 19);
  checkInt('stallMax', c.stallMax, 0, 0xffff);
  checkInt('bbml', c.bbml, 0, 2);
  checkInt('iidr', c.iidr, 0, 0xffff_ffff);
  checkInt('aidr', c.aidr, 0, 0xff);
  checkInt('tlbCapacity', c.tlbCapacity, 1, 1 << 24);
  checkInt('configCacheCapacity', c.configCacheCapacity, 1, 1 << 24);
  checkInt('tlbSeed', c.tlbSeed, 0, 0xffff_ffff);
  if (!(c.cmdqLatencyNs >= 0) || !(c.atcInvTimeoutNs >= 0))
    throw new ErrnoError('EINVAL', 'SMMU config: negative latency');
  if (c.stallModel === 'terminate' && c.stallMax !== 0)
    throw new ErrnoError('EINVAL', 'SMMU config: stallMax must be 0 without stalls');
  return Object.freeze(c);
}

/** ID register values of an SMMU (see {@link smmuIdrs}). */
export interface SmmuIdrs {
  /** IDR0 (offset 0x000). */
  readonly idr0: number;
  /** IDR1 (offset 0x004). */
  readonly idr1: number;
  /** IDR2 (offset 0x008); 0 (no VATOS). */
  readonly idr2: number;
  /** IDR3 (offset 0x00C). */
  readonly idr3: number;
  /** IDR4 (offset 0x010); IMPLEMENTATION DEFINED, 0. */
  readonly idr4: number;
  /** IDR5 (offset 0x014). */
  readonly idr5: number;
  /** IIDR (offset 0x018). */
  readonly iidr: number;
  /** AIDR (offset 0x01C). */
  readonly aidr: number;
}

/**
 * Compute the ID register values an SMMU with these parameters shows (digest §1.3–§1.5).
 * TTENDIAN is 2 (little-endian only); TERM_MODEL from `termModel`; QUEUES/TABLES_PRESET and REL 0.
 * @param config - full parameters (use {@link resolveSmmuHwConfig} for partial ones)
 * @returns the u32 values
 */
export function smmuIdrs(config: SmmuHwConfig): SmmuIdrs {
  const c = config;
  const stall = c.stallModel === 'stall' ? 0 : c.stallModel === 'terminate' ? 1 : 2;
  const httu = c.httu === 'none' ? 0 : c.httu === 'ha' ? 1 : 2;
  const idr0 =
    ((c.stage2 ? 1 : 0) |
      ((c.stage1 ? 1 : 0) << 1) |
      ((c.ttf === 'aarch64' ? 2 : 3) << 2) |
      ((c.coherent ? 1 : 0) << 4) |
      ((c.btm ? 1 : 0) << 5) |
      (httu << 6) |
      ((c.hyp ? 1 : 0) << 9) |
      ((c.ats ? 1 : 0) << 10) |
      ((c.asid16 ? 1 : 0) << 12) |
      ((c.msi ? 1 : 0) << 13) |
      ((c.sev ? 1 : 0) << 14) |
      ((c.pri ? 1 : 0) << 16) |
      ((c.vmid16 ? 1 : 0) << 18) |
      ((c.twoLevelCdTable ? 1 : 0) << 19) |
      (2 << 21) |
      (stall << 24) |
      (c.termModel << 26) |
      ((c.twoLevelStreamTable ? 1 : 0) << 27)) >>>
    0;
  const idr1 =
    ((c.sidBits & 0x3f) |
      ((c.ssidBits & 0x1f) << 6) |
      ((c.priqLog2 & 0x1f) << 11) |
      ((c.evtqLog2 & 0x1f) << 16) |
      ((c.cmdqLog2 & 0x1f) << 21) |
      ((c.attrTypesOvr ? 1 : 0) << 27)) >>>
    0;
  const idr3 =
    (((c.had ? 1 : 0) << 2) |
      ((c.stage2 ? 1 : 0) << 4) |
      ((c.s2fwb ? 1 : 0) << 8) |
      ((c.ril ? 1 : 0) << 10) |
      (c.bbml << 11)) >>>
    0;
  const idr5 =
    (smmuOasEncode(c.oas) |
      ((c.granule4k ? 1 : 0) << 4) |
      ((c.granule16k ? 1 : 0) << 5) |
      ((c.granule64k ? 1 : 0) << 6) |
      ((c.vax ? 1 : 0) << 10) |
      ((c.stallMax & 0xffff) << 16)) >>>
    0;
  return { idr0, idr1, idr2: 0, idr3, idr4: 0, idr5, iidr: c.iidr >>> 0, aidr: c.aidr };
}
