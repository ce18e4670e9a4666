import { IommuDevFeature, pciPriEnabled } from '@iommu-ts/iommu-core';
import {
  type IommuSva,
  iommuSvaBindDevice,
  iommuSvaGetPasid,
  iommuSvaUnbindDevice,
} from '@iommu-ts/iommu-sva';
import { ARM64_MAIR_EL1, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@iommu-ts/mm';
import { afterEach, describe, expect, it } from 'vitest';
import { ARM_SMMU_FEAT_SVA } from './arm-smmu-device.js';
import type { ArmSmmuDomain } from './domain.js';
import { masterOfDev } from './master-state.js';
import { ARM_SMMU_DEFAULT_CPU, type ArmSmmuSvaDomain, armSmmuSvaSupported } from './sva.js';
import { svaMachine } from './sva.test-helpers.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const live: IommuSva[] = [];
afterEach(() => {
  for (const s of live.splice(0)) if (s.users > 0) iommuSvaUnbindDevice(s);
});

function cdWords(m: ReturnType<typeof svaMachine>, dev: Parameters<typeof masterOfDev>[0], ssid: number) {
  const pa = masterOfDev(dev).cdTable?.cdPtr(ssid);
  if (pa === null || pa === undefined) throw new Error('no CD');
  return [0, 1, 2, 3].map((i) => m.memory.read64(pa + i * 8));
}

describe('armSmmuSvaSupported (spec §8.9)', () => {
  it('the default model supports SVA and probe sets FEAT_SVA', () => {
    const m = svaMachine();
    expect(armSmmuSvaSupported(m.smmu)).toBe(true);
    expect(m.smmu.features & ARM_SMMU_FEAT_SVA).toBe(ARM_SMMU_FEAT_SVA);
  });

  it('refuses 8-bit SMMU ASIDs, a smaller OAS, a missing CPU page size, 52-bit VA with 4K pages', () => {
    expect(svaMachine({ config: { asid16: false } }).smmu.features & ARM_SMMU_FEAT_SVA).toBe(0);
    expect(svaMachine({ config: { oas: 40 } }).smmu.features & ARM_SMMU_FEAT_SVA).toBe(0);
    expect(svaMachine({ config: { granule4k: false } }).smmu.features & ARM_SMMU_FEAT_SVA).toBe(0);
    const m = svaMachine();
    expect(armSmmuSvaSupported(m.smmu, { ...ARM_SMMU_DEFAULT_CPU, vaBits: 52 })).toBe(false);
    expect(armSmmuSvaSupported(m.smmu, { ...ARM_SMMU_DEFAULT_CPU, asidBits: 8 })).toBe(true);
    expect(armSmmuSvaSupported(m.smmu, { ...ARM_SMMU_DEFAULT_CPU, paRange: 6 })).toBe(false);
  });

  it('no FEAT_SVA: domain allocation fails with EOPNOTSUPP and the PASID stays unused', () => {
    const m = svaMachine({ config: { oas: 40 } });
    const { pdev } = m.pci(0x20);
    m.sub.iommuDevEnableFeature(pdev, IommuDevFeature.IOPF);
    expect(() => m.sub.iommuDevEnableFeature(pdev, IommuDevFeature.SVA)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    const proc = m.machine.createProcess({ arch: 'arm64' });
    expect(() => iommuSvaBindDevice(pdev, proc.mm)).toThrow(expect.objectContaining({ code: 'EOPNOTSUPP' }));
    expect(masterOfDev(pdev).cdTable?.usedSsids).toBe(0);
  });
});

describe('IOPF and SVA device features', () => {
  it('SVA before IOPF is EINVAL; IOPF enables PRI and joins the IOPF queue, refcounted', () => {
    const m = svaMachine();
    const { pdev } = m.pci(0x20);
    const master = masterOfDev(pdev);
    expect(() => m.sub.iommuDevEnableFeature(pdev, IommuDevFeature.SVA)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(pciPriEnabled(pdev)).toBe(false);
    m.sub.iommuDevEnableFeature(pdev, IommuDevFeature.IOPF);
    m.sub.iommuDevEnableFeature(pdev, IommuDevFeature.IOPF);
    expect(master.iopfRefcount).toBe(2);
    expect(pciPriEnabled(pdev)).toBe(true);
    expect(pdev.iommu?.faultParam).not.toBeNull();
    m.sub.iommuDevEnableFeature(pdev, IommuDevFeature.SVA);
    expect(() => m.sub.iommuDevEnableFeature(pdev, IommuDevFeature.SVA)).toThrow(
      expect.objectContaining({ code: 'EBUSY' }),
    );
    m.sub.iommuDevDisableFeature(pdev, IommuDevFeature.IOPF);
    expect(() => m.sub.iommuDevDisableFeature(pdev, IommuDevFeature.IOPF)).toThrow(
      expect.objectContaining({ code: 'EBUSY' }),
    );
    expect(master.iopfRefcount).toBe(1);
    m.sub.iommuDevDisableFeature(pdev, IommuDevFeature.SVA);
    m.sub.iommuDevDisableFeature(pdev, IommuDevFeature.IOPF);
    expect(master.iopfRefcount).toBe(0);
    expect(pciPriEnabled(pdev)).toBe(false);
    expect(pdev.iommu?.faultParam).toBeNull();
  });

  it('a device with neither stall nor PRI cannot enable IOPF (EINVAL), nothing changes', () => {
    const m = svaMachine();
    const { pdev } = m.pci(0x20, { pri: false });
    const { dev } = m.platform('plain', 0x41, false);
    for (const d of [pdev, dev]) {
      expect(() => m.sub.iommuDevEnableFeature(d, IommuDevFeature.IOPF)).toThrow(
        expect.objectContaining({ code: 'EINVAL' }),
      );
      expect(masterOfDev(d).iopfRefcount).toBe(0);
      expect(d.iommu?.faultParam).toBeNull();
    }
  });

  it('disabling SVA with a bound PASID is EBUSY', () => {
    const m = svaMachine();
    const { pdev } = m.pci(0x20);
    m.enableSva(pdev);
    const proc = m.machine.createProcess({ arch: 'arm64' });
    live.push(iommuSvaBindDevice(pdev, proc.mm));
    expect(() => m.sub.iommuDevDisableFeature(pdev, IommuDevFeature.SVA)).toThrow(
      expect.objectContaining({ code: 'EBUSY' }),
    );
  });
});

describe('the SVA context descriptor (arm_smmu_make_sva_cd)', () => {
  it('private ASID: every field as Linux writes it, exact qwords', () => {
    const m = svaMachine();
    const { pdev } = m.pci(0x20);
    m.enableSva(pdev);
    const proc = m.machine.createProcess({ arch: 'arm64' });
    const sva = iommuSvaBindDevice(pdev, proc.mm);
    live.push(sva);
    const d = sva.domain as ArmSmmuSvaDomain;
    const pasid = iommuSvaGetPasid(sva);
    const [dw0, dw1, dw2, dw3] = cdWords(m, pdev, pasid);
    const expected =
      16n | // T0SZ = 64 - 48
      (0n << 6n) | // TG0 4K
      (1n << 8n) | // IRGN0 WBWA
      (1n << 10n) | // ORGN0 WBWA
      (3n << 12n) | // SH0 IS
      (1n << 30n) | // EPD1
      (1n << 31n) | // V
      (5n << 32n) | // IPS 48-bit
      (1n << 41n) | // AA64
      (1n << 42n) | // HD (model HTTU = HA+HD)
      (1n << 43n) | // HA
      (1n << 45n) | // R
      (1n << 46n) | // A
      (1n << 47n) | // ASET (private)
      (BigInt(d.asid) << 48n);
    expect(dw0).toBe(expected);
    expect(dw1).toBe(BigInt(proc.mm.pgd));
    expect(dw2).toBe(0n);
    expect(dw3).toBe(ARM64_MAIR_EL1);
    // The DMA domain of the RID keeps its own ASID.
    const rid = m.sub.iommuGetDomainForDev(pdev) as ArmSmmuDomain;
    expect(rid.asid).not.toBe(d.asid);
  });

  it('two devices bound to one mm share one SVA domain and ASID; TLBI_NH_ASID on free', () => {
    const m = svaMachine();
    const a = m.pci(0x20).pdev;
    const b = m.pci(0x28).pdev;
    m.enableSva(a);
    m.enableSva(b);
    const proc = m.machine.createProcess({ arch: 'arm64' });
    proc.mmap(0x1000, RW, ANON);
    const sa = iommuSvaBindDevice(a, proc.mm);
    const sb = iommuSvaBindDevice(b, proc.mm);
    expect(sb.domain).toBe(sa.domain);
    const d = sa.domain as ArmSmmuSvaDomain;
    expect(d.devices.map((md) => md.ssid)).toEqual([iommuSvaGetPasid(sa), iommuSvaGetPasid(sb)]);
    iommuSvaUnbindDevice(sa);
    m.cmds();
    const asid = d.asid;
    iommuSvaUnbindDevice(sb);
    expect(m.cmds().slice(-2)).toEqual(['TLBI_NH_ASID', 'CMD_SYNC']);
    expect(m.model.cmdq.log.at(-2)).toMatchObject({ op: 'TLBI_NH_ASID', asid });
  });
});

describe("the seed's shared CPU ASID", () => {
  it('seizes the CPU ASID from the DMA domain that held it: new ASID, CD 0 rewritten, old ASID invalidated', () => {
    const m = svaMachine({ asidMode: 'shared' });
    const { pdev, ep } = m.pci(0x20);
    m.enableSva(pdev);
    const rid = m.sub.iommuGetDomainForDev(pdev) as ArmSmmuDomain;
    const pa = m.memory.allocPages(0);
    m.sub.iommuMap(rid, 0x10_0000n, BigInt(pa), 0x1000n, 3);
    ep.writeSync(0x10_0000n, new Uint8Array([1]));
    // Run processes until one gets the CPU ASID the DMA domain holds (the ASID spaces are independent).
    let proc = m.machine.createProcess({ arch: 'arm64' });
    for (let i = 0; i < 1000; i++) {
      proc.write(proc.mmap(0x1000, RW, ANON), new Uint8Array([9]));
      if (proc.mm.asid === rid.asid) break;
      proc = m.machine.createProcess({ arch: 'arm64' });
    }
    const cpuAsid = proc.mm.asid;
    expect(rid.asid).toBe(cpuAsid);
    m.cmds();
    const sva = iommuSvaBindDevice(pdev, proc.mm);
    live.push(sva);
    const d = sva.domain as ArmSmmuSvaDomain;
    expect(d.asid).toBe(cpuAsid);
    expect(rid.asid).not.toBe(cpuAsid);
    const cd0 = cdWords(m, pdev, 0)[0] ?? 0n;
    expect(Number(cd0 >> 48n)).toBe(rid.asid);
    const cmds = m.cmds();
    // CD 0: ASID-only change is hitless (one CFGI_CD + SYNC), then TLBI of the old ASID.
    expect(cmds.slice(0, 4)).toEqual(['CFGI_CD', 'CMD_SYNC', 'TLBI_NH_ASID', 'CMD_SYNC']);
    expect(m.model.cmdq.log.find((c) => c.op === 'TLBI_NH_ASID')).toMatchObject({ asid: cpuAsid });
    // The SVA CD: the CPU ASID, ASET = 0 (broadcast TLB maintenance applies).
    const sdw0 = cdWords(m, pdev, iommuSvaGetPasid(sva))[0] ?? 0n;
    expect(Number(sdw0 >> 48n)).toBe(cpuAsid);
    expect((sdw0 >> 47n) & 1n).toBe(0n);
    // The DMA domain still works under its new ASID.
    ep.writeSync(0x10_0000n, new Uint8Array([2]));
    expect(m.memory.readBytes(pa, 1)[0]).toBe(2);
  });
});
