/**
 * The used-bits entry writer shared by STEs and CDs: Linux's `arm_smmu_write_entry` and its
 * helpers (`arm_smmu_entry_qword_diff`, `arm_smmu_write_entry_step`) in arm-smmu-v3.c
 * (spec §8.4).
 */

/** Number of 64-bit words in an STE or a CD (`NUM_ENTRY_QWORDS`). */
export const NUM_ENTRY_QWORDS = 8;

/**
 * Where an entry lives and how to make a change of it visible to the SMMU
 * (`struct arm_smmu_entry_writer_ops` plus the entry pointer).
 */
export interface ArmSmmuEntryWriterOps {
  /**
   * `get_used`: the mask of the bits the SMMU reads for `entry` in its current configuration.
   * @param entry - 8 qwords (u64 each)
   * @returns 8 mask qwords
   */
  getUsed(entry: readonly bigint[]): bigint[];
  /** `sync`: invalidate the SMMU's cached copy of the entry and wait (CFGI_* + CMD_SYNC). */
  sync(): void;
  /**
   * Read qword `index` (0..7) of the live entry from memory.
   * @returns the u64 value
   */
  readQword(index: number): bigint;
  /**
   * Store qword `index` (0..7) of the live entry with one 64-bit write (`WRITE_ONCE`).
   * @param index - 0..7
   * @param value - u64
   */
  writeQword(index: number, value: bigint): void;
}

/**
 * `arm_smmu_write_entry(writer, entry, target)`: move the live entry to `target` so the SMMU
 * never sees a mix of both that it would use: no change, a hitless update (one critical qword:
 * unused bits, then the critical qword, then the rest, each step followed by `sync` if it changed
 * memory) or a breaking update (V=0, qwords 1..7, qword 0).
 * @param ops - memory access, used-bits function and sync
 * @param target - the 8 qwords wanted
 */
export function armSmmuWriteEntry(ops: ArmSmmuEntryWriterOps, target: readonly bigint[]): void {
  const current: bigint[] = [];
  for (let i = 0; i < NUM_ENTRY_QWORDS; i++) current.push(ops.readQword(i));
  const { diff, unusedUpdate } = armSmmuEntryQwordDiff(ops, current, target);
  const critical = criticalQwords(diff);
  if (critical.length === 1) {
    const index = critical[0] as number;
    // Hitless: the critical qword keeps its value while the unused bits of the others change.
    unusedUpdate[index] = current[index] as bigint;
    entrySet(ops, current, unusedUpdate, 0, NUM_ENTRY_QWORDS);
    entrySet(ops, current, target, index, 1);
    entrySet(ops, current, target, 0, NUM_ENTRY_QWORDS);
  } else if (critical.length > 1) {
    // Breaking: V=0 first, then everything but qword 0, then qword 0.
    unusedUpdate[0] = 0n;
    entrySet(ops, current, unusedUpdate, 0, 1);
    entrySet(ops, current, target, 1, NUM_ENTRY_QWORDS - 1);
    entrySet(ops, current, target, 0, 1);
  } else {
    entrySet(ops, current, target, 0, NUM_ENTRY_QWORDS);
  }
}

/**
 * `arm_smmu_entry_qword_diff`: which qwords still differ from `target` in bits the target uses
 * after every bit unused by `current` has taken its target value.
 * @param ops - supplies `getUsed`
 * @param current - the live entry (8 qwords)
 * @param target - the wanted entry (8 qwords)
 * @returns `diff`: bit i set = qword i is critical; `unusedUpdate`: current in its used bits,
 *   target elsewhere
 */
export function armSmmuEntryQwordDiff(
  ops: Pick<ArmSmmuEntryWriterOps, 'getUsed'>,
  current: readonly bigint[],
  target: readonly bigint[],
): { diff: number; unusedUpdate: bigint[] } {
  const curUsed = ops.getUsed(current);
  const targetUsed = ops.getUsed(target);
  const unusedUpdate: bigint[] = [];
  let diff = 0;
  for (let i = 0; i < NUM_ENTRY_QWORDS; i++) {
    const cur = current[i] ?? 0n;
    const tgt = target[i] ?? 0n;
    const used = curUsed[i] ?? 0n;
    const update = (cur & used) | (tgt & ~used & U64);
    unusedUpdate.push(update);
    if ((update & (targetUsed[i] ?? 0n)) !== tgt) diff |= 1 << i;
  }
  return { diff, unusedUpdate };
}

const U64 = 0xffff_ffff_ffff_ffffn;

function criticalQwords(diff: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < NUM_ENTRY_QWORDS; i++) if (diff & (1 << i)) out.push(i);
  return out;
}

/** `arm_smmu_write_entry_step`: store the differing qwords of `[start, start+len)`, then sync if any. */
function entrySet(
  ops: ArmSmmuEntryWriterOps,
  current: bigint[],
  values: readonly bigint[],
  start: number,
  len: number,
): boolean {
  let changed = false;
  for (let i = start; i < start + len; i++) {
    const v = values[i] ?? 0n;
    if (current[i] !== v) {
      ops.writeQword(i, v);
      current[i] = v;
      changed = true;
    }
  }
  if (changed) ops.sync();
  return changed;
}
