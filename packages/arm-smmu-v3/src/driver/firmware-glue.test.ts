// Firmware glue: the QEMU virt IORT and device-tree fixtures → SMMUv3 drivers probed on hardware
// models and fwspecs for the devices the tables describe; DMA through a device found that way.

import { readFileSync } from 'node:fs';
import { type ErrnoError, Scheduler } from '@iommu-ts/base';
import {
  Endpoint,
  IOMMU_FWSPEC_PCI_RC_ATS,
  IOMMU_READ,
  IOMMU_WRITE,
  IommuCap,
  IommuSubsystem,
  PciHostBridge,
  PlatformDevice,
} from '@iommu-ts/iommu-core';
import { PhysicalMemory } from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import { deviceTreeTopology, parseFdt } from '../firmware/device-tree.js';
import { iortTopology, parseIort } from '../firmware/iort.js';
import type { FirmwareTopology } from '../firmware/topology.js';
import { SmmuV3Model } from '../hw/smmu.js';
import { ARM_SMMU_FEAT_HD } from './arm-smmu-device.js';
import { ArmSmmuDomain } from './domain.js';
import {
  armSmmuFirmwareConfigure,
  armSmmuFirmwareDriverOptions,
  armSmmuFirmwareProbe,
} from './firmware-glue.js';
import { masterOfDev } from './master-state.js';

const fixture = (name: string): Uint8Array =>
  new Uint8Array(readFileSync(new URL(`../firmware/fixtures/${name}`, import.meta.url)));
const RW = IOMMU_READ | IOMMU_WRITE;

/** RAM, scheduler, core, and one SMMUv3 model per firmware instance (minus `missing` bases). */
function platform(topology: FirmwareTopology, missing: bigint[] = []) {
  const memory = new PhysicalMemory({ base: 0x4000_0000, size: 64 * 2 ** 20 });
  const scheduler = new Scheduler();
  const iommu = new IommuSubsystem();
  const models = new Map<bigint, SmmuV3Model>();
  for (const s of topology.smmus)
    if (!missing.includes(s.base)) models.set(s.base, new SmmuV3Model({ memory, scheduler, config: {} }));
  const glue = armSmmuFirmwareProbe(topology, {
    iommu,
    memory,
    scheduler,
    mmioFor: (base) => models.get(base)?.mmio ?? null,
    options: { maxQueueLog2: 8 },
  });
  return { memory, scheduler, iommu, models, glue };
}

describe('QEMU virt IORT (smmuv3-dev: two SMMUs behind one root complex)', () => {
  const topology = iortTopology(parseIort(fixture('qemu-virt-iort-smmuv3-dev.bin')));

  it('probes one driver per SMMU node, coherent, on the right model', () => {
    const p = platform(topology);
    expect(p.glue.smmus.map((s) => [s.instance.base, s.smmu?.registered, s.error])).toEqual([
      [0x0c00_0000n, true, null],
      [0x0c02_0000n, true, null],
    ]);
    for (const s of p.glue.smmus) {
      expect(s.smmu?.mmio).toBe(p.models.get(s.instance.base)?.mmio);
      expect(s.smmu?.fwnode).toBe(s.fwnode);
      expect(s.smmu?.log.some((l) => /coheren/i.test(l.message))).toBe(false);
    }
    // IORT's HTTU override (none here) wins over the model's IDR0.HTTU (access + dirty).
    expect((p.glue.smmus[0]?.smmu?.features ?? 0) & ARM_SMMU_FEAT_HD).toBe(0);
  });

  it('PCI functions get fwspecs from the root complex ID mappings; DMA goes through the right SMMU', () => {
    const p = platform(topology);
    const hb0 = new PciHostBridge();
    const hb1 = new PciHostBridge({ busNr: 0x10 });
    const a = hb0.rootBus.addDevice({ devfn: 0x10 });
    const b = hb1.rootBus.addDevice({ devfn: 0x10 });
    const c = new PciHostBridge({ busNr: 0x02 }).rootBus.addDevice({ devfn: 0x50 });
    expect(armSmmuFirmwareConfigure(p.glue, a)?.smmu.index).toBe(0);
    expect(armSmmuFirmwareConfigure(p.glue, b)?.smmu.index).toBe(1);
    expect(a.fwspec).toMatchObject({ iommuFwnode: p.glue.smmus[0]?.fwnode, ids: [0x10], flags: 0 });
    expect(b.fwspec).toMatchObject({ iommuFwnode: p.glue.smmus[1]?.fwnode, ids: [0x1010] });
    // RID 0x0250 maps straight to the ITS: no SMMU, no fwspec, the device is not translated.
    expect(armSmmuFirmwareConfigure(p.glue, c)).toBeNull();
    expect(c.fwspec).toBeNull();
    for (const d of [a, b]) expect(p.iommu.addDevice(d)).toBeNull();
    expect(masterOfDev(a).smmu).toBe(p.glue.smmus[0]?.smmu);
    expect(masterOfDev(b).smmu).toBe(p.glue.smmus[1]?.smmu);

    const m1 = p.models.get(0x0c02_0000n) as SmmuV3Model;
    const ep = new Endpoint({ device: b, iommu: m1, scheduler: p.scheduler, requesterId: 0x1010 });
    const domain = p.iommu.iommuGetDomainForDev(b) as ArmSmmuDomain;
    expect(domain).toBeInstanceOf(ArmSmmuDomain);
    const pa = p.memory.allocPages(0);
    p.iommu.iommuMap(domain, 0x8000n, BigInt(pa), 0x1000n, RW);
    ep.writeSync(0x8004n, new Uint8Array([0xde, 0xad]));
    expect([...p.memory.readBytes(pa + 4, 2)]).toEqual([0xde, 0xad]);
    // The same StreamID on the other SMMU has no valid STE for it: the model there aborts.
    const m0 = p.models.get(0x0c00_0000n) as SmmuV3Model;
    const stray = new Endpoint({ device: b, iommu: m0, scheduler: p.scheduler, requesterId: 0x1010 });
    expect(stray.dmaWrite(0x8000n, new Uint8Array([1])).fault).toBeDefined();
  });

  it('a missing SMMU is an error for it alone; its devices defer and keep no fwspec', () => {
    const p = platform(topology, [0x0c02_0000n]);
    expect(p.glue.smmus[0]?.smmu).not.toBeNull();
    expect(p.glue.smmus[1]?.smmu).toBeNull();
    expect(p.glue.smmus[1]?.error?.code).toBe('ENODEV');
    const hb1 = new PciHostBridge({ busNr: 0x10 });
    const b = hb1.rootBus.addDevice({ devfn: 0x10 });
    let err: ErrnoError | undefined;
    try {
      armSmmuFirmwareConfigure(p.glue, b);
    } catch (e) {
      err = e as ErrnoError;
    }
    expect(err?.code).toBe('EPROBE_DEFER');
    expect(b.fwspec).toBeNull();
    expect(b.iommu).toBeNull();
  });
});

describe('device tree', () => {
  const dtb = (stem: string) => deviceTreeTopology(parseFdt(fixture(`${stem}.dtb`)));

  it('Ascend310 SDMA: platform master with pasid-num-bits and dma-can-stall; DMA through its default domain', () => {
    const topology = dtb('ascend310-sdma-smmu');
    const p = platform(topology);
    const smmu = p.glue.smmus[0]?.smmu;
    expect(smmu?.registered).toBe(true);
    // No IORT override on DT: IDR0.HTTU decides.
    expect((smmu?.features ?? 0) & ARM_SMMU_FEAT_HD).toBe(ARM_SMMU_FEAT_HD);
    const dev = new PlatformDevice('/dma-controller@880e0000');
    const fw = armSmmuFirmwareConfigure(p.glue, dev);
    expect(fw).toMatchObject({ streamIds: [0x7f46], pasidBits: 16, canStall: true });
    expect(dev.fwspec?.ids).toEqual([0x7f46]);
    expect(dev.ofNode?.properties).toMatchObject({ 'pasid-num-bits': 16, 'dma-can-stall': true });
    expect(p.iommu.addDevice(dev)).toBeNull();
    const master = masterOfDev(dev);
    expect(master.ssidBits).toBe(16);
    expect(master.stallEnabled).toBe(true);
    const model = p.models.get(topology.smmus[0]?.base as bigint) as SmmuV3Model;
    const ep = new Endpoint({ device: dev, iommu: model, scheduler: p.scheduler, requesterId: 0x7f46 });
    const domain = p.iommu.iommuGetDomainForDev(dev) as ArmSmmuDomain;
    const pa = p.memory.allocPages(0);
    p.iommu.iommuMap(domain, 0x2_0000n, BigInt(pa), 0x1000n, RW);
    ep.writeSync(0x2_0100n, new Uint8Array([1, 2, 3]));
    expect([...p.memory.readBytes(pa + 0x100, 3)]).toEqual([1, 2, 3]);
    // An unknown platform device is left alone.
    const other = new PlatformDevice('/nope');
    expect(armSmmuFirmwareConfigure(p.glue, other)).toBeNull();
    expect(other.ofNode).toBeNull();
  });

  it('FVP: a PCI function behind an ats-supported host bridge gets IOMMU_FWSPEC_PCI_RC_ATS and ATS', () => {
    const topology = dtb('fvp-base-revc-smmu');
    const p = platform(topology);
    const hb = new PciHostBridge();
    const pdev = hb.rootBus.addDevice({ devfn: 0x08, ats: {} });
    expect(armSmmuFirmwareConfigure(p.glue, pdev)?.ats).toBe(true);
    expect((pdev.fwspec?.flags ?? 0) & IOMMU_FWSPEC_PCI_RC_ATS).toBe(IOMMU_FWSPEC_PCI_RC_ATS);
    expect(pdev.fwspec?.ids).toEqual([0x08]);
    expect(p.iommu.addDevice(pdev)).toBeNull();
    expect(masterOfDev(pdev).atsEnabled).toBe(true);
    expect(p.iommu.deviceIommuCapable(pdev, IommuCap.DIRTY_TRACKING)).toBe(true);
  });
});

describe('armSmmuFirmwareDriverOptions', () => {
  it('maps the IORT HTTU override and the model options, keeping extra knobs', () => {
    const topology = iortTopology(parseIort(fixture('qemu-virt-iort-smmuv3-dev.bin')));
    const base = topology.smmus[0];
    if (base === undefined) throw new Error('no SMMU');
    expect(armSmmuFirmwareDriverOptions(base, { maxQueueLog2: 8 })).toEqual({
      maxQueueLog2: 8,
      httuOverride: 'none',
    });
    const hisi = { ...base, httu: 'ha-hd' as const, options: { skipPrefetch: true, page0RegsOnly: false } };
    expect(armSmmuFirmwareDriverOptions(hisi)).toEqual({ httuOverride: 'hahd', skipPrefetch: true });
    const dt = { ...base, httu: null, options: { skipPrefetch: false, page0RegsOnly: true } };
    expect(armSmmuFirmwareDriverOptions(dt)).toEqual({ page0RegsOnly: true });
  });
});
