/**
 * The ID allocator under every IOASID: the role that an IDA (lib/idr.c) or an allocating xarray
 * (lib/xarray.c, `xa_alloc` / `xa_alloc_cyclic`) plays in the kernel.
 *
 * Layout: a sparse radix tree of bitmaps over the 32-bit ID space. A leaf holds 1024 IDs as 32
 * 32-bit words plus a 32-bit summary with one bit per full word. An interior node has 32 child
 * slots and a 32-bit summary with one bit per full child. Only subtrees holding at least one
 * allocated ID exist, so memory follows the number (and spread) of allocated IDs, never the range.
 * The tree grows upwards like an xarray: its height is the smallest that covers the highest ID
 * ever stored since it was last empty, and it shrinks again when the upper part empties.
 *
 * Every operation walks one root-to-leaf path (at most six nodes for 32-bit IDs); a search for
 * the first free ID skips full subtrees through the summaries, so it backs up at most once per
 * level. Bit scans use `Math.clz32`.
 */

import { INVALID_IOASID } from './constants.js';

/** Bits of the ID that select a bit inside a leaf: 10, so a leaf holds 1024 IDs. */
const LEAF_BITS = 10;
/** Bits consumed per interior level: 5, so 32 children per node. */
const FANOUT_BITS = 5;
/**
 * `SHIFT[level]`: the ID bit where the child index of an interior node at `level` starts. Height
 * 5 (10 + 5 × 5 = 35 bits) is the most ever needed for 32-bit IDs.
 */
const SHIFT: readonly number[] = [0, 10, 15, 20, 25, 30];
/** `SPAN[level]`: how many IDs one child of an interior node at `level` covers. */
const SPAN: readonly number[] = SHIFT.map((s) => 2 ** s);
/** `CAPACITY[height]`: the number of IDs a tree of `height` interior levels covers. */
const CAPACITY: readonly number[] = SHIFT.map((_, h) => 2 ** (LEAF_BITS + FANOUT_BITS * h));

/** Emptied interior nodes kept for reuse: one per level above the leaves. */
const SPARE_INTERIORS = 5;

/** A bitmap of 1024 IDs. */
class Leaf {
  /** Allocated IDs, bit `id & 31` of word `(id >> 5) & 31`. Int32 so loads stay small integers. */
  readonly words = new Int32Array(32);
  /** Bit `w` is set when `words[w]` is all ones. The leaf is full when this is -1. */
  full = 0;
  /** Number of allocated IDs in the leaf. */
  count = 0;
}

/** One level of the radix tree: 32 children, each a leaf or an interior node one level down. */
class Interior {
  /** Child subtrees; `undefined` where no ID is allocated. */
  readonly slots: Array<Interior | Leaf | undefined> = [];
  /** Bit `i` is set when child `i` is full. The node is full when this is -1. */
  full = 0;
  /** Number of allocated IDs in the subtree. */
  count = 0;
  constructor() {
    for (let i = 0; i < 32; i++) this.slots.push(undefined);
  }
}

type TreeNode = Interior | Leaf;

/** Index of the lowest set bit of a non-zero 32-bit value. */
function ctz(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/** Number of set bits in a 32-bit value. */
function popcount(x: number): number {
  let v = x - ((x >>> 1) & 0x5555_5555);
  v = (v & 0x3333_3333) + ((v >>> 2) & 0x3333_3333);
  return Math.imul((v + (v >>> 4)) & 0x0f0f_0f0f, 0x0101_0101) >>> 24;
}

/** A mask of the bits `lo..hi` (0 ≤ lo ≤ hi ≤ 31) of a 32-bit word. */
function bitRange(lo: number, hi: number): number {
  return (-1 << lo) & (-1 >>> (31 - hi));
}

/** First clear bit at offset `off` or above in a leaf, as an offset 0..1023, or -1 if none. */
function leafFind(leaf: Leaf, off: number): number {
  let w = off >>> 5;
  const here = ~leaf.words[w]! & (-1 << (off & 31));
  if (here !== 0) return (w << 5) | ctz(here);
  if (w === 31) return -1;
  const rest = ~leaf.full & (-1 << (w + 1));
  if (rest === 0) return -1;
  w = ctz(rest);
  return (w << 5) | ctz(~leaf.words[w]!);
}

/**
 * First free offset at `off` or above inside the subtree `node` at `level` (0 = leaf), or -1 if
 * every ID from `off` to the end of the subtree is allocated.
 */
function subtreeFind(node: TreeNode, level: number, off: number): number {
  if (level === 0) return leafFind(node as Leaf, off);
  const n = node as Interior;
  const shift = SHIFT[level]!;
  const span = SPAN[level]!;
  let i = off >>> shift;
  if ((n.full & (1 << i)) === 0) {
    const child = n.slots[i];
    if (child === undefined) return off;
    const r = subtreeFind(child, level - 1, off & (span - 1));
    if (r >= 0) return i * span + r;
  }
  if (i === 31) return -1;
  const rest = ~n.full & (-1 << (i + 1));
  if (rest === 0) return -1;
  i = ctz(rest);
  const child = n.slots[i];
  // A child that is not full has a free ID, so searching it from its start cannot fail.
  return i * span + (child === undefined ? 0 : subtreeFind(child, level - 1, 0));
}

/** Allocated IDs in `[lo, hi]` (offsets inside the subtree, `lo <= hi`). */
function subtreeCount(node: TreeNode, level: number, lo: number, hi: number): number {
  if (level === 0) {
    const words = (node as Leaf).words;
    const wLo = lo >>> 5;
    const wHi = hi >>> 5;
    if (wLo === wHi) return popcount(words[wLo]! & bitRange(lo & 31, hi & 31));
    let total = popcount(words[wLo]! & (-1 << (lo & 31))) + popcount(words[wHi]! & (-1 >>> (31 - (hi & 31))));
    for (let w = wLo + 1; w < wHi; w++) total += popcount(words[w]!);
    return total;
  }
  const n = node as Interior;
  const shift = SHIFT[level]!;
  const span = SPAN[level]!;
  const iLo = lo >>> shift;
  const iHi = hi >>> shift;
  let total = 0;
  for (let i = iLo; i <= iHi; i++) {
    const child = n.slots[i];
    if (child === undefined) continue;
    const cLo = i === iLo ? lo & (span - 1) : 0;
    const cHi = i === iHi ? hi & (span - 1) : span - 1;
    total += cLo === 0 && cHi === span - 1 ? child.count : subtreeCount(child, level - 1, cLo, cHi);
  }
  return total;
}

/** Yield the allocated IDs of a subtree whose first ID is `base`, ascending. */
function* subtreeIds(node: TreeNode, level: number, base: number): Generator<number, void, undefined> {
  if (level === 0) {
    const words = (node as Leaf).words;
    for (let w = 0; w < 32; w++) {
      let word = words[w]!;
      while (word !== 0) {
        const b = ctz(word);
        word &= word - 1;
        yield base + w * 32 + b;
      }
    }
    return;
  }
  const slots = (node as Interior).slots;
  const span = SPAN[level]!;
  for (let i = 0; i < 32; i++) {
    const child = slots[i];
    if (child !== undefined) yield* subtreeIds(child, level - 1, base + i * span);
  }
}

/** Whether `v` is an integer ID in `0..0xFFFF_FFFE`. */
function isId(v: number): boolean {
  return v >>> 0 === v && v !== INVALID_IOASID;
}

function checkId(name: string, v: number): void {
  if (!isId(v)) throw new RangeError(`${name} must be an integer in [0, 0xfffffffe], got ${v}`);
}

/** Options of {@link IdAllocator}. */
export interface IdAllocatorOptions {
  /**
   * Allocate cyclically, as `xa_alloc_cyclic` does: search from just after the last allocated ID
   * and wrap to the range's start. Default `false`: lowest free ID, as `ida_alloc_range` and
   * `xa_alloc` do.
   */
  readonly cyclic?: boolean;
}

/**
 * A set of allocated IDs in `[0, 0xFFFF_FFFE]` with lowest-free or cyclic allocation: the
 * kernel's IDA (lib/idr.c `ida_alloc_range` / `ida_free`) and allocating xarray (lib/xarray.c
 * `xa_alloc`, `xa_alloc_cyclic`, `xa_insert`, `xa_erase`) reduced to the ID bookkeeping.
 *
 * Cost: `alloc`, `allocAt`, `free` and `has` visit one root-to-leaf path of a radix tree of
 * bitmaps (at most six nodes), O(log n) in the ID space whatever the occupancy. Memory grows with
 * the allocated IDs (a few hundred bytes per 1024-ID leaf in use plus the interior nodes above it),
 * never with the capacity of the range: one ID at 0xFFFF_0000 costs six small nodes. Emptied
 * nodes are released, except one root-to-leaf path's worth kept for reuse.
 *
 * IDs are plain numbers; 0xFFFF_FFFF (`INVALID_IOASID`) is never allocated.
 */
export class IdAllocator {
  /** Whether {@link IdAllocator.alloc} is cyclic. */
  readonly cyclic: boolean;
  private root: TreeNode | undefined = undefined;
  /** Interior levels above the leaves; the tree covers `[0, CAPACITY[height])`. */
  private height = 0;
  private capacity = CAPACITY[0]!;
  private allocated = 0;
  private nodes = 0;
  /**
   * Emptied nodes kept for reuse, at most one root-to-leaf path, so that an ID allocated and
   * freed over and over (or a cyclic cursor moving through empty space) does not allocate.
   */
  private spareLeaf: Leaf | undefined = undefined;
  private readonly spareInteriors: Interior[] = [];
  private nextId = 0;
  /** Scratch path of the last descent: the interior nodes and the child index taken in each. */
  private readonly pathNodes: Interior[] = [];
  private readonly pathSlots: number[] = [0, 0, 0, 0, 0, 0];

  /**
   * @param options - `cyclic: true` for `xa_alloc_cyclic` behaviour (see {@link IdAllocatorOptions})
   */
  constructor(options: IdAllocatorOptions = {}) {
    this.cyclic = options.cyclic ?? false;
  }

  /** Number of allocated IDs. */
  get size(): number {
    return this.allocated;
  }

  /**
   * Where the next cyclic search starts: one past the last ID that {@link IdAllocator.alloc}
   * returned (the `next` argument of `xa_alloc_cyclic`), 0 initially. May be 0xFFFF_FFFF after
   * allocating 0xFFFF_FFFE. Unused by lowest-free allocators; not moved by `allocAt` or `free`.
   */
  get cursor(): number {
    return this.nextId;
  }

  /**
   * Number of tree nodes (interior nodes and leaves) in use: a measure of memory use. Not counted:
   * up to one emptied leaf and five emptied interior nodes kept for reuse.
   * @internal
   */
  get nodeCount(): number {
    return this.nodes;
  }

  /**
   * Allocate a free ID in `[min, max]` (inclusive).
   *
   * Lowest-free mode returns the lowest free ID of the range (`ida_alloc_range`, `xa_alloc`).
   * Cyclic mode (`xa_alloc_cyclic`) returns the lowest free ID in `[max(min, cursor), max]`, or,
   * if there is none, the lowest free ID in `[min, max]`; the cursor then moves to the returned
   * ID + 1.
   *
   * @param min - lowest acceptable ID, an integer in `[0, 0xFFFF_FFFE]`
   * @param max - highest acceptable ID, an integer in `[min, 0xFFFF_FFFE]`
   * @returns the allocated ID, or -1 if every ID in `[min, max]` is allocated (the kernel's
   *   -ENOSPC / -EBUSY; the cursor does not move)
   * @throws RangeError if `min` or `max` is not an integer in `[0, 0xFFFF_FFFE]` or `min > max`
   */
  alloc(min: number, max: number): number {
    if (!isId(min) || !isId(max) || min > max) {
      throw new RangeError(`alloc range must satisfy 0 <= min <= max <= 0xfffffffe, got [${min}, ${max}]`);
    }
    let id: number;
    if (this.cyclic) {
      const start = Math.max(this.nextId, min);
      id = this.firstFree(start);
      if (id > max && start > min) id = this.firstFree(min);
      if (id > max) return -1;
      this.nextId = id + 1;
    } else {
      id = this.firstFree(min);
      if (id > max) return -1;
    }
    this.insert(id);
    return id;
  }

  /**
   * Allocate one given ID (`xa_insert`, or recording the result of a custom allocator).
   * @param id - an integer in `[0, 0xFFFF_FFFE]`
   * @returns `true` if `id` was free and is now allocated, `false` if it was already allocated
   * @throws RangeError if `id` is not an integer in `[0, 0xFFFF_FFFE]`
   */
  allocAt(id: number): boolean {
    checkId('id', id);
    return this.insert(id);
  }

  /**
   * Release an ID (`ida_free`, `xa_erase`).
   * @param id - any number
   * @returns `true` if `id` was allocated and is now free; `false` (and nothing changes) if it was
   *   not allocated, including for numbers that are not valid IDs
   */
  free(id: number): boolean {
    if (!isId(id) || id >= this.capacity || this.root === undefined) return false;
    let node: TreeNode = this.root;
    let depth = 0;
    for (let level = this.height; level > 0; level--) {
      const i = (id >>> SHIFT[level]!) & 31;
      const interior = node as Interior;
      const child = interior.slots[i];
      if (child === undefined) return false;
      this.pathNodes[depth] = interior;
      this.pathSlots[depth] = i;
      depth++;
      node = child;
    }
    const leaf = node as Leaf;
    const w = (id >>> 5) & 31;
    const bit = 1 << (id & 31);
    const word = leaf.words[w]!;
    if ((word & bit) === 0) return false;
    leaf.words[w] = word & ~bit;
    leaf.full &= ~(1 << w);
    leaf.count--;
    this.allocated--;
    for (let d = 0; d < depth; d++) {
      const p = this.pathNodes[d]!;
      p.full &= ~(1 << this.pathSlots[d]!);
      p.count--;
    }
    if (leaf.count === 0) this.prune(depth);
    return true;
  }

  /**
   * Whether an ID is allocated (`xa_load` returning non-NULL).
   * @param id - any number
   * @returns `true` if `id` is allocated; `false` otherwise, including for non-IDs
   */
  has(id: number): boolean {
    if (!isId(id) || id >= this.capacity) return false;
    let node = this.root;
    for (let level = this.height; node !== undefined && level > 0; level--) {
      node = (node as Interior).slots[(id >>> SHIFT[level]!) & 31];
    }
    if (node === undefined) return false;
    return ((node as Leaf).words[(id >>> 5) & 31]! & (1 << (id & 31))) !== 0;
  }

  /**
   * Number of allocated IDs in `[min, max]`, in O(32 × levels) using per-subtree counts.
   * @param min - an integer in `[0, 0xFFFF_FFFE]`
   * @param max - an integer in `[min, 0xFFFF_FFFE]`
   * @returns the count
   * @throws RangeError if `min` or `max` is not an integer in `[0, 0xFFFF_FFFE]` or `min > max`
   */
  countInRange(min: number, max: number): number {
    if (!isId(min) || !isId(max) || min > max) {
      throw new RangeError(`range must satisfy 0 <= min <= max <= 0xfffffffe, got [${min}, ${max}]`);
    }
    if (this.root === undefined || min >= this.capacity) return 0;
    const hi = max < this.capacity ? max : this.capacity - 1;
    return subtreeCount(this.root, this.height, min, hi);
  }

  /**
   * The allocated IDs in ascending order. The allocator must not be modified while iterating.
   * @returns an iterator of IDs
   */
  ids(): IterableIterator<number> {
    if (this.root === undefined) return [][Symbol.iterator]();
    return subtreeIds(this.root, this.height, 0);
  }

  /** Free every ID, release all nodes and reset the cyclic cursor to 0 (`ida_destroy`). */
  clear(): void {
    this.root = undefined;
    this.height = 0;
    this.capacity = CAPACITY[0]!;
    this.allocated = 0;
    this.nodes = 0;
    this.nextId = 0;
    this.spareLeaf = undefined;
    this.spareInteriors.length = 0;
  }

  /** Lowest free ID at `start` or above; may exceed 0xFFFF_FFFE when none is free up there. */
  private firstFree(start: number): number {
    if (this.root === undefined || start >= this.capacity) return start;
    const r = subtreeFind(this.root, this.height, start);
    return r < 0 ? this.capacity : r;
  }

  /** Set the bit of `id` (already validated), creating nodes on the way; false if already set. */
  private insert(id: number): boolean {
    while (id >= this.capacity) this.grow();
    let node = this.root;
    if (node === undefined) {
      node = this.newNode(this.height);
      this.root = node;
    }
    let depth = 0;
    for (let level = this.height; level > 0; level--) {
      const i = (id >>> SHIFT[level]!) & 31;
      const interior = node as Interior;
      let child = interior.slots[i];
      if (child === undefined) {
        child = this.newNode(level - 1);
        interior.slots[i] = child;
      }
      this.pathNodes[depth] = interior;
      this.pathSlots[depth] = i;
      depth++;
      node = child;
    }
    const leaf = node as Leaf;
    const w = (id >>> 5) & 31;
    const bit = 1 << (id & 31);
    const word = leaf.words[w]!;
    if ((word & bit) !== 0) return false;
    const now = word | bit;
    leaf.words[w] = now;
    leaf.count++;
    this.allocated++;
    for (let d = 0; d < depth; d++) this.pathNodes[d]!.count++;
    if (now === -1) {
      leaf.full |= 1 << w;
      if (leaf.full === -1) {
        // Mark the leaf full in its parent, and each ancestor that thereby fills up in its own.
        for (let d = depth - 1; d >= 0; d--) {
          const p = this.pathNodes[d]!;
          p.full |= 1 << this.pathSlots[d]!;
          if (p.full !== -1) break;
        }
      }
    }
    return true;
  }

  /** A node for `level` (0 = leaf), from the spares if there is one. */
  private newNode(level: number): TreeNode {
    this.nodes++;
    if (level === 0) {
      const leaf = this.spareLeaf;
      if (leaf === undefined) return new Leaf();
      this.spareLeaf = undefined;
      return leaf;
    }
    return this.spareInteriors.pop() ?? new Interior();
  }

  /** A node left the tree; it must be empty (all bits clear, all slots undefined, counts 0). */
  private dropNode(node: TreeNode): void {
    this.nodes--;
    if (node instanceof Leaf) {
      this.spareLeaf ??= node;
    } else if (this.spareInteriors.length < SPARE_INTERIORS) {
      this.spareInteriors.push(node);
    }
  }

  /** Add one level on top, so the tree covers 32 times as many IDs. */
  private grow(): void {
    const old = this.root;
    this.height++;
    this.capacity = CAPACITY[this.height]!;
    if (old === undefined) return;
    const top = this.newNode(this.height) as Interior;
    top.slots[0] = old;
    top.count = old.count;
    if (old.full === -1) top.full = 1;
    this.root = top;
  }

  /**
   * The leaf at the end of the last descent (`depth` interior nodes in the path) became empty:
   * unlink it and every ancestor it leaves empty, then lower the root while only its first child
   * is in use.
   */
  private prune(depth: number): void {
    let d = depth - 1;
    for (; d >= 0; d--) {
      const p = this.pathNodes[d]!;
      const i = this.pathSlots[d]!;
      this.dropNode(p.slots[i]!);
      p.slots[i] = undefined;
      if (p.count !== 0) break;
    }
    if (d < 0) {
      // Everything is gone, root included.
      this.dropNode(this.root!);
      this.root = undefined;
      this.height = 0;
      this.capacity = CAPACITY[0]!;
      return;
    }
    while (this.height > 0) {
      const top = this.root as Interior;
      const first = top.slots[0];
      if (first === undefined || first.count !== top.count) break;
      this.root = first;
      this.height--;
      this.capacity = CAPACITY[this.height]!;
      top.slots[0] = undefined;
      top.count = 0;
      top.full = 0;
      this.dropNode(top);
    }
  }
}
