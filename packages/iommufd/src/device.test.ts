import { errnoOf } from '@iommu-ts/base/testing';
import { type Device, IOMMU_READ, IOMMU_WRITE } from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import {
  type IommufdDevice,
  iommufdDeviceAttach,
  iommufdDeviceBind,
  iommufdDeviceDetach,
  iommufdDeviceReplace,
  iommufdDeviceUnbind,
} from './device.js';
import { type IommufdHwptPaging, iommufdHwptPagingAlloc } from './hw-pagetable.js';
import {
  addDevice,
  BP,
  type Env,
  hwTranslate,
  makeEnv,
  pinsAt,
  snapshot,
  userBuffer,
  userPa,
} from './io-pagetable.test-helpers.js';
import { type IommufdIoas, iommufdIoasAlloc } from './ioas.js';
import { Iommufd } from './iommufd.js';
import { IommufdObjectType } from './main.js';
import { IOMMU_DESTROY } from './uapi.js';

const U64_MAX = 2n ** 64n - 1n;
const PROT_RW = IOMMU_READ | IOMMU_WRITE;
const MSI_START = 0xfee0_0000n;
const MSI_LAST = 0xfeef_ffffn;

interface Setup {
  env: Env;
  file: Iommufd;
  ioas: IommufdIoas;
  va: bigint;
  pages: number;
  base: bigint;
}

/** A test-IOMMU machine, an open iommufd, an IOAS with 8 pages mapped at 1 MiB. */
function setup(pages = 8): Setup {
  const env = makeEnv();
  const file = Iommufd.open({ iommu: env.sub, process: env.proc });
  const ioas = iommufdIoasAlloc(file.ctx);
  const va = userBuffer(env.proc, pages);
  const base = 0x10_0000n;
  ioas.iopt.mapUserPages(env.proc, base, va, BigInt(pages) * BP, PROT_RW, 0);
  return { env, file, ioas, va, pages, base };
}

function sidOf(env: Env, dev: Device): number {
  return env.driver.streamIds(dev)[0] as number;
}

/** Everything a failing device call must leave alone. */
function state(s: Setup, ...ioases: IommufdIoas[]): unknown {
  const ctx = s.file.ctx;
  return {
    objects: ctx.listObjects().map((o) => `${o.id}:${o.type}:${o.users}`),
    ioas: [s.ioas, ...ioases].map((i) => ({
      hwpts: i.hwptList.length,
      iopt: snapshot(i.iopt, s.env.proc, [{ va: s.va, pages: s.pages }]),
      ranges: i.iopt.iovaRanges(),
    })),
    groups: s.file.ctx
      .listObjects()
      .filter((o) => o.type === IommufdObjectType.DEVICE)
      .map((o) => (o as IommufdDevice).dev.iommuGroup?.domain?.type),
  };
}

function destroy(file: Iommufd, id: number): string | undefined {
  return errnoOf(() => file.ioctl(IOMMU_DESTROY, { size: 8, id }));
}

describe('iommufdDeviceBind', () => {
  it('binds: driver reference, DMA ownership, blocking domain, context reference', () => {
    const s = setup();
    const dev = addDevice(s.env);
    const group = dev.iommuGroup!;
    expect(group.domain).toBe(group.defaultDomain);
    const idev = iommufdDeviceBind(s.file.ctx, dev);
    expect(idev.type).toBe(IommufdObjectType.DEVICE);
    expect(idev.users).toBe(2);
    expect(s.file.ctx.peekObject(idev.id)).toBe(idev);
    expect(group.owner).toBe(s.file.ctx);
    expect(group.domain).toBe(group.blockingDomain);
    expect(destroy(s.file, idev.id)).toBe('EBUSY');
    // The binding keeps the context alive past the fd's close.
    s.file.close();
    expect(s.file.ctx.isReleased).toBe(false);
    iommufdDeviceUnbind(idev);
    expect(s.file.ctx.isReleased).toBe(true);
    expect(group.owner).toBeNull();
    expect(group.domain).toBe(group.defaultDomain);
  });

  it('mock devices take no context reference', () => {
    const s = setup();
    const idev = iommufdDeviceBind(s.file.ctx, addDevice(s.env), { mock: true });
    s.file.close();
    // Nothing holds the context: it is released, the device object stays for its driver.
    expect(s.file.ctx.isReleased).toBe(true);
    expect(idev.users).toBe(2);
    iommufdDeviceUnbind(idev);
    expect(idev.dev.iommuGroup!.owner).toBeNull();
  });

  it('EINVAL without an IOMMU, EPERM against a DMA-API driver or another context, EBUSY against a kernel domain', () => {
    const s = setup();
    const ctx = s.file.ctx;
    const noIommu = s.env.host.rootBus.addDevice({ devfn: 0x1e << 3 });
    expect(errnoOf(() => iommufdDeviceBind(ctx, noIommu))).toBe('EINVAL');

    const dmaApi = addDevice(s.env);
    s.env.sub.iommuDeviceUseDefaultDomain(dmaApi);
    const before = { n: ctx.objectCount, cnt: dmaApi.iommuGroup!.ownerCnt, dom: dmaApi.iommuGroup!.domain };
    expect(errnoOf(() => iommufdDeviceBind(ctx, dmaApi))).toBe('EPERM');
    expect({ n: ctx.objectCount, cnt: dmaApi.iommuGroup!.ownerCnt, dom: dmaApi.iommuGroup!.domain }).toEqual(
      before,
    );

    const kernelDomain = addDevice(s.env);
    const d = s.env.sub.iommuPagingDomainAlloc(kernelDomain);
    s.env.sub.iommuAttachDevice(d, kernelDomain);
    expect(errnoOf(() => iommufdDeviceBind(ctx, kernelDomain))).toBe('EBUSY');
    expect(kernelDomain.iommuGroup!.domain).toBe(d);

    const shared = addDevice(s.env);
    const other = Iommufd.open({ iommu: s.env.sub, process: s.env.proc });
    const idev = iommufdDeviceBind(other.ctx, shared);
    expect(errnoOf(() => iommufdDeviceBind(ctx, shared))).toBe('EPERM');
    expect(ctx.objectCount).toBe(before.n);
    iommufdDeviceUnbind(idev);
  });
});

describe('attach to an IOAS (automatic HWPTs)', () => {
  it('creates an automatic HWPT that translates every mapped IOVA, and references', () => {
    const s = setup();
    const dev = addDevice(s.env);
    const idev = iommufdDeviceBind(s.file.ctx, dev);
    const hwptId = iommufdDeviceAttach(idev, s.ioas.id);
    const hwpt = s.file.ctx.getObject(hwptId, IommufdObjectType.HWPT_PAGING) as IommufdHwptPaging;
    expect(hwpt.auto).toBe(true);
    expect(hwpt.ioas).toBe(s.ioas);
    expect(s.ioas.hwptList).toEqual([hwpt]);
    expect(hwpt.users).toBe(2);
    expect(s.ioas.users).toBe(2);
    expect(idev.users).toBe(3);
    expect(idev.hwpt).toBe(hwpt);
    expect(dev.iommuGroup!.domain).toBe(hwpt.domain);
    const sid = sidOf(s.env, dev);
    for (let i = 0; i < s.pages; i++) {
      const iova = s.base + BigInt(i) * BP + 0x10n;
      const pa = BigInt(userPa(s.env.proc, s.va + BigInt(i) * BP + 0x10n)!);
      expect(hwTranslate(s.env, sid, iova)).toBe(pa);
      expect(s.env.sub.iommuIovaToPhys(hwpt.domain!, iova)).toBe(pa);
      expect(pinsAt(s.env.proc, s.va + BigInt(i) * BP)).toBe(1);
    }
    expect(hwTranslate(s.env, sid, s.base + BigInt(s.pages) * BP)).not.toBeTypeOf('bigint');
    // DESTROY of the IOAS and of the attached HWPT is refused.
    expect(destroy(s.file, s.ioas.id)).toBe('EBUSY');
    expect(destroy(s.file, hwptId)).toBe('EBUSY');
  });

  it('a second device reuses the automatic HWPT; an incompatible one gets a new HWPT', () => {
    const s = setup();
    const a = iommufdDeviceBind(s.file.ctx, addDevice(s.env));
    const b = iommufdDeviceBind(s.file.ctx, addDevice(s.env));
    const c = iommufdDeviceBind(s.file.ctx, addDevice(s.env));
    const id = iommufdDeviceAttach(a, s.ioas.id);
    expect(iommufdDeviceAttach(b, s.ioas.id)).toBe(id);
    const hwpt = s.file.ctx.getObject(id, IommufdObjectType.HWPT_PAGING) as IommufdHwptPaging;
    expect(hwpt.users).toBe(3);
    expect(s.ioas.hwptList).toHaveLength(1);
    // EINVAL from the candidate means "incompatible": a new automatic HWPT is made for c.
    s.env.driver.failNext.attach.push('EINVAL');
    const id2 = iommufdDeviceAttach(c, s.ioas.id);
    expect(id2).not.toBe(id);
    expect(s.ioas.hwptList).toHaveLength(2);
    expect(s.ioas.users).toBe(3);
    const sid = sidOf(s.env, c.dev);
    expect(hwTranslate(s.env, sid, s.base)).toBe(BigInt(userPa(s.env.proc, s.va)!));
    // The pages are pinned once for both domains.
    expect(pinsAt(s.env.proc, s.va)).toBe(1);
  });

  it('other attach errors propagate and change nothing', () => {
    const s = setup();
    const a = iommufdDeviceBind(s.file.ctx, addDevice(s.env));
    const b = iommufdDeviceBind(s.file.ctx, addDevice(s.env));
    iommufdDeviceAttach(a, s.ioas.id);
    const before = state(s);
    s.env.driver.failNext.attach.push('ENOMEM');
    expect(errnoOf(() => iommufdDeviceAttach(b, s.ioas.id))).toBe('ENOMEM');
    expect(state(s)).toEqual(before);
    expect(b.hwpt).toBeNull();
    expect(b.users).toBe(2);
    // A failing new automatic HWPT leaves nothing behind either (its domain is freed).
    const s2 = setup();
    const d = iommufdDeviceBind(s2.file.ctx, addDevice(s2.env));
    const before2 = state(s2);
    s2.env.driver.failNext.attach.push('ENOSPC');
    expect(errnoOf(() => iommufdDeviceAttach(d, s2.ioas.id))).toBe('ENOSPC');
    expect(state(s2)).toEqual(before2);
    expect(s2.env.driver.calls.filter((c) => c.op === 'domain_free')).toHaveLength(1);
  });

  it('pt_id: absent → ENOENT, wrong type → EINVAL, already attached → EINVAL', () => {
    const s = setup();
    const a = iommufdDeviceBind(s.file.ctx, addDevice(s.env));
    expect(errnoOf(() => iommufdDeviceAttach(a, 99))).toBe('ENOENT');
    expect(errnoOf(() => iommufdDeviceAttach(a, a.id))).toBe('EINVAL');
    iommufdDeviceAttach(a, s.ioas.id);
    const before = state(s);
    expect(errnoOf(() => iommufdDeviceAttach(a, s.ioas.id))).toBe('EINVAL');
    expect(state(s)).toEqual(before);
  });

  it('detach destroys the automatic HWPT with its last device and unblocks DESTROY', () => {
    const s = setup();
    const a = iommufdDeviceBind(s.file.ctx, addDevice(s.env));
    const b = iommufdDeviceBind(s.file.ctx, addDevice(s.env));
    const id = iommufdDeviceAttach(a, s.ioas.id);
    iommufdDeviceAttach(b, s.ioas.id);
    iommufdDeviceDetach(a);
    expect(s.file.ctx.peekObject(id)).toBeDefined();
    expect(a.users).toBe(2);
    expect(a.dev.iommuGroup!.domain).toBe(a.dev.iommuGroup!.blockingDomain);
    iommufdDeviceDetach(b);
    expect(s.file.ctx.peekObject(id)).toBeUndefined();
    expect(s.ioas.hwptList).toHaveLength(0);
    expect(s.ioas.users).toBe(1);
    expect(s.ioas.iopt.domains).toHaveLength(0);
    expect(s.env.driver.calls.filter((c) => c.op === 'domain_free')).toHaveLength(1);
    // Pins are still held by the IOAS's area only through pages (no domain): unpinned.
    expect(pinsAt(s.env.proc, s.va)).toBe(0);
    expect(destroy(s.file, s.ioas.id)).toBeUndefined();
  });

  it('unbind of an attached device detaches first', () => {
    const s = setup();
    const a = iommufdDeviceBind(s.file.ctx, addDevice(s.env));
    const id = iommufdDeviceAttach(a, s.ioas.id);
    iommufdDeviceUnbind(a);
    expect(s.file.ctx.peekObject(id)).toBeUndefined();
    expect(s.file.ctx.peekObject(a.id)).toBeUndefined();
    expect(s.ioas.users).toBe(1);
    expect(a.dev.iommuGroup!.owner).toBeNull();
  });
});

describe('reserved regions and IOVA ranges', () => {
  it('attach narrows IOVA_RANGES by the aperture and the MSI window; detach widens them', () => {
    const s = setup();
    const a = iommufdDeviceBind(s.file.ctx, addDevice(s.env));
    expect(s.ioas.iopt.iovaRanges()).toEqual([{ start: 0n, last: U64_MAX }]);
    iommufdDeviceAttach(a, s.ioas.id);
    expect(s.ioas.iopt.iovaRanges()).toEqual([
      { start: 0n, last: MSI_START - 1n },
      { start: MSI_LAST + 1n, last: (1n << 48n) - 1n },
    ]);
    iommufdDeviceDetach(a);
    expect(s.ioas.iopt.iovaRanges()).toEqual([{ start: 0n, last: U64_MAX }]);
  });

  it('EADDRINUSE when a reserved region meets an area or an allowed range; nothing changes', () => {
    const s = setup();
    const a = iommufdDeviceBind(s.file.ctx, addDevice(s.env));
    s.ioas.iopt.mapUserPages(s.env.proc, MSI_START, s.va, BP, PROT_RW, 0);
    const before = state(s);
    expect(errnoOf(() => iommufdDeviceAttach(a, s.ioas.id))).toBe('EADDRINUSE');
    expect(state(s)).toEqual(before);
    s.ioas.iopt.unmapIova(MSI_START, BP);
    s.ioas.iopt.setAllowIova([{ start: 0xfe00_0000n, last: 0xffff_ffffn }]);
    const before2 = state(s);
    expect(errnoOf(() => iommufdDeviceAttach(a, s.ioas.id))).toBe('EADDRINUSE');
    expect(state(s)).toEqual(before2);
    expect(a.dev.iommuGroup!.domain).toBe(a.dev.iommuGroup!.blockingDomain);
  });

  it('each device of a group brings its own regions; a group attached elsewhere is EINVAL', () => {
    const s = setup();
    // Two functions of one slot without ACS share an IOMMU group.
    const f0 = s.env.host.rootBus.addDevice({ devfn: 0x1c << 3, multifunction: true });
    const f1 = s.env.host.rootBus.addDevice({ devfn: (0x1c << 3) | 1, multifunction: true });
    expect(s.env.sub.addDevice(f0)).toBeNull();
    expect(s.env.sub.addDevice(f1)).toBeNull();
    expect(f0.iommuGroup === f1.iommuGroup).toBe(true);
    const a = iommufdDeviceBind(s.file.ctx, f0);
    const b = iommufdDeviceBind(s.file.ctx, f1);
    expect(a.igroup === b.igroup).toBe(true);
    const other = iommufdIoasAlloc(s.file.ctx);
    const id = iommufdDeviceAttach(a, s.ioas.id);
    const before = state(s, other);
    expect(errnoOf(() => iommufdDeviceAttach(b, other.id))).toBe('EINVAL');
    expect(state(s, other)).toEqual(before);
    const attaches = s.env.driver.calls.filter((c) => c.op === 'attach_dev').length;
    expect(iommufdDeviceAttach(b, s.ioas.id)).toBe(id);
    // The group was attached by the first device only.
    expect(s.env.driver.calls.filter((c) => c.op === 'attach_dev').length).toBe(attaches);
    iommufdDeviceDetach(a);
    expect(b.hwpt?.id).toBe(id);
    expect(f0.iommuGroup!.domain).toBe(b.hwpt!.domain);
    iommufdDeviceDetach(b);
    expect(s.file.ctx.peekObject(id)).toBeUndefined();
  });
});

describe('iommufdDeviceReplace', () => {
  it('moves the device to another IOAS, destroying the old automatic HWPT', () => {
    const s = setup();
    const a = iommufdDeviceBind(s.file.ctx, addDevice(s.env));
    expect(errnoOf(() => iommufdDeviceReplace(a, s.ioas.id))).toBe('EINVAL');
    const id1 = iommufdDeviceAttach(a, s.ioas.id);
    expect(iommufdDeviceReplace(a, s.ioas.id)).toBe(id1);
    expect(iommufdDeviceReplace(a, id1)).toBe(id1);
    const ioas2 = iommufdIoasAlloc(s.file.ctx);
    const va2 = userBuffer(s.env.proc, 2);
    ioas2.iopt.mapUserPages(s.env.proc, 0x20_0000n, va2, 2n * BP, PROT_RW, 0);
    const id2 = iommufdDeviceReplace(a, ioas2.id);
    expect(id2).not.toBe(id1);
    expect(s.file.ctx.peekObject(id1)).toBeUndefined();
    expect(s.ioas.users).toBe(1);
    expect(s.ioas.iopt.iovaRanges()).toEqual([{ start: 0n, last: U64_MAX }]);
    expect(ioas2.iopt.iovaRanges()).toHaveLength(2);
    expect(a.users).toBe(3);
    const sid = sidOf(s.env, a.dev);
    expect(hwTranslate(s.env, sid, 0x20_0000n)).toBe(BigInt(userPa(s.env.proc, va2)!));
    expect(hwTranslate(s.env, sid, s.base)).not.toBeTypeOf('bigint');
    expect(pinsAt(s.env.proc, s.va)).toBe(0);
  });

  it('to a manual HWPT and back; failures change nothing', () => {
    const s = setup();
    const ctx = s.file.ctx;
    const a = iommufdDeviceBind(ctx, addDevice(s.env));
    const id1 = iommufdDeviceAttach(a, s.ioas.id);
    const manual = iommufdHwptPagingAlloc(ctx, s.ioas, a, 0, null);
    ctx.objectFinalize(manual);
    expect(manual.auto).toBe(false);
    const before = state(s);
    s.env.driver.failNext.attach.push('ENOMEM');
    expect(errnoOf(() => iommufdDeviceReplace(a, manual.id))).toBe('ENOMEM');
    expect(state(s)).toEqual(before);
    expect(iommufdDeviceReplace(a, manual.id)).toBe(manual.id);
    expect(ctx.peekObject(id1)).toBeUndefined();
    expect(manual.users).toBe(2);
    // Automatic selection never picks a manual HWPT: back to the IOAS creates a new automatic one.
    const id3 = iommufdDeviceReplace(a, s.ioas.id);
    expect(id3).not.toBe(manual.id);
    expect(manual.users).toBe(1);
    expect(destroy(s.file, manual.id)).toBeUndefined();
    expect(s.ioas.hwptList).toHaveLength(1);
  });
});

describe('context release', () => {
  it('closing the fd after unbind destroys HWPTs and IOASes leaf first', () => {
    const s = setup();
    const a = iommufdDeviceBind(s.file.ctx, addDevice(s.env));
    iommufdDeviceAttach(a, s.ioas.id);
    const manual = iommufdHwptPagingAlloc(s.file.ctx, s.ioas, a, 0, null);
    s.file.ctx.objectFinalize(manual);
    s.file.close();
    iommufdDeviceUnbind(a);
    expect(s.file.ctx.isReleased).toBe(true);
    expect(s.file.ctx.objectCount).toBe(0);
    expect(pinsAt(s.env.proc, s.va)).toBe(0);
    expect(manual.domain).toBeNull();
  });
});
