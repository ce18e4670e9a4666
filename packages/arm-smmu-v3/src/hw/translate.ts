/**
 * The SMMU's translation of one incoming transaction (digest §7.1): global enable, stream table,
 * STE, substream / CD, TLB, stage-1 and stage-2 walks, permission and address-size checks, and
 * ATS translation requests.
 */

import type { PhysicalMemory } from '@iommu-ts/mm';
import type { CdIpaTranslate } from './cd-table.js';
import type { SmmuConfigCache } from './config-cache.js';
import type { Cd } from './context-descriptor.js';
import { type SmmuEvent, type SmmuEventType, smmuEvent } from './events.js';
import type { SmmuHwConfig } from './smmu-config.js';
import type { Ste } from './ste.js';
import type { StreamTableConfig } from './stream-table.js';
import {
  SmmuTlb,
  type SmmuTlbEntry,
  TLB_PERM_ALL,
  TLB_PERM_PR,
  TLB_PERM_PW,
  TLB_PERM_PX,
  TLB_REGIME_EL2,
  TLB_REGIME_NS_EL1,
  type TlbEntryStage,
  tlbPermBit,
  tlbTag,
} from './tlb.js';
import { stage1StartLevel, type WalkAccess, type WalkFailure, type WalkParams, walk } from './walk.js';

/** One transaction presented to {@link SmmuTranslator.translate}. */
export interface SmmuTransaction {
  /** StreamID. */
  readonly sid: number;
  /** SubstreamID; `undefined` when the transaction carries none (SSV = 0). */
  readonly ssid?: number | undefined;
  /** Input address (u64); a `number` is accepted for addresses below 2^53 (faster). */
  readonly addr: bigint | number;
  /** Write (RnW = 0). */
  readonly write: boolean;
  /** Instruction fetch (InD = 1; reads only). */
  readonly exec: boolean;
  /** Privileged (PnU = 1). */
  readonly privileged: boolean;
  /** PCIe ATS-translated (AT = Translated): `addr` is already a PA (or an IPA with split-stage ATS). */
  readonly atsTranslated: boolean;
}

/** Global register state the translator obeys (owned by the model's registers). */
export interface SmmuTranslatorGlobalState {
  /** CR0.SMMUEN. */
  readonly smmuEnabled: boolean;
  /** GBPA.ABORT: with SMMUEN = 0, abort instead of bypass. */
  readonly gbpaAbort: boolean;
  /** CR0.ATSCHK: check ATS-translated traffic against STE.EATS. */
  readonly atsCheck: boolean;
  /** CR2.E2H: the EL2 StreamWorld uses ASIDs (EL2-E2H). */
  readonly e2h: boolean;
  /** STRTAB_BASE / STRTAB_BASE_CFG as decoded by `streamTableConfig`. */
  readonly strtab: StreamTableConfig;
}

/** Fields shared by {@link SmmuTranslationOk} and {@link SmmuTranslationBypass}. */
export interface SmmuTranslationSuccessBase {
  /** Physical address of the input address (a `number`, below 2^52). */
  readonly pa: number;
  /**
   * Bytes from the input address to the end of the translated block (the span over which
   * `pa` continues linearly); `Infinity` for bypass.
   */
  readonly span: number;
  /** Whether the result came from the TLB. */
  readonly tlbHit: boolean;
}

/** The byte at the transaction's address was translated (or is ATS-translated traffic let through). */
export interface SmmuTranslationOk extends SmmuTranslationSuccessBase {
  /** Discriminant. */
  readonly kind: 'ok';
}

/** The transaction passes untranslated (GBPA bypass, STE bypass, both stages bypassed). */
export interface SmmuTranslationBypass extends SmmuTranslationSuccessBase {
  /** Discriminant. */
  readonly kind: 'bypass';
}

/** The transaction is aborted without an event (STE Config = abort, GBPA abort). */
export interface SmmuTranslationAbort {
  /** Discriminant. */
  readonly kind: 'abort';
  /** `'gbpa'` (SMMUEN = 0 with GBPA.ABORT) or `'ste'` (Config = abort). */
  readonly reason: 'gbpa' | 'ste';
}

/** The transaction faulted; the model records the event (if `record`) and stalls or terminates. */
export interface SmmuTranslationFault {
  /** Discriminant. */
  readonly kind: 'fault';
  /** The event to record (STALL / STAG are filled in by the model when it stalls). */
  readonly event: SmmuEvent;
  /**
   * The fault may stall (a translation fault with CD.S = 1 and STE.S1STALLD = 0, or a stage-2
   * fault with STE.S2S = 1); otherwise it terminates.
   */
  readonly stallable: boolean;
  /**
   * Record the event when the transaction terminates: always for configuration and fetch errors;
   * CD.R / STE.S2R for the four translation faults. (A stalled fault is always recorded.)
   */
  readonly record: boolean;
  /** Terminate with RAZ/WI (CD.A = 0 under TERM_MODEL 0) rather than an abort. */
  readonly razWi: boolean;
}

/** What {@link SmmuTranslator.translate} returns. */
export type SmmuTranslationResult =
  | SmmuTranslationOk
  | SmmuTranslationBypass
  | SmmuTranslationAbort
  | SmmuTranslationFault;

/** One ATS Translation Request presented to {@link SmmuTranslator.atsTranslate}. */
export interface SmmuAtsRequest {
  /** StreamID. */
  readonly sid: number;
  /** SubstreamID (PASID), if the request carries one. */
  readonly ssid?: number | undefined;
  /** Untranslated address (u64). */
  readonly addr: bigint;
  /** NW: read-only translation requested. */
  readonly noWrite: boolean;
  /** Execute requested. */
  readonly exec: boolean;
  /** Privileged mode requested. */
  readonly privileged: boolean;
}

/** The answer to an ATS Translation Request. */
export interface SmmuAtsResult {
  /**
   * `'success'` (R/W/X say what is allowed; R=W=0 for a translation-class fault, which records
   * no event), `'ur'` (Unsupported Request: ATS not allowed or a configuration error) or `'ca'`
   * (Completer Abort: external abort during the walk).
   */
  readonly status: 'success' | 'ur' | 'ca';
  /** Base of the untranslated range (aligned to `size`). */
  readonly untranslatedAddr: bigint;
  /** Base of the translated range (PA, or IPA for split-stage ATS). */
  readonly translatedAddr: bigint;
  /** Range size in bytes (power of two, at least 4096). */
  readonly size: bigint;
  /** R. */
  readonly read: boolean;
  /** W. */
  readonly write: boolean;
  /** Exe. */
  readonly exec: boolean;
  /** Priv. */
  readonly privileged: boolean;
  /** U: the device must use untranslated requests for this range. */
  readonly untranslatedOnly: boolean;
  /** The event to record (configuration errors, F_BAD_ATS_TREQ, walk aborts), if any. */
  readonly event?: SmmuEvent;
}

/** The configuration-cache lookups the translator uses (`SmmuConfigCache` provides them). */
export type SmmuTranslatorConfigSource = Pick<SmmuConfigCache, 'lookupSte' | 'lookupCd'>;

/** Constructor options of {@link SmmuTranslator}. */
export interface SmmuTranslatorOptions {
  /** RAM holding tables (and written by HTTU updates). */
  readonly memory: PhysicalMemory;
  /** The SMMU's parameters. */
  readonly config: SmmuHwConfig;
  /** STE / CD lookups through the configuration cache. */
  readonly configSource: SmmuTranslatorConfigSource;
  /** The TLB; default `SmmuTlb.fromConfig(config)`. */
  readonly tlb?: SmmuTlb;
  /** Initial register state; default {@link SMMU_TRANSLATOR_DEFAULT_STATE}. */
  readonly state?: SmmuTranslatorGlobalState;
}

/**
 * Default register state of a translator: enabled, GBPA bypass, ATSCHK set, no E2H, an empty
 * linear stream table at PA 0 (every StreamID is out of range). The model overrides it from its
 * registers.
 */
export const SMMU_TRANSLATOR_DEFAULT_STATE: SmmuTranslatorGlobalState = Object.freeze({
  smmuEnabled: true,
  gbpaAbort: false,
  atsCheck: true,
  e2h: false,
  strtab: Object.freeze({ base: 0, log2size: 0, fmt: 'linear', split: 0 } as const),
});

const TWO52 = 2 ** 52;
const NO_CHECK: WalkAccess = Object.freeze({ need: 0, write: false, atsWrite: false });
const ABORT_GBPA: SmmuTranslationAbort = Object.freeze({ kind: 'abort', reason: 'gbpa' });
const ABORT_STE: SmmuTranslationAbort = Object.freeze({ kind: 'abort', reason: 'ste' });
const TRANSLATION_FAULTS = new Set<SmmuEventType>([
  'F_TRANSLATION',
  'F_ADDR_SIZE',
  'F_ACCESS',
  'F_PERMISSION',
]);

/** Stage-2 result of a table-address translation. */
type TableXlate = { readonly pa: number; readonly perm: number } | WalkFailure;

/** Everything derived once from an (STE, CD) pair: walk parameters, TLB tags, fault disposition. */
class TxContext {
  readonly ste: Ste;
  readonly cd: Cd | undefined;
  /** Stage-1 TTB0 / TTB1 parameters (undefined: region disabled or stage 1 bypassed). */
  readonly r0: WalkParams | undefined;
  readonly r1: WalkParams | undefined;
  /** 2^inputBits of each region (0 when disabled). */
  readonly lim0: number;
  readonly lim1: number;
  readonly tbi0: boolean;
  readonly tbi1: boolean;
  readonly s2: WalkParams | undefined;
  readonly tag0: number;
  readonly tag1: number;
  readonly gtag0: number;
  readonly gtag1: number;
  readonly s2tag: number;
  /** Kind of the stage-1 entries (`'s1'` or `'nested'`). */
  readonly s1Stage: TlbEntryStage;
  /** CD.ASET, recorded in the stage-1 entries (broadcast TLB maintenance skips ASET = 1). */
  readonly aset: boolean;
  /** Translation of stage-1 table IPAs (nested only). */
  tableIpa: ((ipa: number) => TableXlate) | undefined = undefined;
  /** Translation of CD-table IPAs for the configuration cache (nested STE contexts only). */
  cdIpa: CdIpaTranslate | undefined = undefined;

  constructor(ste: Ste, cd: Cd | undefined, e2h: boolean) {
    this.ste = ste;
    this.cd = cd;
    const el2 = ste.strw === 2;
    const regime = el2 ? TLB_REGIME_EL2 : TLB_REGIME_NS_EL1;
    const vmid = el2 ? 0 : ste.vmid;
    // EL2 without E2H has no ASIDs: everything is tagged ASID 0.
    const asid = cd === undefined || (el2 && !e2h) ? 0 : cd.tagAsid;
    this.r0 =
      cd !== undefined && !cd.epd0
        ? s1Params(cd.tg0Shift, 64 - cd.t0sz, cd.ttb0, cd.outputBits0, cd, cd.had0Effective)
        : undefined;
    this.r1 =
      cd !== undefined && !cd.epd1
        ? s1Params(cd.tg1Shift, 64 - cd.t1sz, cd.ttb1, cd.outputBits1, cd, cd.had1Effective)
        : undefined;
    this.lim0 = this.r0 === undefined ? 0 : 2 ** this.r0.inputBits;
    this.lim1 = this.r1 === undefined ? 0 : 2 ** this.r1.inputBits;
    this.tbi0 = cd?.tbi0 ?? false;
    this.tbi1 = cd?.tbi1 ?? false;
    this.s2 = ste.s2Enabled
      ? {
          stage: 2,
          granule: ste.s2GranuleShift,
          inputBits: ste.s2InputBits,
          startLevel: ste.s2StartLevel,
          ttb: ste.s2Ttb,
          outputBits: ste.s2OutputBits,
          ha: ste.s2HaEffective,
          hd: ste.s2HdEffective,
          affd: ste.s2Affd,
          had: false,
          wxn: false,
        }
      : undefined;
    this.tag0 = tlbTag(regime, false, 0, vmid, asid);
    this.tag1 = tlbTag(regime, false, 1, vmid, asid);
    const gasid = el2 && !e2h ? 0 : -1;
    this.gtag0 = tlbTag(regime, false, 0, vmid, gasid);
    this.gtag1 = tlbTag(regime, false, 1, vmid, gasid);
    this.s2tag = tlbTag(regime, true, 0, vmid, 0);
    this.s1Stage = this.s2 === undefined ? 's1' : 'nested';
    this.aset = cd?.aset ?? false;
  }
}

function s1Params(
  granule: number,
  inputBits: number,
  ttb: number,
  outputBits: number,
  cd: Cd,
  had: boolean,
): WalkParams {
  return {
    stage: 1,
    granule,
    inputBits,
    startLevel: stage1StartLevel(inputBits, granule),
    ttb,
    outputBits,
    ha: cd.haEffective,
    hd: cd.hdEffective,
    affd: cd.affd,
    had,
    wxn: cd.wxn,
  };
}

/** Per-transaction access description (after STE PRIVCFG / INSTCFG overrides). */
interface Access extends WalkAccess {
  readonly exec: boolean;
  readonly privileged: boolean;
}

/**
 * Translates transactions and ATS requests for the model (digest §7).
 *
 * @remarks
 * Order of checks (§7.1): SMMUEN / GBPA; ATS-translated traffic (ATSCHK, EATS); the STE through
 * the configuration cache (C_BAD_STREAMID, F_STE_FETCH, C_BAD_STE); Config abort / bypass; the
 * SubstreamID rules and the CD (C_BAD_SUBSTREAMID, F_STREAM_DISABLED, F_CD_FETCH, C_BAD_CD; for
 * nested STEs the CD-table IPAs go through stage 2 with CLASS = CD); TTB region selection with
 * TBI (F_TRANSLATION); the TLB; the stage-1 walk (each table IPA through stage 2 for nested STEs,
 * CLASS = TT); the stage-2 walk of the output IPA (S2 = 1). Stage-1-bypassed inputs at or beyond
 * 2^OAS give a stage-1 F_ADDR_SIZE.
 *
 * TLB entries hold the stage-1 and stage-2 permissions separately; a refused access on a hit is a
 * permission fault of the stage that refuses it (stage 1 first), unless the entry may become
 * writable through a DBM dirty update, in which case the entry is dropped and the tables walked.
 * Faults are never cached.
 */
export class SmmuTranslator {
  /** The TLB (for TLBI commands and statistics). */
  readonly tlb: SmmuTlb;
  /** The SMMU's parameters. */
  readonly config: SmmuHwConfig;
  readonly #memory: PhysicalMemory;
  readonly #cache: SmmuTranslatorConfigSource;
  #state: SmmuTranslatorGlobalState;
  #byCd = new WeakMap<Cd, TxContext>();
  #bySte = new WeakMap<Ste, TxContext>();
  /** The transaction whose CD is being fetched (for events of nested CD-table translations). */
  #curTxn: SmmuTransaction | undefined = undefined;
  #curAccess: Access | undefined = undefined;

  /** @param options - see {@link SmmuTranslatorOptions} */
  constructor(options: SmmuTranslatorOptions) {
    this.config = options.config;
    this.#memory = options.memory;
    this.#cache = options.configSource;
    this.tlb = options.tlb ?? SmmuTlb.fromConfig(options.config);
    this.#state = options.state ?? SMMU_TRANSLATOR_DEFAULT_STATE;
  }

  /** The register state in force. */
  get state(): SmmuTranslatorGlobalState {
    return this.#state;
  }

  /**
   * Set the register state (call on CR0, GBPA, CR2 and STRTAB_BASE(_CFG) changes).
   * @param state - the new state
   */
  setGlobalState(state: SmmuTranslatorGlobalState): void {
    if (state.e2h !== this.#state.e2h) {
      this.#byCd = new WeakMap();
      this.#bySte = new WeakMap();
    }
    this.#state = state;
  }

  // ---- transactions ------------------------------------------------------------------------------

  /**
   * Translate the byte at `txn.addr` (digest §7.1).
   * @param txn - the transaction
   * @returns `ok` / `bypass` with the PA and the span it holds for, `abort` (no event), or `fault`
   *   with the event and its disposition
   */
  translate(txn: SmmuTransaction): SmmuTranslationResult {
    const st = this.#state;
    if (!st.smmuEnabled) return st.gbpaAbort ? ABORT_GBPA : bypassResult(txn.addr);
    if (txn.atsTranslated && !st.atsCheck) return bypassResult(txn.addr);
    const r = this.#cache.lookupSte(st.strtab, txn.sid);
    if (!r.ok) return configFault(r.event);
    const ste = r.ste;
    const kind = ste.kind;
    if (kind === 'abort') return ABORT_STE;
    let privileged = txn.privileged;
    if (ste.privCfg >= 2) privileged = ste.privCfg === 3;
    let exec = txn.exec;
    if (!txn.write && ste.instCfg >= 2) exec = ste.instCfg === 3;
    const access: Access = {
      need: tlbPermBit(txn.write, exec, privileged),
      write: txn.write,
      atsWrite: false,
      exec,
      privileged,
    };
    if (txn.atsTranslated) return this.#atsTranslatedTxn(txn, ste, access);
    if (kind === 'bypass') return bypassResult(txn.addr);
    let ctx: TxContext;
    if (kind === 's2') {
      if (txn.ssid !== undefined)
        return configFault(this.#event(txn, access, 'C_BAD_SUBSTREAMID', false, 0, 0, 0, true));
      ctx = this.#steContext(ste);
    } else {
      const c = this.#lookupCd(txn, ste, access);
      if (!(c instanceof TxContext)) return c;
      ctx = c;
    }
    // Stage 1 is bypassed only without a CD; a CD that disables both TTB regions (EPD0 and EPD1,
    // e.g. the dead CD of an exited SVA mm) makes every access a translation fault.
    if (ctx.cd === undefined) return this.#stage1Bypassed(txn, ctx, access);
    return this.#stage1(txn, ctx, access);
  }

  /** The context of an STE without CD (stage 1 bypassed). */
  #steContext(ste: Ste): TxContext {
    let ctx = this.#bySte.get(ste);
    if (ctx === undefined) {
      ctx = new TxContext(ste, undefined, this.#state.e2h);
      if (ctx.s2 !== undefined) {
        const xl = this.#tableTranslator(ctx);
        ctx.tableIpa = xl;
        // CD-table IPAs: stage-2 faults are reported against the transaction being translated.
        ctx.cdIpa = (ipa: number): number | SmmuEvent => {
          const t = xl(ipa);
          const txn = this.#curTxn as SmmuTransaction;
          const access = this.#curAccess as Access;
          if ('pa' in t) {
            if ((t.perm & TLB_PERM_PR) !== 0) return t.pa;
            return this.#event(txn, access, 'F_PERMISSION', true, 0, ipa, 0, true);
          }
          return this.#event(txn, access, t.type, true, 0, t.ipa, t.fetchAddr, t.ttrnw);
        };
      }
      this.#bySte.set(ste, ctx);
    }
    return ctx;
  }

  /** The context of (STE, CD). */
  #cdContext(ste: Ste, cd: Cd): TxContext {
    let ctx = this.#byCd.get(cd);
    if (ctx === undefined || ctx.ste !== ste) {
      ctx = new TxContext(ste, cd, this.#state.e2h);
      if (ctx.s2 !== undefined) ctx.tableIpa = this.#tableTranslator(ctx);
      this.#byCd.set(cd, ctx);
    }
    return ctx;
  }

  /** CD lookup for a stage-1 / nested STE: the context, or the fault. */
  #lookupCd(txn: SmmuTransaction, ste: Ste, access: Access): TxContext | SmmuTranslationFault {
    const ssv = txn.ssid !== undefined;
    const ssid = txn.ssid ?? 0;
    let translate: CdIpaTranslate | undefined;
    if (ste.kind === 'nested') {
      translate = this.#steContext(ste).cdIpa;
      this.#curTxn = txn;
      this.#curAccess = access;
    }
    const c = this.#cache.lookupCd(ste, txn.sid, ssv, ssid, translate);
    this.#curTxn = undefined;
    this.#curAccess = undefined;
    if (c.kind === 'cd') return this.#cdContext(ste, c.cd);
    if (c.kind === 's1-bypass') return this.#steContext(ste);
    const ev = c.event;
    if (c.reason === 's2-fault' && TRANSLATION_FAULTS.has(ev.type))
      return { kind: 'fault', event: ev, stallable: ste.s2S, record: ste.s2R, razWi: false };
    return configFault(ev);
  }

  /** A per-context function translating stage-1 table IPAs through stage 2 (TLB, then walk). */
  #tableTranslator(ctx: TxContext): (ipa: number) => TableXlate {
    const s2 = ctx.s2 as WalkParams;
    const tag = ctx.s2tag;
    const tlb = this.tlb;
    const memory = this.#memory;
    return (ipa: number): TableXlate => {
      const e = tlb.lookup(tag, ipa);
      if (e !== undefined) return { pa: e.outputBase + (ipa - e.inputBase), perm: e.s2Perm };
      tlb.stats.walks++;
      const r = walk(memory, s2, ipa, NO_CHECK);
      if (!r.ok) return { ...r, s2: true, class: 1, ipa };
      tlb.insert({
        tag,
        stage: 's2',
        inputAddr: ipa,
        shift: r.shift,
        level: r.level,
        outputBase: r.outputAddr,
        s1Perm: TLB_PERM_ALL,
        s2Perm: r.perm,
        dirtyUpdatable: r.dirtyUpdatable,
      });
      return { pa: r.outputAddr, perm: r.perm };
    };
  }

  /** Stage 1 bypassed (S2-only STE, or S1DSS = bypass): address-size check, then stage 2 or bypass. */
  #stage1Bypassed(txn: SmmuTransaction, ctx: TxContext, access: Access): SmmuTranslationResult {
    const a = txn.addr;
    const oasLimit = 2 ** this.config.oas;
    if (typeof a === 'bigint' ? a >= BigInt(oasLimit) : a >= oasLimit)
      return this.#fault(txn, ctx, access, 'F_ADDR_SIZE', false, 2, 0, 0, true);
    const addr = Number(a);
    const s2 = ctx.s2;
    if (s2 === undefined) return bypassResult(addr);
    const tlb = this.tlb;
    let e = tlb.lookup(ctx.s2tag, addr);
    let hit = true;
    if (e !== undefined && (e.s2Perm & access.need) === 0) {
      if (!(access.write && e.dirtyUpdatable))
        return this.#fault(txn, ctx, access, 'F_PERMISSION', true, 2, addr, 0, true);
      tlb.remove(e);
      e = undefined;
    }
    if (e === undefined) {
      hit = false;
      tlb.stats.walks++;
      const r = walk(this.#memory, s2, addr, access);
      if (!r.ok) return this.#walkFault(txn, ctx, access, r);
      e = tlb.insert({
        tag: ctx.s2tag,
        stage: 's2',
        inputAddr: addr,
        shift: r.shift,
        level: r.level,
        outputBase: r.outputAddr,
        s1Perm: TLB_PERM_ALL,
        s2Perm: r.perm,
        dirtyUpdatable: r.dirtyUpdatable,
      });
    }
    return okResult(e, addr, hit);
  }

  /** Stage 1 (and nested stage 2): region, TLB, walks. */
  #stage1(txn: SmmuTransaction, ctx: TxContext, access: Access): SmmuTranslationResult {
    let addr: number;
    let region = 0;
    const a = txn.addr;
    if (typeof a === 'number' && a < ctx.lim0) {
      addr = a;
    } else {
      const sel = selectRegion(ctx, typeof a === 'bigint' ? a : BigInt(a));
      if (sel < 0) return this.#fault(txn, ctx, access, 'F_TRANSLATION', false, 2, 0, 0, true);
      region = sel >= TWO52 ? 1 : 0;
      addr = sel >= TWO52 ? sel - TWO52 : sel;
    }
    const tlb = this.tlb;
    const tag = region === 0 ? ctx.tag0 : ctx.tag1;
    const gtag = region === 0 ? ctx.gtag0 : ctx.gtag1;
    let e: SmmuTlbEntry | undefined = tlb.lookup(tag, addr, gtag);
    if (e !== undefined) {
      const need = access.need;
      if ((e.s1Perm & e.s2Perm & need) !== 0) return okResult(e, addr, true);
      // Stage-1 refusals fault from the cached permissions; a stage-2 refusal of a nested entry
      // is re-walked so the event can carry the IPA (a TLB miss is always allowed).
      if ((e.s1Perm & need) === 0 && !(access.write && e.dirtyUpdatable))
        return this.#fault(txn, ctx, access, 'F_PERMISSION', false, 2, 0, 0, true);
      tlb.remove(e);
    }
    const params = (region === 0 ? ctx.r0 : ctx.r1) as WalkParams;
    tlb.stats.walks++;
    const r1 = walk(this.#memory, params, addr, access, ctx.tableIpa);
    if (!r1.ok) return this.#walkFault(txn, ctx, access, r1);
    let shift = r1.shift;
    let out = r1.outputAddr;
    let s2Perm = TLB_PERM_ALL;
    let dirty = r1.dirtyUpdatable;
    const s2 = ctx.s2;
    if (s2 !== undefined) {
      tlb.stats.walks++;
      const r2 = walk(this.#memory, s2, r1.outputAddr, access);
      if (!r2.ok) return this.#walkFault(txn, ctx, access, r2);
      if (r2.shift < shift) shift = r2.shift;
      out = r2.outputAddr;
      s2Perm = r2.perm;
      dirty = dirty || r2.dirtyUpdatable;
    }
    e = tlb.insert({
      tag: r1.global ? gtag : tag,
      stage: ctx.s1Stage,
      inputAddr: addr,
      shift,
      level: r1.level,
      outputBase: out,
      s1Perm: r1.perm,
      s2Perm,
      dirtyUpdatable: dirty,
      aset: ctx.aset,
    });
    return okResult(e, addr, false);
  }

  /** ATS-translated traffic with ATSCHK = 1 (§7.1 steps 7–8). */
  #atsTranslatedTxn(txn: SmmuTransaction, ste: Ste, access: Access): SmmuTranslationResult {
    if (ste.kind === 'bypass' || ste.eats === 0 || !this.config.ats)
      return configFault(this.#event(txn, access, 'F_TRANSL_FORBIDDEN', false, 2, 0, 0, true));
    if (ste.eats === 2 && ste.s2Enabled) {
      const ctx = this.#steContext(ste);
      return this.#stage1Bypassed(txn, ctx, access);
    }
    return bypassResult(txn.addr, 'ok');
  }

  // ---- ATS translation requests ------------------------------------------------------------------

  /**
   * Answer an ATS Translation Request (PCIe ATS through the SMMU, Arm IHI 0070 §3.9).
   *
   * @remarks
   * - SMMUEN = 0, STE Config = abort: `ur`, no event.
   * - STE / CD configuration errors: `ur` with the event. STE bypass, EATS = 0 or no ATS in the
   *   SMMU: `ur` with F_BAD_ATS_TREQ.
   * - Translation-class faults (F_TRANSLATION, F_ADDR_SIZE, F_ACCESS, F_PERMISSION, in either
   *   stage): `success` with R = W = 0 for the 4 KiB page, no event (the device may use PRI).
   * - External aborts during the walk: `ca` with F_WALK_EABT.
   * - Otherwise `success`: R / W / Exe for the requested privilege, combined over both stages, for
   *   the largest naturally aligned range both stages map linearly. Without NW, a DBM
   *   writable-clean page is made dirty first (HD) so the completion can grant W. Split-stage ATS
   *   (EATS = 2) returns the stage-1 output (IPA); translated traffic then goes through stage 2.
   * - The walk does not use or fill the TLB (the completion is cached in the device's ATC).
   *
   * @param req - the request
   * @returns the completion, and the event to record, if any
   */
  atsTranslate(req: SmmuAtsRequest): SmmuAtsResult {
    const st = this.#state;
    const page = req.addr - (req.addr & 0xfffn);
    const ur = (event?: SmmuEvent): SmmuAtsResult => atsError('ur', page, event);
    if (!st.smmuEnabled) return ur();
    const r = this.#cache.lookupSte(st.strtab, req.sid);
    if (!r.ok) return ur(r.event);
    const ste = r.ste;
    const txn: SmmuTransaction = {
      sid: req.sid,
      ssid: req.ssid,
      addr: req.addr,
      write: false,
      exec: req.exec,
      privileged: req.privileged,
      atsTranslated: false,
    };
    const access: Access = {
      need: 0,
      write: false,
      atsWrite: !req.noWrite,
      exec: req.exec,
      privileged: req.privileged,
    };
    if (ste.kind === 'abort') return ur();
    if (ste.kind === 'bypass' || ste.eats === 0 || !this.config.ats)
      return ur(this.#event(txn, access, 'F_BAD_ATS_TREQ', false, 2, 0, 0, true));
    let ctx: TxContext;
    if (ste.kind === 's2') {
      if (req.ssid !== undefined)
        return ur(this.#event(txn, access, 'C_BAD_SUBSTREAMID', false, 0, 0, 0, true));
      ctx = this.#steContext(ste);
    } else {
      const c = this.#lookupCd(txn, ste, access);
      if (!(c instanceof TxContext)) {
        if (TRANSLATION_FAULTS.has(c.event.type)) return atsNoAccess(page, req);
        return atsError(
          c.event.type === 'F_WALK_EABT' || c.event.type === 'F_CD_FETCH' ? 'ca' : 'ur',
          page,
          c.event,
        );
      }
      ctx = c;
    }
    const splitStage = ste.eats === 2;
    let addr: number;
    let shift = 64;
    let out: number;
    let perm = TLB_PERM_ALL;
    const mem = this.#memory;
    if (ctx.cd === undefined) {
      if (req.addr >= BigInt(2 ** this.config.oas)) return atsNoAccess(page, req);
      addr = Number(req.addr);
      out = addr;
    } else {
      const sel = selectRegion(ctx, req.addr);
      if (sel < 0) return atsNoAccess(page, req);
      const region = sel >= TWO52 ? 1 : 0;
      addr = region === 1 ? sel - TWO52 : sel;
      this.tlb.stats.walks++;
      const r1 = walk(mem, (region === 0 ? ctx.r0 : ctx.r1) as WalkParams, addr, access, ctx.tableIpa);
      if (!r1.ok) return this.#atsWalkFailure(txn, ctx, access, r1, page, req);
      shift = r1.shift;
      out = r1.outputAddr;
      perm = r1.perm;
    }
    if (ctx.s2 !== undefined && !splitStage) {
      this.tlb.stats.walks++;
      const r2 = walk(mem, ctx.s2, out, access);
      if (!r2.ok) return this.#atsWalkFailure(txn, ctx, access, r2, page, req);
      if (r2.shift < shift) shift = r2.shift;
      out = r2.outputAddr;
      perm &= r2.perm;
    }
    if (shift === 64) shift = 12;
    const size = 2 ** shift;
    const off = addr % size;
    const u = req.privileged ? 0 : 3;
    return {
      status: 'success',
      untranslatedAddr: req.addr - BigInt(off),
      translatedAddr: BigInt(out - off),
      size: BigInt(size),
      read: (perm & (TLB_PERM_PR << u)) !== 0,
      write: !req.noWrite && (perm & (TLB_PERM_PW << u)) !== 0,
      exec: req.exec && (perm & (TLB_PERM_PX << u)) !== 0,
      privileged: req.privileged,
      untranslatedOnly: false,
    };
  }

  #atsWalkFailure(
    txn: SmmuTransaction,
    ctx: TxContext,
    access: Access,
    f: WalkFailure,
    page: bigint,
    req: SmmuAtsRequest,
  ): SmmuAtsResult {
    if (f.type === 'F_WALK_EABT') return atsError('ca', page, this.#walkFault(txn, ctx, access, f).event);
    return atsNoAccess(page, req);
  }

  // ---- faults ------------------------------------------------------------------------------------

  #walkFault(txn: SmmuTransaction, ctx: TxContext, access: Access, f: WalkFailure): SmmuTranslationFault {
    return this.#fault(txn, ctx, access, f.type, f.s2, f.class, f.ipa, f.fetchAddr, f.ttrnw);
  }

  #fault(
    txn: SmmuTransaction,
    ctx: TxContext,
    access: Access,
    type: SmmuEventType,
    s2: boolean,
    cls: 0 | 1 | 2,
    ipa: number,
    fetchAddr: number,
    ttrnw: boolean,
  ): SmmuTranslationFault {
    const event = this.#event(txn, access, type, s2, cls, ipa, fetchAddr, ttrnw);
    if (!TRANSLATION_FAULTS.has(type)) return configFault(event);
    const ste = ctx.ste;
    if (s2) return { kind: 'fault', event, stallable: ste.s2S, record: ste.s2R, razWi: false };
    const cd = ctx.cd;
    if (cd === undefined) return configFault(event);
    return { kind: 'fault', event, stallable: cd.s && !ste.s1Stalld, record: cd.r, razWi: !cd.a };
  }

  #event(
    txn: SmmuTransaction,
    access: Access,
    type: SmmuEventType,
    s2: boolean,
    cls: 0 | 1 | 2,
    ipa: number,
    fetchAddr: number,
    ttrnw: boolean,
  ): SmmuEvent {
    return smmuEvent(type, txn.sid, {
      ssv: txn.ssid !== undefined,
      ssid: txn.ssid ?? 0,
      rnw: !txn.write,
      pnu: access.privileged,
      ind: access.exec,
      s2,
      class: cls,
      ttrnw,
      inputAddr: BigInt.asUintN(64, BigInt(txn.addr)),
      ipa: BigInt(ipa),
      fetchAddr: BigInt(fetchAddr),
    });
  }
}

/**
 * Select the TTB region of a stage-1 input address (QEMU `select_tt`, honouring TBI).
 * @returns the address's low 52 bits (+ 2^52 for region 1), or −1 for a translation fault
 */
function selectRegion(ctx: TxContext, addr: bigint): number {
  const a64 = BigInt.asUintN(64, addr);
  const top = (a64 >> 55n) & 1n;
  const tbi = top === 1n ? ctx.tbi1 : ctx.tbi0;
  // With TBI, bits 63:56 take the value of bit 55.
  const a = tbi ? (top === 1n ? a64 | 0xff00_0000_0000_0000n : a64 & 0x00ff_ffff_ffff_ffffn) : a64;
  if (ctx.r0 !== undefined && a < BigInt(ctx.lim0)) return Number(a);
  if (ctx.r1 !== undefined && a >= (1n << 64n) - BigInt(ctx.lim1))
    return Number(a & 0xf_ffff_ffff_ffffn) + TWO52;
  return -1;
}

function okResult(e: SmmuTlbEntry, addr: number, hit: boolean): SmmuTranslationOk {
  const off = addr - e.inputBase;
  return { kind: 'ok', pa: e.outputBase + off, span: e.size - off, tlbHit: hit };
}

function bypassResult(
  addr: bigint | number,
  kind: 'ok' | 'bypass' = 'bypass',
): SmmuTranslationOk | SmmuTranslationBypass {
  return { kind, pa: Number(addr), span: Number.POSITIVE_INFINITY, tlbHit: false };
}

function configFault(event: SmmuEvent): SmmuTranslationFault {
  return { kind: 'fault', event, stallable: false, record: true, razWi: false };
}

function atsError(status: 'ur' | 'ca', page: bigint, event?: SmmuEvent): SmmuAtsResult {
  const base = {
    status,
    untranslatedAddr: page,
    translatedAddr: 0n,
    size: 4096n,
    read: false,
    write: false,
    exec: false,
    privileged: false,
    untranslatedOnly: false,
  } as const;
  return event === undefined ? base : { ...base, event };
}

function atsNoAccess(page: bigint, req: SmmuAtsRequest): SmmuAtsResult {
  return {
    status: 'success',
    untranslatedAddr: page,
    translatedAddr: 0n,
    size: 4096n,
    read: false,
    write: false,
    exec: false,
    privileged: req.privileged,
    untranslatedOnly: false,
  };
}
