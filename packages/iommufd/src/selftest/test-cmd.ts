/**
 * `IOMMU_TEST_CMD` (`iommufd_test` in drivers/iommu/iommufd/selftest.c): the selftest's window
 * into iommufd, available in selftest contexts only. One ioctl, the operation in `op`; unknown
 * operations are `EOPNOTSUPP`. As in the kernel, each operation copies the struct back itself
 * (only those with out fields do), so the table entry does not respond on its own.
 *
 * Modelled partially: TRIGGER_VEVENT (no vIOMMU in this model: the device never has a vDEVICE,
 * so after the device lookup it is `ENOENT`); PASID_ATTACH, PASID_REPLACE and PASID_DETACH
 * (`EOPNOTSUPP` after the selftest-object lookup, the device API here has no PASID argument);
 * PASID_CHECK_HWPT checks the core's PASID table.
 */

import { ErrnoError } from '@iommu-ts/base';
import { iommuReportDeviceFault } from '@iommu-ts/io-pgfault';
import {
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID,
  IOMMU_NO_PASID,
  type IommuDomain,
  IommuFaultType,
} from '@iommu-ts/iommu-core';
import { PAGE_SIZE } from '@iommu-ts/mm';
import {
  iommufdAccessAttach,
  iommufdAccessCreate,
  iommufdAccessDestroy,
  iommufdAccessPinPages,
  iommufdAccessReplace,
  iommufdAccessRw,
  iommufdAccessUnpinPages,
} from '../access.js';
import { iommufdDeviceReplace, iommufdGetDevice } from '../device.js';
import type { IoPagetable } from '../io-pagetable.js';
import { iommufdGetIoas } from '../ioas.js';
import { defineIoctlOp, type IommufdUcmd } from '../ioctl-dispatch.js';
import { type IommufdCtx, IommufdObjectType } from '../main.js';
import { IOMMUFD_ACCESS_RW_WRITE, setTempMemoryLimit } from '../pages.js';
import {
  IOMMU_TEST_OP_ACCESS_PAGES,
  IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
  IOMMU_TEST_OP_ACCESS_RW,
  IOMMU_TEST_OP_ADD_RESERVED,
  IOMMU_TEST_OP_CREATE_ACCESS,
  IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
  IOMMU_TEST_OP_DEV_CHECK_CACHE,
  IOMMU_TEST_OP_DIRTY,
  IOMMU_TEST_OP_MD_CHECK_IOTLB,
  IOMMU_TEST_OP_MD_CHECK_MAP,
  IOMMU_TEST_OP_MD_CHECK_REFS,
  IOMMU_TEST_OP_MOCK_DOMAIN,
  IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
  IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
  IOMMU_TEST_OP_PASID_ATTACH,
  IOMMU_TEST_OP_PASID_CHECK_HWPT,
  IOMMU_TEST_OP_PASID_DETACH,
  IOMMU_TEST_OP_PASID_REPLACE,
  IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
  IOMMU_TEST_OP_TRIGGER_IOPF,
  IOMMU_TEST_OP_TRIGGER_VEVENT,
  type IommuTestCmd,
  iommuTestCommand,
  MOCK_ACCESS_RW_SLOW_PATH,
  MOCK_ACCESS_RW_WRITE,
  MOCK_DEV_CACHE_ID_MAX,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  MOCK_FLAGS_ACCESS_SYZ,
  MOCK_FLAGS_ACCESS_WRITE,
  MOCK_IO_PAGE_SIZE,
  MOCK_NESTED_DOMAIN_IOTLB_ID_MAX,
} from '../selftest-uapi.js';
import { MockDevice } from './mock-device.js';
import { MockIommuDomain, MockIommuDomainNested } from './mock-domain.js';
import { SelftestObj, selftestMockDomainAbort, selftestMockDomainCreate } from './selftest-obj.js';
import { SelftestAccess, selftestAccessGet } from './staccess.js';
import { userPagePhys } from './user-pages.js';

type Ucmd = IommufdUcmd<IommuTestCmd>;

const PAGE = BigInt(PAGE_SIZE);
const MP = MOCK_IO_PAGE_SIZE;
const U64_MAX = 0xffff_ffff_ffff_ffffn;
/** Largest ACCESS_PAGES / ACCESS_RW length (a guard against huge temporary buffers). */
const ACCESS_LENGTH_MAX = 16n * 1024n * 1024n;

/** The domain of a HWPT object of `type`, or ENOENT (`__get_md_pagetable`). */
function hwptDomain(ictx: IommufdCtx, id: number, type: IommufdObjectType): IommuDomain | null {
  const obj = ictx.getObject(id, type) as { domain?: IommuDomain | null };
  return obj.domain ?? null;
}

/**
 * `get_md_pagetable`: the mock paging domain of HWPT `id`.
 * @throws ErrnoError `ENOENT` (not a paging HWPT), `EINVAL` (not a mock paging domain)
 */
export function mockPagingDomainOfHwpt(ictx: IommufdCtx, id: number): MockIommuDomain {
  const domain = hwptDomain(ictx, id, IommufdObjectType.HWPT_PAGING);
  if (!(domain instanceof MockIommuDomain)) throw new ErrnoError('EINVAL', `HWPT ${id} is not a mock domain`);
  return domain;
}

/**
 * `get_md_pagetable_nested`: the mock nested domain of HWPT `id`.
 * @throws ErrnoError `ENOENT` (not a nested HWPT), `EINVAL` (not a mock nested domain)
 */
export function mockNestedDomainOfHwpt(ictx: IommufdCtx, id: number): MockIommuDomainNested {
  const domain = hwptDomain(ictx, id, IommufdObjectType.HWPT_NESTED);
  if (!(domain instanceof MockIommuDomainNested))
    throw new ErrnoError('EINVAL', `HWPT ${id} is not a mock nested domain`);
  return domain;
}

/** `iommufd_test_syz_conv_iova`: u64 (low 32 bits: n-th area, high 32: offset) → IOVA, 0 if no such area. */
function syzConvIova(iopt: IoPagetable, iova: bigint): bigint {
  const nth = Number(iova & 0xffff_ffffn);
  const offset = iova >> 32n;
  const area = iopt.areas()[nth];
  return area === undefined ? 0n : area.iova + offset;
}

/** `iommufd_test_syz_conv_iova_id` as used on an access's IOAS. */
function syzIova(access: SelftestAccess, iova: bigint): bigint {
  const ioas = access.access?.ioas;
  return ioas ? syzConvIova(ioas.iopt, iova) : 0n;
}

// ---- mock devices ----------------------------------------------------------------------------------

function testMockDomain(cmd: IommuTestCmd, ucmd: Ucmd, ictx: IommufdCtx): void {
  const flagsOp = cmd.op === IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS;
  const devFlags = flagsOp ? cmd.mock_domain_flags.dev_flags : 0;
  const r = selftestMockDomainCreate(ictx, cmd.id, devFlags);
  const out = flagsOp ? cmd.mock_domain_flags : cmd.mock_domain;
  out.out_hwpt_id = r.hwptId;
  out.out_stdev_id = r.stdevId;
  out.out_idev_id = r.idevId;
  try {
    ucmd.respond();
  } catch (e) {
    selftestMockDomainAbort(r.sobj);
    throw e;
  }
  ictx.objectFinalize(r.sobj);
}

/** `iommufd_test_get_selftest_obj`: the selftest object `id` (ENOENT), which must be a device one. */
function selftestObjGet(ictx: IommufdCtx, id: number): SelftestObj {
  const sobj = ictx.getObject(id, IommufdObjectType.SELFTEST);
  if (!(sobj instanceof SelftestObj) || sobj.idev === null)
    throw new ErrnoError('EINVAL', `${id} is not a mock device`);
  return sobj;
}

function testMockDomainReplace(cmd: IommuTestCmd, ucmd: Ucmd, ictx: IommufdCtx): void {
  const sobj = selftestObjGet(ictx, cmd.id);
  cmd.mock_domain_replace.pt_id = iommufdDeviceReplace(sobj.idev!, cmd.mock_domain_replace.pt_id);
  ucmd.respond();
}

// ---- IOAS and mock page-table checks ---------------------------------------------------------------

function testAddReserved(cmd: IommuTestCmd, ictx: IommufdCtx): void {
  const ioas = iommufdGetIoas(ictx, cmd.id);
  const { start, length } = cmd.add_reserved;
  ioas.iopt.reserveIova(start, BigInt.asUintN(64, start + length - 1n), null);
}

function testMdCheckMap(cmd: IommuTestCmd, ictx: IommufdCtx): void {
  let { iova, length, uptr } = cmd.check_map;
  if (iova % MP !== 0n || length % MP !== 0n || uptr % MP !== 0n || uptr + length > U64_MAX)
    throw new ErrnoError('EINVAL', 'check_map: unaligned or overflowing range');
  const mock = mockPagingDomainOfHwpt(ictx, cmd.id);
  let pagePa = -1;
  let pageVa = -1n;
  for (; length > 0n; length -= MP, iova += MP, uptr += MP) {
    const va = uptr - (uptr % PAGE);
    if (va !== pageVa) {
      pagePa = userPagePhys(ictx.process, va);
      pageVa = va;
    }
    const ent = mock.entryAt(iova);
    if (ent === undefined || ent.pa !== BigInt(pagePa) + (uptr % PAGE))
      throw new ErrnoError('EINVAL', `check_map: IOVA 0x${iova.toString(16)} does not map the user page`);
  }
}

function testMdCheckRefs(cmd: IommuTestCmd, ictx: IommufdCtx): void {
  let { length, uptr } = cmd.check_refs;
  const refs = cmd.check_refs.refs;
  if (length % PAGE !== 0n || uptr % PAGE !== 0n || uptr + length > U64_MAX)
    throw new ErrnoError('EINVAL', 'check_refs: unaligned or overflowing range');
  const mem = ictx.process.machine.memory;
  for (; length > 0n; length -= PAGE, uptr += PAGE) {
    const pa = userPagePhys(ictx.process, uptr);
    if (mem.compoundOrder(pa) !== 0) continue;
    if (mem.pinCount(pa) !== refs)
      throw new ErrnoError(
        'EIO',
        `check_refs: 0x${uptr.toString(16)} has ${mem.pinCount(pa)} pins, not ${refs}`,
      );
  }
}

function testMdCheckIotlb(cmd: IommuTestCmd, ictx: IommufdCtx): void {
  const nested = mockNestedDomainOfHwpt(ictx, cmd.id);
  const { id, iotlb } = cmd.check_iotlb;
  if (id > MOCK_NESTED_DOMAIN_IOTLB_ID_MAX || nested.iotlb[id] !== iotlb >>> 0)
    throw new ErrnoError('EINVAL', `check_iotlb: entry ${id} is not 0x${(iotlb >>> 0).toString(16)}`);
}

function testDevCheckCache(cmd: IommuTestCmd, ictx: IommufdCtx): void {
  const idev = iommufdGetDevice(ictx, cmd.id);
  const { id, cache } = cmd.check_dev_cache;
  if (id > MOCK_DEV_CACHE_ID_MAX) throw new ErrnoError('EINVAL', `check_dev_cache: entry ${id}`);
  const dev = idev.dev;
  if (!(dev instanceof MockDevice) || dev.cache[id] !== cache >>> 0)
    throw new ErrnoError('EINVAL', `check_dev_cache: entry ${id} is not 0x${(cache >>> 0).toString(16)}`);
}

function testDirty(cmd: IommuTestCmd, ucmd: Ucmd, ictx: IommufdCtx): void {
  const { iova, length, page_size: pageSize, uptr } = cmd.dirty;
  if (pageSize === 0n || length === 0n || iova % pageSize !== 0n || length % pageSize !== 0n || uptr === 0n)
    throw new ErrnoError('EINVAL', 'dirty: bad range or bitmap');
  const mock = mockPagingDomainOfHwpt(ictx, cmd.id);
  if (!mock.dirtyTracking) throw new ErrnoError('EINVAL', 'dirty: tracking is off');
  const max = length / pageSize;
  // One bit per page, rounded up to whole bytes (so 4 pages still read one byte). Each set bit marks
  // the mock page at the start of its page (the selftest uses page_size = MOCK_PAGE_SIZE).
  const bitmap = ucmd.userMemory.read(uptr, Number((max + 7n) / 8n));
  let count = 0n;
  for (let i = 0n; i < max; i++) {
    const byte = bitmap[Number(i >> 3n)] ?? 0;
    if (!((byte >> Number(i & 7n)) & 1)) continue;
    if (mock.markDirty(iova + i * pageSize)) count++;
  }
  cmd.dirty.out_nr_dirty = count;
  ucmd.respond();
}

// ---- accesses ----------------------------------------------------------------------------------

function testCreateAccess(cmd: IommuTestCmd, ucmd: Ucmd, ictx: IommufdCtx): void {
  const flags = cmd.create_access.flags >>> 0;
  if (flags & ~MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES)
    throw new ErrnoError('EOPNOTSUPP', 'create_access: unknown flags');
  const staccess = new SelftestAccess((flags & MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES) !== 0);
  const proc = ictx.process;
  // get_unused_fd_flags: the descriptor is taken first; until the access is set, closing it is a no-op.
  let fd: number;
  try {
    fd = proc.installFd(staccess);
  } catch {
    throw new ErrnoError('ENOMEM', 'create_access: no free descriptor');
  }
  let access: ReturnType<typeof iommufdAccessCreate>;
  try {
    access = iommufdAccessCreate(ictx, staccess.ops);
  } catch (e) {
    proc.close(fd);
    throw e;
  }
  try {
    iommufdAccessAttach(access, cmd.id);
    cmd.create_access.out_access_fd = fd;
    ucmd.respond();
  } catch (e) {
    iommufdAccessDestroy(access);
    proc.close(fd);
    throw e;
  }
  staccess.access = access;
}

function testAccessReplaceIoas(cmd: IommuTestCmd, ictx: IommufdCtx): void {
  const staccess = selftestAccessGet(ictx, cmd.id);
  iommufdAccessReplace(staccess.access!, cmd.access_replace_ioas.ioas_id);
}

function testDestroyAccessPages(cmd: IommuTestCmd, ictx: IommufdCtx): void {
  selftestAccessGet(ictx, cmd.id).destroyItem(cmd.destroy_access_pages.access_pages_id);
}

function testAccessPages(cmd: IommuTestCmd, ucmd: Ucmd, ictx: IommufdCtx): void {
  const { length, uptr } = cmd.access_pages;
  let { iova } = cmd.access_pages;
  const flags = cmd.access_pages.flags >>> 0;
  if (length > ACCESS_LENGTH_MAX) throw new ErrnoError('ENOMEM', 'access_pages: length above 16 MiB');
  if (flags & ~(MOCK_FLAGS_ACCESS_WRITE | MOCK_FLAGS_ACCESS_SYZ))
    throw new ErrnoError('EOPNOTSUPP', 'access_pages: unknown flags');
  const staccess = selftestAccessGet(ictx, cmd.id);
  const access = staccess.access!;
  if (!staccess.ops.needsPinPages) throw new ErrnoError('EOPNOTSUPP', 'access_pages: access cannot pin');
  if (flags & MOCK_FLAGS_ACCESS_SYZ) iova = syzIova(staccess, iova);
  const pages = iommufdAccessPinPages(
    access,
    iova,
    length,
    flags & MOCK_FLAGS_ACCESS_WRITE ? IOMMUFD_ACCESS_RW_WRITE : 0,
  );
  try {
    if (uptr !== 0n) {
      // iommufd_test_check_pages: the pinned pages are the user's pages.
      let va = uptr - (iova % PAGE);
      for (const pa of pages) {
        const want = userPagePhys(ictx.process, va);
        if (Math.floor(pa / PAGE_SIZE) !== Math.floor(want / PAGE_SIZE))
          throw new ErrnoError('EBADE', `access_pages: page at 0x${va.toString(16)} differs`);
        va += PAGE;
      }
    }
  } catch (e) {
    iommufdAccessUnpinPages(access, iova, length);
    throw e;
  }
  const item = { iova, length, id: staccess.nextId++ };
  staccess.items.push(item);
  cmd.access_pages.out_access_pages_id = item.id;
  try {
    ucmd.respond();
  } catch (e) {
    staccess.items.splice(staccess.items.indexOf(item), 1);
    iommufdAccessUnpinPages(access, iova, length);
    throw e;
  }
}

function testAccessRw(cmd: IommuTestCmd, ucmd: Ucmd, ictx: IommufdCtx): void {
  const { length, uptr } = cmd.access_rw;
  let { iova } = cmd.access_rw;
  const flags = cmd.access_rw.flags >>> 0;
  if (length > ACCESS_LENGTH_MAX) throw new ErrnoError('ENOMEM', 'access_rw: length above 16 MiB');
  if (flags & ~(MOCK_ACCESS_RW_WRITE | MOCK_ACCESS_RW_SLOW_PATH | MOCK_FLAGS_ACCESS_SYZ))
    throw new ErrnoError('EOPNOTSUPP', 'access_rw: unknown flags');
  const staccess = selftestAccessGet(ictx, cmd.id);
  const write = (flags & MOCK_ACCESS_RW_WRITE) !== 0;
  const data = write ? ucmd.userMemory.read(uptr, Number(length)) : new Uint8Array(Number(length));
  if (flags & MOCK_FLAGS_ACCESS_SYZ) iova = syzIova(staccess, iova);
  iommufdAccessRw(staccess.access!, iova, data, flags & ~MOCK_FLAGS_ACCESS_SYZ);
  if (!write) ucmd.userMemory.write(uptr, data);
}

// ---- faults and PASIDs ---------------------------------------------------------------------------

function testTriggerIopf(cmd: IommuTestCmd, ictx: IommufdCtx): void {
  const { dev_id: devId, pasid, grpid, perm, addr } = cmd.trigger_iopf;
  const idev = iommufdGetDevice(ictx, devId);
  let flags = IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE;
  if (pasid !== IOMMU_NO_PASID) flags |= IOMMU_FAULT_PAGE_REQUEST_PASID_VALID;
  iommuReportDeviceFault(idev.dev, {
    type: IommuFaultType.PAGE_REQ,
    prm: { flags, pasid, grpid, perm, addr, privateData: [0n, 0n] },
  });
}

function testTriggerVevent(cmd: IommuTestCmd, ictx: IommufdCtx): void {
  iommufdGetDevice(ictx, cmd.trigger_vevent.dev_id);
  throw new ErrnoError('ENOENT', 'trigger_vevent: the device has no vDEVICE (no vIOMMU in this model)');
}

function testPasidCheckHwpt(cmd: IommuTestCmd, ictx: IommufdCtx): void {
  const sobj = selftestObjGet(ictx, cmd.id);
  const dev = sobj.mockDev!;
  const { pasid, hwpt_id: hwptId } = cmd.pasid_check;
  const attached = ictx.iommu.iommuGetDomainForDevPasid(dev, pasid, 0);
  if (attached === null && hwptId === 0) return;
  if (attached === null || hwptId === 0) throw new ErrnoError('EINVAL', 'pasid_check: mismatch');
  const domain = hwptDomain(ictx, hwptId, IommufdObjectType.ANY);
  if (domain !== attached) throw new ErrnoError('EINVAL', 'pasid_check: another domain is attached');
}

function testPasidUnsupported(cmd: IommuTestCmd, ictx: IommufdCtx): void {
  selftestObjGet(ictx, cmd.id);
  throw new ErrnoError('EOPNOTSUPP', 'PASID attach/replace/detach is not modelled by the device API');
}

// ---- dispatch ----------------------------------------------------------------------------------

/**
 * `iommufd_test(ucmd)`: run one `IOMMU_TEST_CMD` operation.
 * @param cmd - the decoded `iommu_test_cmd`
 * @param ucmd - the call (user memory, copy-out)
 * @param ictx - the context
 * @throws ErrnoError per operation (see the uAPI documentation of each `IOMMU_TEST_OP_*`);
 *   `EOPNOTSUPP` for an unknown `op`
 */
export function iommufdTest(cmd: IommuTestCmd, ucmd: Ucmd, ictx: IommufdCtx): void {
  switch (cmd.op) {
    case IOMMU_TEST_OP_ADD_RESERVED:
      testAddReserved(cmd, ictx);
      return;
    case IOMMU_TEST_OP_MOCK_DOMAIN:
    case IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS:
      testMockDomain(cmd, ucmd, ictx);
      return;
    case IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE:
      testMockDomainReplace(cmd, ucmd, ictx);
      return;
    case IOMMU_TEST_OP_MD_CHECK_MAP:
      testMdCheckMap(cmd, ictx);
      return;
    case IOMMU_TEST_OP_MD_CHECK_REFS:
      testMdCheckRefs(cmd, ictx);
      return;
    case IOMMU_TEST_OP_MD_CHECK_IOTLB:
      testMdCheckIotlb(cmd, ictx);
      return;
    case IOMMU_TEST_OP_DEV_CHECK_CACHE:
      testDevCheckCache(cmd, ictx);
      return;
    case IOMMU_TEST_OP_CREATE_ACCESS:
      testCreateAccess(cmd, ucmd, ictx);
      return;
    case IOMMU_TEST_OP_ACCESS_REPLACE_IOAS:
      testAccessReplaceIoas(cmd, ictx);
      return;
    case IOMMU_TEST_OP_ACCESS_PAGES:
      testAccessPages(cmd, ucmd, ictx);
      return;
    case IOMMU_TEST_OP_ACCESS_RW:
      testAccessRw(cmd, ucmd, ictx);
      return;
    case IOMMU_TEST_OP_DESTROY_ACCESS_PAGES:
      testDestroyAccessPages(cmd, ictx);
      return;
    case IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT:
      setTempMemoryLimit(cmd.memory_limit.limit);
      return;
    case IOMMU_TEST_OP_DIRTY:
      testDirty(cmd, ucmd, ictx);
      return;
    case IOMMU_TEST_OP_TRIGGER_IOPF:
      testTriggerIopf(cmd, ictx);
      return;
    case IOMMU_TEST_OP_TRIGGER_VEVENT:
      testTriggerVevent(cmd, ictx);
      return;
    case IOMMU_TEST_OP_PASID_CHECK_HWPT:
      testPasidCheckHwpt(cmd, ictx);
      return;
    case IOMMU_TEST_OP_PASID_ATTACH:
    case IOMMU_TEST_OP_PASID_REPLACE:
    case IOMMU_TEST_OP_PASID_DETACH:
      testPasidUnsupported(cmd, ictx);
      return;
    default:
      throw new ErrnoError('EOPNOTSUPP', `unknown selftest op ${cmd.op}`);
  }
}

/**
 * IOMMU_TEST_CMD's table entry (`IOCTL_OP(IOMMU_TEST_CMD, iommufd_test, struct iommu_test_cmd,
 * last)`): minimum size 68; the operations copy out themselves.
 */
export const iommuTestCmdOp = defineIoctlOp(
  iommuTestCommand,
  (cmd, ucmd, ictx: IommufdCtx) => iommufdTest(cmd, ucmd, ictx),
  { respond: false },
);
