/**
 * The common result of the firmware parsers (IORT and device tree): the SMMUv3 instances the
 * platform declares and, per master, the fwspec Linux would build for it (`struct iommu_fwspec`
 * filled by `iort_iommu_configure_id` in drivers/acpi/arm64/iort.c or `of_iommu_configure` in
 * drivers/iommu/of_iommu.c, plus the master properties arm-smmu-v3.c reads).
 */

/** Where a topology came from. */
export type FirmwareSource = 'iort' | 'device-tree';

/**
 * Hardware update of the access flag / dirty state declared by firmware.
 *
 * @remarks
 * `'none'`, `'ha'` (access flag) or `'ha-hd'` (access flag and dirty state). On ACPI the IORT
 * "HTTU override" field wins over SMMU_IDR0.HTTU (`arm_smmu_device_acpi_probe`); the device tree
 * has no such field, so DT instances carry `null` (use IDR0).
 */
export type SmmuFirmwareHttu = 'none' | 'ha' | 'ha-hd';

/**
 * Wired interrupts of an SMMUv3 instance, as GIC interrupt IDs (INTID: SPI n is 32 + n).
 *
 * @remarks
 * Names follow the Linux resources: `eventq`, `priq`, `gerror`, `cmdq-sync` (`cmdqSync` here) and
 * `combined` (one line for everything, Cavium ThunderX2). An absent member means no wired line
 * (the SMMU then relies on MSIs).
 */
export interface SmmuFirmwareIrqs {
  /** Event queue interrupt. */
  readonly eventq?: number;
  /** PRI queue interrupt. */
  readonly priq?: number;
  /** Global error interrupt. */
  readonly gerror?: number;
  /** CMD_SYNC completion interrupt. */
  readonly cmdqSync?: number;
  /** Single combined interrupt (replaces all the others). */
  readonly combined?: number;
}

/** Driver options the firmware selects (`ARM_SMMU_OPT_*` of arm-smmu-v3.h). */
export interface SmmuFirmwareOptions {
  /** `ARM_SMMU_OPT_SKIP_PREFETCH`: never issue CMD_PREFETCH_* (HiSilicon Hi161x). */
  readonly skipPrefetch: boolean;
  /** `ARM_SMMU_OPT_PAGE0_REGS_ONLY`: page-1 registers are read at page-0 offsets (Cavium CN99xx). */
  readonly page0RegsOnly: boolean;
}

/** One SMMUv3 instance declared by firmware. */
export interface SmmuFirmwareInstance {
  /** Position in {@link FirmwareTopology.smmus}. */
  readonly index: number;
  /** Firmware name: the DT node path, or `iort@OFFSET` (node offset in hex) for IORT. */
  readonly name: string;
  /** Physical base address of register page 0. */
  readonly base: bigint;
  /** Size of the MMIO region in bytes (DT `reg` size; IORT: 128 KiB, 64 KiB for Cavium CN99xx). */
  readonly size: bigint;
  /** Wired interrupts. */
  readonly irqs: SmmuFirmwareIrqs;
  /** Table walks and queues are I/O coherent (IORT COHACC override flag, DT `dma-coherent`). */
  readonly coherent: boolean;
  /** HTTU declared by firmware (IORT only), `null` when IDR0 decides (device tree). */
  readonly httu: SmmuFirmwareHttu | null;
  /** Driver options selected by firmware. */
  readonly options: SmmuFirmwareOptions;
  /** NUMA proximity domain (IORT, when its "valid" flag is set), else `null`. */
  readonly proximityDomain: number | null;
  /** IORT implementation model (0 generic, 1 HiSilicon Hi161x, 2 Cavium CN99xx); 0 for DT. */
  readonly model: number;
}

/**
 * The firmware-derived part of a master's configuration at its SMMU.
 *
 * @remarks
 * `streamIds` become `iommu_fwspec.ids`; `ats` is `IOMMU_FWSPEC_PCI_RC_ATS`; `pasidBits` is the
 * fwspec's `num_pasid_bits` (DT `pasid-num-bits`, IORT named-component flags; 0 for PCI, whose
 * PASID width comes from the PCIe capability); `canStall` is the `dma-can-stall` property (IORT:
 * named-component "stall supported" flag).
 */
export interface SmmuFwspec {
  /** The SMMU instance the master sits behind. */
  readonly smmu: SmmuFirmwareInstance;
  /** StreamIDs, in the order firmware lists them. */
  readonly streamIds: readonly number[];
  /** Substream ID (PASID) bits the master supports, 0 when none. */
  readonly pasidBits: number;
  /** The master tolerates stalled transactions. */
  readonly canStall: boolean;
  /** The root complex supports ATS (PCI masters only). */
  readonly ats: boolean;
}

/** A platform (non-PCI) master and its fwspec. */
export interface PlatformMasterFirmware {
  /** DT node path or IORT named-component device name (for example `\_SB_.DPU0`). */
  readonly name: string;
  /** Its fwspec. */
  readonly fwspec: SmmuFwspec;
}

/** A PCI host bridge / root complex. */
export interface PciRootComplexFirmware {
  /** DT node path or `iort@OFFSET`. */
  readonly name: string;
  /** PCI segment (IORT "PCI Segment Number", DT `linux,pci-domain` or the host bridge's order). */
  readonly segment: number;
  /** The root complex supports ATS (IORT ATS attribute bit 0, DT `ats-supported`). */
  readonly ats: boolean;
  /** IORT: the root complex supports PRI (ATS attribute bit 1). Always false for DT. */
  readonly pri: boolean;
  /** IORT: PASID forwarding supported (ATS attribute bit 2). Always false for DT. */
  readonly pasidForwarding: boolean;
  /** IORT (node revision 4 or later): maximum PASID width; 0 otherwise. */
  readonly pasidMaxWidth: number;
}

/**
 * A range of StreamIDs whose DMA to a memory region must keep working before the OS takes over
 * (IORT RMR node, ARM DEN 0049E.d+): the driver installs bypass STEs for them.
 */
export interface ReservedMemoryRangeFirmware {
  /** The SMMU instance the StreamIDs belong to. */
  readonly smmu: SmmuFirmwareInstance;
  /** StreamIDs covered. */
  readonly streamIds: readonly number[];
  /** Memory regions (physical base and length in bytes). */
  readonly regions: readonly { readonly base: bigint; readonly length: bigint }[];
  /** RMR flags (bit 0: remapping permitted; bit 1: privileged access). */
  readonly flags: number;
}

/**
 * SMMU instances and masters described by one firmware table or tree.
 *
 * @remarks
 * PCI masters are resolved on demand by requester ID, as Linux does when the PCI device appears;
 * platform masters are resolved eagerly.
 */
export interface FirmwareTopology {
  /** Which parser produced it. */
  readonly source: FirmwareSource;
  /** SMMUv3 instances, in table / tree order. */
  readonly smmus: readonly SmmuFirmwareInstance[];
  /** Platform masters behind an SMMUv3 instance, in table / tree order. */
  readonly platformMasters: readonly PlatformMasterFirmware[];
  /** PCI root complexes / host bridges. */
  readonly rootComplexes: readonly PciRootComplexFirmware[];
  /** RMR reservations (IORT revision 5 or later; empty for DT). */
  readonly reservedRanges: readonly ReservedMemoryRangeFirmware[];
  /**
   * The fwspec of PCI function `rid` (bus number in bits 15:8, devfn in bits 7:0) on `segment`.
   *
   * @returns the fwspec, or `null` when no root complex has that segment or the RID does not reach
   *   an SMMUv3 instance (the device is then not translated).
   * @throws ErrnoError EINVAL when the firmware's mapping is inconsistent (for example a loop of
   *   IORT ID mappings); the DT errors of `of_map_id` (EFAULT for a map entry the mask cuts,
   *   ENODEV for a phandle that names no node).
   */
  resolvePci(segment: number, rid: number): SmmuFwspec | null;
  /**
   * The fwspec of a platform master by name (see {@link PlatformMasterFirmware.name}), or `null`.
   */
  resolvePlatform(name: string): SmmuFwspec | null;
}
