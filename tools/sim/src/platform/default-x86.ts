/**
 * The built-in x86 platform: a client machine with one VT-d unit, described by a DMAR table that
 * this file assembles and then parses like any firmware table.
 */

import { DmarScopeType, DmarTableFlag, parseDmar } from '@iommu-ts/intel-vtd';
import { type DmarTableSpec, writeDmar } from './dmar-writer.js';
import type { DmarPlatform } from './platform.js';

/**
 * Root ports the table's ATSR lists, in the order the machine builder gives them to the
 * ATS-capable standard devices (`nic0`, `accel0`, `nic1`): CPU-attached PCIe ports 00:01.0,
 * 00:01.1 and 00:06.0. `nvme0` then sits on a chipset port the ATSR does not name.
 */
export const DEFAULT_X86_ATS_ROOT_PORTS: readonly { readonly device: number; readonly function: number }[] = [
  { device: 0x01, function: 0 },
  { device: 0x01, function: 1 },
  { device: 0x06, function: 0 },
];

/** Register base of the built-in platform's one DRHD (the usual client address). */
export const DEFAULT_X86_DRHD_BASE = 0xfed9_1000n;

/** The built-in table's RMRR: the xHCI controller's firmware buffer (below RAM, like an e820 hole). */
export const DEFAULT_X86_USB_RMRR = { base: 0x3e2e_0000n, limit: 0x3e2f_ffffn } as const;

/** The table as written (see {@link defaultX86Platform}). */
export function defaultX86TableSpec(): DmarTableSpec {
  return {
    revision: 1,
    oemId: 'IOMMTS',
    oemTableId: 'X86VTD01',
    oemRevision: 1,
    creatorId: 'ITS ',
    creatorRevision: 1,
    // 39-bit physical addresses, as client parts report (field 0x26).
    hostAddressWidth: 39,
    flags: DmarTableFlag.INTR_REMAP | DmarTableFlag.DMA_CTRL_PLATFORM_OPT_IN,
    structures: [
      {
        kind: 'drhd',
        flags: 0x1, // INCLUDE_PCI_ALL
        segment: 0,
        registerBase: DEFAULT_X86_DRHD_BASE,
        scopes: [
          {
            type: DmarScopeType.IOAPIC,
            enumerationId: 2,
            startBus: 0,
            path: [{ device: 0x1e, function: 7 }],
          },
          { type: DmarScopeType.HPET, enumerationId: 0, startBus: 0, path: [{ device: 0x1e, function: 6 }] },
        ],
      },
      {
        kind: 'rmrr',
        segment: 0,
        base: DEFAULT_X86_USB_RMRR.base,
        limit: DEFAULT_X86_USB_RMRR.limit,
        scopes: [{ type: DmarScopeType.ENDPOINT, startBus: 0, path: [{ device: 0x14, function: 0 }] }],
      },
      {
        kind: 'atsr',
        flags: 0,
        segment: 0,
        scopes: DEFAULT_X86_ATS_ROOT_PORTS.map((p) => ({
          type: DmarScopeType.BRIDGE,
          startBus: 0,
          path: [p],
        })),
      },
    ],
  };
}

/**
 * The built-in x86 platform `x86-vtd`: one DRHD with INCLUDE_PCI_ALL at 0xfed91000 (I/O APIC and
 * HPET scopes), an RMRR identity region for the USB controller 00:14.0, and an ATSR naming the
 * root ports the simulator puts the NICs and the accelerator on, so those get ATS.
 * @returns the platform, its table written by {@link writeDmar} and parsed back by `parseDmar`
 */
export function defaultX86Platform(): DmarPlatform {
  const spec = defaultX86TableSpec();
  const bytes = writeDmar(spec);
  const dmar = parseDmar(bytes);
  return {
    kind: 'vtd',
    name: 'x86-vtd',
    source: {
      format: 'dmar',
      form: 'builtin',
      file: null,
      oem: `${dmar.oemId.trim()} ${dmar.oemTableId.trim()}`,
      revision: dmar.revision,
    },
    dmar,
    bytes,
  };
}
