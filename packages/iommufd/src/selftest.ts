// Selftest mock driver and IOMMU_TEST_CMD: re-exports only.

// uAPI
export * from './selftest-uapi.js';

// end uAPI

export { mockDevCreate, mockDevDestroy } from './selftest/mock-dev-create.js';
// mock IOMMU driver
export {
  iommufdSelftestIsMockDev,
  MOCK_FLAGS_DEVICE_ALL,
  MockDevice,
} from './selftest/mock-device.js';
export {
  type MockDomainContext,
  MockIommuDomain,
  MockIommuDomainNested,
  type MockPfnEntry,
  mockBlockingDomainCreate,
  mockDirtyOps,
  mockNestedDomainOps,
  mockPagingDomainOps,
} from './selftest/mock-domain.js';
export { MockIommu, type MockPageResponse, mockIommuGet, mockIommuPeek } from './selftest/mock-iommu.js';
// end mock IOMMU driver

// IOMMU_TEST_CMD
export {
  type SelftestMockDomain,
  SelftestObj,
  selftestMockDomainAbort,
  selftestMockDomainCreate,
} from './selftest/selftest-obj.js';
export { SelftestAccess, type SelftestAccessItem, selftestAccessGet } from './selftest/staccess.js';
export {
  iommufdTest,
  iommuTestCmdOp,
  mockNestedDomainOfHwpt,
  mockPagingDomainOfHwpt,
} from './selftest/test-cmd.js';
export { userPagePhys } from './selftest/user-pages.js';
// end IOMMU_TEST_CMD
