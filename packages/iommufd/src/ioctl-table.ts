/**
 * The command table of an iommufd file (`iommufd_ioctl_ops[]` in drivers/iommu/iommufd/main.c):
 * every command of the uAPI with its handler, plus IOMMU_TEST_CMD in selftest contexts.
 *
 * The handlers live beside the objects they work on (ioas-ioctls.ts, hwpt-ioctls.ts,
 * selftest/test-cmd.ts); this file only puts them together with IOMMU_DESTROY.
 */

import { ErrnoError } from '@iommu-ts/base';
import { hwptIoctlOps } from './hwpt-ioctls.js';
import { ioasIoctlOps } from './ioas-ioctls.js';
import {
  createIoctlTable,
  defineIoctlOp,
  type IommufdIoctlFallback,
  type IommufdIoctlOp,
  type IommufdIoctlTable,
} from './ioctl-dispatch.js';
import type { IommufdCtx } from './main.js';
import { iommuTestCmdOp } from './selftest/test-cmd.js';
import { iommuDestroyCommand, iommufdUapiCommands } from './uapi-structs.js';

/** IOMMU_DESTROY: `iommufd_destroy`. ENOENT for an absent ID, EBUSY for an object in use. */
const destroyOp = defineIoctlOp(
  iommuDestroyCommand,
  (cmd, _ucmd, ictx: IommufdCtx) => {
    ictx.objectRemove(cmd.id);
  },
  { respond: false },
);

/**
 * Build the table for a context.
 * @param selftest - include IOMMU_TEST_CMD (which extends the table to 0xa0)
 * @param fallback - handler of the requests below 0x80 and past the table (the VFIO container
 *   ioctls); without one they are ENOTTY
 * @returns the table
 */
export function iommufdIoctlTable(
  selftest: boolean,
  fallback?: IommufdIoctlFallback<IommufdCtx>,
): IommufdIoctlTable<IommufdCtx> {
  const ops: IommufdIoctlOp<object, IommufdCtx>[] = [
    destroyOp as IommufdIoctlOp<object, IommufdCtx>,
    ...ioasIoctlOps,
    ...hwptIoctlOps,
  ];
  // Commands without a handler yet are still in the table (so it ends where Linux's ends), and
  // report EOPNOTSUPP after the generic size checks.
  const have = new Set(ops.map((op) => op.request >>> 0));
  for (const command of iommufdUapiCommands) {
    if (have.has(command.request >>> 0)) continue;
    ops.push(
      defineIoctlOp(
        command,
        () => {
          throw new ErrnoError('EOPNOTSUPP', `${command.name} is not modelled`);
        },
        { respond: false },
      ) as IommufdIoctlOp<object, IommufdCtx>,
    );
  }
  if (selftest) ops.push(iommuTestCmdOp as IommufdIoctlOp<object, IommufdCtx>);
  return createIoctlTable({ ops, ...(fallback === undefined ? {} : { fallback }) });
}
