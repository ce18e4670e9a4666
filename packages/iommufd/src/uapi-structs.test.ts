import type { UapiScalarType, UapiStruct } from '@iommu-ts/base';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as uapi from './uapi.js';
import { decodeUapi, encodeUapi } from './uapi-codec.js';
import * as s from './uapi-structs.js';

const UAPI: Readonly<Record<string, unknown>> = { ...uapi };

type Layout = UapiStruct<object>;

// sizeof and the offset of every field, restated from the uAPI digest (64-bit ABI).
const LAYOUTS: readonly (readonly [Layout, number, Record<string, number>])[] = [
  [s.iommuDestroyStruct, 8, { size: 0, id: 4 }],
  [s.iommuIoasAllocStruct, 12, { size: 0, flags: 4, out_ioas_id: 8 }],
  [s.iommuIovaRangeStruct, 16, { start: 0, last: 8 }],
  [
    s.iommuIoasIovaRangesStruct,
    32,
    { size: 0, ioas_id: 4, num_iovas: 8, __reserved: 12, allowed_iovas: 16, out_iova_alignment: 24 },
  ],
  [s.iommuIoasAllowIovasStruct, 24, { size: 0, ioas_id: 4, num_iovas: 8, __reserved: 12, allowed_iovas: 16 }],
  [
    s.iommuIoasMapStruct,
    40,
    { size: 0, flags: 4, ioas_id: 8, __reserved: 12, user_va: 16, length: 24, iova: 32 },
  ],
  [s.iommuIoasMapFileStruct, 40, { size: 0, flags: 4, ioas_id: 8, fd: 12, start: 16, length: 24, iova: 32 }],
  [
    s.iommuIoasCopyStruct,
    40,
    { size: 0, flags: 4, dst_ioas_id: 8, src_ioas_id: 12, length: 16, dst_iova: 24, src_iova: 32 },
  ],
  [s.iommuIoasUnmapStruct, 24, { size: 0, ioas_id: 4, iova: 8, length: 16 }],
  [s.iommuOptionStruct, 24, { size: 0, option_id: 4, op: 8, __reserved: 10, object_id: 12, val64: 16 }],
  [s.iommuVfioIoasStruct, 12, { size: 0, ioas_id: 4, op: 8, __reserved: 10 }],
  [s.iommuHwptVtdS1Struct, 24, { flags: 0, pgtbl_addr: 8, addr_width: 16, __reserved: 20 }],
  [s.iommuHwptArmSmmuv3Struct, 16, { ste: 0 }],
  [
    s.iommuHwptAllocStruct,
    48,
    {
      size: 0,
      flags: 4,
      dev_id: 8,
      pt_id: 12,
      out_hwpt_id: 16,
      __reserved: 20,
      data_type: 24,
      data_len: 28,
      data_uptr: 32,
      fault_id: 40,
      __reserved2: 44,
    },
  ],
  [s.iommuHwInfoVtdStruct, 24, { flags: 0, __reserved: 4, cap_reg: 8, ecap_reg: 16 }],
  [s.iommuHwInfoArmSmmuv3Struct, 40, { flags: 0, __reserved: 4, idr: 8, iidr: 32, aidr: 36 }],
  [s.iommuHwInfoTegra241CmdqvStruct, 8, { flags: 0, version: 4, log2vcmdqs: 5, log2vsids: 6, __reserved: 7 }],
  [
    s.iommuHwInfoStruct,
    40,
    {
      size: 0,
      flags: 4,
      dev_id: 8,
      data_len: 12,
      data_uptr: 16,
      in_data_type: 24,
      out_data_type: 24,
      out_max_pasid_log2: 28,
      __reserved: 29,
      out_capabilities: 32,
    },
  ],
  [s.iommuHwptSetDirtyTrackingStruct, 16, { size: 0, flags: 4, hwpt_id: 8, __reserved: 12 }],
  [
    s.iommuHwptGetDirtyBitmapStruct,
    48,
    { size: 0, hwpt_id: 4, flags: 8, __reserved: 12, iova: 16, length: 24, page_size: 32, data: 40 },
  ],
  [s.iommuHwptVtdS1InvalidateStruct, 24, { addr: 0, npages: 8, flags: 16, __reserved: 20 }],
  [s.iommuViommuArmSmmuv3InvalidateStruct, 16, { cmd: 0 }],
  [
    s.iommuHwptInvalidateStruct,
    32,
    { size: 0, hwpt_id: 4, data_uptr: 8, data_type: 16, entry_len: 20, entry_num: 24, __reserved: 28 },
  ],
  [
    s.iommuHwptPgfaultStruct,
    40,
    { flags: 0, dev_id: 4, pasid: 8, grpid: 12, perm: 16, __reserved: 20, addr: 24, length: 32, cookie: 36 },
  ],
  [s.iommuHwptPageResponseStruct, 8, { cookie: 0, code: 4 }],
  [s.iommuFaultAllocStruct, 16, { size: 0, flags: 4, out_fault_id: 8, out_fault_fd: 12 }],
  [s.iommuViommuTegra241CmdqvStruct, 16, { out_vintf_mmap_offset: 0, out_vintf_mmap_length: 8 }],
  [
    s.iommuViommuAllocStruct,
    40,
    {
      size: 0,
      flags: 4,
      type: 8,
      dev_id: 12,
      hwpt_id: 16,
      out_viommu_id: 20,
      data_len: 24,
      __reserved: 28,
      data_uptr: 32,
    },
  ],
  [s.iommuVdeviceAllocStruct, 24, { size: 0, viommu_id: 4, dev_id: 8, out_vdevice_id: 12, virt_id: 16 }],
  [s.iommuIoasChangeProcessStruct, 8, { size: 0, __reserved: 4 }],
  [s.iommufdVeventHeaderStruct, 8, { flags: 0, sequence: 4 }],
  [s.iommuVeventArmSmmuv3Struct, 32, { evt: 0 }],
  [s.iommuVeventTegra241CmdqvStruct, 16, { lvcmdq_err_map: 0 }],
  [
    s.iommuVeventqAllocStruct,
    32,
    {
      size: 0,
      flags: 4,
      viommu_id: 8,
      type: 12,
      veventq_depth: 16,
      out_veventq_id: 20,
      out_veventq_fd: 24,
      __reserved: 28,
    },
  ],
  [
    s.iommuHwQueueAllocStruct,
    40,
    {
      size: 0,
      flags: 4,
      viommu_id: 8,
      type: 12,
      index: 16,
      out_hw_queue_id: 20,
      nesting_parent_iova: 24,
      length: 32,
    },
  ],
];

// Request, minimum size (end of the last field of the first version) and kernel sizeof, from the
// command table of the digest.
const COMMANDS: readonly (readonly [string, number, number, number])[] = [
  ['IOMMU_DESTROY', 0x3b80, 8, 8],
  ['IOMMU_IOAS_ALLOC', 0x3b81, 12, 12],
  ['IOMMU_IOAS_ALLOW_IOVAS', 0x3b82, 24, 24],
  ['IOMMU_IOAS_COPY', 0x3b83, 40, 40],
  ['IOMMU_IOAS_IOVA_RANGES', 0x3b84, 32, 32],
  ['IOMMU_IOAS_MAP', 0x3b85, 40, 40],
  ['IOMMU_IOAS_UNMAP', 0x3b86, 24, 24],
  ['IOMMU_OPTION', 0x3b87, 24, 24],
  ['IOMMU_VFIO_IOAS', 0x3b88, 12, 12],
  ['IOMMU_HWPT_ALLOC', 0x3b89, 24, 48],
  ['IOMMU_GET_HW_INFO', 0x3b8a, 32, 40],
  ['IOMMU_HWPT_SET_DIRTY_TRACKING', 0x3b8b, 16, 16],
  ['IOMMU_HWPT_GET_DIRTY_BITMAP', 0x3b8c, 48, 48],
  ['IOMMU_HWPT_INVALIDATE', 0x3b8d, 32, 32],
  ['IOMMU_FAULT_QUEUE_ALLOC', 0x3b8e, 16, 16],
  ['IOMMU_IOAS_MAP_FILE', 0x3b8f, 40, 40],
  ['IOMMU_VIOMMU_ALLOC', 0x3b90, 24, 40],
  ['IOMMU_VDEVICE_ALLOC', 0x3b91, 24, 24],
  ['IOMMU_IOAS_CHANGE_PROCESS', 0x3b92, 8, 8],
  ['IOMMU_VEVENTQ_ALLOC', 0x3b93, 28, 32],
  ['IOMMU_HW_QUEUE_ALLOC', 0x3b94, 40, 40],
];

const SCALAR_BYTES: Record<UapiScalarType, number> = {
  u8: 1,
  s8: 1,
  u16: 2,
  s16: 2,
  u32: 4,
  s32: 4,
  u64: 8,
  s64: 8,
};

/** A marker value filling every byte of the scalar with 0xa5 except the lowest (0x5a). */
function marker(type: UapiScalarType): { value: number | bigint; bytes: number[] } {
  const n = SCALAR_BYTES[type];
  const bytes = [0x5a, ...Array<number>(n - 1).fill(0xa5)];
  let big = 0n;
  for (let i = n - 1; i >= 0; i--) big = (big << 8n) | BigInt(bytes[i] ?? 0);
  if (type.startsWith('s') && big >= 1n << BigInt(8 * n - 1)) big -= 1n << BigInt(8 * n);
  return { value: n === 8 ? big : Number(big), bytes };
}

describe('iommufd struct layouts', () => {
  it.each(LAYOUTS.map(([layout, size, offsets]) => [layout.name, layout, size, offsets] as const))(
    'struct %s: sizeof, field names and offsets',
    (_name, layout, size, offsets) => {
      expect(layout.size).toBe(size);
      expect(Object.keys(layout.zero())).toEqual(Object.keys(offsets));
      for (const f of layout.fields) expect(f.offset, f.name).toBe(offsets[f.name]);
    },
  );

  it.each(LAYOUTS.map(([layout]) => [layout.name, layout] as const))(
    'struct %s: each field lands at its offset in the bytes',
    (_name, layout) => {
      for (const f of layout.fields) {
        if (typeof f.type !== 'string') continue;
        const { value, bytes } = marker(f.type);
        const input = { [f.name]: f.count === undefined ? value : [value] };
        const out = encodeUapi(layout, input);
        const expected = new Uint8Array(layout.size);
        expected.set(bytes, f.offset);
        expect([...out], f.name).toEqual([...expected]);
      }
    },
  );

  it('u64 fields are bigint and u32 fields number in the plain object', () => {
    const map = s.iommuIoasMapStruct.zero();
    expect(typeof map.iova).toBe('bigint');
    expect(typeof map.ioas_id).toBe('number');
    const info = s.iommuHwInfoStruct.zero();
    expect(info.__reserved).toEqual([0, 0, 0]);
    expect(s.iommuHwInfoArmSmmuv3Struct.zero().idr).toHaveLength(6);
    expect(s.iommuVeventArmSmmuv3Struct.zero().evt).toEqual([0n, 0n, 0n, 0n]);
  });

  it('iommu_ioas_map_file.fd is a signed __s32', () => {
    const bytes = encodeUapi(s.iommuIoasMapFileStruct, { fd: -1 });
    expect([...bytes.subarray(12, 16)]).toEqual([0xff, 0xff, 0xff, 0xff]);
    expect(s.iommuIoasMapFileStruct.decode(bytes).fd).toBe(-1);
  });

  it('iommu_hw_info: in_data_type and out_data_type are the same four bytes', () => {
    const bytes = encodeUapi(s.iommuHwInfoStruct, {
      size: 40,
      flags: uapi.IOMMU_HW_INFO_FLAG_INPUT_TYPE,
      in_data_type: 2,
    });
    expect(new DataView(bytes.buffer).getUint32(24, true)).toBe(2);
    const back = decodeUapi(s.iommuHwInfoStruct, bytes);
    expect(back.out_data_type).toBe(2);
    back.out_data_type = 0xfeedbeef;
    expect(new DataView(encodeUapi(s.iommuHwInfoStruct, back).buffer).getUint32(24, true)).toBe(0xfeedbeef);
  });

  it.each(LAYOUTS.map(([layout]) => [layout.name, layout] as const))(
    'struct %s: bytes -> object -> bytes is the identity (no hidden padding)',
    (_name, layout) => {
      fc.assert(
        fc.property(fc.uint8Array({ minLength: layout.size, maxLength: layout.size }), (bytes) => {
          const value = layout.decode(bytes);
          expect([...encodeUapi(layout, value)]).toEqual([...bytes]);
          expect([...layout.encode(value)]).toEqual([...bytes]);
          expect(layout.decode(encodeUapi(layout, value))).toEqual(value);
        }),
        { numRuns: 50 },
      );
    },
  );
});

describe('iommufd command facts', () => {
  it.each(COMMANDS)('%s: request 0x%s, minimum size and sizeof', (name, request, minSize, size) => {
    const cmd = s.iommufdUapiCommands.find((c) => c.name === name);
    expect(cmd).toBeDefined();
    expect(cmd?.request).toBe(request);
    expect(cmd?.request).toBe(UAPI[name]);
    expect(cmd?.minSize).toBe(minSize);
    expect(cmd?.struct.size).toBe(size);
  });

  it('lists every command once, in command-number order', () => {
    expect(s.iommufdUapiCommands.map((c) => c.name)).toEqual(COMMANDS.map(([n]) => n));
    expect(s.iommuIoasAllocCommand.struct).toBe(s.iommuIoasAllocStruct);
    expect(s.iommuGetHwInfoCommand.struct).toBe(s.iommuHwInfoStruct);
    expect(s.iommuFaultQueueAllocCommand.struct).toBe(s.iommuFaultAllocStruct);
    expect(Object.isFrozen(s.iommuIoasMapCommand)).toBe(true);
  });
});
