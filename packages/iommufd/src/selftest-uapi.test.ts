import { PAGE_SIZE } from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import * as t from './selftest-uapi.js';
import { decodeUapi, encodeUapi, syncUapi, type UapiInput } from './uapi-codec.js';

function u32At(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(at, true);
}
function u64At(bytes: Uint8Array, at: number): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(at, true);
}

// Absolute offsets in struct iommu_test_cmd of every union member field (union at 16), from the
// selftest digest and the header's member layouts on the 64-bit ABI.
const MEMBER_OFFSETS: Record<string, Record<string, number>> = {
  add_reserved: { start: 16, length: 24 },
  mock_domain: { out_stdev_id: 16, out_hwpt_id: 20, out_idev_id: 24 },
  mock_domain_flags: { out_stdev_id: 16, out_hwpt_id: 20, out_idev_id: 24, dev_flags: 28 },
  mock_domain_replace: { pt_id: 16 },
  check_map: { iova: 16, length: 24, uptr: 32 },
  check_refs: { length: 16, uptr: 24, refs: 32 },
  create_access: { out_access_fd: 16, flags: 20 },
  destroy_access_pages: { access_pages_id: 16 },
  access_pages: { flags: 16, out_access_pages_id: 20, iova: 24, length: 32, uptr: 40 },
  access_rw: { iova: 16, length: 24, uptr: 32, flags: 40 },
  memory_limit: { limit: 16 },
  access_replace_ioas: { ioas_id: 16 },
  dirty: { flags: 16, iova: 24, length: 32, page_size: 40, uptr: 48, out_nr_dirty: 56 },
  check_iotlb: { id: 16, iotlb: 20 },
  trigger_iopf: { dev_id: 16, pasid: 20, grpid: 24, perm: 28, addr: 32 },
  check_dev_cache: { id: 16, cache: 20 },
  trigger_vevent: { dev_id: 16 },
  pasid_attach: { pasid: 16, pt_id: 20 },
  pasid_replace: { pasid: 16, pt_id: 20 },
  pasid_detach: { pasid: 16 },
  pasid_check: { pasid: 16, hwpt_id: 20 },
};

describe('IOMMU_TEST_CMD and its operations', () => {
  it('IOMMU_TEST_CMD is _IO(";", 0xa0)', () => {
    expect(t.IOMMU_TEST_CMD).toBe(0x3ba0);
  });

  it('operations are numbered 1 to 21 in header order', () => {
    expect([
      t.IOMMU_TEST_OP_ADD_RESERVED,
      t.IOMMU_TEST_OP_MOCK_DOMAIN,
      t.IOMMU_TEST_OP_MD_CHECK_MAP,
      t.IOMMU_TEST_OP_MD_CHECK_REFS,
      t.IOMMU_TEST_OP_CREATE_ACCESS,
      t.IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
      t.IOMMU_TEST_OP_ACCESS_PAGES,
      t.IOMMU_TEST_OP_ACCESS_RW,
      t.IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
      t.IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
      t.IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
      t.IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
      t.IOMMU_TEST_OP_DIRTY,
      t.IOMMU_TEST_OP_MD_CHECK_IOTLB,
      t.IOMMU_TEST_OP_TRIGGER_IOPF,
      t.IOMMU_TEST_OP_DEV_CHECK_CACHE,
      t.IOMMU_TEST_OP_TRIGGER_VEVENT,
      t.IOMMU_TEST_OP_PASID_ATTACH,
      t.IOMMU_TEST_OP_PASID_REPLACE,
      t.IOMMU_TEST_OP_PASID_DETACH,
      t.IOMMU_TEST_OP_PASID_CHECK_HWPT,
    ]).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
  });

  it('flags of the operations and the mock device', () => {
    expect(t.MOCK_FLAGS_ACCESS_WRITE).toBe(1);
    expect(t.MOCK_FLAGS_ACCESS_SYZ).toBe(0x10000);
    expect(t.MOCK_ACCESS_RW_WRITE).toBe(1);
    expect(t.MOCK_ACCESS_RW_SLOW_PATH).toBe(4);
    expect(t.MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES).toBe(1);
    expect([t.MOCK_FLAGS_DEVICE_NO_DIRTY, t.MOCK_FLAGS_DEVICE_HUGE_IOVA, t.MOCK_FLAGS_DEVICE_PASID]).toEqual([
      1, 2, 4,
    ]);
    expect(t.IOMMU_TEST_INVALIDATE_FLAG_ALL).toBe(1);
  });

  it('the mock IOMMU aperture and page sizes (bigint, like the IOVA fields)', () => {
    expect(t.MOCK_APERTURE_START).toBe(0x100_0000n);
    expect(t.MOCK_APERTURE_LAST).toBe(0x7fff_ffffn);
    expect(t.MOCK_IO_PAGE_SIZE).toBe(BigInt(PAGE_SIZE) / 2n);
    expect(t.MOCK_PAGE_SIZE).toBe(2048n);
    expect(t.MOCK_HUGE_PAGE_SIZE).toBe(1024n * 1024n);
    expect(t.MOCK_PASID_WIDTH).toBe(20);
    expect(t.IOMMU_TEST_PASID_RESERVED).toBe(1024);
  });

  it('mock caches and the mock driver type values', () => {
    expect(t.MOCK_NESTED_DOMAIN_IOTLB_ID_MAX).toBe(3);
    expect(t.MOCK_NESTED_DOMAIN_IOTLB_NUM).toBe(4);
    expect(t.MOCK_DEV_CACHE_ID_MAX).toBe(3);
    expect(t.MOCK_DEV_CACHE_NUM).toBe(4);
    expect(t.IOMMU_TEST_IOTLB_DEFAULT).toBe(0xbadbeef);
    expect(t.IOMMU_TEST_DEV_CACHE_DEFAULT).toBe(0xbaddad);
    expect(t.IOMMU_HW_INFO_TYPE_SELFTEST).toBe(0xfeedbeef);
    expect(t.IOMMU_HW_INFO_SELFTEST_REGVAL).toBe(0xdeadbeef);
    expect(t.IOMMU_HWPT_DATA_SELFTEST).toBe(0xdead);
    expect(t.IOMMU_HWPT_INVALIDATE_DATA_SELFTEST).toBe(0xdeadbeef);
    expect(t.IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID).toBe(0xdadbeef);
    expect(t.IOMMU_VIOMMU_TYPE_SELFTEST).toBe(0xdeadbeef);
    expect(t.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST).toBe(0xdeadbeef);
    expect(t.IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID).toBe(0xdadbeef);
    expect(t.IOMMU_VEVENTQ_TYPE_SELFTEST).toBe(0xbeefbeef);
    expect(t.IOMMU_HW_QUEUE_TYPE_SELFTEST).toBe(0xdeadbeef);
    expect(t.IOMMU_TEST_HW_QUEUE_MAX).toBe(2);
  });
});

describe('struct iommu_test_cmd', () => {
  it('is 72 bytes with a minimum size of 68 (end of last)', () => {
    expect(t.iommuTestCmdStruct.size).toBe(72);
    expect(t.iommuTestCommand.minSize).toBe(68);
    expect(t.iommuTestCommand.request).toBe(t.IOMMU_TEST_CMD);
    const offsets = Object.fromEntries(t.iommuTestCmdStruct.fields.map((f) => [f.name, f.offset]));
    expect(offsets).toMatchObject({ size: 0, op: 4, id: 8, __reserved: 12, last: 64 });
    expect(Object.keys(t.iommuTestCmdStruct.zero())).toEqual([
      'size',
      'op',
      'id',
      '__reserved',
      ...Object.keys(MEMBER_OFFSETS),
      'last',
    ]);
  });

  it.each(Object.entries(MEMBER_OFFSETS))(
    'member %s: each field at its offset, alone in the bytes',
    (member, fields) => {
      for (const [field, at] of Object.entries(fields)) {
        const zero = t.iommuTestCmdStruct.zero() as unknown as Record<string, Record<string, unknown>>;
        const wide = typeof zero[member]?.[field] === 'bigint';
        const value = wide ? 0x0102_0304_0506_0708n : 0x0a0b_0c0d;
        const cmd = { size: 72, [member]: { [field]: value } } as UapiInput<t.IommuTestCmd>;
        const bytes = encodeUapi(t.iommuTestCmdStruct, cmd);
        if (wide) expect(u64At(bytes, at), `${member}.${field}`).toBe(value);
        else expect(u32At(bytes, at), `${member}.${field}`).toBe(value);
        // Nothing else but size is set: the absent members did not write over it.
        const others = [...bytes].reduce((n, b) => n + (b === 0 ? 0 : 1), 0);
        expect(others, `${member}.${field}`).toBe(1 + (wide ? 8 : 4));
      }
    },
  );

  it('union members alias the same bytes', () => {
    const bytes = encodeUapi(t.iommuTestCmdStruct, {
      size: 72,
      op: t.IOMMU_TEST_OP_MOCK_DOMAIN,
      id: 3,
      mock_domain: { out_stdev_id: 4, out_hwpt_id: 5, out_idev_id: 6 },
    });
    const cmd = decodeUapi(t.iommuTestCmdStruct, bytes);
    expect(cmd.mock_domain).toEqual({ out_stdev_id: 4, out_hwpt_id: 5, out_idev_id: 6 });
    expect(cmd.mock_domain_flags).toEqual({ out_stdev_id: 4, out_hwpt_id: 5, out_idev_id: 6, dev_flags: 0 });
    expect(cmd.add_reserved.start).toBe((5n << 32n) | 4n);
    expect(cmd.mock_domain_replace.pt_id).toBe(4);
    expect(cmd.check_refs.length).toBe((5n << 32n) | 4n);
    expect(cmd.access_pages.flags).toBe(4);
    expect(cmd.access_pages.out_access_pages_id).toBe(5);
  });

  it('a decoded command with one member changed encodes that member over the stale ones', () => {
    const cmd = decodeUapi(
      t.iommuTestCmdStruct,
      encodeUapi(t.iommuTestCmdStruct, {
        size: 72,
        op: t.IOMMU_TEST_OP_ACCESS_RW,
        access_rw: { iova: 0x100_0000n, length: 16n, uptr: 0x7000n, flags: t.MOCK_ACCESS_RW_WRITE },
      }),
    );
    cmd.access_rw.iova = 0x100_2000n;
    cmd.mock_domain = { ...cmd.mock_domain }; // a new object with the same values: not a change
    const bytes = encodeUapi(t.iommuTestCmdStruct, cmd);
    expect(u64At(bytes, 16)).toBe(0x100_2000n);
    expect(u64At(bytes, 24)).toBe(16n);
    expect(u64At(bytes, 32)).toBe(0x7000n);
    expect(u32At(bytes, 40)).toBe(1);
  });

  it('write-back adds the members a caller left out, so cmd.mock_domain.out_hwpt_id reads', () => {
    const cmd: UapiInput<t.IommuTestCmd> = { size: 72, op: t.IOMMU_TEST_OP_MOCK_DOMAIN, id: 1 };
    const kernel = encodeUapi(t.iommuTestCmdStruct, {
      size: 72,
      op: t.IOMMU_TEST_OP_MOCK_DOMAIN,
      id: 1,
      mock_domain: { out_stdev_id: 2, out_hwpt_id: 3, out_idev_id: 4 },
    });
    const full = syncUapi(t.iommuTestCmdStruct, cmd, kernel);
    expect(full.mock_domain.out_hwpt_id).toBe(3);
    expect(full.last).toBe(0);
  });

  it('round trips a complete command of every operation', () => {
    for (const member of Object.keys(MEMBER_OFFSETS)) {
      const cmd = t.iommuTestCmdStruct.zero() as unknown as Record<string, unknown>;
      const m = cmd[member] as Record<string, unknown>;
      let i = 1;
      for (const k of Object.keys(m)) {
        m[k] = typeof m[k] === 'bigint' ? BigInt(i) << 33n : i;
        i++;
      }
      const input = { size: 72, op: 1, id: 2, [member]: m, last: 0x55 } as UapiInput<t.IommuTestCmd>;
      const back = t.iommuTestCmdStruct.decode(encodeUapi(t.iommuTestCmdStruct, input)) as unknown as Record<
        string,
        unknown
      >;
      expect(back[member], member).toEqual(m);
      expect(back['last']).toBe(0x55);
    }
  });
});

describe('mock driver data structs', () => {
  it('sizes and offsets', () => {
    expect(t.iommuTestHwInfoStruct.size).toBe(8);
    expect(t.iommuHwptSelftestStruct.size).toBe(4);
    expect(t.iommuHwptInvalidateSelftestStruct.size).toBe(8);
    expect(t.iommuViommuSelftestStruct.size).toBe(24);
    expect(t.iommuViommuInvalidateSelftestStruct.size).toBe(12);
    expect(t.iommuViommuEventSelftestStruct.size).toBe(4);
    const info = encodeUapi(t.iommuTestHwInfoStruct, { test_reg: t.IOMMU_HW_INFO_SELFTEST_REGVAL });
    expect(u32At(info, 4)).toBe(0xdeadbeef);
    const v = encodeUapi(t.iommuViommuSelftestStruct, {
      out_data: 1,
      out_mmap_offset: 2n,
      out_mmap_length: 3n,
    });
    expect([u32At(v, 4), u64At(v, 8), u64At(v, 16)]).toEqual([1, 2n, 3n]);
    const inv = encodeUapi(t.iommuViommuInvalidateSelftestStruct, { flags: 1, vdev_id: 2, cache_id: 3 });
    expect([u32At(inv, 0), u32At(inv, 4), u32At(inv, 8)]).toEqual([1, 2, 3]);
    const hinv = encodeUapi(t.iommuHwptInvalidateSelftestStruct, { iotlb_id: 3 });
    expect(u32At(hinv, 4)).toBe(3);
  });
});
