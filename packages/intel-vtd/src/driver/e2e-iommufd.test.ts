// End to end through iommufd: a process maps its memory into an IOAS, a PCI function behind a unit
// brought up by intelIommuProbe is bound and attached, and DMA through the VT-d model reaches the
// process pages. IOAS_UNMAP → fault, GET_HW_INFO bytes, SLADE dirty tracking through the HWPT ioctls.

import { Scheduler } from '@iommu-ts/base';
import { errnoOf } from '@iommu-ts/base/testing';
import { Endpoint, IommuSubsystem, PciHostBridge } from '@iommu-ts/iommu-core';
import {
  IOMMU_GET_HW_INFO,
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
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
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, Process } from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import { testMemory } from '../hw/structures.test-helpers.js';
import { VtdModel } from '../hw/vtd.js';
import type { VtdHwConfig } from '../hw/vtd-config.js';
import { infoOf } from './device.js';
import { type DmarDomain, IOMMU_HW_INFO_TYPE_INTEL_VTD, intelIommuDirtyOps } from './domain.js';
import { intelIommuProbe } from './intel-iommu-ops.js';
import { PASID_SSADE } from './pasid.js';
import { descStr } from './vd2.test-helpers.js';

const P = 4096n;
const IOVA = 0x40_0000n;
const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;

function machine(config: Partial<VtdHwConfig> = {}) {
  const ram = testMemory();
  const scheduler = new Scheduler();
  const vtd = new VtdModel({ memory: ram, scheduler, config });
  const sub = new IommuSubsystem();
  const fwnode = { name: 'dmar0' };
  const unit = intelIommuProbe({ iommu: sub, mmio: vtd.mmio, memory: ram, scheduler, fwnode });
  const hb = new PciHostBridge();
  const proc = new Process(ram);
  const file = Iommufd.open({ iommu: sub, process: proc });
  const rid = 0x18;
  const pdev = hb.rootBus.addDevice({ devfn: rid, pasid: { maxPasidWidth: 8 } });
  sub.iommuFwspecInit(pdev, fwnode);
  sub.iommuFwspecAddIds(pdev, [rid]);
  const err = sub.addDevice(pdev);
  if (err) throw err;
  const ep = new Endpoint({ device: pdev, iommu: vtd, scheduler, requesterId: rid });
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
  const hwptDomain = (id: number): DmarDomain =>
    (file.ctx.getObject(id, IommufdObjectType.HWPT_PAGING) as IommufdHwptPaging).domain as DmarDomain;
  /** The RID's PASID-0 entry as the driver wrote it (eight 64-bit words). */
  const pasidEntry = (): bigint[] => {
    const a = infoOf(pdev).pasidTable?.entry(0, false) ?? -1;
    return Array.from({ length: 8 }, (_, i) => ram.read64(a + 8 * i));
  };
  let mark = vtd.iq.log.length;
  const descs = (): string[] => {
    const out = vtd.iq.log.slice(mark).map(descStr);
    mark = vtd.iq.log.length;
    return out.filter((s) => s !== 'wait');
  };
  return {
    ram,
    scheduler,
    vtd,
    sub,
    unit,
    proc,
    file,
    pdev,
    ep,
    idev,
    ioasId,
    mapBuffer,
    hwptAlloc,
    hwptDomain,
    pasidEntry,
    descs,
  };
}

const fill = (n: number, seed: number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (seed * 31 + i) & 0xff);

/** PGTT of a PASID entry (word 0 bits 8:6). */
const pgtt = (w: bigint[]): number => Number(((w[0] ?? 0n) >> 6n) & 7n);

describe('iommufd on the VT-d driver', () => {
  it('IOAS_MAP of unfaulted process memory + attach: device DMA reaches the process pages', () => {
    const m = machine();
    const va = m.mapBuffer(4);
    const hwptId = iommufdDeviceAttach(m.idev, m.ioasId);
    const d = m.hwptDomain(hwptId);
    expect(m.sub.iommuGetDomainForDev(m.pdev)).toBe(d);
    expect(pgtt(m.pasidEntry())).toBe(d.useFirstLevel ? 1 : 2);
    const data = fill(0x100, 1);
    m.ep.writeSync(IOVA + P + 0xf80n, data);
    expect([...m.proc.read(va + P + 0xf80n, 0x100)]).toEqual([...data]);
    m.proc.write(va + 3n * P + 8n, new Uint8Array([9, 8, 7]));
    expect([...m.ep.readSync(IOVA + 3n * P + 8n, 3)]).toEqual([9, 8, 7]);
    expect(m.ep.dmaWrite(IOVA + 4n * P, new Uint8Array([1])).fault).toBeDefined();
  });

  it('a second-level HWPT (DIRTY_TRACKING forces second level): PGTT 2, DMA reaches the process', () => {
    const m = machine();
    const va = m.mapBuffer(2);
    const r = m.hwptAlloc(IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    expect(r.err).toBeUndefined();
    const d = m.hwptDomain(r.id);
    expect(d.useFirstLevel).toBe(false);
    expect(iommufdDeviceAttach(m.idev, r.id)).toBe(r.id);
    const w = m.pasidEntry();
    expect(pgtt(w)).toBe(2);
    // DID in word 1 bits 15:0 is the domain's DID on this unit.
    expect(Number((w[1] ?? 0n) & 0xffffn)).toBe(d.iommuArray.get(m.unit)?.did);
    const data = fill(64, 2);
    m.ep.writeSync(IOVA + P + 0x40n, data);
    expect([...m.proc.read(va + P + 0x40n, 64)]).toEqual([...data]);
  });

  it('IOAS_UNMAP invalidates the IOTLB: the next DMA faults', () => {
    const m = machine();
    const va = m.mapBuffer(2);
    const hwptId = iommufdDeviceAttach(m.idev, m.ioasId);
    const d = m.hwptDomain(hwptId);
    m.ep.writeSync(IOVA, new Uint8Array([0x42]));
    expect(m.proc.read(va, 1)[0]).toBe(0x42);
    m.descs();
    const cmd = { size: 24, ioas_id: m.ioasId, iova: IOVA, length: 2n * P };
    m.file.ioctl(IOMMU_IOAS_UNMAP, cmd);
    expect(cmd.length).toBe(2n * P);
    const did = d.iommuArray.get(m.unit)?.did;
    expect(m.descs()).toEqual(
      d.useFirstLevel
        ? [`piotlb page did=${did} pasid=0 addr=0x400000 am=1 ih=1`] // no table page freed: IH set
        : [`iotlb page did=${did} addr=0x400000 am=1`],
    );
    expect(m.ep.dmaRead(IOVA, 1).fault).toBeDefined();
    expect(m.ep.dmaWrite(IOVA + P, new Uint8Array([1])).fault).toBeDefined();
  });

  it('GET_HW_INFO: struct iommu_hw_info_vtd with the unit’s CAP and ECAP', () => {
    const m = machine();
    const buf = m.proc.mmap(P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    m.proc.write(buf, new Uint8Array(64).fill(0xee));
    const cmd = {
      size: 40,
      flags: 0,
      dev_id: m.idev.id,
      data_len: 32,
      data_uptr: buf,
      out_data_type: 0,
      out_max_pasid_log2: 0,
      out_capabilities: 0n,
    };
    m.file.ioctl(IOMMU_GET_HW_INFO, cmd);
    expect(cmd.out_data_type).toBe(IOMMU_HW_INFO_TYPE_INTEL_VTD);
    expect(cmd.data_len).toBe(24);
    expect(cmd.out_capabilities & BigInt(IOMMU_HW_CAP_DIRTY_TRACKING)).toBe(
      BigInt(IOMMU_HW_CAP_DIRTY_TRACKING),
    );
    expect(cmd.out_max_pasid_log2).toBe(8);
    const expected = new Uint8Array(32);
    const dv = new DataView(expected.buffer);
    dv.setUint32(0, 1, true); // IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17
    dv.setBigUint64(8, m.vtd.mmio.readq(0x8), true);
    dv.setBigUint64(16, m.vtd.mmio.readq(0x10), true);
    expect([...m.proc.read(buf, 32)]).toEqual([...expected]);
    expect(m.proc.read(buf + 32n, 1)[0]).toBe(0xee);
  });

  it('DIRTY_TRACKING via SLADE: SSADE set, device writes set D, the bitmap reports exactly those pages', () => {
    const m = machine();
    const pages = 8;
    m.mapBuffer(pages);
    const r = m.hwptAlloc(IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    const d = m.hwptDomain(r.id);
    expect(d.dirtyOps).toBe(intelIommuDirtyOps);
    iommufdDeviceAttach(m.idev, r.id);
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
    expect((m.pasidEntry()[0] ?? 0n) & PASID_SSADE).toBe(0n);
    setTracking(true);
    expect((m.pasidEntry()[0] ?? 0n) & PASID_SSADE).toBe(PASID_SSADE);
    expect(getBitmap()).toBe(0);
    for (const p of [1, 3, 6]) m.ep.writeSync(IOVA + BigInt(p) * P + 0x10n, new Uint8Array([p]));
    expect(m.ep.readSync(IOVA + 2n * P, 1)[0]).toBe(0);
    expect(getBitmap()).toBe(0b0100_1010);
    expect(getBitmap()).toBe(0); // read-and-clear
    m.sub.iommuFlushIotlbAll(d);
    m.ep.writeSync(IOVA + 5n * P, new Uint8Array([0xff]));
    expect(getBitmap()).toBe(0b0010_0000);
    setTracking(false);
    expect((m.pasidEntry()[0] ?? 0n) & PASID_SSADE).toBe(0n);
  });

  it('DIRTY_TRACKING without SLADS → EOPNOTSUPP and no object left behind', () => {
    const m = machine({ slads: false });
    m.mapBuffer(1);
    const before = m.file.ctx.listObjects().map((o) => `${o.id}:${o.type}:${o.users}`);
    expect(m.hwptAlloc(IOMMU_HWPT_ALLOC_DIRTY_TRACKING).err).toBe('EOPNOTSUPP');
    expect(m.file.ctx.listObjects().map((o) => `${o.id}:${o.type}:${o.users}`)).toEqual(before);
    expect(m.hwptAlloc(0).err).toBeUndefined();
  });
});
