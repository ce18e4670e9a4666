import { ERRNO } from '@iommu-ts/base';
import { describe, expect, it } from 'vitest';
import {
  PCI_PASID_CAP_EXEC,
  PCI_PASID_CAP_PRIV,
  pciAtsEnabled,
  pciAtsPageAligned,
  pciAtsQueueDepth,
  pciAtsStu,
  pciAtsSupported,
  pciDisableAts,
  pciDisablePasid,
  pciEnableAts,
  pciEnablePasid,
  pciMaxPasids,
  pciPasidFeatures,
  pciPrepareAts,
} from './ats.js';
import { PCI_ACS_RR, PCI_ACS_UF, PciHostBridge } from './pci.js';
import {
  PCI_PRI_STATUS_PASID,
  PCI_PRI_STATUS_STOPPED,
  pciDisablePri,
  pciEnablePri,
  pciPrgRespPasidRequired,
  pciPriEnabled,
  pciPriStatus,
  pciPriSupported,
  pciResetPri,
} from './pri.js';

describe('drivers/pci/ats.c: ATS', () => {
  it('enables ATS with an STU, once', () => {
    const bus = new PciHostBridge().rootBus;
    const pdev = bus.addDevice({ devfn: 0, ats: { invQueueDepth: 0, pageAlignedRequest: true } });
    expect(pciAtsSupported(pdev)).toBe(true);
    expect(pciEnableAts(pdev, 11)).toBe(-ERRNO.EINVAL);
    expect(pciPrepareAts(pdev, 16)).toBe(0);
    expect(pciAtsStu(pdev)).toBe(16);
    expect(pciAtsEnabled(pdev)).toBe(false);
    expect(pciEnableAts(pdev, 12)).toBe(0);
    expect(pciAtsStu(pdev)).toBe(12);
    expect(pciEnableAts(pdev, 12)).toBe(-ERRNO.EBUSY);
    expect(pciAtsQueueDepth(pdev)).toBe(32);
    expect(pciAtsPageAligned(pdev)).toBe(true);
    pciDisableAts(pdev);
    expect(pciAtsEnabled(pdev)).toBe(false);
    pciDisableAts(pdev); // warns in Linux, no effect
  });

  it('refuses functions without ATS or untrusted ones', () => {
    const bus = new PciHostBridge().rootBus;
    const none = bus.addDevice({ devfn: 0 });
    expect(pciEnableAts(none, 12)).toBe(-ERRNO.EINVAL);
    expect(pciAtsQueueDepth(none)).toBe(-ERRNO.EINVAL);
    const ext = bus.addDevice({ devfn: 8, ats: { invQueueDepth: 5 }, untrusted: true });
    expect(pciAtsSupported(ext)).toBe(false);
    expect(pciEnableAts(ext, 12)).toBe(-ERRNO.EINVAL);
    expect(pciAtsQueueDepth(ext)).toBe(5);
  });
});

describe('drivers/pci/ats.c: PASID', () => {
  it('enables supported features only, with ACS on the upstream path', () => {
    const hb = new PciHostBridge();
    const rp = hb.rootBus.addDevice({ devfn: 0x08, pcieType: 'root_port', acs: { cap: 0x1f, ctrl: 0 } });
    const bus1 = rp.addSecondaryBus(1);
    const pdev = bus1.addDevice({ devfn: 0, pasid: { maxPasidWidth: 20, exec: true } });
    expect(pciMaxPasids(pdev)).toBe(1 << 20);
    expect(pciPasidFeatures(pdev)).toBe(PCI_PASID_CAP_EXEC);
    expect(pciEnablePasid(pdev, 0)).toBe(-ERRNO.EINVAL); // the root port lacks RR/UF
    rp.acs = { cap: 0x1f, ctrl: PCI_ACS_RR | PCI_ACS_UF };
    expect(pciEnablePasid(pdev, PCI_PASID_CAP_PRIV)).toBe(-ERRNO.EINVAL);
    expect(pciEnablePasid(pdev, PCI_PASID_CAP_EXEC)).toBe(0);
    expect(pdev.pasidCap).toMatchObject({ enabled: true, enabledFeatures: PCI_PASID_CAP_EXEC });
    expect(pciEnablePasid(pdev, 0)).toBe(-ERRNO.EBUSY);
    pciDisablePasid(pdev);
    expect(pdev.pasidCap?.enabled).toBe(false);
    const none = bus1.addDevice({ devfn: 8 });
    expect(pciEnablePasid(none, 0)).toBe(-ERRNO.EINVAL);
    expect(pciMaxPasids(none)).toBe(-ERRNO.EINVAL);
  });
});

describe('drivers/pci/ats.c: PRI', () => {
  it('allocates min(reqs, capacity) and needs the function stopped', () => {
    const bus = new PciHostBridge().rootBus;
    const pdev = bus.addDevice({ devfn: 0, pri: { maxRequests: 64, prgResponsePasidRequired: true } });
    expect(pciPriSupported(pdev)).toBe(true);
    expect(pciPrgRespPasidRequired(pdev)).toBe(true);
    expect(pciPriStatus(pdev)).toBe(PCI_PRI_STATUS_STOPPED | PCI_PRI_STATUS_PASID);
    expect(pciEnablePri(pdev, 2048)).toBe(0);
    expect(pdev.priCap?.allocatedRequests).toBe(64);
    expect(pciPriEnabled(pdev)).toBe(true);
    expect(pciPriStatus(pdev) & PCI_PRI_STATUS_STOPPED).toBe(0);
    expect(pciEnablePri(pdev, 1)).toBe(-ERRNO.EBUSY);
    expect(pciResetPri(pdev)).toBe(-ERRNO.EBUSY);
    pciDisablePri(pdev);
    expect(pciResetPri(pdev)).toBe(0);
    const none = bus.addDevice({ devfn: 8 });
    expect(pciEnablePri(none, 1)).toBe(-ERRNO.EINVAL);
    expect(pciResetPri(none)).toBe(-ERRNO.EINVAL);
    expect(pciPriStatus(none)).toBe(0);
  });
});
