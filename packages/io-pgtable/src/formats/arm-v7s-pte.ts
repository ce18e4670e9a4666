/**
 * ARMv7 short-descriptor (io-pgtable `ARM_V7S`) geometry and 32-bit descriptor encoding.
 *
 * Pure functions only: no table memory, no TLB callbacks. Descriptors are plain unsigned 32-bit
 * numbers (`0 … 0xFFFF_FFFF`); physical addresses are numbers below 2^35 (MediaTek extension) and
 * IOVAs numbers below 2^34. Mirrors the macros and helpers of Linux
 * drivers/iommu/io-pgtable-arm-v7s.c (`ARM_V7S_*`, `arm_v7s_prot_to_pte`, `arm_v7s_pte_to_cont`,
 * `paddr_to_iopte`, `iopte_to_paddr`, `arm_v7s_pte_is_cont`).
 */

import { IOMMU_CACHE, IOMMU_MMIO, IOMMU_NOEXEC, IOMMU_PRIV, IOMMU_WRITE } from '../prot.js';
import {
  IO_PGTABLE_QUIRK_ARM_MTK_EXT,
  IO_PGTABLE_QUIRK_ARM_MTK_TTBR_EXT,
  IO_PGTABLE_QUIRK_ARM_NS,
  IO_PGTABLE_QUIRK_NO_PERMS,
} from '../quirks.js';

/** A v7s table level: 1 (sections, supersections, table pointers) or 2 (small and large pages). */
export type ArmV7sLevel = 1 | 2;

/** Address width of the plain format, in bits (input and output). */
export const ARM_V7S_ADDR_BITS = 32;

/** Number of identical descriptors that form one contiguous entry (large page or supersection). */
export const ARM_V7S_CONT_PAGES = 16;

/** Size of one descriptor, in bytes. */
export const ARM_V7S_PTE_SIZE = 4;

/** log2 of the alignment of a level-2 table pointed to by a level-1 table descriptor (1 KiB). */
export const ARM_V7S_TABLE_SHIFT = 10;

/** The page sizes the format can express: 4 KiB | 64 KiB | 1 MiB | 16 MiB (`0x0111_1000`). */
export const ARM_V7S_PGSIZE_BITMAP = 0x1000 | 0x10000 | 0x100000 | 0x1000000;

/** Descriptor bit fields, as absolute masks within the 32-bit descriptor. */
export const ArmV7sPteBits = {
  /** Level-1 table descriptor type (bits 1:0 = 0b01). */
  TYPE_TABLE: 0x1,
  /** Section (level 1) or small page (level 2) type bit (bit 1). */
  TYPE_PAGE: 0x2,
  /** Large page type at level 2 (bits 1:0 = 0b01). */
  TYPE_CONT_PAGE: 0x1,
  /** B (bufferable), bit 2, both levels. */
  B: 1 << 2,
  /** C (cacheable), bit 3, leaves. */
  C: 1 << 3,
  /** NS in a level-1 table descriptor, bit 3. */
  NS_TABLE: 1 << 3,
  /** NS in a section or supersection, bit 19. */
  NS_SECTION: 1 << 19,
  /** Supersection marker in a level-1 leaf, bit 18. */
  CONT_SECTION: 1 << 18,
  /** XN of a level-2 large page, bit 15. */
  CONT_PAGE_XN: 1 << 15,
  /** TEX[2:0] field of a level-2 large page, bits 14:12. */
  CONT_PAGE_TEX_MASK: 0x7 << 12,
  /** MediaTek: PA bit 32 stored in descriptor bit 9. */
  MTK_PA_BIT32: 1 << 9,
  /** MediaTek: PA bit 33 stored in descriptor bit 4. */
  MTK_PA_BIT33: 1 << 4,
  /** MediaTek: PA bit 34 stored in descriptor bit 5. */
  MTK_PA_BIT34: 1 << 5,
} as const;

/**
 * Bits of the 8-bit attribute block, before it is shifted to bit 10 (level 1) or bit 4 (level 2).
 * TEX occupies block bits 4:2.
 */
export const ArmV7sAttrBits = {
  /** AP0, used as the access flag in the simplified permission model. */
  AP0_AF: 1 << 0,
  /** AP1: unprivileged access allowed. */
  AP1_UNPRIV: 1 << 1,
  /** Shift of the TEX[2:0] field inside the block. */
  TEX_SHIFT: 2,
  /** AP2: read-only. */
  AP2_RDONLY: 1 << 5,
  /** S: shareable. */
  S: 1 << 6,
  /** nG: not global. */
  NG: 1 << 7,
} as const;

/**
 * Number of IOVA bits a level resolves: `ias - 20` at level 1, 8 at level 2.
 *
 * @param level - 1 or 2
 * @param ias - input address size in bits (32, or up to 34 with the MediaTek extension)
 */
export function armV7sLevelBits(level: ArmV7sLevel, ias: number): number {
  return level === 1 ? ias - 20 : 8;
}

/**
 * Lowest IOVA bit a level indexes (`ARM_V7S_LVL_SHIFT`): 20 at level 1, 12 at level 2.
 *
 * @param level - 1 or 2
 */
export function armV7sLevelShift(level: ArmV7sLevel): 20 | 12 {
  return level === 1 ? 20 : 12;
}

/**
 * Bytes covered by one descriptor of a level (`ARM_V7S_BLOCK_SIZE`): 1 MiB or 4 KiB.
 *
 * @param level - 1 or 2
 */
export function armV7sBlockSize(level: ArmV7sLevel): number {
  return level === 1 ? 0x100000 : 0x1000;
}

/**
 * Descriptors per table of a level (`ARM_V7S_PTES_PER_LVL`): 4096 at level 1 for ias 32 (16384 for
 * ias 34), always 256 at level 2.
 *
 * @param level - 1 or 2
 * @param ias - input address size in bits
 */
export function armV7sPtesPerLevel(level: ArmV7sLevel, ias: number): number {
  return 2 ** armV7sLevelBits(level, ias);
}

/**
 * Table size in bytes (`ARM_V7S_TABLE_SIZE`): 16 KiB at level 1 for ias 32 (64 KiB for ias 34),
 * 1 KiB at level 2.
 *
 * @param level - 1 or 2
 * @param ias - input address size in bits
 */
export function armV7sTableSize(level: ArmV7sLevel, ias: number): number {
  return armV7sPtesPerLevel(level, ias) * ARM_V7S_PTE_SIZE;
}

/**
 * Required alignment of a table, in bytes: a level-1 table is naturally aligned to its own size
 * (Linux takes it from whole pages of that order), a level-2 table to 1 KiB (its slab's alignment).
 *
 * @param level - 1 or 2
 * @param ias - input address size in bits
 */
export function armV7sTableAlign(level: ArmV7sLevel, ias: number): number {
  return armV7sTableSize(level, ias);
}

/**
 * Index of the descriptor for `iova` in a table of `level` (`ARM_V7S_LVL_IDX`).
 *
 * @param iova - input address (number below 2^ias)
 * @param level - 1 or 2
 * @param ias - input address size in bits
 */
export function armV7sLevelIndex(iova: number, level: ArmV7sLevel, ias: number): number {
  if (level === 2) return (iova >>> 12) & 0xff;
  // Level 1 can see IOVA bits above 31 (MediaTek ias 34): divide rather than shift.
  return Math.floor(iova / 0x100000) & (armV7sPtesPerLevel(1, ias) - 1);
}

/**
 * Address mask of a plain leaf of `level` (`ARM_V7S_LVL_MASK`): `0xFFF0_0000` or `0xFFFF_F000`.
 *
 * @param level - 1 or 2
 */
export function armV7sLevelMask(level: ArmV7sLevel): number {
  return level === 1 ? 0xfff00000 : 0xfffff000;
}

/**
 * Address mask of a descriptor as `iopte_to_paddr` picks it: the 1 KiB table mask for a level-1
 * table descriptor, 16 × the level mask for a contiguous entry (`0xFF00_0000` supersection,
 * `0xFFFF_0000` large page), the level mask otherwise.
 *
 * @param pte - descriptor (unsigned 32-bit)
 * @param level - level the descriptor lives at
 */
export function armV7sPteAddrMask(pte: number, level: ArmV7sLevel): number {
  if (armV7sPteIsTable(pte, level)) return 0xfffffc00;
  if (armV7sPteIsCont(pte, level)) return level === 1 ? 0xff000000 : 0xffff0000;
  return armV7sLevelMask(level);
}

/**
 * Whether a descriptor is valid (`ARM_V7S_PTE_IS_VALID`): bits 1:0 not both zero.
 *
 * @param pte - descriptor
 */
export function armV7sPteIsValid(pte: number): boolean {
  return (pte & 0x3) !== 0;
}

/**
 * Whether a descriptor points to a level-2 table (`ARM_V7S_PTE_IS_TABLE`): only at level 1, type
 * bits 0b01.
 *
 * @param pte - descriptor
 * @param level - level the descriptor lives at
 */
export function armV7sPteIsTable(pte: number, level: ArmV7sLevel): boolean {
  return level === 1 && (pte & 0x3) === ArmV7sPteBits.TYPE_TABLE;
}

/**
 * Whether a descriptor is one of 16 copies forming a contiguous entry (`arm_v7s_pte_is_cont`):
 * a level-1 non-table with bit 18 (supersection), or a level-2 descriptor whose bit 1 is clear
 * (large page). Like Linux, an invalid level-2 descriptor also answers true; callers check validity
 * first.
 *
 * @param pte - descriptor
 * @param level - level the descriptor lives at
 */
export function armV7sPteIsCont(pte: number, level: ArmV7sLevel): boolean {
  if (level === 1) return !armV7sPteIsTable(pte, 1) && (pte & ArmV7sPteBits.CONT_SECTION) !== 0;
  return (pte & ArmV7sPteBits.TYPE_PAGE) === 0;
}

/**
 * Whether the MediaTek PA extension applies (`arm_v7s_is_mtk_enabled` on a 64-bit `phys_addr_t`
 * build): quirk `ARM_MTK_EXT` is set.
 *
 * @param quirks - `IO_PGTABLE_QUIRK_*` bitmap
 */
export function armV7sMtkEnabled(quirks: number): boolean {
  return (quirks & IO_PGTABLE_QUIRK_ARM_MTK_EXT) !== 0;
}

/**
 * Store PA bits 32, 33, 34 in descriptor bits 9, 4, 5 (`to_mtk_iopte`).
 *
 * @param paddr - physical address below 2^35
 * @param pte - descriptor to extend
 * @returns the extended descriptor, unsigned
 */
export function armV7sToMtkPte(paddr: number, pte: number): number {
  const hi = Math.floor(paddr / 0x100000000);
  let out = pte;
  if (hi & 1) out |= ArmV7sPteBits.MTK_PA_BIT32;
  if (hi & 2) out |= ArmV7sPteBits.MTK_PA_BIT33;
  if (hi & 4) out |= ArmV7sPteBits.MTK_PA_BIT34;
  return out >>> 0;
}

/**
 * Address bits of a leaf descriptor for `paddr` (`paddr_to_iopte`): the PA masked with the level
 * mask, plus the MediaTek bits when `ARM_MTK_EXT` is set. Contiguous leaves use the same encoding.
 *
 * @param paddr - physical address (number below 2^oas)
 * @param level - 1 or 2
 * @param quirks - `IO_PGTABLE_QUIRK_*` bitmap
 */
export function armV7sPaddrToPte(paddr: number, level: ArmV7sLevel, quirks: number): number {
  const pte = (paddr & armV7sLevelMask(level)) >>> 0;
  return armV7sMtkEnabled(quirks) ? armV7sToMtkPte(paddr, pte) : pte;
}

/**
 * Physical address held in a descriptor (`iopte_to_paddr`): table, contiguous or plain mask (see
 * {@link armV7sPteAddrMask}), plus PA bits 32–34 from the MediaTek bits when `ARM_MTK_EXT` is set.
 *
 * @param pte - descriptor
 * @param level - level the descriptor lives at
 * @param quirks - `IO_PGTABLE_QUIRK_*` bitmap
 * @returns a physical address (number below 2^35)
 */
export function armV7sPteToPaddr(pte: number, level: ArmV7sLevel, quirks: number): number {
  const lo = (pte & armV7sPteAddrMask(pte, level)) >>> 0;
  if (!armV7sMtkEnabled(quirks)) return lo;
  let hi = 0;
  if (pte & ArmV7sPteBits.MTK_PA_BIT32) hi |= 1;
  if (pte & ArmV7sPteBits.MTK_PA_BIT33) hi |= 2;
  if (pte & ArmV7sPteBits.MTK_PA_BIT34) hi |= 4;
  return hi * 0x100000000 + lo;
}

/**
 * Attribute and type bits of a plain leaf (section or small page) for `prot`
 * (`arm_v7s_prot_to_pte`), without the address.
 *
 * The attribute block always holds nG and S, TEX = 1 unless `IOMMU_MMIO`, and unless quirk
 * `NO_PERMS`: AF, AP1 unless `IOMMU_PRIV`, AP2 unless `IOMMU_WRITE`. It is shifted to bit 10 (level
 * 1) or bit 4 (level 2). Then: XN (bit 4 at level 1, bit 0 at level 2) for `IOMMU_NOEXEC` unless
 * `NO_PERMS`; B for MMIO, otherwise B|C for `IOMMU_CACHE`; type bit 1; NS (bit 19) at level 1 with
 * quirk `ARM_NS`. READ is not encoded: every valid leaf is readable.
 *
 * @param prot - `IOMMU_*` bitmap (READ 1, WRITE 2, CACHE 4, NOEXEC 8, MMIO 16, PRIV 32)
 * @param level - 1 or 2
 * @param quirks - `IO_PGTABLE_QUIRK_*` bitmap
 * @returns unsigned 32-bit descriptor bits
 */
export function armV7sProtToPte(prot: number, level: ArmV7sLevel, quirks: number): number {
  const ap = (quirks & IO_PGTABLE_QUIRK_NO_PERMS) === 0;
  let attr = ArmV7sAttrBits.NG | ArmV7sAttrBits.S;
  if (!(prot & IOMMU_MMIO)) attr |= 1 << ArmV7sAttrBits.TEX_SHIFT;
  if (ap) {
    attr |= ArmV7sAttrBits.AP0_AF;
    if (!(prot & IOMMU_PRIV)) attr |= ArmV7sAttrBits.AP1_UNPRIV;
    if (!(prot & IOMMU_WRITE)) attr |= ArmV7sAttrBits.AP2_RDONLY;
  }
  let pte = attr << (level === 1 ? 10 : 4);
  if (prot & IOMMU_NOEXEC && ap) pte |= level === 1 ? 1 << 4 : 1 << 0;
  if (prot & IOMMU_MMIO) pte |= ArmV7sPteBits.B;
  else if (prot & IOMMU_CACHE) pte |= ArmV7sPteBits.B | ArmV7sPteBits.C;
  pte |= ArmV7sPteBits.TYPE_PAGE;
  if (level === 1 && quirks & IO_PGTABLE_QUIRK_ARM_NS) pte |= ArmV7sPteBits.NS_SECTION;
  return pte >>> 0;
}

/**
 * Turn plain-leaf bits into contiguous-leaf bits (`arm_v7s_pte_to_cont`). Level 1: set bit 18
 * (section → supersection). Level 2: XN moves from bit 0 to bit 15, TEX from bits 8:6 to 14:12, and
 * the type becomes 0b01 (small page → large page).
 *
 * @param pte - bits from {@link armV7sProtToPte} (address bits, if any, must already be clear in the
 *   moved fields)
 * @param level - 1 or 2
 */
export function armV7sPteToCont(pte: number, level: ArmV7sLevel): number {
  if (level === 1) return (pte | ArmV7sPteBits.CONT_SECTION) >>> 0;
  const xn = pte & 0x1;
  const tex = pte & (0x7 << 6);
  const cleared = pte & ~(xn | tex | ArmV7sPteBits.TYPE_PAGE);
  return (cleared | (xn << 15) | (tex << 6) | ArmV7sPteBits.TYPE_CONT_PAGE) >>> 0;
}

/**
 * The complete leaf descriptor written by `arm_v7s_init_pte`: prot bits, converted to a contiguous
 * entry when `cont`, OR the address bits.
 *
 * @param paddr - physical address (aligned to the leaf size)
 * @param prot - `IOMMU_*` bitmap
 * @param level - 1 (section / supersection) or 2 (small / large page)
 * @param cont - true for a supersection (level 1) or a large page (level 2)
 * @param quirks - `IO_PGTABLE_QUIRK_*` bitmap
 * @returns the unsigned 32-bit descriptor; a contiguous entry writes it into 16 consecutive slots
 */
export function armV7sMakeLeaf(
  paddr: number,
  prot: number,
  level: ArmV7sLevel,
  cont: boolean,
  quirks: number,
): number {
  let pte = armV7sProtToPte(prot, level, quirks);
  if (cont) pte = armV7sPteToCont(pte, level);
  return (pte | armV7sPaddrToPte(paddr, level, quirks)) >>> 0;
}

/**
 * A level-1 table descriptor for a level-2 table at `tablePa` (`arm_v7s_install_table`): the PA with
 * type 0b01, the MediaTek PA bits when quirk `ARM_MTK_TTBR_EXT` is set, and NS_TABLE (bit 3) with
 * quirk `ARM_NS`.
 *
 * @param tablePa - physical address of the 1 KiB-aligned level-2 table
 * @param quirks - `IO_PGTABLE_QUIRK_*` bitmap
 */
export function armV7sMakeTable(tablePa: number, quirks: number): number {
  let pte = ((tablePa & 0xfffffc00) | ArmV7sPteBits.TYPE_TABLE) >>> 0;
  if (quirks & IO_PGTABLE_QUIRK_ARM_MTK_TTBR_EXT) pte = armV7sToMtkPte(tablePa, pte);
  if (quirks & IO_PGTABLE_QUIRK_ARM_NS) pte |= ArmV7sPteBits.NS_TABLE;
  return pte >>> 0;
}

/** The kinds of descriptor {@link decodeArmV7sPte} tells apart. */
export type ArmV7sPteKind = 'invalid' | 'table' | 'section' | 'supersection' | 'smallPage' | 'largePage';

/** A decoded v7s descriptor: every field as the hardware would read it. */
export interface ArmV7sDecodedPte {
  /** What the descriptor is. */
  readonly kind: ArmV7sPteKind;
  /** Output address (table PA for `table`), MediaTek bits included when enabled; 0 when invalid. */
  readonly paddr: number;
  /** Bytes the whole entry maps (16 × the level size for contiguous kinds); 0 for invalid/table. */
  readonly size: number;
  /** Execute-never. */
  readonly xn: boolean;
  /** Bufferable. */
  readonly b: boolean;
  /** Cacheable. */
  readonly c: boolean;
  /** TEX[2:0]. */
  readonly tex: number;
  /** AP0 (access flag). */
  readonly ap0: boolean;
  /** AP1 (unprivileged access). */
  readonly ap1: boolean;
  /** AP2 (read-only). */
  readonly ap2: boolean;
  /** Shareable. */
  readonly s: boolean;
  /** Not global. */
  readonly ng: boolean;
  /** Non-secure (bit 19 of a section, bit 3 of a table descriptor). */
  readonly ns: boolean;
}

/**
 * Decode a descriptor into its fields. Bits that the MediaTek extension reuses (4, 5, 9) are still
 * reported under their architectural names; `paddr` folds them in when `ARM_MTK_EXT` is set.
 *
 * @param pte - descriptor (unsigned 32-bit)
 * @param level - level it lives at
 * @param quirks - `IO_PGTABLE_QUIRK_*` bitmap (only `ARM_MTK_EXT` matters)
 */
export function decodeArmV7sPte(pte: number, level: ArmV7sLevel, quirks = 0): ArmV7sDecodedPte {
  const bit = (n: number): boolean => ((pte >>> n) & 1) === 1;
  const none: ArmV7sDecodedPte = {
    kind: 'invalid',
    paddr: 0,
    size: 0,
    xn: false,
    b: false,
    c: false,
    tex: 0,
    ap0: false,
    ap1: false,
    ap2: false,
    s: false,
    ng: false,
    ns: false,
  };
  if (!armV7sPteIsValid(pte)) return none;
  if (armV7sPteIsTable(pte, level)) {
    return { ...none, kind: 'table', paddr: armV7sPteToPaddr(pte, 1, quirks), ns: bit(3) };
  }
  const paddr = armV7sPteToPaddr(pte, level, quirks);
  const common = { b: bit(2), c: bit(3) };
  if (level === 1) {
    const cont = bit(18);
    return {
      kind: cont ? 'supersection' : 'section',
      paddr,
      size: cont ? 0x1000000 : 0x100000,
      xn: bit(4),
      ...common,
      tex: (pte >>> 12) & 7,
      ap0: bit(10),
      ap1: bit(11),
      ap2: bit(15),
      s: bit(16),
      ng: bit(17),
      ns: bit(19),
    };
  }
  const large = !bit(1);
  return {
    kind: large ? 'largePage' : 'smallPage',
    paddr,
    size: large ? 0x10000 : 0x1000,
    xn: large ? bit(15) : bit(0),
    ...common,
    tex: large ? (pte >>> 12) & 7 : (pte >>> 6) & 7,
    ap0: bit(4),
    ap1: bit(5),
    ap2: bit(9),
    s: bit(10),
    ng: bit(11),
    ns: false,
  };
}
