// Random sequences of IOAS_MAP / IOAS_COPY / IOAS_UNMAP / device attach (MOCK_DOMAIN) / detach
// (DESTROY of the selftest device) / manual HWPT_ALLOC and DESTROY / access pin and unpin, all
// through the ioctl uAPI of a selftest iommufd, against a page-granular model of one IOAS.
//
// After every step:
// - every HWPT translates every mapped IOVA to the physical page behind the model's user address
//   (MD_CHECK_MAP), and no IOVA of the checked window outside the model's areas;
// - every user page's pin count (MD_CHECK_REFS and the page metadata) is one per distinct pages
//   object (one IOAS_MAP call) that needs it pinned: a domain exists and an area covers the page, or
//   an access pin covers it;
// - the RLIMIT_MEMLOCK charge (user accounting) and the mm's pinned_vm equal the pinned pages.
// At the end the file is closed: every pin, charge and object is gone.

import { ErrnoError } from '@iommu-ts/base';
import { errnoOf } from '@iommu-ts/base/testing';
import { IommuSubsystem } from '@iommu-ts/iommu-core';
import {
  CAP,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PhysicalMemory,
  PROT_READ,
  PROT_WRITE,
  Process,
} from '@iommu-ts/mm';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pinsAt, userPa } from './io-pagetable.test-helpers.js';
import { Iommufd } from './iommufd.js';
import {
  IOMMU_TEST_CMD,
  IOMMU_TEST_OP_ACCESS_PAGES,
  IOMMU_TEST_OP_CREATE_ACCESS,
  IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
  IOMMU_TEST_OP_MD_CHECK_MAP,
  IOMMU_TEST_OP_MD_CHECK_REFS,
  IOMMU_TEST_OP_MOCK_DOMAIN,
  MOCK_APERTURE_START,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  MOCK_FLAGS_ACCESS_WRITE,
} from './selftest-uapi.js';
import {
  IOMMU_DESTROY,
  IOMMU_HWPT_ALLOC,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
} from './uapi.js';

const P = PAGE_SIZE;
const BP = BigInt(P);
const USER_PAGES = 16;
const WINDOW = 24; // IOVA pages from MOCK_APERTURE_START checked after every step
const TEST_CMD_SIZE = 72;

interface MArea {
  slot: number; // first IOVA page (relative to MOCK_APERTURE_START)
  n: number;
  pagesId: number; // which IOAS_MAP call the pages come from
  user0: number; // user page behind the area's first page
}

interface MPin {
  id: number;
  slot: number;
  n: number;
}

type Op =
  | { t: 'map'; slot: number; user0: number; n: number }
  | { t: 'copy'; src: number; dst: number; n: number }
  | { t: 'unmap'; slot: number; n: number }
  | { t: 'attach' }
  | { t: 'detach'; k: number }
  | { t: 'hwptAlloc' }
  | { t: 'hwptDestroy'; k: number }
  | { t: 'pin'; slot: number; n: number }
  | { t: 'unpin'; k: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('map' as const),
      slot: fc.nat(WINDOW - 1),
      user0: fc.nat(USER_PAGES - 1),
      n: fc.integer({ min: 1, max: 4 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('copy' as const),
      src: fc.nat(WINDOW - 1),
      dst: fc.nat(WINDOW - 1),
      n: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('unmap' as const),
      slot: fc.nat(WINDOW - 1),
      n: fc.integer({ min: 1, max: 6 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('attach' as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('detach' as const), k: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('hwptAlloc' as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('hwptDestroy' as const), k: fc.nat(3) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('pin' as const),
      slot: fc.nat(WINDOW - 1),
      n: fc.integer({ min: 1, max: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('unpin' as const), k: fc.nat(3) }) },
);

function iovaOf(slot: number): bigint {
  return MOCK_APERTURE_START + BigInt(slot) * BP;
}

class Harness {
  readonly ram = new PhysicalMemory({ size: 256 * 2 ** 20 });
  readonly iommu = new IommuSubsystem();
  // No CAP_IPC_LOCK: pins are charged to the user (locked_vm) as well as pinned_vm.
  readonly proc = new Process(this.ram, { uid: 1000, capabilities: [], rlimitMemlock: 2 ** 30 });
  readonly file = Iommufd.open({ iommu: this.iommu, process: this.proc, selftest: true });
  readonly buf: bigint;
  readonly ioasId: number;
  readonly accessFd: number;
  areas: MArea[] = [];
  pins: MPin[] = [];
  stdevs: { stdevId: number; hwptId: number; idevId: number }[] = [];
  manualHwpts: number[] = [];
  private nextPagesId = 1;

  constructor() {
    expect(this.proc.capable(CAP.IPC_LOCK)).toBe(false);
    this.buf = this.proc.mmap(BigInt(USER_PAGES * P), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    for (let i = 0; i < USER_PAGES; i++) this.proc.write(this.buf + BigInt(i * P), new Uint8Array([i + 1]));
    const alloc = { size: 12, flags: 0, out_ioas_id: 0 };
    this.file.ioctl(IOMMU_IOAS_ALLOC, alloc);
    this.ioasId = alloc.out_ioas_id;
    const ca = {
      size: TEST_CMD_SIZE,
      op: IOMMU_TEST_OP_CREATE_ACCESS,
      id: this.ioasId,
      create_access: { out_access_fd: 0, flags: MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES },
    };
    this.file.ioctl(IOMMU_TEST_CMD, ca);
    this.accessFd = ca.create_access.out_access_fd;
  }

  get hwpts(): number[] {
    return [...new Set(this.stdevs.map((s) => s.hwptId)), ...this.manualHwpts];
  }

  private areaAt(slot: number): MArea | undefined {
    return this.areas.find((a) => slot >= a.slot && slot < a.slot + a.n);
  }

  run(op: Op): void {
    switch (op.t) {
      case 'map': {
        const n = Math.min(op.n, USER_PAGES - op.user0);
        const overlap = this.areas.some((a) => a.slot < op.slot + n && op.slot < a.slot + a.n);
        const cmd = {
          size: 40,
          flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
          ioas_id: this.ioasId,
          user_va: this.buf + BigInt(op.user0 * P),
          length: BigInt(n * P),
          iova: iovaOf(op.slot),
        };
        const e = errnoOf(() => this.file.ioctl(IOMMU_IOAS_MAP, cmd));
        expect(e).toBe(overlap ? 'EEXIST' : undefined);
        if (!overlap) this.areas.push({ slot: op.slot, n, pagesId: this.nextPagesId++, user0: op.user0 });
        return;
      }
      case 'copy': {
        // The source must be covered by back-to-back areas; every piece becomes a new area.
        const pieces: MArea[] = [];
        let ok = true;
        for (let s = op.src; s < op.src + op.n; ) {
          const a = this.areaAt(s);
          if (a === undefined) {
            ok = false;
            break;
          }
          const end = Math.min(a.slot + a.n, op.src + op.n);
          pieces.push({
            slot: op.dst + (s - op.src),
            n: end - s,
            pagesId: a.pagesId,
            user0: a.user0 + (s - a.slot),
          });
          s = end;
        }
        const overlap = this.areas.some((a) => a.slot < op.dst + op.n && op.dst < a.slot + a.n);
        const cmd = {
          size: 40,
          flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
          dst_ioas_id: this.ioasId,
          src_ioas_id: this.ioasId,
          length: BigInt(op.n * P),
          dst_iova: iovaOf(op.dst),
          src_iova: iovaOf(op.src),
        };
        const e = errnoOf(() => this.file.ioctl(IOMMU_IOAS_COPY, cmd));
        expect(e).toBe(!ok ? 'ENOENT' : overlap ? 'EEXIST' : undefined);
        if (ok && !overlap) this.areas.push(...pieces);
        return;
      }
      case 'unmap': {
        // Areas in ascending order; fully contained ones go, the first cut one stops with ENOENT.
        const first = op.slot;
        const last = op.slot + op.n - 1;
        const hit = this.areas
          .filter((a) => a.slot <= last && a.slot + a.n - 1 >= first)
          .sort((a, b) => a.slot - b.slot);
        let removed = 0;
        let errno: string | undefined;
        for (const a of hit) {
          if (a.slot < first || a.slot + a.n - 1 > last) {
            errno = 'ENOENT';
            break;
          }
          this.dropPinsIn(a);
          this.areas.splice(this.areas.indexOf(a), 1);
          removed += a.n;
        }
        if (errno === undefined && removed === 0) errno = 'ENOENT';
        const cmd = { size: 24, ioas_id: this.ioasId, iova: iovaOf(op.slot), length: BigInt(op.n * P) };
        const e = errnoOf(() => this.file.ioctl(IOMMU_IOAS_UNMAP, cmd));
        expect(e).toBe(errno);
        if (errno === undefined) expect(cmd.length).toBe(BigInt(removed * P));
        return;
      }
      case 'attach': {
        if (this.stdevs.length >= 3) return;
        const cmd = {
          size: TEST_CMD_SIZE,
          op: IOMMU_TEST_OP_MOCK_DOMAIN,
          id: this.ioasId,
          mock_domain: { out_stdev_id: 0, out_hwpt_id: 0, out_idev_id: 0 },
        };
        this.file.ioctl(IOMMU_TEST_CMD, cmd);
        const { out_stdev_id: stdevId, out_hwpt_id: hwptId, out_idev_id: idevId } = cmd.mock_domain;
        // Devices of one IOAS share the automatic HWPT.
        const auto = this.stdevs[0]?.hwptId;
        if (auto !== undefined) expect(hwptId).toBe(auto);
        this.stdevs.push({ stdevId, hwptId, idevId });
        return;
      }
      case 'detach': {
        const s = this.stdevs[op.k];
        if (s === undefined) return;
        this.file.ioctl(IOMMU_DESTROY, { size: 8, id: s.stdevId });
        this.stdevs.splice(op.k, 1);
        if (this.stdevs.length === 0)
          expect(errnoOf(() => this.file.ioctl(IOMMU_DESTROY, { size: 8, id: s.hwptId }))).toBe('ENOENT');
        return;
      }
      case 'hwptAlloc': {
        const dev = this.stdevs[0];
        if (dev === undefined || this.manualHwpts.length >= 2) return;
        const cmd = { size: 48, flags: 0, dev_id: dev.idevId, pt_id: this.ioasId, out_hwpt_id: 0 };
        this.file.ioctl(IOMMU_HWPT_ALLOC, cmd);
        this.manualHwpts.push(cmd.out_hwpt_id);
        return;
      }
      case 'hwptDestroy': {
        const id = this.manualHwpts[op.k];
        if (id === undefined) return;
        this.file.ioctl(IOMMU_DESTROY, { size: 8, id });
        this.manualHwpts.splice(op.k, 1);
        return;
      }
      case 'pin': {
        const covered: boolean[] = [];
        for (let s = op.slot; s < op.slot + op.n; s++) covered.push(this.areaAt(s) !== undefined);
        const ok = covered.every(Boolean);
        const cmd = {
          size: TEST_CMD_SIZE,
          op: IOMMU_TEST_OP_ACCESS_PAGES,
          id: this.accessFd,
          access_pages: {
            flags: MOCK_FLAGS_ACCESS_WRITE,
            out_access_pages_id: 0,
            iova: iovaOf(op.slot),
            length: BigInt(op.n * P),
            uptr: 0n,
          },
        };
        const e = errnoOf(() => this.file.ioctl(IOMMU_TEST_CMD, cmd));
        expect(e).toBe(ok ? undefined : 'ENOENT');
        if (ok) this.pins.push({ id: cmd.access_pages.out_access_pages_id, slot: op.slot, n: op.n });
        return;
      }
      case 'unpin': {
        const pin = this.pins[op.k];
        if (pin === undefined) return;
        this.file.ioctl(IOMMU_TEST_CMD, {
          size: TEST_CMD_SIZE,
          op: IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
          id: this.accessFd,
          destroy_access_pages: { access_pages_id: pin.id },
        });
        this.pins.splice(op.k, 1);
        return;
      }
    }
  }

  /** The selftest access's unmap callback drops every pin record touching an unmapped area. */
  private dropPinsIn(a: MArea): void {
    this.pins = this.pins.filter((p) => !(p.slot <= a.slot + a.n - 1 && p.slot + p.n - 1 >= a.slot));
  }

  /** Pinned (pages object, page index) pairs, keyed by user page. */
  expectedPins(): Map<number, number> {
    const pinned = new Set<string>();
    const domains = this.hwpts.length > 0;
    for (const a of this.areas) {
      for (let i = 0; i < a.n; i++) {
        const user = a.user0 + i;
        const byPin = this.pins.some((p) => a.slot + i >= p.slot && a.slot + i < p.slot + p.n);
        if (domains || byPin) pinned.add(`${a.pagesId}:${user}`);
      }
    }
    const perUser = new Map<number, number>();
    for (const key of pinned) {
      const user = Number(key.split(':')[1]);
      perUser.set(user, (perUser.get(user) ?? 0) + 1);
    }
    return perUser;
  }

  check(): void {
    for (const hwpt of this.hwpts) {
      for (let s = 0; s < WINDOW; s++) {
        const a = this.areaAt(s);
        const cmd = {
          size: TEST_CMD_SIZE,
          op: IOMMU_TEST_OP_MD_CHECK_MAP,
          id: hwpt,
          check_map: {
            iova: iovaOf(s),
            length: BP,
            uptr: this.buf + BigInt((a === undefined ? 0 : a.user0 + (s - a.slot)) * P),
          },
        };
        expect(
          errnoOf(() => this.file.ioctl(IOMMU_TEST_CMD, cmd)),
          `hwpt ${hwpt} slot ${s}`,
        ).toBe(a === undefined ? 'EINVAL' : undefined);
      }
    }
    const want = this.expectedPins();
    let total = 0;
    for (let u = 0; u < USER_PAGES; u++) {
      const refs = want.get(u) ?? 0;
      total += refs;
      expect(pinsAt(this.proc, this.buf + BigInt(u * P)), `user page ${u}`).toBe(refs);
      this.file.ioctl(IOMMU_TEST_CMD, {
        size: TEST_CMD_SIZE,
        op: IOMMU_TEST_OP_MD_CHECK_REFS,
        check_refs: { length: BP, uptr: this.buf + BigInt(u * P), refs },
      });
    }
    expect(this.proc.mm.pinnedVm).toBe(total);
    expect(this.proc.machine.userLockedVm(this.proc.uid)).toBe(total);
  }

  closeAndCheck(): void {
    this.proc.close(this.accessFd);
    this.file.close();
    for (let u = 0; u < USER_PAGES; u++) expect(pinsAt(this.proc, this.buf + BigInt(u * P))).toBe(0);
    expect(this.proc.mm.pinnedVm).toBe(0);
    expect(this.proc.machine.userLockedVm(this.proc.uid)).toBe(0);
    expect(this.file.ctx.isReleased).toBe(true);
    expect(this.file.ctx.objectCount).toBe(0);
    expect(userPa(this.proc, this.buf)).not.toBeNull();
  }
}

describe('iommufd uAPI against an IOAS model', () => {
  it('keeps domains, pins and accounting equal to the model after every step', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 30 }), (ops) => {
        const h = new Harness();
        h.check();
        for (const op of ops) {
          h.run(op);
          h.check();
        }
        h.closeAndCheck();
      }),
      { numRuns: 60 },
    );
  }, 60_000);

  it('rejects a bad access pin without changing a pin count', () => {
    const h = new Harness();
    h.run({ t: 'attach' });
    h.run({ t: 'map', slot: 2, user0: 0, n: 2 });
    h.check();
    const e = errnoOf(() =>
      h.file.ioctl(IOMMU_TEST_CMD, {
        size: TEST_CMD_SIZE,
        op: IOMMU_TEST_OP_ACCESS_PAGES,
        id: h.accessFd,
        access_pages: { flags: 0, out_access_pages_id: 0, iova: iovaOf(3), length: 2n * BP, uptr: 0n },
      }),
    );
    expect(e).toBe('ENOENT');
    h.check();
    expect(ErrnoError).toBeDefined();
    h.closeAndCheck();
  });
});
