/**
 * The "ioasids" cgroup controller (v4 RFC patches 15 "cgroup: Introduce ioasids controller" and
 * 16 "Consult IOASIDs cgroup for allocation", documented by RFC 17): a per-cgroup limit on the
 * number of IOASIDs that the processes of a cgroup hierarchy hold in their MM-type sets.
 */

import { ErrnoError } from '@iommu-ts/base';
import { IoasidSetType } from './constants.js';
import type { IoasidSet } from './ioasid-set.js';
import type { IoasidChargeHooks, IoasidSubsystem } from './ioasid-subsystem.js';

/** Names of the controller's interface files, present on every non-root cgroup. */
export const IOASIDS_CGROUP_FILES = ['ioasids.max', 'ioasids.current', 'ioasids.events'] as const;
/** One of {@link IOASIDS_CGROUP_FILES}. */
export type IoasidsCgroupFile = (typeof IOASIDS_CGROUP_FILES)[number];

/** Mutable state behind an {@link IoasidsCgroup}. */
interface CgroupState {
  readonly name: string;
  readonly parent: IoasidsCgroup | null;
  readonly controller: IoasidsCgroupController;
  readonly children: Map<string, IoasidsCgroup>;
  readonly members: Set<object>;
  counter: number;
  limit: number;
  events: number;
  removed: boolean;
}

let newCgroup: (state: CgroupState) => IoasidsCgroup;
let stateOf: (cg: IoasidsCgroup) => CgroupState;

/**
 * One cgroup as the ioasids controller sees it (`struct ioasids_cgroup`): a node of the hierarchy
 * with a counter (`ioasids.current`), a limit (`ioasids.max`) and a failed-charge count
 * (`ioasids.events`). A read-only view; change it through {@link IoasidsCgroupController}.
 */
export class IoasidsCgroup {
  readonly #s: CgroupState;

  static {
    newCgroup = (state) => new IoasidsCgroup(state);
    stateOf = (cg) => cg.#s;
  }

  private constructor(state: CgroupState) {
    this.#s = state;
  }

  /** The directory name; `''` for the root. */
  get name(): string {
    return this.#s.name;
  }

  /** The parent cgroup; `null` for the root. */
  get parent(): IoasidsCgroup | null {
    return this.#s.parent;
  }

  /** Whether this is the root cgroup, which has no limit and is never charged. */
  get isRoot(): boolean {
    return this.#s.parent === null;
  }

  /** The path from the root, such as `/a/b`; `/` for the root. */
  get path(): string {
    const parts: string[] = [];
    for (let c: IoasidsCgroup | null = this; c !== null && c.parent !== null; c = c.parent)
      parts.unshift(c.name);
    return `/${parts.join('/')}`;
  }

  /** The child cgroups, in creation order. */
  get children(): readonly IoasidsCgroup[] {
    return [...this.#s.children.values()];
  }

  /** The processes (their mm objects) that are members of this cgroup itself, not of descendants. */
  get members(): readonly object[] {
    return [...this.#s.members];
  }

  /**
   * IOASIDs charged to this cgroup and its descendants (`ioasids.current`). May exceed
   * {@link IoasidsCgroup.limit} after a migration. Always 0 for the root.
   */
  get counter(): number {
    return this.#s.counter;
  }

  /** The limit (`ioasids.max`); a new cgroup starts at 0. Meaningless (0) for the root. */
  get limit(): number {
    return this.#s.limit;
  }

  /** Charges refused because this cgroup was at its limit (the N of `ioasids.events`). */
  get events(): number {
    return this.#s.events;
  }

  /** Whether the cgroup was removed (rmdir); a removed cgroup's files give ENODEV. */
  get removed(): boolean {
    return this.#s.removed;
  }
}

/** UTF-8 length of a string: the byte count a successful `write(2)` of it returns. */
function utf8Length(text: string): number {
  let n = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return n;
}

const S64_MAX = (1n << 63n) - 1n;

/**
 * Parse a signed 64-bit integer the way `kstrtoll(s, 0, &res)` does: optional sign, then `0x`
 * hexadecimal, leading-`0` octal or decimal digits, and at most one trailing newline.
 * @throws ErrnoError EINVAL for a malformed number, ERANGE when it does not fit an s64
 */
function kstrtoll(text: string): bigint {
  let s = text.endsWith('\n') ? text.slice(0, -1) : text;
  let negative = false;
  if (s.startsWith('+') || s.startsWith('-')) {
    negative = s.startsWith('-');
    s = s.slice(1);
  }
  let base = 10;
  let digits = s;
  if (/^0[xX]/.test(s)) {
    base = 16;
    digits = s.slice(2);
  } else if (s.startsWith('0') && s.length > 1) {
    base = 8;
    digits = s.slice(1);
  }
  const valid = base === 16 ? /^[0-9a-fA-F]+$/ : base === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!valid.test(digits)) throw new ErrnoError('EINVAL', `not a number: '${text}'`);
  let value = 0n;
  for (const d of digits) value = value * BigInt(base) + BigInt(Number.parseInt(d, 16));
  if (negative ? value > S64_MAX + 1n : value > S64_MAX) {
    throw new ErrnoError('ERANGE', `out of range: '${text}'`);
  }
  return negative ? -value : value;
}

/**
 * The ioasids cgroup controller (`CONFIG_CGROUP_IOASIDS`, v4 RFC patches 15-17): a cgroup
 * hierarchy whose non-root cgroups limit how many IOASIDs their processes allocate in their
 * MM-type sets. Constructing it installs its charge hooks in the subsystem.
 *
 * @remarks
 * Membership is per process (the controller is not threaded), keyed by the process's mm; a process
 * the controller has not seen is in the root cgroup. Only MM-type sets are charged; kernel sets are
 * limited by their quota alone. Every level from the process's cgroup up to, but not including, the
 * root is charged.
 *
 * Deviations from the RFC code, both so the counters stay balanced:
 * - a refused charge increments the `ioasids.events` count of the cgroup that hit its limit (the
 *   RFC only signals the file, leaving N at 0);
 * - uncharging walks up from the cgroup the set's mm is in at the time of the uncharge, not from the
 *   freeing task's cgroup, so a release done by another task (a kernel work item, another process
 *   dropping the last reference) uncharges the right hierarchy.
 *
 * File errors: unknown file or any file of the root → ENOENT; writing `ioasids.current` or
 * `ioasids.events` → EACCES (kernfs refuses to open a file without a write handler for writing);
 * any file of a removed cgroup → ENODEV (kernfs on a deactivated node).
 */
export class IoasidsCgroupController implements IoasidChargeHooks {
  /** The root cgroup: every process starts here; it has no files and is never charged. */
  readonly root: IoasidsCgroup;

  readonly #subsystem: IoasidSubsystem;
  /** Cgroup of each process seen so far, by mm. */
  readonly #membership = new Map<object, IoasidsCgroup>();
  /** Processes that exited: their later uncharges are dropped, as for the kernel's vanished mm. */
  readonly #exited = new WeakSet<object>();

  /**
   * Creates the hierarchy (just the root) and installs the controller's {@link
   * IoasidsCgroupController.charge} and {@link IoasidsCgroupController.uncharge} as the subsystem's
   * charge hooks, replacing any hooks installed before.
   * @param subsystem - the IOASID subsystem whose MM-type allocations are to be limited
   */
  constructor(subsystem: IoasidSubsystem) {
    this.#subsystem = subsystem;
    this.root = this.#make('', null);
    subsystem.setChargeHooks(this);
  }

  /** The subsystem the controller charges for. */
  get subsystem(): IoasidSubsystem {
    return this.#subsystem;
  }

  /**
   * Removes the charge hooks from the subsystem if they are still this controller's (the
   * `CONFIG_CGROUP_IOASIDS=n` stubs then apply: nothing is charged).
   */
  uninstall(): void {
    if (this.#subsystem.chargeHooks === this) this.#subsystem.setChargeHooks(undefined);
  }

  // ------------------------------------------------------------------ hierarchy

  /**
   * Creates a child cgroup (`mkdir`), with limit 0 and counter 0 (`ioasids_css_alloc`): its
   * processes cannot allocate until `ioasids.max` is raised.
   * @param parent - a live cgroup
   * @param name - the directory name: non-empty, no `/`, not `.` or `..`
   * @returns the new cgroup
   * @throws ErrnoError ENOENT if `parent` was removed or belongs to another controller; EINVAL for a
   *   bad name; EEXIST if `parent` already has a child of that name
   */
  createCgroup(parent: IoasidsCgroup, name: string): IoasidsCgroup {
    const p = this.#live(parent);
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
      throw new ErrnoError('EINVAL', `bad cgroup name '${name}'`);
    }
    if (p.children.has(name)) throw new ErrnoError('EEXIST', `cgroup ${parent.path} already has ${name}`);
    const cg = this.#make(name, parent);
    p.children.set(name, cg);
    return cg;
  }

  /**
   * Removes a cgroup (`rmdir`). Its limit is given back to the system capacity
   * (`cancelCapacity(limit)`; ignored if the capacity refuses it). The digest does not say what the
   * RFC does with a removed cgroup's reservation; giving it back is this model's choice, so that
   * creating and removing cgroups does not leak capacity.
   * @param cg - a live, non-root cgroup without children or member processes
   * @throws ErrnoError ENOENT if already removed; EBUSY for the root, or while it has children or
   *   member processes
   */
  removeCgroup(cg: IoasidsCgroup): void {
    const s = this.#live(cg);
    if (s.parent === null) throw new ErrnoError('EBUSY', 'the root cgroup cannot be removed');
    if (s.children.size > 0) throw new ErrnoError('EBUSY', `cgroup ${cg.path} has children`);
    if (s.members.size > 0) throw new ErrnoError('EBUSY', `cgroup ${cg.path} has member processes`);
    if (s.limit > 0) this.#cancelCapacityBestEffort(s.limit);
    stateOf(s.parent).children.delete(s.name);
    s.removed = true;
  }

  /**
   * Finds a cgroup by path.
   * @param path - such as `/a/b`; `/` is the root
   * @returns the cgroup, or `undefined` if there is none
   */
  lookup(path: string): IoasidsCgroup | undefined {
    let cg: IoasidsCgroup | undefined = this.root;
    for (const part of path.split('/')) {
      if (part === '') continue;
      cg = cg === undefined ? undefined : stateOf(cg).children.get(part);
    }
    return cg;
  }

  // ------------------------------------------------------------------ processes

  /**
   * The cgroup a process is in.
   * @param mm - the process's address space
   * @returns its cgroup; the root for a process never attached
   */
  cgroupOf(mm: object): IoasidsCgroup {
    return this.#membership.get(mm) ?? this.root;
  }

  /**
   * Moves a process into a cgroup (writing its PID to `cgroup.procs`; `ioasids_attach`): the
   * destination hierarchy is charged with all the IOASIDs of the process's MM-type set and the
   * source hierarchy uncharged, without limit checks, so `ioasids.current` may end above
   * `ioasids.max`; further allocations then fail until enough are freed. Levels shared by source and
   * destination end where they were. Moving into the current cgroup does nothing.
   * @param mm - the process's address space
   * @param cg - the destination, a live cgroup
   * @throws ErrnoError ENOENT if `cg` was removed or belongs to another controller; ESRCH if the
   *   process exited ({@link IoasidsCgroupController.exitProcess})
   */
  attachProcess(mm: object, cg: IoasidsCgroup): void {
    const dst = this.#live(cg);
    if (this.#exited.has(mm)) throw new ErrnoError('ESRCH', 'the process exited');
    const from = this.cgroupOf(mm);
    if (from === cg) return;
    const nr = this.#subsystem.findMmSet(mm)?.nrIoasids ?? 0;
    this.#forceCharge(cg, nr);
    this.#forceCharge(from, -nr);
    stateOf(from).members.delete(mm);
    if (dst.parent === null) this.#membership.delete(mm);
    else {
      dst.members.add(mm);
      this.#membership.set(mm, cg);
    }
  }

  /**
   * A process exits (`cgroup_exit`): it leaves its cgroup, which is uncharged for the IOASIDs its
   * MM-type set still holds. Releases of that set's IOASIDs after this are not uncharged again (the
   * RFC's "mm already gone" case). Unknown processes are ignored.
   * @param mm - the process's address space
   */
  exitProcess(mm: object): void {
    const cg = this.#membership.get(mm);
    if (cg !== undefined) {
      this.#forceCharge(cg, -(this.#subsystem.findMmSet(mm)?.nrIoasids ?? 0));
      stateOf(cg).members.delete(mm);
      this.#membership.delete(mm);
    }
    this.#exited.add(mm);
  }

  // ------------------------------------------------------------------ interface files

  /**
   * The interface files of a cgroup.
   * @param cg - a cgroup
   * @returns the file names; none for the root
   */
  listFiles(cg: IoasidsCgroup): readonly IoasidsCgroupFile[] {
    return cg.isRoot ? [] : [...IOASIDS_CGROUP_FILES];
  }

  /**
   * Reads an interface file. Contents end with a newline, as seq_file output does:
   * `ioasids.max` → the limit in decimal (`"100\n"`), `ioasids.current` → the counter in decimal,
   * `ioasids.events` → `"max N\n"` with N the refused charges.
   * @param cg - a non-root cgroup
   * @param name - a file name
   * @returns the file's text
   * @throws ErrnoError ENOENT for the root or an unknown file; ENODEV for a removed cgroup
   */
  readFile(cg: IoasidsCgroup, name: string): string {
    const s = this.#fileOwner(cg, name);
    switch (name as IoasidsCgroupFile) {
      case 'ioasids.max':
        return `${s.limit}\n`;
      case 'ioasids.current':
        return `${s.counter}\n`;
      case 'ioasids.events':
        return `max ${s.events}\n`;
    }
  }

  /**
   * Writes an interface file; only `ioasids.max` is writable (`ioasids_max_write`).
   *
   * @remarks
   * Surrounding whitespace is stripped. `max` reserves all remaining system capacity
   * (`reserveCapacity(0)`) and makes the limit the amount that was remaining; as in the RFC the
   * previous limit is not added back, so capacity reserved for it stays reserved. Otherwise the text
   * is parsed like `kstrtoll(buf, 0)` (decimal, `0x` hex or leading-`0` octal, optional sign). A
   * smaller limit gives `cur − new` back with `cancelCapacity`, a larger one reserves `new − cur`
   * with `reserveCapacity`. A failed write changes nothing.
   *
   * @param cg - a non-root cgroup
   * @param name - the file name
   * @param text - what is written
   * @returns the number of bytes written (the UTF-8 length of `text`)
   * @throws ErrnoError ENOENT for the root or an unknown file; ENODEV for a removed cgroup; EACCES
   *   for a read-only file; EINVAL for a malformed number, a negative one or one equal to the current
   *   limit; ERANGE for a number outside s64; ENOSPC if the system capacity cannot cover an
   *   increase; EINVAL if the capacity refuses a decrease
   */
  writeFile(cg: IoasidsCgroup, name: string, text: string): number {
    const s = this.#fileOwner(cg, name);
    if (name !== 'ioasids.max') throw new ErrnoError('EACCES', `${name} is read-only`);
    const buf = text.trim();
    if (buf === 'max') {
      s.limit = this.#subsystem.reserveCapacity(0);
      return utf8Length(text);
    }
    const value = kstrtoll(buf);
    if (value < 0n) throw new ErrnoError('EINVAL', 'negative limit');
    const cur = BigInt(s.limit);
    if (value === cur) throw new ErrnoError('EINVAL', `limit is already ${s.limit}`);
    if (value < cur) this.#subsystem.cancelCapacity(Number(cur - value));
    else {
      // Checked here too: an increase beyond 2^32 - 1 is not even a valid count for the core.
      if (value - cur > BigInt(this.#subsystem.capacityAvail)) {
        throw new ErrnoError('ENOSPC', `cannot reserve ${value - cur} IOASIDs`);
      }
      this.#subsystem.reserveCapacity(Number(value - cur));
    }
    s.limit = Number(value);
    return utf8Length(text);
  }

  // ------------------------------------------------------------------ charge hooks

  /**
   * The allocation charge hook (`ioasid_cg_charge`), called by `IoasidSubsystem.alloc` with the
   * IOASID lock held before an IOASID of an MM-type set is allocated. Non-MM sets are not charged.
   * Otherwise every level from the current task's cgroup up to (excluding) the root is charged 1; if
   * any level would exceed its limit, nothing stays charged, that level's event count goes up and
   * the allocation is refused.
   * @param set - the set being allocated from
   * @throws ErrnoError EINVAL if there is no current task, it has no mm, or its process exited;
   *   EPERM if the set's token is not the current mm; EAGAIN if a limit was hit
   */
  charge(set: IoasidSet): void {
    if (set.type !== IoasidSetType.MM) return;
    const task = this.#subsystem.current;
    if (task === undefined || task.mm === null || this.#exited.has(task.mm)) {
      throw new ErrnoError('EINVAL', 'no current mm');
    }
    if (set.token !== task.mm) throw new ErrnoError('EPERM', 'IOASID set is not owned by current mm');
    const start = this.cgroupOf(task.mm);
    const charged: CgroupState[] = [];
    for (let c: IoasidsCgroup | null = start; c !== null && c.parent !== null; c = c.parent) {
      const s = stateOf(c);
      s.counter += 1;
      charged.push(s);
      if (s.counter > s.limit) {
        for (const u of charged) u.counter -= 1;
        s.events += 1;
        throw new ErrnoError('EAGAIN', `ioasids limit ${s.limit} of ${c.path} reached`);
      }
    }
  }

  /**
   * The release uncharge hook (`ioasid_cg_uncharge`), called when an IOASID of an MM-type set is
   * released or an allocation fails after {@link IoasidsCgroupController.charge}. Non-MM sets and
   * sets of exited processes are ignored; otherwise every level from the cgroup the set's mm is in
   * now up to (excluding) the root is uncharged 1.
   * @param set - the IOASID's set
   */
  uncharge(set: IoasidSet): void {
    if (set.type !== IoasidSetType.MM || set.token === null || this.#exited.has(set.token)) return;
    this.#forceCharge(this.cgroupOf(set.token), -1);
  }

  // ------------------------------------------------------------------ internals

  #make(name: string, parent: IoasidsCgroup | null): IoasidsCgroup {
    return newCgroup({
      name,
      parent,
      controller: this,
      children: new Map(),
      members: new Set(),
      counter: 0,
      limit: 0,
      events: 0,
      removed: false,
    });
  }

  #live(cg: IoasidsCgroup): CgroupState {
    const s = stateOf(cg);
    if (s.controller !== this) throw new ErrnoError('ENOENT', 'cgroup of another controller');
    if (s.removed) throw new ErrnoError('ENOENT', `cgroup ${s.name} was removed`);
    return s;
  }

  #fileOwner(cg: IoasidsCgroup, name: string): CgroupState {
    const s = stateOf(cg);
    if (s.controller !== this) throw new ErrnoError('ENOENT', 'cgroup of another controller');
    if (s.removed) throw new ErrnoError('ENODEV', `cgroup ${s.name} was removed`);
    if (s.parent === null || !(IOASIDS_CGROUP_FILES as readonly string[]).includes(name)) {
      throw new ErrnoError('ENOENT', `no file ${name} in ${cg.path}`);
    }
    return s;
  }

  /** Adds `nr` (may be negative) to every level from `cg` up to, not including, the root. */
  #forceCharge(cg: IoasidsCgroup, nr: number): void {
    if (nr === 0) return;
    for (let c: IoasidsCgroup | null = cg; c !== null && c.parent !== null; c = c.parent) {
      stateOf(c).counter += nr;
    }
  }

  #cancelCapacityBestEffort(nr: number): void {
    try {
      this.#subsystem.cancelCapacity(nr);
    } catch {
      // The capacity cannot take it back (after a `max` write, say); the kernel ignores this too.
    }
  }
}
