export {
  ALIGN,
  ALIGN_DOWN,
  BIT,
  BIT_ULL,
  FIELD_FIT,
  FIELD_GET,
  FIELD_GET32,
  FIELD_PREP,
  FIELD_PREP32,
  GENMASK,
  GENMASK_ULL,
  IS_ALIGNED,
  isPowerOf2,
  U32_MAX,
  U64_MAX,
  u64CheckedAdd,
  u64FieldGet,
  u64FieldSet,
  u64FromHalves,
  u64Hi,
  u64Lo,
} from './bits.js';
export { ERRNO, type ErrnoCode, ErrnoError, errnoName, isErrnoError, MAX_ERRNO } from './errno.js';
export { type FaultInjectionCall, FaultInjector, faultInjector, shouldFail } from './fault-inject.js';
export {
  _IO,
  _IOC,
  _IOC_DIR,
  _IOC_DIRBITS,
  _IOC_DIRMASK,
  _IOC_DIRSHIFT,
  _IOC_NONE,
  _IOC_NR,
  _IOC_NRBITS,
  _IOC_NRMASK,
  _IOC_NRSHIFT,
  _IOC_READ,
  _IOC_SIZE,
  _IOC_SIZEBITS,
  _IOC_SIZEMASK,
  _IOC_SIZESHIFT,
  _IOC_TYPE,
  _IOC_TYPEBITS,
  _IOC_TYPEMASK,
  _IOC_TYPESHIFT,
  _IOC_WRITE,
  _IOR,
  _IOW,
  _IOWR,
  type IoctlSize,
  type IoctlType,
} from './ioctl.js';
export { type IrqHandler, type IrqLine, IrqReturn, type RequestIrqOptions } from './irq.js';
export { Prng } from './prng.js';
export type { TaskHandle, TaskState } from './sched-core.js';
export {
  type SchedTaskRunEvent,
  type TaskKind,
  traceSchedTaskRun,
  traceWorkqueueQueueWork,
  type WorkqueueQueueWorkEvent,
} from './sched-trace.js';
export { DEFAULT_MAX_STEPS, type RunOptions, Scheduler, type SchedulerOptions } from './scheduler.js';
export * from './sizes.js';
export type { Timer, TimerFn } from './timer.js';
export {
  defineTracepoint,
  getTracepoint,
  listTracepoints,
  subscribeTracepoint,
  type Tracepoint,
  type TracepointProbe,
} from './tracepoint.js';
export {
  checkArgsz,
  copyStructFromUser,
  copyStructToUser,
  defineUapiStruct,
  type UapiElementValue,
  type UapiFieldDef,
  type UapiFieldValue,
  type UapiScalarType,
  type UapiScalarValue,
  type UapiStruct,
  type UapiStructDef,
  type UapiStructValue,
} from './uapi-struct.js';
export {
  cancelDelayedWork,
  cancelDelayedWorkSync,
  cancelWork,
  cancelWorkSync,
  DelayedWork,
  flushDelayedWork,
  flushWork,
  Work,
  type Workqueue,
  type WorkqueueOptions,
  WQ_DFL_ACTIVE,
} from './workqueue.js';
