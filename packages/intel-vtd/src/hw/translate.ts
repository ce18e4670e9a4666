/**
 * The VT-d translator: from a DMA request (source-id, optional PASID, address, access) to a
 * physical address or a fault, in legacy and scalable mode, through the context and PASID caches,
 * the IOTLB and paging-structure caches, and the page walkers (digest §7.1–§7.3); plus PCIe ATS
 * translation requests (device-TLB semantics) and translated requests.
 *
 * @remarks
 * Fault reasons follow the specification's scalable-mode codes (0x38 … 0x87) in scalable mode and
 * the legacy codes in legacy mode; QEMU's choices are followed where the digest gives only those
 * (an unreadable top-level second-level table in legacy mode is 0x03, an output page overlapping
 * the interrupt range is 0x0E in legacy mode).
 *
 * Requests-without-PASID in scalable mode use RID_PASID; their privilege is the context entry's
 * RID_PRIV (with ECAP.RPRIVS), and they never execute. A fault's PP/PV report the PASID the request
 * carried (none for requests-without-PASID), as the specification records it.
 */

import type { AtsCompletion, AtsTranslationRequest } from '@iommu-ts/iommu-core';
import type { PhysicalMemory } from '@iommu-ts/mm';
import {
  IOTLB_KIND_FL,
  IOTLB_KIND_NESTED,
  IOTLB_KIND_SL,
  IOTLB_NO_PASID,
  VTD_PERM_PR,
  VTD_PERM_PW,
  VTD_PERM_PX,
  VTD_PERM_UR,
  VTD_PERM_UW,
  VTD_PERM_UX,
  VtdIotlb,
  type VtdIotlbKind,
  vtdPermBit,
} from './iotlb.js';
import { type PasidEntry, type PasidLookup, PGTT, resolveRequestPasid } from './pasid-table.js';
import { CONTEXT_TT, type ContextLookup, type ScalableContextEntry, VTD_TTM } from './root-context.js';
import type { VtdHwConfig } from './vtd-config.js';
import { VTD_FR, type VtdAddressType, type VtdFault, vtdFaultIsRecorded } from './vtd-fault.js';
import {
  type FlWalkParams,
  isCanonical,
  type SlWalkParams,
  WALK_EXEC,
  WALK_EXEC_DENIED,
  WALK_FETCH,
  WALK_NOFAULT,
  WALK_NOT_PRESENT,
  WALK_PRIV,
  WALK_READ,
  WALK_RSVD,
  WALK_TABLE_READ,
  WALK_TABLE_WRITE,
  WALK_USER,
  WALK_WIDTH,
  WALK_WRITE,
  WALK_WRITE_DENIED,
  type WalkFailure,
  type WalkPdeCache,
  type WalkResult,
  walkFirstLevel,
  walkSecondLevel,
} from './walk.js';

/** One request presented to {@link VtdTranslator.translate}. */
export interface VtdTransaction {
  /** Source-id (requester ID: bus 15:8, devfn 7:0). */
  readonly sourceId: number;
  /** PASID from the PASID TLP prefix; `undefined` for a request-without-PASID. */
  readonly pasid?: number | undefined;
  /** Input address (u64); a `number` is accepted for addresses below 2^53 (faster). */
  readonly addr: bigint | number;
  /** Write (otherwise read). */
  readonly write: boolean;
  /** Execute requested (PASID prefix ER; ignored without a PASID). */
  readonly exec: boolean;
  /** Privileged mode requested (PASID prefix PMR; ignored without a PASID). */
  readonly privileged: boolean;
  /** PCIe AT = translated: `addr` is a physical address from the device's ATC. */
  readonly atsTranslated: boolean;
}

/** Register state the translator obeys (owned by the unit's registers). */
export interface VtdTranslatorState {
  /** GSTS.TES: DMA remapping enabled. With it clear, DMA passes untranslated. */
  readonly enabled: boolean;
  /** Root table address latched by SRTP (page aligned). */
  readonly rtaddr: number;
  /** TTM latched by SRTP: 0 legacy, 1 scalable, 3 abort-DMA ({@link VTD_TTM}). */
  readonly ttm: number;
}

/** The byte at the request's address was translated (or passes untranslated). */
export interface VtdTranslationOk {
  /** Discriminant. */
  readonly kind: 'ok';
  /** Physical address of the request's address (below 2^53). */
  readonly pa: number;
  /**
   * Bytes from the request's address to the end of the translated page (the span over which
   * `pa` continues linearly); `Infinity` for untranslated pass-through.
   */
  readonly span: number;
  /** The translation came from the IOTLB. */
  readonly iotlbHit: boolean;
}

/** The request faulted. */
export interface VtdTranslationFault {
  /** Discriminant. */
  readonly kind: 'fault';
  /** The fault as the fault recording register would hold it (with the FPD that applied). */
  readonly fault: VtdFault;
  /** Whether the hardware records it (false when FPD suppresses a qualified reason, or in abort-DMA mode). */
  readonly record: boolean;
  /**
   * A page-level fault (not present, permission) of a device whose scalable-mode context entry has
   * PRE = 1: the kind of fault a page request can resolve. For DMA requests it is still a fault;
   * ATS translation requests turn such faults into "no access" completions.
   */
  readonly recoverable: boolean;
}

/** What {@link VtdTranslator.translate} returns. */
export type VtdTranslationResult = VtdTranslationOk | VtdTranslationFault;

/** What {@link VtdTranslator.atsTranslate} returns. */
export interface VtdAtsResult {
  /** The Translation Completion for the device. */
  readonly completion: AtsCompletion;
  /** A fault to record (non-recoverable conditions answered UR/CA), if any; check `record`. */
  readonly fault?: VtdTranslationFault;
}

/** The structure caches the translator reads through (V2's `VtdContextCache` / `VtdPasidCache`). */
export interface VtdTranslatorStructureSource {
  /** Context-entry lookup (`VtdContextCache.lookup`). */
  readonly contextCache: {
    lookup(rtaddr: number, ttm: number, sourceId: number): ContextLookup;
  };
  /** PASID-entry lookup (`VtdPasidCache.lookup`). */
  readonly pasidCache: {
    lookup(sourceId: number, ctx: ScalableContextEntry, pasid: number): PasidLookup;
  };
}

/** Constructor options of {@link VtdTranslator}. */
export interface VtdTranslatorOptions extends VtdTranslatorStructureSource {
  /** RAM holding the page tables (and written by A/D updates). */
  readonly memory: PhysicalMemory;
  /** The unit's parameters. */
  readonly config: VtdHwConfig;
  /** The IOTLB; default a new one sized from `config.iotlbCapacity` / `pdeCacheCapacity`. */
  readonly iotlb?: VtdIotlb;
  /** Initial register state; default disabled, legacy, RTADDR 0. */
  readonly state?: VtdTranslatorState;
}

/** Counters of {@link VtdTranslator}. */
export interface VtdTranslatorStats {
  /** Requests translated ({@link VtdTranslator.translate} calls). */
  requests: number;
  /** Page walks performed. */
  walks: number;
  /** Faults returned. */
  faults: number;
  /** ATS translation requests. */
  atsRequests: number;
}

const INTR_LO = 0xfee0_0000;
const INTR_HI = 0xfeef_ffff;
const TWO53 = 2 ** 53;
// Lower canonical halves (always canonical): below 2^47 (4 levels) and 2^56 (5 levels).
const LOW4 = 2 ** 47;
const LOW5 = 2 ** 56;
const LOW4N = 1n << 47n;
const LOW5N = 1n << 56n;
/** Page sizes by shift (12, 21, 30). */
const SIZE: Record<number, number> = { 12: 4096, 21: 2097152, 30: 1073741824 };

/** Reusable paging-structure cache view bound to one tag. */
class PdeView implements WalkPdeCache {
  did = 0;
  pasid = IOTLB_NO_PASID;
  kind: VtdIotlbKind = IOTLB_KIND_SL;
  readonly #iotlb: VtdIotlb;
  constructor(iotlb: VtdIotlb) {
    this.#iotlb = iotlb;
  }
  lookup(pfn: number, topLevel: number): { level: number; table: number; acc: number } | undefined {
    return this.#iotlb.pdeLookup(this.did, this.pasid, this.kind, pfn, topLevel);
  }
  insert(level: number, pfn: number, table: number, acc: number): void {
    this.#iotlb.pdeInsert(this.did, this.pasid, this.kind, level, pfn, table, acc);
  }
}

/** How a request is to be translated once the structures are resolved (memoised per decoded entry). */
interface Plan {
  readonly kind: 'walk';
  /** IOTLB / paging-structure tag. */
  readonly did: number;
  readonly pasid: number;
  readonly tlbKind: VtdIotlbKind;
  readonly sl: SlWalkParams | undefined;
  readonly fl: FlWalkParams | undefined;
  readonly scalable: boolean;
}

/** What the structure steps produce: a walk plan, an early answer, or a fault. */
type PlanResult = Plan | VtdTranslationOk | VtdTranslationFault;

/**
 * The translation engine of one remapping unit.
 *
 * @example
 * ```ts
 * const t = new VtdTranslator({ memory, config, contextCache, pasidCache });
 * t.setState({ enabled: true, rtaddr: root, ttm: 0 });
 * const r = t.translate({ sourceId: 0x0010, addr: 0x1000n, write: false, exec: false, privileged: false, atsTranslated: false });
 * ```
 */
export class VtdTranslator {
  /** The unit's parameters. */
  readonly config: VtdHwConfig;
  /** RAM. */
  readonly memory: PhysicalMemory;
  /** The IOTLB and paging-structure caches. */
  readonly iotlb: VtdIotlb;
  /** Counters. */
  readonly stats: VtdTranslatorStats = { requests: 0, walks: 0, faults: 0, atsRequests: 0 };

  readonly #source: VtdTranslatorStructureSource;
  readonly #pde: PdeView;
  #state: VtdTranslatorState;
  // Per-request outputs of the structure steps (set by #planLegacy / #planScalable).
  #priv = false;
  #exec = false;
  #fpd = false;
  #pre = false;
  // One-entry memos: the plan of the last decoded context / PASID entry seen.
  #memoEntry: object | undefined = undefined;
  #memoPasid = -1;
  #memoPlan: Plan | undefined = undefined;

  /** @param options - see {@link VtdTranslatorOptions} */
  constructor(options: VtdTranslatorOptions) {
    this.config = options.config;
    this.memory = options.memory;
    this.iotlb =
      options.iotlb ??
      new VtdIotlb({ capacity: options.config.iotlbCapacity, pdeCapacity: options.config.pdeCacheCapacity });
    this.#source = { contextCache: options.contextCache, pasidCache: options.pasidCache };
    this.#pde = new PdeView(this.iotlb);
    this.#state = options.state ?? { enabled: false, rtaddr: 0, ttm: VTD_TTM.legacy };
  }

  /** The register state in use. */
  get state(): VtdTranslatorState {
    return this.#state;
  }

  /**
   * Take new register state (after a GCMD.TE or SRTP handshake). Cache flushing on SRTP / TE is
   * the unit's decision (digest §7.4), not done here.
   * @param state - the new state
   */
  setState(state: VtdTranslatorState): void {
    this.#state = state;
  }

  /**
   * Translate the address of one request (digest §7.1–§7.3): the request's first byte; the caller
   * advances by `span` for accesses that cross pages.
   * @param txn - the request
   * @returns the physical address, or the fault
   */
  translate(txn: VtdTransaction): VtdTranslationResult {
    this.stats.requests++;
    const st = this.#state;
    let pfn: number;
    let off: number;
    const a = txn.addr;
    if (typeof a === 'number') {
      pfn = Math.floor(a / 4096);
      off = a % 4096;
    } else {
      const n = Number(a);
      if (n < TWO53) {
        pfn = Math.floor(n / 4096);
        off = n % 4096;
      } else {
        pfn = Number(BigInt.asUintN(64, a) >> 12n);
        off = Number(a & 0xfffn);
      }
    }
    if (!st.enabled)
      return { kind: 'ok', pa: pfn * 4096 + off, span: Number.POSITIVE_INFINITY, iotlbHit: false };
    const scalable = st.ttm === VTD_TTM.scalable;
    if (!scalable && st.ttm !== VTD_TTM.legacy) return this.#fault(txn, 0, VTD_FR.RESERVED, true, false);
    const addrType: VtdAddressType = txn.atsTranslated ? 2 : 0;
    const plan = scalable ? this.#planScalable(txn, addrType) : this.#planLegacy(txn, addrType);
    if (plan.kind === 'fault') return plan;
    if (plan.kind === 'ok') return plan;
    const p = plan;
    const privileged = this.#priv;
    const exec = this.#exec;
    // IOTLB.
    const e = this.iotlb.lookup(p.did, p.pasid, pfn);
    if (e !== undefined) {
      if ((e.perm & vtdPermBit(txn.write, exec, privileged)) !== 0 && (e.dirty || !txn.write)) {
        const size = SIZE[e.shift] as number;
        const inPage = (pfn - e.pfn) * 4096 + off;
        return { kind: 'ok', pa: e.outputBase + inPage, span: size - inPage, iotlbHit: true };
      }
      // A refused or not-yet-dirty write: walk again (the hardware may refetch).
      this.iotlb.remove(e);
    }
    const access = (txn.write ? WALK_WRITE : 0) | (exec ? WALK_EXEC : 0) | (privileged ? WALK_PRIV : 0);
    const r = this.#walk(p, pfn, access);
    if (!r.ok) return this.#walkFault(txn, addrType, p, r);
    const size = SIZE[r.shift] as number;
    if (r.outputBase <= INTR_HI && r.outputBase + size > INTR_LO)
      return this.#fault(
        txn,
        addrType,
        p.scalable ? VTD_FR.SM_INTERRUPT_ADDR : VTD_FR.INTERRUPT_ADDR,
        this.#fpd,
        false,
      );
    this.iotlb.insert({
      did: p.did,
      pasid: p.pasid,
      kind: p.tlbKind,
      pfn,
      shift: r.shift,
      outputBase: r.outputBase,
      perm: r.perm,
      dirty: r.dirty,
      global: r.global,
    });
    const inPage = (pfn % (size / 4096)) * 4096 + off;
    return { kind: 'ok', pa: r.outputBase + inPage, span: size - inPage, iotlbHit: false };
  }

  #walk(p: Plan, pfn: number, access: number): WalkResult {
    this.stats.walks++;
    const v = this.#pde;
    v.did = p.did;
    v.kind = p.tlbKind;
    if (p.fl !== undefined) {
      v.pasid = p.pasid;
      return walkFirstLevel(this.memory, p.fl, pfn, access, v);
    }
    // Second-level paging-structure entries are shared by every PASID of the domain.
    v.pasid = IOTLB_NO_PASID;
    return walkSecondLevel(this.memory, p.sl as SlWalkParams, pfn, access, v);
  }

  #slParams(root: number, aw: number, ad: boolean, execEnable: boolean, scalable: boolean): SlWalkParams {
    const c = this.config;
    return {
      root,
      levels: aw + 2,
      widthBits: Math.min(30 + 9 * aw, c.mgaw),
      haw: c.haw,
      large2M: c.sl2MPages,
      large1G: c.sl1GPages,
      snp: scalable || c.sc,
      execEnable,
      ad,
    };
  }

  /** Legacy mode steps 0–11 (digest §7.2). */
  #planLegacy(txn: VtdTransaction, addrType: VtdAddressType): PlanResult {
    if (txn.pasid !== undefined) return this.#fault(txn, addrType, VTD_FR.SM_PASID_IN_LEGACY, false, false);
    const st = this.#state;
    const c = this.#source.contextCache.lookup(st.rtaddr, st.ttm, txn.sourceId);
    if (c.kind === 'fault') return this.#fault(txn, addrType, c.reason, c.fpd, false);
    const ctx = c.entry;
    if (ctx.mode !== 'legacy') return this.#fault(txn, addrType, VTD_FR.CONTEXT_ENTRY_INV, ctx.fpd, false);
    if (addrType !== 0 && ctx.tt !== CONTEXT_TT.devIotlb)
      return this.#fault(txn, addrType, VTD_FR.CONTEXT_ENTRY_TT, ctx.fpd, false);
    if (addrType === 2) return this.#untranslated(txn);
    if (ctx.tt === CONTEXT_TT.passThrough) return this.#untranslated(txn);
    this.#priv = false;
    this.#exec = false;
    this.#fpd = ctx.fpd;
    this.#pre = false;
    if (this.#memoEntry === ctx && this.#memoPlan !== undefined) return this.#memoPlan;
    const plan: Plan = {
      kind: 'walk',
      did: ctx.did,
      pasid: IOTLB_NO_PASID,
      tlbKind: IOTLB_KIND_SL,
      sl: this.#slParams(ctx.slptptr, ctx.aw, false, false, false),
      fl: undefined,
      scalable: false,
    };
    this.#memoEntry = ctx;
    this.#memoPlan = plan;
    return plan;
  }

  /** Scalable mode steps 1–21 (digest §7.3). */
  #planScalable(txn: VtdTransaction, addrType: VtdAddressType): PlanResult {
    const st = this.#state;
    const c = this.#source.contextCache.lookup(st.rtaddr, st.ttm, txn.sourceId);
    if (c.kind === 'fault') return this.#fault(txn, addrType, c.reason, c.fpd, false);
    const ctx = c.entry;
    if (ctx.mode !== 'scalable') return this.#fault(txn, addrType, VTD_FR.SM_CTX_INV, ctx.fpd, false);
    if (addrType !== 0 && !ctx.dte) return this.#fault(txn, addrType, VTD_FR.SM_CTX_DTE, ctx.fpd, false);
    const rp = resolveRequestPasid(ctx, txn.pasid, this.config);
    if (rp.kind === 'fault') return this.#fault(txn, addrType, rp.reason, rp.fpd, false);
    if (addrType === 2) return this.#untranslated(txn);
    const pl = this.#source.pasidCache.lookup(txn.sourceId, ctx, rp.pasid);
    if (pl.kind === 'fault') return this.#fault(txn, addrType, pl.reason, pl.fpd, false);
    const pe = pl.entry;
    const withPasid = txn.pasid !== undefined;
    const privileged = withPasid ? txn.privileged : this.config.rprivs && ctx.ridPriv;
    const exec = withPasid && txn.exec;
    if (privileged && !pe.sre) return this.#fault(txn, addrType, VTD_FR.SM_PASID_SRE, pl.fpd, false);
    if (exec && !pe.ere) return this.#fault(txn, addrType, VTD_FR.SM_PASID_ERE, pl.fpd, false);
    this.#priv = privileged;
    this.#exec = exec;
    this.#fpd = pl.fpd;
    this.#pre = ctx.pre;
    let plan: Plan | undefined;
    if (this.#memoEntry === pe && this.#memoPasid === rp.pasid && this.#memoPlan !== undefined)
      plan = this.#memoPlan;
    else {
      plan = this.#pasidPlan(pe, rp.pasid);
      if (plan !== undefined) {
        this.#memoEntry = pe;
        this.#memoPasid = rp.pasid;
        this.#memoPlan = plan;
      }
    }
    if (plan === undefined) {
      // Pass-through: requests-with-PASID must not reach the interrupt range.
      if (withPasid) {
        const a = typeof txn.addr === 'number' ? txn.addr : Number(txn.addr);
        if (a >= INTR_LO && a <= INTR_HI)
          return this.#fault(txn, addrType, VTD_FR.SM_INTERRUPT_ADDR, pl.fpd, false);
      }
      return this.#untranslated(txn);
    }
    const a = txn.addr;
    const fl = plan.fl;
    if (
      fl !== undefined &&
      !(typeof a === 'number'
        ? a < (fl.levels === 5 ? LOW5 : LOW4)
        : a < (fl.levels === 5 ? LOW5N : LOW4N)) &&
      !isCanonical(BigInt(a), fl.levels)
    )
      return this.#fault(txn, addrType, VTD_FR.SM_NON_CANONICAL, pl.fpd, false);
    return plan;
  }

  /** The walk plan of a PASID entry, or `undefined` for pass-through. */
  #pasidPlan(pe: PasidEntry, pasid: number): Plan | undefined {
    switch (pe.pgtt) {
      case PGTT.passThrough:
        return undefined;
      case PGTT.secondLevel:
        return {
          kind: 'walk',
          did: pe.did,
          pasid,
          tlbKind: IOTLB_KIND_SL,
          sl: this.#slParams(pe.slptptr, pe.aw, pe.slade, pe.slee, true),
          fl: undefined,
          scalable: true,
        };
      default: {
        const nested = pe.pgtt === PGTT.nested;
        const sl = nested ? this.#slParams(pe.slptptr, pe.aw, pe.slade, pe.slee, true) : undefined;
        return {
          kind: 'walk',
          did: pe.did,
          pasid,
          tlbKind: nested ? IOTLB_KIND_NESTED : IOTLB_KIND_FL,
          sl,
          fl: {
            root: pe.flptr,
            levels: pe.flpm === 1 ? 5 : 4,
            haw: this.config.haw,
            large1G: this.config.fl1gp,
            wpe: pe.wpe,
            nested: sl,
          },
          scalable: true,
        };
      }
    }
  }

  #untranslated(txn: VtdTransaction): VtdTranslationOk {
    const a = txn.addr;
    const pa = typeof a === 'number' ? a : Number(a);
    return { kind: 'ok', pa, span: Number.POSITIVE_INFINITY, iotlbHit: false };
  }

  #walkFault(txn: VtdTransaction, addrType: VtdAddressType, p: Plan, f: WalkFailure): VtdTranslationFault {
    const reason = walkFaultReason(f, p.scalable, p.fl !== undefined);
    const pageLevel =
      f.kind === WALK_READ ||
      f.kind === WALK_WRITE_DENIED ||
      f.kind === WALK_NOT_PRESENT ||
      f.kind === WALK_USER ||
      f.kind === WALK_EXEC_DENIED;
    return this.#fault(txn, addrType, reason, this.#fpd, this.#pre && pageLevel);
  }

  #fault(
    txn: VtdTransaction,
    addrType: VtdAddressType,
    reason: number,
    fpd: boolean,
    recoverable: boolean,
  ): VtdTranslationFault {
    this.stats.faults++;
    const withPasid = txn.pasid !== undefined;
    const fault: VtdFault = {
      reason,
      sourceId: txn.sourceId & 0xffff,
      addr: BigInt.asUintN(64, BigInt(txn.addr)),
      write: txn.write,
      pasidPresent: withPasid,
      pasid: withPasid ? (txn.pasid as number) : 0,
      exec: withPasid && txn.exec,
      privileged: withPasid && txn.privileged,
      addressType: addrType,
      fpd,
    };
    const record = this.#state.ttm === VTD_TTM.abortDma ? false : vtdFaultIsRecorded(fault);
    return { kind: 'fault', fault, record, recoverable };
  }

  /**
   * Answer a PCIe ATS Translation Request (device-TLB semantics): the translation of the naturally
   * aligned page containing `req.addr`, with the permissions the tables grant.
   *
   * @remarks
   * - No ECAP.DT, or DMA remapping disabled: Unsupported Request.
   * - Structure faults (root, context, PASID, TT ≠ 01 / DTE = 0, reserved or unreadable entries):
   *   UR (CA for an unreadable page-table entry), and the fault is returned for recording.
   * - Page-level conditions (not present, no permission, address out of range or not canonical,
   *   SRE clear for a privileged request, ERE clear for an execute request): success with R = W = 0, nothing recorded — the device may then send a
   *   page request.
   * - Otherwise success: R/W/Exe/Priv from the walk (W = 0 when NW is set and ECAP.NWFS), the
   *   page size of the leaf, Global from a first-level G bit. Pass-through answers 4 KiB identity
   *   with R = W = 1. A/D: A is set; D only for a translation that grants W without NW.
   *
   * @param req - the request
   * @returns the completion and any fault to record
   */
  atsTranslate(req: AtsTranslationRequest): VtdAtsResult {
    this.stats.atsRequests++;
    const st = this.#state;
    if (!this.config.dt)
      return { completion: { status: 'ur', detail: 'VT-d unit without device-TLB support' } };
    if (!st.enabled) return { completion: { status: 'ur', detail: 'DMA remapping disabled' } };
    const txn: VtdTransaction = {
      sourceId: req.requesterId,
      pasid: req.pasid,
      addr: req.addr,
      write: false,
      exec: req.exec,
      privileged: req.privileged,
      atsTranslated: false,
    };
    const pageAddr = BigInt.asUintN(64, req.addr) & ~0xfffn;
    const noAccess = (size = 4096n): VtdAtsResult => ({
      completion: {
        status: 'success',
        untranslatedAddr: pageAddr - (pageAddr % size),
        translatedAddr: 0n,
        size,
        read: false,
        write: false,
        exec: false,
        privileged: false,
        untranslatedOnly: false,
        global: false,
        noSnoop: false,
      },
    });
    const scalable = st.ttm === VTD_TTM.scalable;
    if (!scalable && st.ttm !== VTD_TTM.legacy)
      return { completion: { status: 'ur', detail: 'abort-DMA mode' } };
    if (!scalable && req.pasid !== undefined)
      return urFault(this.#fault(txn, 1, VTD_FR.SM_PASID_IN_LEGACY, false, false));
    const plan = scalable ? this.#planScalable(txn, 1) : this.#planLegacy(txn, 1);
    if (plan.kind === 'fault') {
      const r = plan.fault.reason;
      if (r === VTD_FR.SM_PASID_SRE || r === VTD_FR.SM_PASID_ERE || r === VTD_FR.SM_NON_CANONICAL)
        return noAccess();
      return urFault(plan);
    }
    const nw = req.noWrite && this.config.nwfs;
    if (plan.kind === 'ok') {
      return {
        completion: {
          status: 'success',
          untranslatedAddr: pageAddr,
          translatedAddr: pageAddr,
          size: 4096n,
          read: true,
          write: !nw,
          exec: false,
          privileged: req.privileged,
          untranslatedOnly: false,
          global: false,
          noSnoop: false,
        },
      };
    }
    const p = plan;
    const pfn = Number(pageAddr >> 12n);
    const access = WALK_NOFAULT | (nw ? 0 : WALK_WRITE) | (this.#priv ? WALK_PRIV : 0);
    const r = this.#walk(p, pfn, access);
    if (!r.ok) {
      if (r.kind === WALK_FETCH)
        return {
          completion: { status: 'ca', detail: 'page-table entry not readable' },
          fault: this.#walkFault(txn, 1, p, r),
        };
      if (r.kind === WALK_RSVD || r.kind === WALK_TABLE_READ || r.kind === WALK_TABLE_WRITE)
        return urFault(this.#walkFault(txn, 1, p, r));
      return noAccess();
    }
    const priv = this.#priv;
    const readOk = (r.perm & (priv ? VTD_PERM_PR : VTD_PERM_UR)) !== 0;
    const writeOk = !nw && (r.perm & (priv ? VTD_PERM_PW : VTD_PERM_UW)) !== 0;
    const execOk = this.#exec && (r.perm & (priv ? VTD_PERM_PX : VTD_PERM_UX)) !== 0;
    const size = BigInt(2 ** r.shift);
    return {
      completion: {
        status: 'success',
        untranslatedAddr: pageAddr - (pageAddr % size),
        translatedAddr: BigInt(r.outputBase),
        size,
        read: readOk,
        write: writeOk,
        exec: execOk,
        privileged: priv,
        untranslatedOnly: false,
        global: r.global,
        noSnoop: false,
      },
    };
  }
}

function urFault(f: VtdTranslationFault): VtdAtsResult {
  return { completion: { status: 'ur', detail: `fault reason 0x${f.fault.reason.toString(16)}` }, fault: f };
}

/**
 * The fault reason of a failed walk (digest §7.2 steps 11–16, §7.3 step 21).
 * @param f - the failure
 * @param scalable - scalable mode (else legacy codes)
 * @param firstLevel - the walk was first-level or nested (else second-level only)
 * @returns the FR code
 */
export function walkFaultReason(f: WalkFailure, scalable: boolean, firstLevel: boolean): number {
  if (!scalable) {
    switch (f.kind) {
      case WALK_FETCH:
        return f.top ? VTD_FR.CONTEXT_ENTRY_INV : VTD_FR.PAGING_ENTRY_INV;
      case WALK_READ:
        return VTD_FR.READ;
      case WALK_WRITE_DENIED:
        return VTD_FR.WRITE;
      case WALK_WIDTH:
        return VTD_FR.ADDR_BEYOND_MGAW;
      default:
        return VTD_FR.PAGING_ENTRY_RSVD;
    }
  }
  if (f.stage === 2) {
    if (f.nested === 'table') {
      switch (f.kind) {
        case WALK_WIDTH:
          return VTD_FR.SM_NESTED_FL_MGAW;
        case WALK_TABLE_READ:
          return f.nestedTop ? VTD_FR.SM_NESTED_FL_TOP_READ : VTD_FR.SM_NESTED_FL_READ;
        case WALK_TABLE_WRITE:
          return VTD_FR.SM_NESTED_FL_WRITE;
        default:
          break;
      }
    }
    switch (f.kind) {
      case WALK_FETCH:
        return f.top ? VTD_FR.SM_SLPTR_INV : VTD_FR.SM_SL_ACCESS;
      case WALK_READ:
      case WALK_WRITE_DENIED:
      case WALK_TABLE_READ:
      case WALK_TABLE_WRITE:
        return VTD_FR.SM_SL_PERM;
      case WALK_EXEC_DENIED:
        return VTD_FR.SM_EXEC;
      case WALK_WIDTH:
        return VTD_FR.SM_ADDR_BEYOND_MAX;
      default:
        return VTD_FR.SM_SL_RSVD;
    }
  }
  void firstLevel;
  switch (f.kind) {
    case WALK_FETCH:
      return f.top ? VTD_FR.SM_FLPTR_ACCESS : VTD_FR.SM_FL_ACCESS;
    case WALK_NOT_PRESENT:
      return VTD_FR.SM_FL_P;
    case WALK_USER:
      return VTD_FR.SM_US;
    case WALK_WRITE_DENIED:
      return VTD_FR.SM_WRITE;
    case WALK_EXEC_DENIED:
      return VTD_FR.SM_EXEC;
    default:
      return VTD_FR.SM_FL_RSVD;
  }
}
