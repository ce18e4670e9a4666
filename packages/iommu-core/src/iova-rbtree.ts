/**
 * The red-black tree of IOVA ranges behind {@link IovaDomain} (the `rbroot` of
 * `struct iova_domain`, include/linux/iova.h; lib/rbtree.c semantics).
 *
 * @remarks
 * Internal to the package. Nodes are the ranges themselves (as `struct iova` embeds its
 * `rb_node`), keyed by `pfnLo`; ranges never overlap, so in-order = address order. Removal relinks
 * nodes instead of copying keys, so a node handed out stays valid (and so do the domain's cached
 * search starts pointing at other nodes). Written for speed: one hidden class, no allocation on
 * walks, iterative fix-ups.
 */

/**
 * One range of PFNs, `[pfnLo, pfnHi]` inclusive, in granule units (`struct iova`).
 * @internal
 */
export class IovaNode {
  /** First PFN of the range. */
  pfnLo: number;
  /** Last PFN of the range (inclusive). */
  pfnHi: number;
  left: IovaNode | null;
  right: IovaNode | null;
  parent: IovaNode | null;
  red: boolean;
  /** Whether the node is linked into a tree (cleared on removal). */
  linked: boolean;

  constructor(pfnLo: number, pfnHi: number) {
    this.pfnLo = pfnLo;
    this.pfnHi = pfnHi;
    this.left = null;
    this.right = null;
    this.parent = null;
    this.red = true;
    this.linked = false;
  }
}

/** In-order successor (`rb_next`), or null. */
export function rbNext(node: IovaNode): IovaNode | null {
  let n = node.right;
  if (n !== null) {
    while (n.left !== null) n = n.left;
    return n;
  }
  let c = node;
  let p = node.parent;
  while (p !== null && c === p.right) {
    c = p;
    p = p.parent;
  }
  return p;
}

/** In-order predecessor (`rb_prev`), or null. */
export function rbPrev(node: IovaNode): IovaNode | null {
  let n = node.left;
  if (n !== null) {
    while (n.right !== null) n = n.right;
    return n;
  }
  let c = node;
  let p = node.parent;
  while (p !== null && c === p.left) {
    c = p;
    p = p.parent;
  }
  return p;
}

/**
 * A red-black tree of non-overlapping {@link IovaNode}s ordered by `pfnLo`.
 * @internal
 */
export class IovaRbTree {
  root: IovaNode | null = null;
  /** Nodes linked into the tree. */
  count = 0;

  /** Leftmost node (`rb_first`), or null. */
  first(): IovaNode | null {
    let n = this.root;
    if (n === null) return null;
    while (n.left !== null) n = n.left;
    return n;
  }

  /** The node whose range contains `pfn` (`private_find_iova`), or null. */
  find(pfn: number): IovaNode | null {
    let n = this.root;
    while (n !== null) {
      if (pfn < n.pfnLo) n = n.left;
      else if (pfn > n.pfnHi) n = n.right;
      else return n;
    }
    return null;
  }

  /**
   * Insert `node` by descending from the root (or from `start`, which must be an ancestor of the
   * node's position: `iova_insert_rbtree`). Returns false, inserting nothing, when a node with the
   * same `pfnLo` exists (the kernel warns).
   */
  insert(node: IovaNode, start: IovaNode | null = null): boolean {
    let cur = start ?? this.root;
    if (cur === null) {
      this.link(node, null, false);
      return true;
    }
    const key = node.pfnLo;
    for (;;) {
      if (key < cur.pfnLo) {
        if (cur.left === null) {
          this.link(node, cur, true);
          return true;
        }
        cur = cur.left;
      } else if (key > cur.pfnLo) {
        if (cur.right === null) {
          this.link(node, cur, false);
          return true;
        }
        cur = cur.right;
      } else {
        return false;
      }
    }
  }

  /**
   * Insert `node` into the gap right before `succ` (its in-order successor) in O(1) plus the
   * fix-up: as `succ`'s left child when it has none, else as the right child of `succ`'s
   * predecessor (the rightmost node of its left subtree).
   */
  insertBefore(node: IovaNode, succ: IovaNode): void {
    let l = succ.left;
    if (l === null) {
      this.link(node, succ, true);
      return;
    }
    while (l.right !== null) l = l.right;
    this.link(node, l, false);
  }

  private link(node: IovaNode, parent: IovaNode | null, asLeft: boolean): void {
    node.parent = parent;
    node.left = null;
    node.right = null;
    node.red = true;
    node.linked = true;
    if (parent === null) this.root = node;
    else if (asLeft) parent.left = node;
    else parent.right = node;
    this.count++;
    this.insertFixup(node);
  }

  private rotateLeft(x: IovaNode): void {
    const y = x.right as IovaNode;
    x.right = y.left;
    if (y.left !== null) y.left.parent = x;
    const p = x.parent;
    y.parent = p;
    if (p === null) this.root = y;
    else if (x === p.left) p.left = y;
    else p.right = y;
    y.left = x;
    x.parent = y;
  }

  private rotateRight(x: IovaNode): void {
    const y = x.left as IovaNode;
    x.left = y.right;
    if (y.right !== null) y.right.parent = x;
    const p = x.parent;
    y.parent = p;
    if (p === null) this.root = y;
    else if (x === p.right) p.right = y;
    else p.left = y;
    y.right = x;
    x.parent = y;
  }

  private insertFixup(node: IovaNode): void {
    let z = node;
    let p = z.parent;
    while (p?.red) {
      // A red parent is never the root, so the grandparent exists.
      const g = p.parent as IovaNode;
      if (p === g.left) {
        const u = g.right;
        if (u?.red) {
          p.red = false;
          u.red = false;
          g.red = true;
          z = g;
        } else {
          if (z === p.right) {
            z = p;
            this.rotateLeft(z);
            p = z.parent as IovaNode;
          }
          p.red = false;
          g.red = true;
          this.rotateRight(g);
        }
      } else {
        const u = g.left;
        if (u?.red) {
          p.red = false;
          u.red = false;
          g.red = true;
          z = g;
        } else {
          if (z === p.left) {
            z = p;
            this.rotateRight(z);
            p = z.parent as IovaNode;
          }
          p.red = false;
          g.red = true;
          this.rotateLeft(g);
        }
      }
      p = z.parent;
    }
    (this.root as IovaNode).red = false;
  }

  private transplant(u: IovaNode, v: IovaNode | null): void {
    const p = u.parent;
    if (p === null) this.root = v;
    else if (u === p.left) p.left = v;
    else p.right = v;
    if (v !== null) v.parent = p;
  }

  /** Unlink `node` (`rb_erase`); other nodes keep their identity. */
  remove(z: IovaNode): void {
    let removedRed = z.red;
    let x: IovaNode | null;
    let xParent: IovaNode | null;
    if (z.left === null) {
      x = z.right;
      xParent = z.parent;
      this.transplant(z, x);
    } else if (z.right === null) {
      x = z.left;
      xParent = z.parent;
      this.transplant(z, x);
    } else {
      let y = z.right;
      while (y.left !== null) y = y.left;
      removedRed = y.red;
      x = y.right;
      if (y.parent === z) {
        xParent = y;
      } else {
        xParent = y.parent;
        this.transplant(y, y.right);
        y.right = z.right;
        y.right.parent = y;
      }
      this.transplant(z, y);
      y.left = z.left;
      y.left.parent = y;
      y.red = z.red;
    }
    if (!removedRed) this.deleteFixup(x, xParent);
    z.left = null;
    z.right = null;
    z.parent = null;
    z.linked = false;
    this.count--;
  }

  private deleteFixup(node: IovaNode | null, parent: IovaNode | null): void {
    let x = node;
    let p = parent;
    while (x !== this.root && (x === null || !x.red) && p !== null) {
      if (x === p.left) {
        let w = p.right as IovaNode;
        if (w.red) {
          w.red = false;
          p.red = true;
          this.rotateLeft(p);
          w = p.right as IovaNode;
        }
        if ((w.left === null || !w.left.red) && (w.right === null || !w.right.red)) {
          w.red = true;
          x = p;
          p = x.parent;
        } else {
          if (w.right === null || !w.right.red) {
            (w.left as IovaNode).red = false;
            w.red = true;
            this.rotateRight(w);
            w = p.right as IovaNode;
          }
          w.red = p.red;
          p.red = false;
          (w.right as IovaNode).red = false;
          this.rotateLeft(p);
          x = this.root;
          break;
        }
      } else {
        let w = p.left as IovaNode;
        if (w.red) {
          w.red = false;
          p.red = true;
          this.rotateRight(p);
          w = p.left as IovaNode;
        }
        if ((w.right === null || !w.right.red) && (w.left === null || !w.left.red)) {
          w.red = true;
          x = p;
          p = x.parent;
        } else {
          if (w.left === null || !w.left.red) {
            (w.right as IovaNode).red = false;
            w.red = true;
            this.rotateLeft(w);
            w = p.left as IovaNode;
          }
          w.red = p.red;
          p.red = false;
          (w.left as IovaNode).red = false;
          this.rotateRight(p);
          x = this.root;
          break;
        }
      }
    }
    if (x !== null) x.red = false;
  }

  /**
   * Check the red-black invariants and the ordering (for tests).
   * @returns the black height
   * @throws Error describing the first violation
   */
  check(): number {
    const walk = (n: IovaNode | null, lo: number, hi: number): number => {
      if (n === null) return 1;
      if (n.pfnLo < lo || n.pfnHi > hi || n.pfnLo > n.pfnHi) throw new Error(`order broken at ${n.pfnLo}`);
      if (n.left !== null && n.left.parent !== n) throw new Error('parent link broken');
      if (n.right !== null && n.right.parent !== n) throw new Error('parent link broken');
      if (n.red && ((n.left?.red ?? false) || (n.right?.red ?? false))) throw new Error('red-red');
      const a = walk(n.left, lo, n.pfnLo - 1);
      const b = walk(n.right, n.pfnHi + 1, hi);
      if (a !== b) throw new Error('black height differs');
      return a + (n.red ? 0 : 1);
    };
    if (this.root !== null && (this.root.red || this.root.parent !== null)) throw new Error('bad root');
    return walk(this.root, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY);
  }
}
