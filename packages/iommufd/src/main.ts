/**
 * The iommufd context and its object table (drivers/iommu/iommufd/main.c): one context per open
 * `/dev/iommu`, holding every object userspace or a driver created through it, each under a
 * numeric ID.
 *
 * Object IDs come from 1 to 2^31 - 1, lowest free first, so freed IDs are reused. An ID is reserved
 * while its object is built ({@link IommufdCtx.objectAlloc}); lookups and DESTROY do not see it
 * until {@link IommufdCtx.objectFinalize}. Each object counts its `users`: the table holds one, and
 * every other holder (a HWPT on its IOAS, an attached device on its HWPT, a binding driver on its
 * device) one more. DESTROY refuses an object with other users (EBUSY). When the last reference to
 * the context goes (its fd closes and no access still holds it), the objects are destroyed leaf
 * first: every object whose only user is the table, repeatedly, until the table is empty.
 *
 * Linux also counts short-term users (a lookup in progress in another thread); everything here
 * runs on one thread, so a lookup takes no reference.
 */

import { ErrnoError, shouldFail } from '@iommu-ts/base';
import type { IommuSubsystem } from '@iommu-ts/iommu-core';
import type { Process } from '@iommu-ts/mm';
import { IOPT_PAGES_ACCOUNT_USER, type IoptPagesAccountMode } from './pages.js';

/**
 * Object types (`enum iommufd_object_type`, include/linux/iommufd.h). The values are the kernel's
 * internal ones; they never cross the uAPI.
 */
export const IommufdObjectType = {
  /** `IOMMUFD_OBJ_ANY` / `IOMMUFD_OBJ_NONE`: matches every type in a lookup. */
  ANY: 0,
  /** `IOMMUFD_OBJ_DEVICE`: a device bound by a driver. */
  DEVICE: 1,
  /** `IOMMUFD_OBJ_HWPT_PAGING`: a paging domain fed from an IOAS. */
  HWPT_PAGING: 2,
  /** `IOMMUFD_OBJ_HWPT_NESTED`: a domain nested on a paging parent. */
  HWPT_NESTED: 3,
  /** `IOMMUFD_OBJ_IOAS`: an I/O address space. */
  IOAS: 4,
  /** `IOMMUFD_OBJ_ACCESS`: an in-kernel access (emulated device). */
  ACCESS: 5,
  /** `IOMMUFD_OBJ_FAULT`: a fault queue. */
  FAULT: 6,
  /** `IOMMUFD_OBJ_VIOMMU`: a virtual IOMMU. */
  VIOMMU: 7,
  /** `IOMMUFD_OBJ_VDEVICE`: a device of a virtual IOMMU. */
  VDEVICE: 8,
  /** `IOMMUFD_OBJ_VEVENTQ`: a virtual event queue. */
  VEVENTQ: 9,
  /** `IOMMUFD_OBJ_HW_QUEUE`: a hardware queue of a virtual IOMMU. */
  HW_QUEUE: 10,
  /** `IOMMUFD_OBJ_SELFTEST`: a selftest mock device (selftest kernels only). */
  SELFTEST: 11,
} as const;

/** One of the {@link (IommufdObjectType:variable)} values. */
export type IommufdObjectType = (typeof IommufdObjectType)[keyof typeof IommufdObjectType];

/** Highest object ID (`xa_limit_31b`). */
export const IOMMUFD_OBJECT_ID_MAX = 0x7fff_ffff;

/**
 * An object in an iommufd context (`struct iommufd_object`). Subclasses set the object's `type`
 * and implement {@link IommufdObject.destroy}.
 */
export abstract class IommufdObject {
  /** The object's type. */
  abstract readonly type: IommufdObjectType;
  /** The object's ID in its context, 0 until {@link IommufdCtx.objectAlloc} gives one. */
  id = 0;
  /**
   * `users`: the table's reference (1 while the object is in the table) plus one per holder.
   * {@link IommufdCtx.objectRemove} needs it to be exactly 1.
   */
  users = 1;
  /** The context the object lives in. */
  readonly ictx: IommufdCtx;

  /**
   * @param ictx - the context
   */
  protected constructor(ictx: IommufdCtx) {
    this.ictx = ictx;
  }

  /**
   * Release everything the object holds (`iommufd_object_ops.destroy`). Called once, after the
   * object left the table, when its only user was the table.
   */
  abstract destroy(): void;

  /**
   * Undo a creation that failed after {@link IommufdCtx.objectAlloc} (`ops.abort`); by default the
   * same as {@link IommufdObject.destroy}. The object must be able to undo a partial build.
   */
  abort(): void {
    this.destroy();
  }
}

/** What {@link IommufdCtx} is built from. */
export interface IommufdCtxOptions {
  /** The IOMMU subsystem devices and domains come from. */
  readonly iommu: IommuSubsystem;
  /** The process that opened the file: user pointers point into it, pins are charged to it. */
  readonly process: Process;
  /** Whether the selftest command and mock driver are available (a `CONFIG_IOMMUFD_TEST` kernel). */
  readonly selftest?: boolean;
  /**
   * Initial accounting mode: `IOPT_PAGES_ACCOUNT_USER` (as opened through `/dev/iommu`, the
   * default) or `IOPT_PAGES_ACCOUNT_MM` (as opened through the iommufd-provided `/dev/vfio/vfio`).
   */
  readonly accountMode?: IoptPagesAccountMode;
}

/**
 * An iommufd context (`struct iommufd_ctx`): the object table of one open file, its accounting
 * mode and its VFIO compatibility IOAS.
 */
export class IommufdCtx {
  /** The IOMMU subsystem. */
  readonly iommu: IommuSubsystem;
  /** The opening process (`ictx->file`'s creator). */
  readonly process: Process;
  /** Whether this is a selftest context. */
  readonly selftest: boolean;
  /**
   * `account_mode`: how pinned pages are charged; `IOPT_PAGES_ACCOUNT_USER` for "unset" (pages
   * decide, GET reports 0), `IOPT_PAGES_ACCOUNT_MM` for process accounting (GET reports 1).
   */
  accountMode: IoptPagesAccountMode;
  /** `vfio_ioas`: the IOAS of the VFIO compatibility layer, or null. */
  vfioIoas: IommufdObject | null = null;
  /** Free-form slots for layers above (e.g. the VFIO container's state), keyed by owner. */
  readonly extensions: Map<object, unknown> = new Map();
  private readonly objects: Map<number, IommufdObject | null> = new Map();
  /** No ID below this is free. */
  private idHint = 1;
  /** References on the context: the open file plus one per access (`iommufd_ctx_get`). */
  private refs = 1;
  private released = false;
  private readonly releaseHooks: (() => void)[] = [];

  /**
   * @param options - subsystem, process, selftest flag and initial accounting mode
   */
  constructor(options: IommufdCtxOptions) {
    this.iommu = options.iommu;
    this.process = options.process;
    this.selftest = options.selftest ?? false;
    this.accountMode = options.accountMode ?? IOPT_PAGES_ACCOUNT_USER;
  }

  /** Number of IDs in the table, objects under construction included. */
  get objectCount(): number {
    return this.objects.size;
  }

  /** Whether the context has been released (every reference dropped, every object destroyed). */
  get isReleased(): boolean {
    return this.released;
  }

  /**
   * Reserve the lowest free ID for an object under construction (`iommufd_object_alloc`). The ID
   * is invisible to lookups until {@link IommufdCtx.objectFinalize}.
   * @param obj - the new object; its `id` is set
   * @returns the ID
   * @throws ErrnoError `ENOSPC` when every ID up to 2^31 - 1 is taken, `ENODEV` after release,
   *   `ENOMEM` at the fail_nth point `iommufd.object_alloc` (`kzalloc` / `xa_alloc`)
   */
  objectAlloc(obj: IommufdObject): number {
    if (this.released) throw new ErrnoError('ENODEV', 'iommufd context released');
    if (shouldFail('iommufd.object_alloc')) throw new ErrnoError('ENOMEM', 'injected: object allocation');
    let id = this.idHint;
    while (this.objects.has(id)) id++;
    if (id > IOMMUFD_OBJECT_ID_MAX) throw new ErrnoError('ENOSPC', 'no free object ID');
    this.idHint = id + 1;
    this.objects.set(id, null);
    obj.id = id;
    return id;
  }

  /**
   * Make an allocated object visible (`iommufd_object_finalize`).
   * @param obj - from {@link IommufdCtx.objectAlloc}
   */
  objectFinalize(obj: IommufdObject): void {
    if (this.objects.get(obj.id) !== null) throw new Error(`object ID ${obj.id} is not reserved`);
    this.objects.set(obj.id, obj);
  }

  /**
   * Give back the ID of an object whose creation failed without destroying it
   * (`iommufd_object_abort`).
   * @param obj - from {@link IommufdCtx.objectAlloc}
   */
  objectAbort(obj: IommufdObject): void {
    if (this.objects.get(obj.id) === null) this.freeId(obj.id);
  }

  /**
   * Give back the ID of an object whose creation failed and undo its partial build
   * (`iommufd_object_abort_and_destroy`).
   * @param obj - from {@link IommufdCtx.objectAlloc}
   */
  objectAbortAndDestroy(obj: IommufdObject): void {
    obj.abort();
    this.objectAbort(obj);
  }

  private freeId(id: number): void {
    this.objects.delete(id);
    if (id < this.idHint) this.idHint = id;
  }

  /**
   * Look an object up by ID and type (`iommufd_get_object`).
   * @param id - object ID
   * @param type - the wanted type, or `IommufdObjectType.ANY`
   * @returns the object
   * @throws ErrnoError `ENOENT` if the ID is free, under construction, or of another type
   */
  getObject(id: number, type: IommufdObjectType): IommufdObject {
    const obj = this.objects.get(id);
    if (obj === undefined || obj === null || (type !== IommufdObjectType.ANY && obj.type !== type))
      throw new ErrnoError(
        'ENOENT',
        `no object ${id}${type === IommufdObjectType.ANY ? '' : ` of type ${type}`}`,
      );
    return obj;
  }

  /**
   * The object at `id` if it is finalized, else undefined (no errno; for inspection).
   * @param id - object ID
   */
  peekObject(id: number): IommufdObject | undefined {
    return this.objects.get(id) ?? undefined;
  }

  /** The finalized objects in ID order (for inspection and tests). */
  listObjects(): IommufdObject[] {
    const out: IommufdObject[] = [];
    for (const obj of this.objects.values()) if (obj !== null) out.push(obj);
    return out.sort((a, b) => a.id - b.id);
  }

  /**
   * Remove an object from the table and destroy it, if the table's reference is its only one
   * (`iommufd_object_remove`, the IOMMU_DESTROY path).
   * @param id - object ID
   * @param type - required type, or `IommufdObjectType.ANY`
   * @throws ErrnoError `ENOENT` (no such object or wrong type), `EBUSY` (other users)
   */
  objectRemove(id: number, type: IommufdObjectType = IommufdObjectType.ANY): void {
    const obj = this.getObject(id, type);
    if (obj.users !== 1) throw new ErrnoError('EBUSY', `object ${id} is in use`);
    this.objects.delete(id);
    if (id < this.idHint) this.idHint = id;
    obj.users = 0;
    obj.destroy();
  }

  /**
   * Drop a driver's reference and destroy the object (`iommufd_object_destroy_user`, used by
   * device unbind and access destroy). Every other holder must be gone by then.
   * @param obj - an object the caller holds one reference on besides the table's
   * @throws Error if other users remain (a leak in the caller: Linux would wait forever)
   */
  objectDestroyUser(obj: IommufdObject): void {
    obj.users--;
    if (this.objects.get(obj.id) !== obj) return;
    if (obj.users !== 1) throw new Error(`object ${obj.id} still has ${obj.users - 1} users at destroy`);
    this.objects.delete(obj.id);
    if (obj.id < this.idHint) this.idHint = obj.id;
    obj.users = 0;
    obj.destroy();
  }

  /**
   * Take a reference on the context (`iommufd_ctx_get`): it survives the fd's close until the
   * reference is dropped.
   */
  get(): void {
    if (this.released) throw new Error('iommufd context already released');
    this.refs++;
  }

  /**
   * Drop a reference (`iommufd_ctx_put`); the last one releases the context as the fd's release
   * does: every object is destroyed leaf first.
   */
  put(): void {
    if (this.released) return;
    if (--this.refs > 0) return;
    this.release();
  }

  /**
   * Run `fn` when the context is released, after every object is destroyed.
   * @param fn - callback
   */
  onRelease(fn: () => void): void {
    this.releaseHooks.push(fn);
  }

  /** `iommufd_fops_release`: destroy objects whose only user is the table until none is left. */
  private release(): void {
    for (;;) {
      let destroyed = false;
      for (const [id, obj] of [...this.objects]) {
        if (obj === null || obj.users !== 1 || this.objects.get(id) !== obj) continue;
        this.objects.delete(id);
        obj.users = 0;
        obj.destroy();
        destroyed = true;
      }
      if (!destroyed || this.objects.size === 0) break;
    }
    this.released = true;
    this.vfioIoas = null;
    for (const fn of this.releaseHooks.splice(0)) fn();
  }
}
