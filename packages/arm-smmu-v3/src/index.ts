/**
 * @packageDocumentation
 * Arm SMMUv3 modelled down to the hardware (`hw/`: registers, stream table, context descriptors,
 * command/event/PRI queues, TLB and configuration caches), its Linux-style driver (`driver/`) and
 * the IORT / device-tree firmware that describes it (`firmware/`).
 */

export * from './driver/arm-smmu-device.js';
export { armSmmuDeviceProbe, armSmmuOps } from './driver/arm-smmu-ops.js';
export * from './driver/cd.js';
export * from './driver/cmdq.js';
export {
  type ArmSmmuAttachedMaster,
  ArmSmmuDomain,
  ArmSmmuDomainStage,
  type ArmSmmuDomainTestHooks,
  type ArmSmmuMasterDomain,
  armSmmuAtcInvDomain,
  armSmmuAtcInvToCmd,
  armSmmuDbmCapable,
  armSmmuDefaultDomainOps,
  armSmmuDomainAllocPaging,
  armSmmuDomainAllocPagingFlags,
  armSmmuDomainFinalise,
  armSmmuDomainFreePaging,
  armSmmuTlbInvContext,
  armSmmuTlbInvRangeDomain,
  toSmmuDomain,
} from './driver/domain.js';
export * from './driver/entry-writer.js';
export * from './driver/events.js';
export * from './driver/firmware-glue.js';
export * from './driver/gerror.js';
export * from './driver/iommufd.js';
export * from './driver/master.js';
export * from './driver/master-state.js';
export * from './driver/priq.js';
export { queueRemoveRaw, queueSyncConsOvf, queueSyncProdIn } from './driver/queue.js';
export * from './driver/ste.js';
export * from './driver/sva.js';
export * from './driver/sva-iopf.js';
export {
  deviceTreeTopology,
  FDT_MAGIC,
  type FdtNode,
  type FdtReserveEntry,
  FdtToken,
  type FlattenedDeviceTree,
  parseFdt,
  readCells,
  readStringList,
} from './firmware/device-tree.js';
export {
  IORT_ATS_SUPPORTED,
  IORT_ID_SINGLE_MAPPING,
  IORT_NC_PASID_BITS_MASK,
  IORT_NC_STALL_SUPPORTED,
  IORT_PASID_FWD_SUPPORTED,
  IORT_PRI_SUPPORTED,
  IORT_SMMU_V3_CAVIUM_CN99XX,
  IORT_SMMU_V3_COHACC_OVERRIDE,
  IORT_SMMU_V3_DEVICEID_VALID,
  IORT_SMMU_V3_GENERIC,
  IORT_SMMU_V3_HISILICON_HI161X,
  IORT_SMMU_V3_HTTU_OVERRIDE_MASK,
  IORT_SMMU_V3_PXM_VALID,
  type IortIdMapping,
  type IortItsGroupNode,
  type IortMemoryAccess,
  type IortNamedComponentNode,
  type IortNode,
  type IortNodeCommon,
  IortNodeType,
  type IortOtherNode,
  type IortRmrDescriptor,
  type IortRmrNode,
  type IortRootComplexNode,
  type IortSmmuV3Node,
  type IortTable,
  iortMapId,
  iortMapPlatformId,
  iortTopology,
  parseIort,
} from './firmware/iort.js';
export { parseIaslRawTableData } from './firmware/iort-asl.js';
export type {
  FirmwareSource,
  FirmwareTopology,
  PciRootComplexFirmware,
  PlatformMasterFirmware,
  ReservedMemoryRangeFirmware,
  SmmuFirmwareHttu,
  SmmuFirmwareInstance,
  SmmuFirmwareIrqs,
  SmmuFirmwareOptions,
  SmmuFwspec,
} from './firmware/topology.js';
export {
  type CdFetchFailure,
  type CdFetchResult,
  type CdIpaTranslate,
  cdAddress,
  cdFetchFailure,
  cdLeafBits,
  decodeL1cd,
  encodeL1cd,
  fetchCd,
  L1CD_SIZE,
  type L1cd,
  l1cdAddress,
  readCd,
  readL1cd,
  type SubstreamFailure,
  type SubstreamSelection,
  selectSubstream,
} from './hw/cd-table.js';
export {
  decodeSmmuCommand,
  encodeSmmuCommand,
  type SmmuCmdAtcInv,
  type SmmuCmdCfgiCd,
  type SmmuCmdCfgiCdAll,
  type SmmuCmdCfgiSte,
  type SmmuCmdCfgiSteRange,
  type SmmuCmdPrefetch,
  type SmmuCmdPriResp,
  type SmmuCmdqHost,
  type SmmuCmdqStats,
  type SmmuCmdResume,
  type SmmuCmdStallTerm,
  type SmmuCmdSync,
  type SmmuCmdTlbiAll,
  type SmmuCmdTlbiVa,
  type SmmuCommand,
  type SmmuCommandInit,
  type SmmuCommandName,
  SmmuCommandQueue,
  type SmmuConfigInvalidator,
  smmuCommandIllegal,
  smmuCommandName,
} from './hw/cmdq.js';
export {
  SmmuConfigCache,
  type SmmuConfigCacheOptions,
  type SmmuConfigCacheStats,
} from './hw/config-cache.js';
export {
  type BadCdReason,
  CD_FIELDS_ZERO,
  CD_SIZE,
  type Cd,
  type CdDecodeResult,
  type CdFields,
  checkCd,
  decodeCd,
  decodeCdFields,
  encodeCd,
  tg1GranuleShift,
} from './hw/context-descriptor.js';
export {
  decodeSmmuEvent,
  encodeSmmuEvent,
  SMMU_EVENT_CLASS,
  SMMU_EVENT_CODE,
  SMMU_EVENT_RECORD_SIZE,
  SMMU_FETCH_EVENTS,
  SMMU_TRANSLATION_FAULTS,
  type SmmuEvent,
  type SmmuEventClass,
  type SmmuEventFields,
  type SmmuEventType,
  smmuEvent,
  smmuEventTypeName,
} from './hw/events.js';
export { SmmuEventQueue, type SmmuEventRecordResult } from './hw/evtq.js';
export { SmmuOutputQueue, type SmmuOutputQueueHost, type SmmuQueuePushResult } from './hw/output-queue.js';
export {
  decodeSmmuPriRecord,
  encodeSmmuPriRecord,
  SMMU_PRI_RECORD_SIZE,
  type SmmuPageRequestResult,
  SmmuPriQueue,
  type SmmuPriQueueHost,
  type SmmuPriRecord,
  smmuPriRecordFromMessage,
} from './hw/priq.js';
export * from './hw/regs.js';
export {
  type SmmuIrqLines,
  type SmmuMsiRecord,
  SmmuV3Model,
  type SmmuV3ModelOptions,
  type SmmuV3Stats,
  smmuEventFaultReason,
} from './hw/smmu.js';
export {
  resolveSmmuHwConfig,
  SMMU_HW_CONFIG_DEFAULTS,
  SMMU_OAS_BITS,
  type SmmuHttu,
  type SmmuHwConfig,
  type SmmuIdrs,
  type SmmuOasBits,
  type SmmuStallModel,
  type SmmuTlbReplacement,
  type SmmuTtf,
  smmuIas,
  smmuIdrs,
  smmuOasDecode,
  smmuOasEncode,
} from './hw/smmu-config.js';
export {
  type BadSteReason,
  checkSte,
  decodeSte,
  decodeSteFields,
  encodeSte,
  STE_CONFIG,
  STE_FIELDS_ZERO,
  STE_S1DSS,
  STE_S1FMT,
  STE_SIZE,
  STE_STRW,
  type Ste,
  type SteDecodeResult,
  type SteFields,
  type SteKind,
  s2StartLevel,
  steWordsToDwords,
  tg0GranuleShift,
} from './hw/ste.js';
export {
  decodeL1std,
  encodeL1std,
  fetchSte,
  isBusError,
  L1STD_SIZE,
  type L1std,
  l1stdAddress,
  l2SteAddress,
  readL1std,
  readSte,
  readStructWords,
  type SteFetchFailure,
  type SteFetchResult,
  type StreamTableConfig,
  type StreamTableFormat,
  steFetchFailure,
  streamTableConfig,
  streamTableSidBits,
} from './hw/stream-table.js';
export {
  SmmuTlb,
  SmmuTlbEntry,
  type SmmuTlbOptions,
  type SmmuTlbStats,
  TLB_PERM_ALL,
  TLB_PERM_PR,
  TLB_PERM_PW,
  TLB_PERM_PX,
  TLB_PERM_UR,
  TLB_PERM_UW,
  TLB_PERM_UX,
  TLB_REGIME_EL2,
  TLB_REGIME_NS_EL1,
  type TlbEntryInit,
  type TlbEntryStage,
  type TlbiIpaRange,
  type TlbiVaRange,
  type TlbRegime,
  tlbPermBit,
  tlbTag,
} from './hw/tlb.js';
export {
  SMMU_TRANSLATOR_DEFAULT_STATE,
  type SmmuAtsRequest,
  type SmmuAtsResult,
  type SmmuTransaction,
  type SmmuTranslationAbort,
  type SmmuTranslationBypass,
  type SmmuTranslationFault,
  type SmmuTranslationOk,
  type SmmuTranslationResult,
  type SmmuTranslationSuccessBase,
  SmmuTranslator,
  type SmmuTranslatorConfigSource,
  type SmmuTranslatorGlobalState,
  type SmmuTranslatorOptions,
} from './hw/translate.js';
export {
  stage1Perm,
  stage1StartLevel,
  stage2Perm,
  type TableIpaTranslator,
  type WalkAccess,
  type WalkFailure,
  type WalkFaultType,
  type WalkParams,
  type WalkResult,
  type WalkSuccess,
  walk,
  walkFailure,
} from './hw/walk.js';
