import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ERRNO, type ErrnoCode, ErrnoError, errnoName, isErrnoError } from './errno.js';

describe('ERRNO', () => {
  it('matches the numbers of the Linux C library for every name the host knows', () => {
    // On Linux, Node's errno constants come straight from the system headers: an independent copy
    // of asm-generic/errno*.h to check ours against.
    expect(process.platform).toBe('linux');
    const host = constants.errno as Record<string, number>;
    let compared = 0;
    for (const [name, value] of Object.entries(ERRNO)) {
      const hostValue = host[name];
      if (hostValue === undefined) continue;
      expect([name, value]).toEqual([name, hostValue]);
      compared++;
    }
    expect(compared).toBeGreaterThan(75);
    // And the other way round: no user-visible errno of the host is missing here.
    for (const [name, value] of Object.entries(host)) {
      if (name === 'ENOTSUP') continue; // glibc's alias of EOPNOTSUPP; the kernel has no such name
      expect([name, ERRNO[name as ErrnoCode]]).toEqual([name, value]);
    }
  });

  it('has the kernel-internal codes of include/linux/errno.h', () => {
    expect({
      ERESTARTSYS: ERRNO.ERESTARTSYS,
      ENOIOCTLCMD: ERRNO.ENOIOCTLCMD,
      EPROBE_DEFER: ERRNO.EPROBE_DEFER,
      ENOTSUPP: ERRNO.ENOTSUPP,
      EIOCBQUEUED: ERRNO.EIOCBQUEUED,
    }).toEqual({ ERESTARTSYS: 512, ENOIOCTLCMD: 515, EPROBE_DEFER: 517, ENOTSUPP: 524, EIOCBQUEUED: 529 });
  });

  it('has the numbers the IOMMU stack returns most', () => {
    expect([ERRNO.EPERM, ERRNO.ENOENT, ERRNO.ENOMEM, ERRNO.EFAULT, ERRNO.EBUSY, ERRNO.EEXIST]).toEqual([
      1, 2, 12, 14, 16, 17,
    ]);
    expect([ERRNO.ENODEV, ERRNO.EINVAL, ERRNO.ENOSPC, ERRNO.ERANGE, ERRNO.EOVERFLOW]).toEqual([
      19, 22, 28, 34, 75,
    ]);
    expect([ERRNO.E2BIG, ERRNO.ENOTTY, ERRNO.EOPNOTSUPP, ERRNO.EMSGSIZE, ERRNO.EDEADLK]).toEqual([
      7, 25, 95, 90, 35,
    ]);
  });
});

describe('errnoName', () => {
  it('gives canonical names for aliased numbers and accepts negative kernel returns', () => {
    expect(errnoName(11)).toBe('EAGAIN');
    expect(errnoName(35)).toBe('EDEADLK');
    expect(errnoName(-22)).toBe('EINVAL');
    expect(errnoName(41)).toBeUndefined();
    expect(errnoName(0)).toBeUndefined();
  });

  it('round-trips every number', () => {
    for (const value of new Set(Object.values(ERRNO))) {
      const name = errnoName(value);
      expect(name && ERRNO[name]).toBe(value);
    }
  });
});

describe('ErrnoError', () => {
  it('carries errno, code and a message naming both', () => {
    const error = new ErrnoError('EBUSY', 'group is owned');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('ErrnoError');
    expect(error.errno).toBe(16);
    expect(error.code).toBe('EBUSY');
    expect(error.message).toBe('EBUSY: group is owned');
    expect(error.toReturnValue()).toBe(-16);
    expect(new ErrnoError('ENOMEM').message).toBe('ENOMEM');
  });

  it('is recognised by isErrnoError, with and without a code', () => {
    const error = new ErrnoError('EINVAL');
    expect(isErrnoError(error)).toBe(true);
    expect(isErrnoError(error, 'EINVAL')).toBe(true);
    expect(isErrnoError(error, 'EPERM')).toBe(false);
    expect(isErrnoError(new Error('EINVAL'))).toBe(false);
    expect(isErrnoError({ errno: 22, code: 'EINVAL' })).toBe(false);
  });
});
