// End to end through iommufd: a process maps its memory into an IOAS, a PCI device behind the
// SMMUv3 driver is bound and attached, and DMA through the hardware model reaches the process
// pages. GET_HW_INFO, nest-parent (stage-2) HWPTs and HTTU dirty tracking.

import { Scheduler } from '@iommu-ts/base';
import { errnoOf } from '@iommu-ts/base/testing';
import { Endpoint, IommuSubsystem, PciHostBridge } from '@iommu-ts/iommu-core';
import {
  IOMMU_GET_HW_INFO,
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  Iommufd,
  type IommufdHwptPaging,
  IommufdObjectType,
  iommufdDeviceAttach,
  iommufdDeviceBind,
} from '@iommu-ts/iommufd';
import { MAP_ANONYMOUS, MAP_PRIVATE, PhysicalMemory, PROT_READ, PROT_WRITE, Process } from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import { SmmuV3Model } from '../hw/smmu.js';
import { resolveSmmuHwConfig, type SmmuHwConfig, smmuIdrs } from '../hw/smmu-config.js';
import { armSmmuDeviceProbe } from './arm-smmu-ops.js';
import { CTXDESC_CD_0_TCR_HA, CTXDESC_CD_0_TCR_HD } from './cd.js';
import { type ArmSmmuDomain, ArmSmmuDomainStage } from './domain.js';
import { armSmmuDirtyOps, IOMMU_HW_INFO_TYPE_ARM_SMMUV3 } from './iommufd.js';

const P = 4096n;
const IOVA = 0x40_0000n;
const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;

function machine(config: Partial<SmmuHwConfig> = {}) {
  const ram = new PhysicalMemory({ size: 128 * 2 ** 20 });
  const scheduler = new Scheduler();
  const model = new SmmuV3Model({ memory: ram, scheduler, config });
  const sub = new IommuSubsystem();
  const fwnode = { name: 'smmu0' };
  const smmu = armSmmuDeviceProbe({
    iommu: sub,
    mmio: model.mmio,
    memory: ram,
    scheduler,
    fwnode,
    coherent: true,
  });
  const hb = new PciHostBridge();
  const proc = new Process(ram);
  const file = Iommufd.open({ iommu: sub, process: proc });
  const sid = 0x18;
  const pdev = hb.rootBus.addDevice({ devfn: sid, pasid: { maxPasidWidth: 8 } });
  sub.iommuFwspecInit(pdev, fwnode);
  sub.iommuFwspecAddIds(pdev, [sid]);
  const err = sub.addDevice(pdev);
  if (err) throw err;
  const ep = new Endpoint({ device: pdev, iommu: model, scheduler, requesterId: sid });
  const idev = iommufdDeviceBind(file.ctx, pdev);
  const ioasCmd = { size: 12, flags: 0, out_ioas_id: 0 };
  file.ioctl(IOMMU_IOAS_ALLOC, ioasCmd);
  const ioasId = ioasCmd.out_ioas_id;
  /** mmap (not faulted) `pages` pages and IOAS_MAP them at IOVA. */
  const mapBuffer = (pages: number): bigint => {
    const va = proc.mmap(BigInt(pages) * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    file.ioctl(IOMMU_IOAS_MAP, {
      size: 40,
      flags: IOMMU_IOAS_MAP_FIXED_IOVA | RW,
      ioas_id: ioasId,
      user_va: va,
      length: BigInt(pages) * P,
      iova: IOVA,
    });
    return va;
  };
  const hwptAlloc = (flags: number): { err: string | undefined; id: number } => {
    const cmd = { size: 48, flags, dev_id: idev.id, pt_id: ioasId, out_hwpt_id: 0 };
    const e = errnoOf(() => file.ioctl(IOMMU_HWPT_ALLOC, cmd));
    return { err: e, id: cmd.out_hwpt_id };
  };
  const hwptDomain = (id: number): ArmSmmuDomain =>
    (file.ctx.getObject(id, IommufdObjectType.HWPT_PAGING) as IommufdHwptPaging).domain as ArmSmmuDomain;
  /** STE dword 0 of the device's StreamID, as the driver wrote it. */
  const ste0 = (): bigint => ram.read64(smmu.steAddress(sid));
  return {
    ram,
    scheduler,
    model,
    sub,
    smmu,
    proc,
    file,
    pdev,
    ep,
    idev,
    ioasId,
    sid,
    mapBuffer,
    hwptAlloc,
    hwptDomain,
    ste0,
  };
}

function fill(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (seed * 31 + i) & 0xff);
}

describe('iommufd on the SMMUv3 driver', () => {
  it('IOAS_MAP of unfaulted process memory + attach: device DMA reaches the process pages', () => {
    const m = machine();
    const va = m.mapBuffer(4);
    const hwptId = iommufdDeviceAttach(m.idev, m.ioasId);
    const d = m.hwptDomain(hwptId);
    expect(d.stage).toBe(ArmSmmuDomainStage.S1);
    expect(m.sub.iommuGetDomainForDev(m.pdev)).toBe(d);
    expect(Number((m.ste0() >> 1n) & 7n)).toBe(0b101); // S1 translate, S2 bypass
    // Device writes straddling pages 1 and 2; the process sees them at the same offsets.
    const data = fill(0x100, 1);
    m.ep.writeSync(IOVA + P + 0xf80n, data);
    expect([...m.proc.read(va + P + 0xf80n, 0x100)]).toEqual([...data]);
    // What the process writes, the device reads.
    m.proc.write(va + 3n * P + 8n, new Uint8Array([9, 8, 7]));
    expect([...m.ep.readSync(IOVA + 3n * P + 8n, 3)]).toEqual([9, 8, 7]);
    // Outside the mapping: translation fault, nothing written.
    expect(m.ep.dmaWrite(IOVA + 4n * P, new Uint8Array([1])).fault).toMatchObject({ reason: 'translation' });
  });

  it('IOAS_UNMAP invalidates: the next DMA faults', () => {
    const m = machine();
    const va = m.mapBuffer(2);
    iommufdDeviceAttach(m.idev, m.ioasId);
    m.ep.writeSync(IOVA, new Uint8Array([0x42]));
    expect(m.proc.read(va, 1)[0]).toBe(0x42);
    const cmd = { size: 24, ioas_id: m.ioasId, iova: IOVA, length: 2n * P };
    m.file.ioctl(IOMMU_IOAS_UNMAP, cmd);
    expect(cmd.length).toBe(2n * P);
    expect(m.ep.dmaRead(IOVA, 1).fault).toMatchObject({ reason: 'translation' });
  });

  it('GET_HW_INFO: struct iommu_hw_info_arm_smmuv3 with the IDRs the model reports', () => {
    const config: Partial<SmmuHwConfig> = { iidr: 0 };
    const m = machine(config);
    const buf = m.proc.mmap(P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    m.proc.write(buf, new Uint8Array(64).fill(0xee));
    const cmd = {
      size: 40,
      flags: 0,
      dev_id: m.idev.id,
      data_len: 48,
      data_uptr: buf,
      out_data_type: 0,
      out_max_pasid_log2: 0,
      out_capabilities: 0n,
    };
    m.file.ioctl(IOMMU_GET_HW_INFO, cmd);
    expect(cmd.out_data_type).toBe(IOMMU_HW_INFO_TYPE_ARM_SMMUV3);
    expect(cmd.data_len).toBe(40);
    expect(cmd.out_capabilities & BigInt(IOMMU_HW_CAP_DIRTY_TRACKING)).toBe(
      BigInt(IOMMU_HW_CAP_DIRTY_TRACKING),
    );
    expect(cmd.out_max_pasid_log2).toBe(8);
    const ids = smmuIdrs(resolveSmmuHwConfig(config));
    const words = [ids.idr0, ids.idr1, ids.idr2, ids.idr3, ids.idr4, ids.idr5];
    const expected = new Uint8Array(48);
    const dv = new DataView(expected.buffer);
    words.forEach((w, i) => {
      dv.setUint32(8 + 4 * i, w >>> 0, true);
    });
    dv.setUint32(32, ids.iidr >>> 0, true);
    dv.setUint32(36, ids.aidr >>> 0, true);
    // Bytes 40..47 of the user's 48 are zeroed by iommufd.
    expect([...m.proc.read(buf, 48)]).toEqual([...expected]);
    expect(m.proc.read(buf + 48n, 1)[0]).toBe(0xee);
    expect(words[0]).not.toBe(0);
    // Asking for another type: EOPNOTSUPP.
    expect(
      errnoOf(() =>
        m.file.ioctl(IOMMU_GET_HW_INFO, { size: 40, flags: 1, dev_id: m.idev.id, in_data_type: 3 }),
      ),
    ).toBe('EOPNOTSUPP');
  });

  it('HWPT_ALLOC NEST_PARENT: a stage-2 domain, STE Config S2 after attach, DMA works', () => {
    const m = machine({ iidr: 0 });
    const va = m.mapBuffer(2);
    const r = m.hwptAlloc(IOMMU_HWPT_ALLOC_NEST_PARENT);
    expect(r.err).toBeUndefined();
    const d = m.hwptDomain(r.id);
    expect(d.stage).toBe(ArmSmmuDomainStage.S2);
    expect(d.nestParent).toBe(true);
    expect(d.vmid).toBeGreaterThan(0);
    expect(d.asid).toBe(0);
    expect(iommufdDeviceAttach(m.idev, r.id)).toBe(r.id);
    expect(Number((m.ste0() >> 1n) & 7n)).toBe(0b110); // S1 bypass, S2 translate
    const vmidInSte = Number(m.ram.read64(m.smmu.steAddress(m.sid) + 16) & 0xffffn);
    expect(vmidInSte).toBe(d.vmid);
    const data = fill(64, 2);
    m.ep.writeSync(IOVA + P + 0x40n, data);
    expect([...m.proc.read(va + P + 0x40n, 64)]).toEqual([...data]);
  });

  it('NEST_PARENT without FEAT_NESTING (MMU-600 erratum IIDR) → EOPNOTSUPP, no object left', () => {
    const m = machine();
    m.mapBuffer(1);
    const before = m.file.ctx.listObjects().map((o) => `${o.id}:${o.type}:${o.users}`);
    const vmids = [...m.smmu.vmidMap];
    expect(m.hwptAlloc(IOMMU_HWPT_ALLOC_NEST_PARENT).err).toBe('EOPNOTSUPP');
    expect(m.file.ctx.listObjects().map((o) => `${o.id}:${o.type}:${o.users}`)).toEqual(before);
    expect([...m.smmu.vmidMap]).toEqual(vmids);
  });

  it('DIRTY_TRACKING: device writes set DBM dirty through HTTU; the bitmap reports exactly those pages', () => {
    const m = machine();
    const pages = 8;
    m.mapBuffer(pages);
    const r = m.hwptAlloc(IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    expect(r.err).toBeUndefined();
    const d = m.hwptDomain(r.id);
    expect(d.dirtyOps).toBe(armSmmuDirtyOps);
    iommufdDeviceAttach(m.idev, r.id);
    // The CD enables hardware access-flag and dirty-state updates.
    const cdptr = m.ram.read64(m.smmu.steAddress(m.sid)) & 0x000f_ffff_ffff_ffc0n;
    const cd0 = m.ram.read64(Number(cdptr));
    expect(cd0 & (CTXDESC_CD_0_TCR_HA | CTXDESC_CD_0_TCR_HD)).toBe(CTXDESC_CD_0_TCR_HA | CTXDESC_CD_0_TCR_HD);
    const setTracking = (on: boolean) =>
      m.file.ioctl(IOMMU_HWPT_SET_DIRTY_TRACKING, { size: 16, flags: on ? 1 : 0, hwpt_id: r.id });
    const bitmapVa = m.proc.mmap(P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    const getBitmap = (): number => {
      m.proc.write(bitmapVa, new Uint8Array(8));
      m.file.ioctl(IOMMU_HWPT_GET_DIRTY_BITMAP, {
        size: 48,
        hwpt_id: r.id,
        flags: 0,
        iova: IOVA,
        length: BigInt(pages) * P,
        page_size: P,
        data: bitmapVa,
      });
      return m.proc.read(bitmapVa, 1)[0] as number;
    };
    const leaf = (i: number): bigint => {
      const w = d.pgtblOps?.pgtableWalk(IOVA + BigInt(i) * P) ?? [];
      return w[w.length - 1] as bigint;
    };
    const DBM = 1n << 51n;
    const AP_RDONLY = 1n << 7n;
    // Writable mappings start dirty (DBM, AP[2] clear); enabling tracking cleans them.
    expect(leaf(0) & (DBM | AP_RDONLY)).toBe(DBM);
    setTracking(true);
    for (let i = 0; i < pages; i++) expect(leaf(i) & (DBM | AP_RDONLY)).toBe(DBM | AP_RDONLY);
    expect(getBitmap()).toBe(0);
    // The device writes pages 1, 3 and 6 and only reads page 2.
    for (const p of [1, 3, 6]) m.ep.writeSync(IOVA + BigInt(p) * P + 0x10n, new Uint8Array([p]));
    expect(m.ep.readSync(IOVA + 2n * P, 1)[0]).toBe(0);
    expect(leaf(1) & (DBM | AP_RDONLY)).toBe(DBM);
    expect(leaf(2) & (DBM | AP_RDONLY)).toBe(DBM | AP_RDONLY);
    expect(getBitmap()).toBe(0b0100_1010);
    // Read-and-clear cleaned them in memory.
    expect(leaf(1) & (DBM | AP_RDONLY)).toBe(DBM | AP_RDONLY);
    expect(getBitmap()).toBe(0);
    // A write to a page the SMMU has no TLB entry for is seen.
    m.ep.writeSync(IOVA + 5n * P, new Uint8Array([0xff]));
    expect(getBitmap()).toBe(0b0010_0000);
    // As in Linux, the IOTLB sync iommufd asks for after clearing carries a gather without a page
    // size, which arm_smmu_iotlb_sync ignores: page 3's writable entry stays in the SMMU TLB and a
    // new write through it does not mark the descriptor dirty ...
    m.ep.writeSync(IOVA + 3n * P, new Uint8Array([0xfe]));
    expect(leaf(3) & (DBM | AP_RDONLY)).toBe(DBM | AP_RDONLY);
    expect(getBitmap()).toBe(0);
    // ... until the TLB is invalidated.
    m.sub.iommuFlushIotlbAll(d);
    m.ep.writeSync(IOVA + 3n * P, new Uint8Array([0xfd]));
    expect(getBitmap()).toBe(0b0000_1000);
    setTracking(false);
  });

  it('DIRTY_TRACKING without HTTU dirty support → EOPNOTSUPP', () => {
    const m = machine({ httu: 'ha' });
    m.mapBuffer(1);
    expect(m.hwptAlloc(IOMMU_HWPT_ALLOC_DIRTY_TRACKING).err).toBe('EOPNOTSUPP');
    expect(m.hwptAlloc(0).err).toBeUndefined();
  });
});
