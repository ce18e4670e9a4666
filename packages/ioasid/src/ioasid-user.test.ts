import { _IO } from '@iommu-ts/base';
import { errnoOf } from '@iommu-ts/base/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IoasidsCgroupController } from './cgroup.js';
import { INVALID_IOASID, IoasidSetType, PCI_PASID_MAX } from './constants.js';
import { IoasidSubsystem } from './ioasid-subsystem.js';
import { IoasidUserDevice, type IoasidUserIoctlArg } from './ioasid-user.js';
import type { IoasidTask } from './task.js';
import {
  IOASID_API_VERSION,
  IOASID_BASE,
  IOASID_GET_API_VERSION,
  IOASID_GET_INFO,
  IOASID_REQUEST_ALLOC,
  IOASID_REQUEST_FREE,
  IOASID_TYPE,
  ioasidAllocRequestStruct,
  ioasidInfoStruct,
} from './uapi.js';

let nextPid = 1;
function task(): IoasidTask {
  const pid = nextPid++;
  return { pid, mm: { pid } };
}

function setup() {
  const sub = new IoasidSubsystem();
  const dev = new IoasidUserDevice(sub);
  const t = task();
  const f = dev.open(t);
  return { sub, dev, t, f };
}

const req = (min: number, max: number, argsz = 16, flags = 0) => ({ argsz, flags, range: { min, max } });
const rawReq = (min: number, max: number, argsz = 16, flags = 0) =>
  ioasidAllocRequestStruct.encode(req(min, max, argsz, flags));
const ids = (f: { forEachId(fn: (id: number) => void): void }) => {
  const out: number[] = [];
  f.forEachId((id) => out.push(id));
  return out;
};

describe('uAPI numbers and layouts', () => {
  it('has the exact ioctl numbers', () => {
    expect([IOASID_TYPE, IOASID_BASE, IOASID_API_VERSION]).toEqual([0x69, 100, 0]);
    expect(IOASID_GET_API_VERSION).toBe(0x6964);
    expect(IOASID_GET_INFO).toBe(0x6965);
    expect(IOASID_REQUEST_ALLOC).toBe(0x6966);
    expect(IOASID_REQUEST_FREE).toBe(0x6967);
    expect(_IO('i', 102)).toBe(IOASID_REQUEST_ALLOC);
  });

  it('lays out the structs as the C header', () => {
    expect(ioasidInfoStruct.size).toBe(12);
    expect([...ioasidInfoStruct.encode({ argsz: 12, flags: 0, ioasid_bits: 31 })]).toEqual([
      12, 0, 0, 0, 0, 0, 0, 0, 31, 0, 0, 0,
    ]);
    expect(ioasidAllocRequestStruct.size).toBe(16);
    expect([...rawReq(0x102, 0x7fffffff)]).toEqual([
      16, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0xff, 0xff, 0xff, 0x7f,
    ]);
    expect(ioasidAllocRequestStruct.offsetofend('range')).toBe(16);
  });
});

describe('open and close', () => {
  it('creates an MM-type set with quota 1000 owned by the mm', () => {
    const { sub, dev, t, f } = setup();
    expect(f.set.type).toBe(IoasidSetType.MM);
    expect(f.set.token).toBe(t.mm);
    expect(f.set.quota).toBe(1000);
    expect(f.task).toBe(t);
    expect(sub.findMmSet(t.mm!)).toBe(f.set);
    expect(sub.capacityAvail).toBe(PCI_PASID_MAX - 1000);
    expect(dev.fileOf(t)).toBe(f);
    expect(dev.fileOf({ pid: 99, mm: t.mm })).toBe(f); // another thread of the process
    expect(dev.fileOf(task())).toBeUndefined();
  });

  it('a second open by the same mm while open is EBUSY', () => {
    const { sub, dev, t, f } = setup();
    const avail = sub.capacityAvail;
    expect(errnoOf(() => dev.open(t))).toBe('EBUSY');
    expect(errnoOf(() => dev.open({ pid: 1234, mm: t.mm }))).toBe('EBUSY');
    expect(sub.capacityAvail).toBe(avail);
    f.close();
    const g = dev.open(t);
    expect(g.set).not.toBe(f.set);
    // different processes are independent
    expect(dev.open(task()).set).not.toBe(g.set);
  });

  it('propagates set-creation errors and refuses tasks without mm', () => {
    const sub = new IoasidSubsystem();
    const dev = new IoasidUserDevice(sub);
    const t = task();
    sub.setAlloc(t.mm, 10, IoasidSetType.MM);
    expect(errnoOf(() => dev.open(t))).toBe('EEXIST');
    expect(dev.fileOf(t)).toBeUndefined();
    expect(errnoOf(() => dev.open({ pid: 0, mm: null }))).toBe('EINVAL');
    const avail = sub.capacityAvail;
    sub.reserveCapacity(avail - 999);
    expect(errnoOf(() => dev.open(task()))).toBe('ENOSPC');
    expect(sub.capacityAvail).toBe(999);
  });

  it('close frees every IOASID and the set; double close is a no-op; later calls are EBADF', () => {
    const { sub, t, f } = setup();
    for (let i = 0; i < 5; i++) f.ioctl(IOASID_REQUEST_ALLOC, req(10, 100));
    expect(f.set.nrIoasids).toBe(5);
    const set = f.set;
    f.close();
    expect(f.closed).toBe(true);
    expect(set.nrIoasids).toBe(0);
    expect(set.registered).toBe(false);
    expect(sub.findMmSet(t.mm!)).toBeUndefined();
    expect(sub.alloc(sub.setAlloc(null, 10, IoasidSetType.NULL), 10, 10)).toBe(10); // ID 10 is free again
    f.close();
    for (const r of [IOASID_GET_API_VERSION, IOASID_GET_INFO, IOASID_REQUEST_ALLOC, IOASID_REQUEST_FREE, 0]) {
      expect(errnoOf(() => f.ioctl(r, req(1, 2)))).toBe('EBADF');
    }
    expect(errnoOf(() => f.forEachId(() => {}))).toBe('EBADF');
  });

  it('close with an IOASID referenced elsewhere leaves the set to die with its last IOASID', () => {
    const { sub, dev, t, f } = setup();
    const id = f.ioctl(IOASID_REQUEST_ALLOC, req(1, 100));
    f.ioctl(IOASID_REQUEST_ALLOC, req(1, 100));
    sub.get(f.set, id);
    const set = f.set;
    f.close();
    expect(set.nrIoasids).toBe(1);
    expect(set.freePending).toBe(true);
    expect(set.registered).toBe(true);
    // the set still exists for this mm, so a new open fails with EEXIST
    expect(errnoOf(() => dev.open(t))).toBe('EEXIST');
    sub.put(set, id);
    expect(set.registered).toBe(false);
    expect(dev.open(t).set.registered).toBe(true);
  });
});

describe('IOASID_GET_API_VERSION', () => {
  it('returns 0 and ignores the argument', () => {
    const { f } = setup();
    expect(f.ioctl(IOASID_GET_API_VERSION)).toBe(0);
    expect(f.ioctl(IOASID_GET_API_VERSION, 1234)).toBe(0);
  });
});

describe('IOASID_GET_INFO', () => {
  it('writes ioasid_bits = 31 back into a plain object', () => {
    const { f } = setup();
    const info = { argsz: 12, flags: 0, ioasid_bits: 0 };
    expect(f.ioctl(IOASID_GET_INFO, info)).toBe(0);
    expect(info).toEqual({ argsz: 12, flags: 0, ioasid_bits: 31 });
    // a larger argsz is fine and kept; ioasid_bits may be absent on input
    const big = { argsz: 64, flags: 0 } as { argsz: number; flags: number; ioasid_bits: number };
    expect(f.ioctl(IOASID_GET_INFO, big)).toBe(0);
    expect(big).toEqual({ argsz: 64, flags: 0, ioasid_bits: 31 });
  });

  it('writes the 12 bytes back in place in the raw form', () => {
    const { f } = setup();
    const raw = new Uint8Array(16).fill(0xee);
    raw.set(ioasidInfoStruct.encode({ argsz: 12, flags: 0, ioasid_bits: 7 }));
    expect(f.ioctl(IOASID_GET_INFO, raw)).toBe(0);
    expect([...raw]).toEqual([12, 0, 0, 0, 0, 0, 0, 0, 31, 0, 0, 0, 0xee, 0xee, 0xee, 0xee]);
  });

  it('argsz < 12 or flags != 0 is EINVAL and writes nothing', () => {
    const { f } = setup();
    for (const [argsz, flags] of [
      [11, 0],
      [0, 0],
      [12, 1],
      [12, 0x8000_0000],
    ] as const) {
      const obj = { argsz, flags, ioasid_bits: 5 };
      expect(errnoOf(() => f.ioctl(IOASID_GET_INFO, obj))).toBe('EINVAL');
      expect(obj).toEqual({ argsz, flags, ioasid_bits: 5 });
      const raw = ioasidInfoStruct.encode(obj);
      const copy = raw.slice();
      expect(errnoOf(() => f.ioctl(IOASID_GET_INFO, raw))).toBe('EINVAL');
      expect(raw).toEqual(copy);
    }
  });

  it('unreadable arguments are EFAULT', () => {
    const { f } = setup();
    const bad: unknown[] = [
      undefined,
      0,
      new Uint8Array(11),
      new Int32Array(3),
      { flags: 0 },
      { argsz: -1, flags: 0 },
      { argsz: 12, flags: 2 ** 32 },
      { argsz: '12', flags: 0 },
      { argsz: 12n, flags: 0 },
    ];
    for (const arg of bad)
      expect(errnoOf(() => f.ioctl(IOASID_GET_INFO, arg as IoasidUserIoctlArg))).toBe('EFAULT');
  });
});

describe('IOASID_REQUEST_ALLOC', () => {
  it('returns the lowest free IOASID in the range (plain and raw forms)', () => {
    const { f } = setup();
    expect(f.ioctl(IOASID_REQUEST_ALLOC, req(100, 200))).toBe(100);
    expect(f.ioctl(IOASID_REQUEST_ALLOC, rawReq(100, 200))).toBe(101);
    expect(f.ioctl(IOASID_REQUEST_ALLOC, req(0x7fff_ffff, 0x7fff_ffff))).toBe(0x7fff_ffff);
    expect(f.ioctl(IOASID_REQUEST_ALLOC, req(0, 0))).toBe(0);
    expect(f.ioctl(IOASID_REQUEST_ALLOC, req(5, 5, 200))).toBe(5); // larger argsz
    expect(ids(f)).toEqual([0, 5, 100, 101, 0x7fff_ffff]);
    // the struct is not written back
    const raw = rawReq(1, 9);
    const copy = raw.slice();
    f.ioctl(IOASID_REQUEST_ALLOC, raw);
    expect(raw).toEqual(copy);
  });

  it('rejects bad arguments with EINVAL and allocates nothing', () => {
    const { sub, f } = setup();
    const cases = [
      req(1, 10, 15),
      req(1, 10, 0),
      req(1, 10, 16, 1),
      req(11, 10),
      req(0x8000_0000, 0x8000_0000),
      req(1, 0x8000_0000),
      req(1, 0xffff_ffff),
    ];
    for (const c of cases) {
      expect(errnoOf(() => f.ioctl(IOASID_REQUEST_ALLOC, c))).toBe('EINVAL');
      expect(errnoOf(() => f.ioctl(IOASID_REQUEST_ALLOC, ioasidAllocRequestStruct.encode(c)))).toBe('EINVAL');
    }
    expect(f.set.nrIoasids).toBe(0);
    expect(sub.alloc(sub.setAlloc(null, 1, IoasidSetType.NULL), 1, 1)).toBe(1);
  });

  it('unreadable arguments are EFAULT', () => {
    const { f } = setup();
    const bad: unknown[] = [
      undefined,
      7,
      new Uint8Array(15),
      { argsz: 16, flags: 0 },
      { argsz: 16, flags: 0, range: { min: 1 } },
      { argsz: 16, flags: 0, range: { min: -1, max: 2 } },
      { argsz: 16, flags: 0, range: null },
    ];
    for (const arg of bad) {
      expect(errnoOf(() => f.ioctl(IOASID_REQUEST_ALLOC, arg as IoasidUserIoctlArg))).toBe('EFAULT');
    }
    expect(f.set.nrIoasids).toBe(0);
  });

  it('a full range is EINVAL', () => {
    const { f } = setup();
    expect(f.ioctl(IOASID_REQUEST_ALLOC, req(3, 4))).toBe(3);
    expect(f.ioctl(IOASID_REQUEST_ALLOC, req(3, 4))).toBe(4);
    expect(errnoOf(() => f.ioctl(IOASID_REQUEST_ALLOC, req(3, 4)))).toBe('EINVAL');
    expect(f.set.nrIoasids).toBe(2);
  });

  it('the quota of 1000 is exhausted with EINVAL', () => {
    const { sub, f } = setup();
    for (let i = 0; i < 1000; i++) expect(f.ioctl(IOASID_REQUEST_ALLOC, req(1, 0x7fff_ffff))).toBe(i + 1);
    expect(errnoOf(() => f.ioctl(IOASID_REQUEST_ALLOC, req(1, 0x7fff_ffff)))).toBe('EINVAL');
    expect(f.set.nrIoasids).toBe(1000);
    f.ioctl(IOASID_REQUEST_FREE, 500);
    expect(f.ioctl(IOASID_REQUEST_ALLOC, req(1, 0x7fff_ffff))).toBe(500);
    f.close();
    expect(sub.capacityAvail).toBe(PCI_PASID_MAX - 1000); // the RFC does not give a set's quota back
  });

  it('runs as the file task, so the ioasids cgroup of the opener is charged', () => {
    const { sub, t, f } = setup();
    const ctl = new IoasidsCgroupController(sub);
    const a = ctl.createCgroup(ctl.root, 'a');
    ctl.writeFile(a, 'ioasids.max', '1');
    ctl.attachProcess(t.mm!, a);
    const other = task();
    // whoever is current outside, the ioctl charges the opener
    sub.runAs(other, () => expect(f.ioctl(IOASID_REQUEST_ALLOC, req(1, 10))).toBe(1));
    expect(sub.current).toBeUndefined();
    expect(errnoOf(() => f.ioctl(IOASID_REQUEST_ALLOC, req(1, 10)))).toBe('EINVAL');
    expect([a.counter, a.events, f.set.nrIoasids]).toEqual([1, 1, 1]);
  });
});

describe('IOASID_REQUEST_FREE', () => {
  it('frees the IOASID in every argument form and returns 0', () => {
    const { f } = setup();
    for (let i = 0; i < 4; i++) f.ioctl(IOASID_REQUEST_ALLOC, req(1, 100));
    expect(f.ioctl(IOASID_REQUEST_FREE, 1)).toBe(0);
    expect(f.ioctl(IOASID_REQUEST_FREE, Int32Array.of(2))).toBe(0);
    const raw = new Uint8Array(4);
    new DataView(raw.buffer).setInt32(0, 3, true);
    expect(f.ioctl(IOASID_REQUEST_FREE, raw)).toBe(0);
    expect(ids(f)).toEqual([4]);
    // unknown and repeated IDs: still 0
    expect(f.ioctl(IOASID_REQUEST_FREE, 1)).toBe(0);
    expect(f.ioctl(IOASID_REQUEST_FREE, 999)).toBe(0);
    expect(ids(f)).toEqual([4]);
  });

  it("returns 0 for another process's IOASID without freeing it", () => {
    const { dev, f } = setup();
    const g = dev.open(task());
    const theirs = g.ioctl(IOASID_REQUEST_ALLOC, req(50, 60));
    expect(f.ioctl(IOASID_REQUEST_FREE, theirs)).toBe(0);
    expect(ids(g)).toEqual([theirs]);
    expect(g.set.nrIoasids).toBe(1);
  });

  it('a negative IOASID is EINVAL', () => {
    const { f } = setup();
    f.ioctl(IOASID_REQUEST_ALLOC, req(1, 100));
    expect(errnoOf(() => f.ioctl(IOASID_REQUEST_FREE, -1))).toBe('EINVAL');
    expect(errnoOf(() => f.ioctl(IOASID_REQUEST_FREE, Int32Array.of(-5)))).toBe('EINVAL');
    expect(errnoOf(() => f.ioctl(IOASID_REQUEST_FREE, new Uint8Array([0xff, 0xff, 0xff, 0xff])))).toBe(
      'EINVAL',
    );
    expect(errnoOf(() => f.ioctl(IOASID_REQUEST_FREE, -0x8000_0000))).toBe('EINVAL');
    expect(ids(f)).toEqual([1]);
  });

  it('unreadable arguments are EFAULT', () => {
    const { f } = setup();
    f.ioctl(IOASID_REQUEST_ALLOC, req(1, 100));
    for (const arg of [undefined, new Uint8Array(3), new Int32Array(0), 1.5, 2 ** 31, { argsz: 16 }, NaN]) {
      expect(errnoOf(() => f.ioctl(IOASID_REQUEST_FREE, arg as IoasidUserIoctlArg))).toBe('EFAULT');
    }
    expect(ids(f)).toEqual([1]);
  });
});

describe('unknown requests', () => {
  it('are EINVAL, not ENOTTY', () => {
    const { f } = setup();
    for (const r of [0, 0x6963, 0x6968, _IO(';', 100), 0xc0106966, -1]) {
      expect(errnoOf(() => f.ioctl(r, req(1, 2)))).toBe('EINVAL');
    }
    expect(f.set.nrIoasids).toBe(0);
  });
});

describe('model check (fast-check)', () => {
  it('alloc/free through the file agrees with a model of the set', () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('alloc' as const), min: fc.nat(40), len: fc.nat(10) }),
      fc.record({ k: fc.constant('free' as const), id: fc.integer({ min: -2, max: 50 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), fc.boolean(), (ops, raw) => {
        const { f } = setup();
        const model = new Set<number>();
        for (const o of ops) {
          if (o.k === 'alloc') {
            const r = raw ? rawReq(o.min, o.min + o.len) : req(o.min, o.min + o.len);
            let expected = INVALID_IOASID;
            for (let i = o.min; i <= o.min + o.len; i++) {
              if (!model.has(i)) {
                expected = i;
                break;
              }
            }
            if (expected === INVALID_IOASID) {
              expect(errnoOf(() => f.ioctl(IOASID_REQUEST_ALLOC, r))).toBe('EINVAL');
            } else {
              expect(f.ioctl(IOASID_REQUEST_ALLOC, r)).toBe(expected);
              model.add(expected);
            }
          } else if (o.id < 0) {
            expect(errnoOf(() => f.ioctl(IOASID_REQUEST_FREE, o.id))).toBe('EINVAL');
          } else {
            expect(f.ioctl(IOASID_REQUEST_FREE, raw ? Int32Array.of(o.id) : o.id)).toBe(0);
            model.delete(o.id);
          }
          expect(ids(f)).toEqual([...model].sort((a, b) => a - b));
        }
        f.close();
        expect(f.set.registered).toBe(false);
      }),
      { numRuns: 100 },
    );
  });
});
