/**
 * The `/dev/ioasid` flows of the fail_nth harness (the ioasid RFC's user interface): open (the
 * process's MM-type IOASID set), IOASID_GET_INFO, IOASID_REQUEST_ALLOC and IOASID_REQUEST_FREE.
 * There is no RAM here: the "pages" of the run are its live IOASIDs and sets, which teardown must
 * bring back to zero.
 */

import {
  IOASID_GET_INFO,
  IOASID_REQUEST_ALLOC,
  IOASID_REQUEST_FREE,
  IoasidSubsystem,
  type IoasidTask,
  IoasidUserDevice,
  type IoasidUserFile,
} from '@iommu-ts/ioasid';
import type { FailNthFlow, FailNthRun, FailNthStep } from './flow.js';

/** One `/dev/ioasid` fail_nth environment. */
class IoasidEnv implements FailNthRun {
  readonly sub = new IoasidSubsystem();
  readonly dev = new IoasidUserDevice(this.sub);
  readonly task: IoasidTask = { pid: 100, mm: { pid: 100 } };
  readonly baselinePages = 0;
  readonly steps: FailNthStep[] = [];
  readonly ids: number[] = [];
  file: IoasidUserFile | null = null;

  step(label: string, fn: () => void): this {
    this.steps.push({ label, fn });
    return this;
  }

  open(): void {
    this.file = this.dev.open(this.task);
  }

  get f(): IoasidUserFile {
    if (this.file === null) throw new Error('/dev/ioasid not open');
    return this.file;
  }

  alloc(min = 10, max = 20): void {
    this.ids.push(this.f.ioctl(IOASID_REQUEST_ALLOC, { argsz: 16, flags: 0, range: { min, max } }));
  }

  private liveIds(): number[] {
    const ids: number[] = [];
    if (this.file !== null && !this.file.closed) this.file.forEachId((id) => ids.push(id));
    return ids;
  }

  snapshot(): string {
    const ids = this.liveIds();
    const info = ids.map((id) => JSON.stringify(this.sub.ioasidInfo(id) ?? null));
    return [
      `open ${this.dev.fileOf(this.task) !== undefined}`,
      `set ${this.sub.findMmSet(this.task.mm as object) !== undefined}`,
      `capacity ${this.sub.capacityAvail}`,
      `ids ${ids}`,
      ...info,
    ].join('\n');
  }

  teardown(): void {
    this.file?.close();
  }

  allocatedPages(): number {
    return this.liveIds().length + (this.sub.findMmSet(this.task.mm as object) === undefined ? 0 : 1);
  }

  warnings(): readonly string[] {
    return [];
  }
}

/** A `/dev/ioasid` flow. */
function flow(name: string, build: (e: IoasidEnv) => void): FailNthFlow {
  return {
    name: `ioasid: ${name}`,
    file: 'ioasid',
    setup() {
      const e = new IoasidEnv();
      build(e);
      return e;
    },
  };
}

/** Every `/dev/ioasid` flow. */
export function ioasidFlows(): FailNthFlow[] {
  return [
    flow('open + IOASID_GET_INFO', (e) => {
      e.step('open /dev/ioasid', () => e.open());
      e.step('IOASID_GET_INFO', () => e.f.ioctl(IOASID_GET_INFO, { argsz: 12, flags: 0, ioasid_bits: 0 }));
    }),
    flow('IOASID_REQUEST_ALLOC', (e) => {
      e.open();
      e.alloc();
      e.step('IOASID_REQUEST_ALLOC', () => e.alloc());
    }),
    flow('IOASID_REQUEST_ALLOC + IOASID_REQUEST_FREE', (e) => {
      e.open();
      e.step('IOASID_REQUEST_ALLOC', () => e.alloc());
      e.step('IOASID_REQUEST_FREE', () => e.f.ioctl(IOASID_REQUEST_FREE, e.ids[0] as number));
    }),
  ];
}
