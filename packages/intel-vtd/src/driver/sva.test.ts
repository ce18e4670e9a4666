import { isErrnoError } from '@iommu-ts/base';
import { IommuDevFeature } from '@iommu-ts/iommu-core';
import { iommuSvaBindDevice } from '@iommu-ts/iommu-sva';
import { describe, expect, it } from 'vitest';
import { infoOf } from './device-info.js';
import { intelIommuIopfRefcount } from './iopf.js';
import { pasidSetupPassThrough, pasidTearDownEntry } from './pasid.js';
import { prqDrainDescs, prqHasPending } from './prq-drain.js';
import { svaMachine } from './sva.test-helpers.js';
import { IntelSvaDomain, intelSvmCheck, intelSvmSetDevPasid } from './svm.js';

function errno(fn: () => void): string {
  try {
    fn();
  } catch (e) {
    if (isErrnoError(e)) return e.code;
    throw e;
  }
  return 'ok';
}

describe('SVA capability (intel_svm_check, digest §8.10 step 1)', () => {
  it('a unit without FL1GP is not SVM-capable when the CPUs use 1 GiB pages; bind fails ENODEV, nothing kept', () => {
    const m = svaMachine({ config: { fl1gp: false } });
    expect(intelSvmCheck(m.unit)).toBe(false);
    expect(m.unit.log.at(-1)?.message).toBe('DMAR: dmar0 SVM disabled, incompatible 1GB page capability');
    expect(intelSvmCheck(m.unit, { gbPages: false, la57: false })).toBe(true);
    expect(intelSvmCheck(m.unit, { gbPages: true, la57: false })).toBe(false);
    const { pdev } = m.pci(0x20);
    const proc = m.process();
    expect(errno(() => iommuSvaBindDevice(pdev, proc.mm))).toBe('ENODEV');
    expect(pdev.iommuGroup?.pasidArray.size).toBe(0);
    expect(intelIommuIopfRefcount(infoOf(pdev))).toBe(0);
  });

  it('5-level CPUs need FL5LP', () => {
    const m = svaMachine({ config: { fl5lp: false } });
    expect(intelSvmCheck(m.unit, { gbPages: true, la57: true })).toBe(false);
    expect(m.unit.log.at(-1)?.message).toBe('DMAR: dmar0 SVM disabled, incompatible paging mode');
  });
});

describe('device features (dev_enable_feat, ≤ v6.14)', () => {
  it('IOPF then SVA on a PRI device; SVA refused while PRI is off; disable is refcounted', () => {
    const m = svaMachine();
    const { pdev } = m.pci(0x20);
    const info = infoOf(pdev);
    m.enableSva(pdev);
    expect(intelIommuIopfRefcount(info)).toBe(1);
    expect(pdev.iommu?.faultParam).not.toBeNull();
    m.core.iommuDevDisableFeature(pdev, IommuDevFeature.SVA);
    m.core.iommuDevDisableFeature(pdev, IommuDevFeature.IOPF);
    expect(intelIommuIopfRefcount(info)).toBe(0);
    expect(pdev.iommu?.faultParam).toBeNull();
    expect(errno(() => m.core.iommuDevDisableFeature(pdev, IommuDevFeature.IOPF))).toBe('EINVAL');
  });

  it('a function whose PRG response carries no PASID: PRI stays off at probe; SVA → EINVAL, IOPF → EINVAL', () => {
    const m = svaMachine();
    const { pdev } = m.pci(0x28, { prgPasid: false });
    const info = infoOf(pdev);
    expect(info.priEnabled).toBe(false);
    expect(errno(() => m.core.iommuDevEnableFeature(pdev, IommuDevFeature.SVA))).toBe('EINVAL');
    expect(errno(() => m.core.iommuDevEnableFeature(pdev, IommuDevFeature.IOPF))).toBe('EINVAL');
    expect(intelIommuIopfRefcount(info)).toBe(0);
    expect(pdev.priCap?.enabled).toBe(false);
  });

  it('a function without ATS cannot do SVA (ENODEV from IOPF, EINVAL from SVA)', () => {
    const m = svaMachine();
    const { pdev } = m.pci(0x30, { ats: false });
    expect(errno(() => m.core.iommuDevEnableFeature(pdev, IommuDevFeature.IOPF))).toBe('ENODEV');
    expect(errno(() => m.core.iommuDevEnableFeature(pdev, IommuDevFeature.SVA))).toBe('EINVAL');
  });
});

describe('set_dev_pasid error path and the drain helpers', () => {
  it('a present PASID entry makes the SVA attach fail EBUSY with tags, IOPF and the entry unchanged', () => {
    const m = svaMachine();
    const { pdev } = m.pci(0x20);
    const info = infoOf(pdev);
    const proc = m.process();
    pasidSetupPassThrough(info, 9);
    const pa = info.pasidTable?.entry(9, false) ?? 0;
    const before = [0, 1, 2].map((i) => m.memory.read64(pa + i * 8));
    const domain = new IntelSvaDomain(proc.mm);
    expect(errno(() => intelSvmSetDevPasid(domain, pdev, 9, null))).toBe('EBUSY');
    expect(domain.cacheTags).toEqual([]);
    expect(domain.devPasids).toEqual([]);
    expect(intelIommuIopfRefcount(info)).toBe(0);
    expect(pdev.iommu?.faultParam).toBeNull();
    expect([0, 1, 2].map((i) => m.memory.read64(pa + i * 8))).toEqual(before);
    pasidTearDownEntry(info, 9, false);
  });

  it('drain descriptors: PASID 0 uses DSI IOTLB and the non-PASID device-TLB form', () => {
    const m = svaMachine();
    const { pdev } = m.pci(0x20);
    const d0 = prqDrainDescs(infoOf(pdev), 0, 5);
    expect(d0.map((d) => d.qw0 & 0xfn)).toEqual([5n, 2n, 3n]);
    expect(d0[0]?.qw0).toBe((2n << 32n) | (1n << 6n) | 5n);
    expect(d0[0]?.qw1).toBe(0n);
    const d7 = prqDrainDescs(infoOf(pdev), 7, 5);
    expect(d7.map((d) => d.qw0 & 0xfn)).toEqual([5n, 6n, 8n]);
    expect((d7[1]?.qw0 ?? 0n) >> 32n).toBe(7n);
    expect(prqHasPending(m.unit, 0x20, 7)).toBe(false);
  });
});
