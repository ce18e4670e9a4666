/**
 * The SMMUv3 command queue (digest §4): command decoding and encoding, consumption from memory
 * between CMDQ_CONS and CMDQ_PROD on base's scheduler, each command's effect, CMD_SYNC completion
 * (CS = NONE / IRQ with MSI / SEV) waiting for earlier ATS invalidations, and command errors
 * (CERROR_ILL / ABT / ATC_INV_SYNC with CMDQ_CONS.ERR and GERROR.CMDQ_ERR).
 */

import { ErrnoError, type Scheduler, type Timer } from '@iommu-ts/base';
import type { PhysicalMemory } from '@iommu-ts/mm';
import {
  CMDQ_CONS_ERR,
  CMDQ_CONS_ERR_SHIFT,
  CMDQ_ENT_SIZE,
  CMDQ_ERR_CERROR_ABT,
  CMDQ_ERR_CERROR_ATC_INV_SYNC,
  CMDQ_ERR_CERROR_ILL,
  CMDQ_OP,
  GERROR_CMDQ_ERR,
  Q_BASE_ADDR_MASK,
  Q_BASE_LOG2SIZE,
} from './regs.js';
import type { SmmuHwConfig } from './smmu-config.js';
import type { SmmuTlb } from './tlb.js';

/** Name of a command (a key of {@link CMDQ_OP}). */
export type SmmuCommandName = keyof typeof CMDQ_OP;

/** Fields every decoded command has. */
interface CmdBase {
  /** The opcode (DW0 7:0). */
  readonly opcode: number;
}

/** CMD_PREFETCH_CONFIG / CMD_PREFETCH_ADDR. */
export interface SmmuCmdPrefetch extends CmdBase {
  /** Which prefetch. */
  readonly op: 'PREFETCH_CONFIG' | 'PREFETCH_ADDR';
  /** StreamID. */
  readonly sid: number;
  /** SubstreamID valid. */
  readonly ssv: boolean;
  /** SubstreamID. */
  readonly ssid: number;
  /** PREFETCH_ADDR: Size (DW1 4:0); 0 otherwise. */
  readonly size: number;
  /** PREFETCH_ADDR: Addr (DW1 63:12); 0n otherwise. */
  readonly addr: bigint;
}

/** CMD_CFGI_STE. */
export interface SmmuCmdCfgiSte extends CmdBase {
  /** Discriminant. */
  readonly op: 'CFGI_STE';
  /** StreamID. */
  readonly sid: number;
  /** Leaf (DW1 0): only the STE, not the L1STD. */
  readonly leaf: boolean;
}

/** CMD_CFGI_STE_RANGE (CFGI_ALL is Range = 31). */
export interface SmmuCmdCfgiSteRange extends CmdBase {
  /** Discriminant. */
  readonly op: 'CFGI_STE_RANGE';
  /** StreamID. */
  readonly sid: number;
  /** Range (DW1 4:0): 2^(Range+1) StreamIDs, aligned. */
  readonly range: number;
}

/** CMD_CFGI_CD. */
export interface SmmuCmdCfgiCd extends CmdBase {
  /** Discriminant. */
  readonly op: 'CFGI_CD';
  /** StreamID. */
  readonly sid: number;
  /** SubstreamID. */
  readonly ssid: number;
  /** Leaf (DW1 0): only the CD, not the L1CD. */
  readonly leaf: boolean;
}

/** CMD_CFGI_CD_ALL. */
export interface SmmuCmdCfgiCdAll extends CmdBase {
  /** Discriminant. */
  readonly op: 'CFGI_CD_ALL';
  /** StreamID. */
  readonly sid: number;
}

/** TLBI commands without an address: NH_ALL, NH_ASID, EL2_ALL, EL2_ASID, S12_VMALL, NSNH_ALL, EL3_ALL. */
export interface SmmuCmdTlbiAll extends CmdBase {
  /** Which invalidation. */
  readonly op:
    | 'TLBI_NH_ALL'
    | 'TLBI_NH_ASID'
    | 'TLBI_EL2_ALL'
    | 'TLBI_EL2_ASID'
    | 'TLBI_S12_VMALL'
    | 'TLBI_NSNH_ALL'
    | 'TLBI_EL3_ALL';
  /** VMID (DW0 47:32). */
  readonly vmid: number;
  /** ASID (DW0 63:48). */
  readonly asid: number;
}

/** TLBI commands with an address or range: NH_VA, NH_VAA, EL2_VA, EL2_VAA, S2_IPA, EL3_VA. */
export interface SmmuCmdTlbiVa extends CmdBase {
  /** Which invalidation. */
  readonly op: 'TLBI_NH_VA' | 'TLBI_NH_VAA' | 'TLBI_EL2_VA' | 'TLBI_EL2_VAA' | 'TLBI_S2_IPA' | 'TLBI_EL3_VA';
  /** VMID (DW0 47:32). */
  readonly vmid: number;
  /** ASID (DW0 63:48). */
  readonly asid: number;
  /** NUM (DW0 16:12). */
  readonly num: number;
  /** SCALE (DW0 24:20). */
  readonly scale: number;
  /** Leaf (DW1 0). */
  readonly leaf: boolean;
  /** TTL (DW1 9:8). */
  readonly ttl: number;
  /** TG (DW1 11:10). */
  readonly tg: number;
  /** Address (DW1 63:12; S2_IPA: 51:12). u64. */
  readonly addr: bigint;
}

/** CMD_ATC_INV. */
export interface SmmuCmdAtcInv extends CmdBase {
  /** Discriminant. */
  readonly op: 'ATC_INV';
  /** StreamID. */
  readonly sid: number;
  /** SubstreamID valid. */
  readonly ssv: boolean;
  /** SubstreamID. */
  readonly ssid: number;
  /** Global (DW0 9). */
  readonly global: boolean;
  /** Size (DW1 5:0): 2^Size pages of 4 KiB. */
  readonly size: number;
  /** Address (DW1 63:12). u64. */
  readonly addr: bigint;
}

/** CMD_PRI_RESP. */
export interface SmmuCmdPriResp extends CmdBase {
  /** Discriminant. */
  readonly op: 'PRI_RESP';
  /** StreamID. */
  readonly sid: number;
  /** SubstreamID valid. */
  readonly ssv: boolean;
  /** SubstreamID. */
  readonly ssid: number;
  /** PRGIndex (DW1 8:0). */
  readonly prgIndex: number;
  /** Resp (DW1 13:12): 0 deny, 1 fail, 2 success. */
  readonly resp: number;
}

/** CMD_RESUME. */
export interface SmmuCmdResume extends CmdBase {
  /** Discriminant. */
  readonly op: 'RESUME';
  /** StreamID. */
  readonly sid: number;
  /** DW0 13:12 as Linux encodes it: 0 terminate, 1 retry (Ac), 2 abort (Ab). */
  readonly resp: number;
  /** STAG (DW1 15:0). */
  readonly stag: number;
}

/** CMD_STALL_TERM. */
export interface SmmuCmdStallTerm extends CmdBase {
  /** Discriminant. */
  readonly op: 'STALL_TERM';
  /** StreamID. */
  readonly sid: number;
}

/** CMD_SYNC. */
export interface SmmuCmdSync extends CmdBase {
  /** Discriminant. */
  readonly op: 'CMD_SYNC';
  /** CS (DW0 13:12): 0 none, 1 IRQ/MSI, 2 SEV. */
  readonly cs: number;
  /** MSH (DW0 23:22). */
  readonly msh: number;
  /** MSIAttr (DW0 27:24). */
  readonly msiAttr: number;
  /** MSIData (DW0 63:32). */
  readonly msiData: number;
  /** MSIAddress (DW1 51:2). u64. */
  readonly msiAddr: bigint;
}

/** A decoded command. */
export type SmmuCommand =
  | SmmuCmdPrefetch
  | SmmuCmdCfgiSte
  | SmmuCmdCfgiSteRange
  | SmmuCmdCfgiCd
  | SmmuCmdCfgiCdAll
  | SmmuCmdTlbiAll
  | SmmuCmdTlbiVa
  | SmmuCmdAtcInv
  | SmmuCmdPriResp
  | SmmuCmdResume
  | SmmuCmdStallTerm
  | SmmuCmdSync;

const NAME_BY_OP = new Map<number, SmmuCommandName>(
  (Object.entries(CMDQ_OP) as [SmmuCommandName, number][]).map(([n, o]) => [o, n]),
);

const ADDR_4K = 0xffff_ffff_ffff_f000n;
const ADDR_IPA = ((1n << 52n) - 1n) & ~0xfffn;
const MSI_ADDR = ((1n << 52n) - 1n) & ~3n;

/**
 * Decode a command from its four little-endian 32-bit words (DW0 low, DW0 high, DW1 low, DW1 high).
 * @param w0 - DW0[31:0]
 * @param w1 - DW0[63:32]
 * @param w2 - DW1[31:0]
 * @param w3 - DW1[63:32]
 * @returns the command, or `undefined` for an opcode the architecture does not define
 */
export function decodeSmmuCommand(w0: number, w1: number, w2: number, w3: number): SmmuCommand | undefined {
  const opcode = w0 & 0xff;
  const op = NAME_BY_OP.get(opcode);
  if (op === undefined) return undefined;
  const sid = w1 >>> 0;
  const ssv = (w0 & (1 << 11)) !== 0;
  const ssid = (w0 >>> 12) & 0xfffff;
  const dw1 = (BigInt(w3 >>> 0) << 32n) | BigInt(w2 >>> 0);
  switch (op) {
    case 'PREFETCH_CONFIG':
    case 'PREFETCH_ADDR':
      return {
        opcode,
        op,
        sid,
        ssv,
        ssid,
        size: op === 'PREFETCH_ADDR' ? w2 & 0x1f : 0,
        addr: op === 'PREFETCH_ADDR' ? dw1 & ADDR_4K : 0n,
      };
    case 'CFGI_STE':
      return { opcode, op, sid, leaf: (w2 & 1) !== 0 };
    case 'CFGI_STE_RANGE':
      return { opcode, op, sid, range: w2 & 0x1f };
    case 'CFGI_CD':
      return { opcode, op, sid, ssid, leaf: (w2 & 1) !== 0 };
    case 'CFGI_CD_ALL':
      return { opcode, op, sid };
    case 'TLBI_NH_ALL':
    case 'TLBI_NH_ASID':
    case 'TLBI_EL2_ALL':
    case 'TLBI_EL2_ASID':
    case 'TLBI_S12_VMALL':
    case 'TLBI_NSNH_ALL':
    case 'TLBI_EL3_ALL':
      return { opcode, op, vmid: w1 & 0xffff, asid: w1 >>> 16 };
    case 'TLBI_NH_VA':
    case 'TLBI_NH_VAA':
    case 'TLBI_EL2_VA':
    case 'TLBI_EL2_VAA':
    case 'TLBI_S2_IPA':
    case 'TLBI_EL3_VA':
      return {
        opcode,
        op,
        vmid: w1 & 0xffff,
        asid: w1 >>> 16,
        num: (w0 >>> 12) & 0x1f,
        scale: (w0 >>> 20) & 0x1f,
        leaf: (w2 & 1) !== 0,
        ttl: (w2 >>> 8) & 3,
        tg: (w2 >>> 10) & 3,
        addr: dw1 & (op === 'TLBI_S2_IPA' ? ADDR_IPA : ADDR_4K),
      };
    case 'ATC_INV':
      return {
        opcode,
        op,
        sid,
        ssv,
        ssid,
        global: (w0 & (1 << 9)) !== 0,
        size: w2 & 0x3f,
        addr: dw1 & ADDR_4K,
      };
    case 'PRI_RESP':
      return { opcode, op, sid, ssv, ssid, prgIndex: w2 & 0x1ff, resp: (w2 >>> 12) & 3 };
    case 'RESUME':
      return { opcode, op, sid, resp: (w0 >>> 12) & 3, stag: w2 & 0xffff };
    case 'STALL_TERM':
      return { opcode, op, sid };
    case 'CMD_SYNC':
      return {
        opcode,
        op,
        cs: (w0 >>> 12) & 3,
        msh: (w0 >>> 22) & 3,
        msiAttr: (w0 >>> 24) & 0xf,
        msiData: w1 >>> 0,
        msiAddr: dw1 & MSI_ADDR,
      };
  }
}

/** Input of {@link encodeSmmuCommand}: a command name and the fields it uses (others default to 0). */
export interface SmmuCommandInit {
  /** Command name. */
  readonly op: SmmuCommandName;
  /** StreamID. */
  readonly sid?: number;
  /** SubstreamID valid. */
  readonly ssv?: boolean;
  /** SubstreamID. */
  readonly ssid?: number;
  /** Leaf. */
  readonly leaf?: boolean;
  /** CFGI_STE_RANGE Range. */
  readonly range?: number;
  /** VMID. */
  readonly vmid?: number;
  /** ASID. */
  readonly asid?: number;
  /** NUM. */
  readonly num?: number;
  /** SCALE. */
  readonly scale?: number;
  /** TTL. */
  readonly ttl?: number;
  /** TG. */
  readonly tg?: number;
  /** Address / IPA (TLBI, ATC_INV, PREFETCH_ADDR). */
  readonly addr?: bigint;
  /** Size (ATC_INV, PREFETCH_ADDR). */
  readonly size?: number;
  /** ATC_INV Global. */
  readonly global?: boolean;
  /** PRI_RESP PRGIndex. */
  readonly prgIndex?: number;
  /** PRI_RESP Resp / RESUME response. */
  readonly resp?: number;
  /** RESUME STAG. */
  readonly stag?: number;
  /** CMD_SYNC CS. */
  readonly cs?: number;
  /** CMD_SYNC MSH. */
  readonly msh?: number;
  /** CMD_SYNC MSIAttr. */
  readonly msiAttr?: number;
  /** CMD_SYNC MSIData. */
  readonly msiData?: number;
  /** CMD_SYNC MSIAddress. */
  readonly msiAddr?: bigint;
  /** Raw opcode override (to build illegal commands in tests). */
  readonly opcode?: number;
}

/**
 * Build the four 32-bit words of a command (the layout {@link decodeSmmuCommand} reads; field
 * positions of digest §4.3).
 * @param c - name and fields
 * @returns 4 words
 */
export function encodeSmmuCommand(c: SmmuCommandInit): Uint32Array {
  const w = new Uint32Array(4);
  const opcode = c.opcode ?? CMDQ_OP[c.op];
  let w0 = opcode & 0xff;
  let w1 = 0;
  let dw1 = 0n;
  switch (c.op) {
    case 'TLBI_NH_ALL':
    case 'TLBI_NH_ASID':
    case 'TLBI_EL2_ALL':
    case 'TLBI_EL2_ASID':
    case 'TLBI_S12_VMALL':
    case 'TLBI_NSNH_ALL':
    case 'TLBI_EL3_ALL':
    case 'TLBI_NH_VA':
    case 'TLBI_NH_VAA':
    case 'TLBI_EL2_VA':
    case 'TLBI_EL2_VAA':
    case 'TLBI_S2_IPA':
    case 'TLBI_EL3_VA':
      w0 |= ((c.num ?? 0) & 0x1f) << 12;
      w0 |= ((c.scale ?? 0) & 0x1f) << 20;
      w1 = ((c.vmid ?? 0) & 0xffff) | (((c.asid ?? 0) & 0xffff) << 16);
      dw1 =
        ((c.addr ?? 0n) & ADDR_4K) |
        BigInt((c.leaf ? 1 : 0) | (((c.ttl ?? 0) & 3) << 8) | (((c.tg ?? 0) & 3) << 10));
      break;
    case 'CMD_SYNC':
      w0 |= (((c.cs ?? 0) & 3) << 12) | (((c.msh ?? 0) & 3) << 22) | (((c.msiAttr ?? 0) & 0xf) << 24);
      w1 = c.msiData ?? 0;
      dw1 = (c.msiAddr ?? 0n) & MSI_ADDR;
      break;
    case 'RESUME':
      w0 |= ((c.resp ?? 0) & 3) << 12;
      w1 = c.sid ?? 0;
      dw1 = BigInt((c.stag ?? 0) & 0xffff);
      break;
    default:
      w0 |= (c.ssv ? 1 << 11 : 0) | (((c.ssid ?? 0) & 0xfffff) << 12) | (c.global ? 1 << 9 : 0);
      w1 = c.sid ?? 0;
      if (c.op === 'CFGI_STE' || c.op === 'CFGI_CD') dw1 = BigInt(c.leaf ? 1 : 0);
      else if (c.op === 'CFGI_STE_RANGE') dw1 = BigInt((c.range ?? 0) & 0x1f);
      else if (c.op === 'ATC_INV') dw1 = ((c.addr ?? 0n) & ADDR_4K) | BigInt((c.size ?? 0) & 0x3f);
      else if (c.op === 'PREFETCH_ADDR') dw1 = ((c.addr ?? 0n) & ADDR_4K) | BigInt((c.size ?? 0) & 0x1f);
      else if (c.op === 'PRI_RESP') dw1 = BigInt(((c.prgIndex ?? 0) & 0x1ff) | (((c.resp ?? 0) & 3) << 12));
  }
  w[0] = w0 >>> 0;
  w[1] = w1 >>> 0;
  w[2] = Number(dw1 & 0xffff_ffffn);
  w[3] = Number(dw1 >> 32n);
  return w;
}

/**
 * Whether a decoded command is illegal on an SMMU with these parameters (CERROR_ILL): stage-1
 * TLBIs without stage 1, stage-2 TLBIs without stage 2, EL2 TLBIs without HYP, ATC_INV without
 * ATS, PRI_RESP without PRI or with Resp = 3, RESUME / STALL_TERM without stalls, CMD_SYNC with
 * CS = 3, a CFGI_* with SSec set (this is the Non-secure queue) and an SSID beyond IDR1.SSIDSIZE.
 * @param cmd - the command
 * @param config - SMMU parameters
 * @param w0 - DW0[31:0] of the raw command (for SSec)
 * @returns a reason, or `undefined` when legal
 */
export function smmuCommandIllegal(cmd: SmmuCommand, config: SmmuHwConfig, w0 = 0): string | undefined {
  const ssec = (w0 & (1 << 10)) !== 0;
  switch (cmd.op) {
    case 'CFGI_STE':
    case 'CFGI_STE_RANGE':
    case 'CFGI_CD':
    case 'CFGI_CD_ALL':
      if (ssec) return 'SSec set on the Non-secure command queue';
      if (cmd.op === 'CFGI_CD' && cmd.ssid >= 2 ** config.ssidBits && config.ssidBits < 20)
        return 'SSID beyond SSIDSIZE';
      return undefined;
    case 'TLBI_NH_ALL':
    case 'TLBI_NH_ASID':
    case 'TLBI_NH_VA':
    case 'TLBI_NH_VAA':
      return config.stage1 ? undefined : 'stage 1 not implemented';
    case 'TLBI_S12_VMALL':
    case 'TLBI_S2_IPA':
      return config.stage2 ? undefined : 'stage 2 not implemented';
    case 'TLBI_EL2_ALL':
    case 'TLBI_EL2_ASID':
    case 'TLBI_EL2_VA':
    case 'TLBI_EL2_VAA':
      return config.hyp ? undefined : 'EL2 not implemented (IDR0.HYP = 0)';
    case 'TLBI_EL3_ALL':
    case 'TLBI_EL3_VA':
      return 'EL3 invalidation on the Non-secure command queue';
    case 'ATC_INV':
      return config.ats ? undefined : 'ATS not implemented';
    case 'PRI_RESP':
      if (!config.pri) return 'PRI not implemented';
      return cmd.resp === 3 ? 'reserved PRI response code' : undefined;
    case 'RESUME':
      if (config.stallModel === 'terminate') return 'stalls not implemented';
      return cmd.resp === 3 ? 'reserved RESUME response' : undefined;
    case 'STALL_TERM':
      return config.stallModel === 'terminate' ? 'stalls not implemented' : undefined;
    case 'CMD_SYNC':
      return cmd.cs === 3 ? 'reserved CS value' : undefined;
    default:
      return undefined;
  }
}

/**
 * The configuration-cache invalidations CFGI_* commands perform (implemented by the SMMU's
 * configuration cache).
 */
export interface SmmuConfigInvalidator {
  /**
   * CFGI_STE.
   * @param sid - StreamID
   * @param leaf - only the STE (true) or also the L1STD
   */
  invalidateSte(sid: number, leaf: boolean): void;
  /**
   * CFGI_STE_RANGE.
   * @param sid - any StreamID of the range
   * @param range - the command's Range field: 2^(Range+1) StreamIDs; 31 means all
   */
  invalidateSteRange(sid: number, range: number): void;
  /**
   * CFGI_CD.
   * @param sid - StreamID
   * @param ssid - SubstreamID
   * @param leaf - only the CD (true) or also the L1CD
   */
  invalidateCd(sid: number, ssid: number, leaf: boolean): void;
  /**
   * CFGI_CD_ALL.
   * @param sid - StreamID
   */
  invalidateCdAll(sid: number): void;
  /** CFGI_ALL. */
  invalidateAll(): void;
}

/** What the command queue needs from the SMMU that owns it. */
export interface SmmuCmdqHost {
  /** SMMU parameters. */
  readonly config: SmmuHwConfig;
  /** RAM holding the queue. */
  readonly memory: PhysicalMemory;
  /** Where consumption runs. */
  readonly scheduler: Scheduler;
  /** The TLB TLBI commands act on. */
  readonly tlb: SmmuTlb;
  /** The configuration cache CFGI commands act on. */
  readonly configCache: SmmuConfigInvalidator;
  /**
   * CMD_ATC_INV: send the ATS invalidation.
   * @param cmd - the command
   */
  atcInvalidate(cmd: SmmuCmdAtcInv): void;
  /** Whether ATS invalidations sent by earlier CMD_ATC_INVs still await their completions. */
  atcPending(): boolean;
  /** Forget pending ATS invalidations (a CMD_SYNC timed out on them). */
  atcAbandon(): void;
  /**
   * CMD_PRI_RESP: send the PRG response.
   * @param cmd - the command
   */
  priResponse(cmd: SmmuCmdPriResp): void;
  /**
   * CMD_RESUME: retry or terminate the stalled transaction.
   * @param cmd - the command
   */
  resume(cmd: SmmuCmdResume): void;
  /**
   * CMD_STALL_TERM: terminate every stalled transaction of the StreamID.
   * @param cmd - the command
   */
  stallTerm(cmd: SmmuCmdStallTerm): void;
  /**
   * Signal a completed CMD_SYNC (CS = IRQ: MSI write or wired interrupt; CS = SEV: send event).
   * @param cmd - the command
   */
  syncComplete(cmd: SmmuCmdSync): void;
  /**
   * Raise a global error.
   * @param bit - a GERROR bit
   */
  raiseGerror(bit: number): void;
  /** Whether GERROR.CMDQ_ERR is active (consumption is stopped while it is). */
  cmdqErrorActive(): boolean;
}

/** Counters of {@link SmmuCommandQueue}. */
export interface SmmuCmdqStats {
  /** Commands consumed, by name. */
  readonly byName: Map<SmmuCommandName, number>;
  /** CMD_SYNCs completed. */
  syncs: number;
  /** Command errors raised. */
  errors: number;
}

/**
 * The command queue's registers and consumer.
 *
 * @remarks
 * Consumption runs as a scheduler task, spawned (or timed after `cmdqLatencyNs`) when PROD is
 * written while the queue is enabled, or when the owner {@link SmmuCommandQueue.kick}s it (enable,
 * GERRORN acknowledgement, an ATS invalidation completion). One task consumes every available
 * command, stopping at an error or at a CMD_SYNC whose ATS invalidations are not complete; the
 * latter arms a timer of `atcInvTimeoutNs` after which the SYNC fails with CERROR_ATC_INV_SYNC.
 */
export class SmmuCommandQueue {
  /** The owner. */
  readonly host: SmmuCmdqHost;
  /** CMDQ_BASE value. */
  base = 0n;
  /** LOG2SIZE in effect. */
  log2 = 0;
  /** Physical address of entry 0. */
  addr = 0;
  /** CMDQ_PROD (index and wrap). */
  prod = 0;
  /** CMDQ_CONS (index, wrap and ERR 30:24). */
  cons = 0;
  /** CR0.CMDQEN as acknowledged. */
  enabled = false;
  /** Counters. */
  readonly stats: SmmuCmdqStats = { byName: new Map(), syncs: 0, errors: 0 };
  /** Every command consumed, decoded, oldest first (a trace for tests; capped). */
  readonly log: SmmuCommand[] = [];
  /** Most commands kept in {@link SmmuCommandQueue.log}. */
  logLimit = 4096;
  #scheduled = false;
  #waitingSync = false;
  readonly #timer: Timer;
  readonly #consumeTask = (): void => {
    this.#scheduled = false;
    this.consume();
  };

  /** @param host - the owner */
  constructor(host: SmmuCmdqHost) {
    this.host = host;
    this.#timer = host.scheduler.createTimer(() => this.#syncTimeout(), 'smmu-cmdq-atc-timeout');
    this.writeBase(0n);
  }

  /**
   * Write CMDQ_BASE (LOG2SIZE capped at IDR1.CMDQS; address aligned down to the queue size).
   * @param value - u64
   */
  writeBase(value: bigint): void {
    this.base = value;
    this.log2 = Math.min(Number(value & BigInt(Q_BASE_LOG2SIZE)), this.host.config.cmdqLog2);
    const bytes = CMDQ_ENT_SIZE << this.log2;
    const a = Number(value & Q_BASE_ADDR_MASK);
    this.addr = a - (a % bytes);
  }

  /** Mask of index + wrap bits. */
  get ptrMask(): number {
    return (2 << this.log2) - 1;
  }

  /**
   * Software write of CMDQ_PROD; schedules consumption when enabled.
   * @param value - u32
   */
  writeProd(value: number): void {
    this.prod = value & this.ptrMask;
    this.kick();
  }

  /**
   * Software write of CMDQ_CONS (only while the queue is disabled, for initialisation).
   * @param value - u32
   */
  writeCons(value: number): void {
    if (this.enabled) return;
    this.cons = (value & (this.ptrMask | CMDQ_CONS_ERR)) >>> 0;
  }

  /** The ERR field of CMDQ_CONS. */
  get error(): number {
    return (this.cons & CMDQ_CONS_ERR) >>> CMDQ_CONS_ERR_SHIFT;
  }

  /** Whether there are commands between CONS and PROD. */
  get pending(): boolean {
    return ((this.prod ^ this.cons) & this.ptrMask) !== 0;
  }

  /** Whether consumption is blocked on a CMD_SYNC waiting for ATS invalidation completions. */
  get waitingForAtc(): boolean {
    return this.#waitingSync;
  }

  /** Schedule consumption if there is work and the queue may run. */
  kick(): void {
    if (!this.enabled || this.#scheduled || !this.pending || this.host.cmdqErrorActive()) return;
    this.#scheduled = true;
    const lat = this.host.config.cmdqLatencyNs;
    if (lat > 0) {
      const t = this.host.scheduler.createTimer(this.#consumeTask, 'smmu-cmdq');
      t.modAfter(lat);
    } else this.host.scheduler.spawn(this.#consumeTask, 'smmu-cmdq');
  }

  #advance(): void {
    const m = this.ptrMask;
    this.cons = (((this.cons + 1) & m) | (this.cons & CMDQ_CONS_ERR)) >>> 0;
  }

  #fail(err: number): void {
    this.cons = ((this.cons & ~CMDQ_CONS_ERR) | (err << CMDQ_CONS_ERR_SHIFT)) >>> 0;
    this.stats.errors++;
    this.host.raiseGerror(GERROR_CMDQ_ERR);
  }

  #syncTimeout(): void {
    if (!this.#waitingSync) return;
    this.#waitingSync = false;
    this.host.atcAbandon();
    this.#fail(CMDQ_ERR_CERROR_ATC_INV_SYNC);
  }

  /**
   * Consume commands now (the body of the scheduled task): every command from CONS up to PROD,
   * stopping on an error, on a disabled queue, or at a CMD_SYNC still waiting for ATS
   * invalidation completions.
   */
  consume(): void {
    const h = this.host;
    const mem = h.memory;
    while (this.enabled && this.pending && !h.cmdqErrorActive()) {
      const idx = this.cons & ((1 << this.log2) - 1);
      const at = this.addr + idx * CMDQ_ENT_SIZE;
      let w0: number;
      let w1: number;
      let w2: number;
      let w3: number;
      try {
        w0 = mem.read32(at);
        w1 = mem.read32(at + 4);
        w2 = mem.read32(at + 8);
        w3 = mem.read32(at + 12);
      } catch {
        this.#fail(CMDQ_ERR_CERROR_ABT);
        return;
      }
      const cmd = decodeSmmuCommand(w0, w1, w2, w3);
      if (cmd === undefined || smmuCommandIllegal(cmd, h.config, w0) !== undefined) {
        this.#fail(CMDQ_ERR_CERROR_ILL);
        return;
      }
      if (cmd.op === 'CMD_SYNC' && h.atcPending()) {
        if (!this.#waitingSync) {
          this.#waitingSync = true;
          this.#timer.modAfter(h.config.atcInvTimeoutNs);
        }
        return;
      }
      if (cmd.op === 'CMD_SYNC' && this.#waitingSync) {
        this.#waitingSync = false;
        this.#timer.del();
      }
      this.#execute(cmd);
      if (this.log.length >= this.logLimit) this.log.shift();
      this.log.push(cmd);
      this.stats.byName.set(cmd.op, (this.stats.byName.get(cmd.op) ?? 0) + 1);
      this.#advance();
      if (cmd.op === 'CMD_SYNC') {
        this.stats.syncs++;
        h.syncComplete(cmd);
      }
    }
  }

  #execute(cmd: SmmuCommand): void {
    const h = this.host;
    const tlb = h.tlb;
    const cc = h.configCache;
    const ril = h.config.ril;
    switch (cmd.op) {
      case 'PREFETCH_CONFIG':
      case 'PREFETCH_ADDR':
      case 'CMD_SYNC':
      case 'TLBI_EL3_ALL':
      case 'TLBI_EL3_VA':
        return;
      case 'CFGI_STE':
        cc.invalidateSte(cmd.sid, cmd.leaf);
        return;
      case 'CFGI_STE_RANGE':
        if (cmd.range === 31) cc.invalidateAll();
        else cc.invalidateSteRange(cmd.sid, cmd.range);
        return;
      case 'CFGI_CD':
        cc.invalidateCd(cmd.sid, cmd.ssid, cmd.leaf);
        return;
      case 'CFGI_CD_ALL':
        cc.invalidateCdAll(cmd.sid);
        return;
      case 'TLBI_NH_ALL':
        tlb.invalidateNhAll(h.config.stage2 ? cmd.vmid : 0);
        return;
      case 'TLBI_NH_ASID':
        tlb.invalidateNhAsid(h.config.stage2 ? cmd.vmid : 0, cmd.asid);
        return;
      case 'TLBI_EL2_ALL':
        tlb.invalidateEl2All();
        return;
      case 'TLBI_EL2_ASID':
        tlb.invalidateEl2Asid(cmd.asid);
        return;
      case 'TLBI_S12_VMALL':
        tlb.invalidateS12Vmall(cmd.vmid);
        return;
      case 'TLBI_NSNH_ALL':
        tlb.invalidateNsnhAll();
        return;
      case 'TLBI_NH_VA':
      case 'TLBI_NH_VAA':
      case 'TLBI_EL2_VA':
      case 'TLBI_EL2_VAA':
      case 'TLBI_S2_IPA': {
        const tg = ril ? cmd.tg : 0;
        const r = {
          vmid: h.config.stage2 ? cmd.vmid : 0,
          asid: cmd.asid,
          addr: cmd.addr,
          leaf: cmd.leaf,
          tg,
          num: tg === 0 ? 0 : cmd.num,
          scale: tg === 0 ? 0 : cmd.scale,
          ttl: tg === 0 ? 0 : cmd.ttl,
        };
        if (cmd.op === 'TLBI_NH_VA') tlb.invalidateNhVa(r);
        else if (cmd.op === 'TLBI_NH_VAA') tlb.invalidateNhVaa(r);
        else if (cmd.op === 'TLBI_EL2_VA') tlb.invalidateEl2Va(r);
        else if (cmd.op === 'TLBI_EL2_VAA') tlb.invalidateEl2Vaa(r);
        else tlb.invalidateS2Ipa({ ...r, ipa: cmd.addr });
        return;
      }
      case 'ATC_INV':
        h.atcInvalidate(cmd);
        return;
      case 'PRI_RESP':
        h.priResponse(cmd);
        return;
      case 'RESUME':
        h.resume(cmd);
        return;
      case 'STALL_TERM':
        h.stallTerm(cmd);
        return;
    }
  }

  /** Back to reset: registers 0, disabled, nothing waiting. */
  reset(): void {
    this.writeBase(0n);
    this.prod = 0;
    this.cons = 0;
    this.enabled = false;
    this.#waitingSync = false;
    this.#timer.del();
  }
}

/**
 * Check a command name (tests and tools).
 * @param name - a string
 * @returns the name as a {@link SmmuCommandName}
 * @throws ErrnoError `EINVAL` for an unknown name
 */
export function smmuCommandName(name: string): SmmuCommandName {
  if (!(name in CMDQ_OP)) throw new ErrnoError('EINVAL', `unknown SMMU command ${name}`);
  return name as SmmuCommandName;
}
