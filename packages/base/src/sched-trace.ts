/**
 * The scheduler's own tracepoints and their event shapes (after include/trace/events/sched.h and
 * include/trace/events/workqueue.h).
 */

import { defineTracepoint, type Tracepoint } from './tracepoint.js';

/**
 * What a scheduler task is running:
 * `'task'` a function given to `Scheduler.spawn`; `'work'` a work item;
 * `'timer'` a timer callback; `'irq'` a primary (hard) interrupt handler; `'irq-thread'` a
 * threaded interrupt handler.
 */
export type TaskKind = 'task' | 'work' | 'timer' | 'irq' | 'irq-thread';

/** The event of {@link traceSchedTaskRun}: one task about to run. */
export interface SchedTaskRunEvent {
  /** `Scheduler.id` of the scheduler running the task (several may exist in one process). */
  readonly schedulerId: number;
  /** The task's name, for example `'events:my_work'`, `'irq:smmu-evtq'`. */
  readonly name: string;
  /** What kind of task it is. */
  readonly kind: TaskKind;
  /** Virtual time when the task starts, in nanoseconds. */
  readonly now: number;
  /**
   * The scheduler step number (1 for the first step). A task run nested inside another (by a
   * flush, cancel-sync or synchronize) carries the step of the task it is nested in.
   */
  readonly step: number;
  /** 0 for a task the scheduler picked; 1 or more for a task run nested on another's stack. */
  readonly depth: number;
}

/** The event of {@link traceWorkqueueQueueWork}: a work item put on a workqueue. */
export interface WorkqueueQueueWorkEvent {
  /** `Scheduler.id` of the workqueue's scheduler. */
  readonly schedulerId: number;
  /** The workqueue's name. */
  readonly workqueue: string;
  /** The work item's name. */
  readonly work: string;
  /** Virtual time of the queueing, in nanoseconds. */
  readonly now: number;
}

/**
 * `sched_task_run`: fired each time any scheduler runs a task, top-level or nested (a stand-in for
 * include/trace/events/sched.h's `sched_switch`). Subscribe to record the exact interleaving.
 */
export const traceSchedTaskRun: Tracepoint<SchedTaskRunEvent> =
  defineTracepoint<SchedTaskRunEvent>('sched_task_run');

/**
 * `workqueue_queue_work`: fired when a work item is queued (include/trace/events/workqueue.h),
 * including when a delayed work's timer expires and queues it.
 */
export const traceWorkqueueQueueWork: Tracepoint<WorkqueueQueueWorkEvent> =
  defineTracepoint<WorkqueueQueueWorkEvent>('workqueue_queue_work');
