/**
 * The embedded Arm platform: an IORT (revision 5, E.d) assembled in code with one ITS group, one
 * SMMUv3 (coherent, wired interrupts), one PCI root complex declaring ATS, PRI and PASID
 * forwarding whose RIDs 0x0000–0xffff map 1:1 onto StreamIDs of that SMMU, and one named
 * component `\_SB_.ACC0` that supports stall and 20 PASID bits, on StreamID 0x10000.
 */

import {
  IORT_ATS_SUPPORTED,
  IORT_NC_STALL_SUPPORTED,
  IORT_PASID_FWD_SUPPORTED,
  IORT_PRI_SUPPORTED,
  IORT_SMMU_V3_COHACC_OVERRIDE,
  parseIort,
} from '@iommu-ts/arm-smmu-v3';
import { writeIort } from './iort-writer.js';
import type { IortPlatform } from './platform.js';

/** Register base of the default platform's SMMUv3. */
export const DEFAULT_ARM_SMMU_BASE = 0x0900_0000n;
/** StreamID of the default platform's named component `\_SB_.ACC0` (above every PCI RID). */
export const DEFAULT_ARM_ACC0_STREAM_ID = 0x1_0000;

/**
 * The default Arm platform (`arm-smmuv3`).
 * @returns the platform, its IORT parsed back with `parseIort`
 */
export function defaultArmPlatform(): IortPlatform {
  const bytes = writeIort({
    revision: 5,
    oemId: 'IOMMTS',
    oemTableId: 'SIMARM64',
    nodes: [
      { type: 'its', itsIds: [0] },
      {
        type: 'smmuv3',
        base: DEFAULT_ARM_SMMU_BASE,
        flags: IORT_SMMU_V3_COHACC_OVERRIDE,
        model: 0,
        // GIC SPIs 74, 75, 77, 79 (INTIDs 106, 107, 109, 111), the FVP's lines.
        gsiv: { event: 106, pri: 107, gerr: 109, sync: 111 },
        mappings: [{ inputBase: 0, count: 0x2_0000, outputBase: 0, target: 0 }],
      },
      {
        type: 'rc',
        segment: 0,
        atsAttribute: IORT_ATS_SUPPORTED | IORT_PRI_SUPPORTED | IORT_PASID_FWD_SUPPORTED,
        memoryAddressLimit: 48,
        pasidMaxWidth: 20,
        mappings: [{ inputBase: 0, count: 0x1_0000, outputBase: 0, target: 1 }],
      },
      {
        type: 'nc',
        name: '\\_SB_.ACC0',
        nodeFlags: IORT_NC_STALL_SUPPORTED | (20 << 1),
        memoryAddressLimit: 48,
        mappings: [
          { inputBase: 0, count: 1, outputBase: DEFAULT_ARM_ACC0_STREAM_ID, target: 1, single: true },
        ],
      },
    ],
  });
  const iort = parseIort(bytes);
  return {
    kind: 'smmuv3',
    name: 'arm-smmuv3',
    source: {
      format: 'iort',
      form: 'builtin',
      file: null,
      oem: `${iort.oemId.trim()} ${iort.oemTableId.trim()}`,
      revision: iort.revision,
    },
    iort,
    bytes,
  };
}
