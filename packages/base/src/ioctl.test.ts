import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  _IO,
  _IOC,
  _IOC_DIR,
  _IOC_NONE,
  _IOC_NR,
  _IOC_READ,
  _IOC_SIZE,
  _IOC_TYPE,
  _IOC_WRITE,
  _IOR,
  _IOW,
  _IOWR,
} from './ioctl.js';

describe('ioctl request encoding', () => {
  it('matches known _IO numbers', () => {
    expect(_IO('i', 100)).toBe(0x6964); // IOASID_GET_API_VERSION
    expect(_IO(0x69, 103)).toBe(0x6967); // IOASID_REQUEST_FREE
    expect(_IO(';', 0x80)).toBe(0x3b80); // IOMMU_DESTROY
    expect(_IO(';', 0x80 + 32)).toBe(0x3ba0); // IOMMU_TEST_CMD
    expect(_IO(';', 100)).toBe(0x3b64); // VFIO_GET_API_VERSION
    expect(_IO(';', 114)).toBe(0x3b72); // VFIO_IOMMU_UNMAP_DMA
    expect(_IO(0xae, 0x01)).toBe(0xae01); // KVM_CREATE_VM
  });

  it('matches known sized numbers (unsigned 32-bit)', () => {
    // The iommufd/VFIO digest has only _IO commands; these are well-known numbers from other uAPIs.
    expect(_IOW('T', 202, 4)).toBe(0x400454ca); // TUNSETIFF, _IOW('T', 202, int)
    expect(_IOR('V', 0, 104)).toBe(0x80685600); // VIDIOC_QUERYCAP, struct v4l2_capability
    expect(_IOWR(0xae, 0x05, 8)).toBe(0xc008ae05); // KVM_GET_SUPPORTED_CPUID, struct kvm_cpuid2
    expect(_IOW(0xae, 0x46, { size: 32 })).toBe(0x4020ae46); // KVM_SET_USER_MEMORY_REGION
    expect(_IOWR(0xae, 0x05, 8)).toBeGreaterThan(0);
  });

  it('decodes the fields of known numbers', () => {
    const r = 0xc008ae05;
    expect(_IOC_DIR(r)).toBe(_IOC_READ | _IOC_WRITE);
    expect(_IOC_TYPE(r)).toBe(0xae);
    expect(_IOC_NR(r)).toBe(5);
    expect(_IOC_SIZE(r)).toBe(8);
    expect(_IOC_DIR(0x3b80)).toBe(_IOC_NONE);
    expect(_IOC_SIZE(0x3b80)).toBe(0);
    // the negative int form of the same request decodes the same way
    expect(_IOC_DIR(r | 0)).toBe(3);
    expect(_IOC_SIZE(r | 0)).toBe(8);
  });

  it('round-trips all fields', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 0x3fff }),
        (dir, type, nr, size) => {
          const r = _IOC(dir, type, nr, size);
          expect(r).toBeGreaterThanOrEqual(0);
          expect(r).toBeLessThanOrEqual(0xffff_ffff);
          expect([_IOC_DIR(r), _IOC_TYPE(r), _IOC_NR(r), _IOC_SIZE(r)]).toEqual([dir, type, nr, size]);
        },
      ),
    );
  });

  it('rejects fields that do not fit', () => {
    expect(() => _IO('ab', 1)).toThrow(RangeError);
    expect(() => _IO('', 1)).toThrow(RangeError);
    expect(() => _IO('\u0100', 1)).toThrow(RangeError);
    expect(() => _IO(256, 1)).toThrow(RangeError);
    expect(() => _IO('i', 256)).toThrow(RangeError);
    expect(() => _IO('i', -1)).toThrow(RangeError);
    expect(() => _IOR('i', 1, 0x4000)).toThrow(RangeError);
    expect(() => _IOW('i', 1, 1.5)).toThrow(RangeError);
    expect(() => _IOC(4, 'i', 1, 0)).toThrow(RangeError);
    expect(_IOC(_IOC_WRITE, 'i', 1, 0x3fff)).toBe(0x7fff6901);
  });
});
