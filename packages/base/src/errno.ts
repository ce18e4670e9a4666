/**
 * Linux errno numbers and the error type that carries them.
 *
 * Numbers are those of the generic Linux ABI (include/uapi/asm-generic/errno-base.h,
 * include/uapi/asm-generic/errno.h) used by x86-64 and arm64, plus the kernel-internal codes of
 * include/linux/errno.h that never reach user space but do travel between kernel layers.
 */

/**
 * Every Linux errno name mapped to its number.
 *
 * @remarks
 * Aliases follow Linux: `EWOULDBLOCK` = `EAGAIN` (11), `EDEADLOCK` = `EDEADLK` (35). Values from 512
 * upwards are kernel-internal (include/linux/errno.h), for example `ENOTSUPP` (524), which differs
 * from the user-visible `EOPNOTSUPP` (95).
 */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  EWOULDBLOCK: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  ENOTBLK: 15,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  EDOM: 33,
  ERANGE: 34,
  EDEADLK: 35,
  EDEADLOCK: 35,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENOMSG: 42,
  EIDRM: 43,
  ECHRNG: 44,
  EL2NSYNC: 45,
  EL3HLT: 46,
  EL3RST: 47,
  ELNRNG: 48,
  EUNATCH: 49,
  ENOCSI: 50,
  EL2HLT: 51,
  EBADE: 52,
  EBADR: 53,
  EXFULL: 54,
  ENOANO: 55,
  EBADRQC: 56,
  EBADSLT: 57,
  EBFONT: 59,
  ENOSTR: 60,
  ENODATA: 61,
  ETIME: 62,
  ENOSR: 63,
  ENONET: 64,
  ENOPKG: 65,
  EREMOTE: 66,
  ENOLINK: 67,
  EADV: 68,
  ESRMNT: 69,
  ECOMM: 70,
  EPROTO: 71,
  EMULTIHOP: 72,
  EDOTDOT: 73,
  EBADMSG: 74,
  EOVERFLOW: 75,
  ENOTUNIQ: 76,
  EBADFD: 77,
  EREMCHG: 78,
  ELIBACC: 79,
  ELIBBAD: 80,
  ELIBSCN: 81,
  ELIBMAX: 82,
  ELIBEXEC: 83,
  EILSEQ: 84,
  ERESTART: 85,
  ESTRPIPE: 86,
  EUSERS: 87,
  ENOTSOCK: 88,
  EDESTADDRREQ: 89,
  EMSGSIZE: 90,
  EPROTOTYPE: 91,
  ENOPROTOOPT: 92,
  EPROTONOSUPPORT: 93,
  ESOCKTNOSUPPORT: 94,
  EOPNOTSUPP: 95,
  EPFNOSUPPORT: 96,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETDOWN: 100,
  ENETUNREACH: 101,
  ENETRESET: 102,
  ECONNABORTED: 103,
  ECONNRESET: 104,
  ENOBUFS: 105,
  EISCONN: 106,
  ENOTCONN: 107,
  ESHUTDOWN: 108,
  ETOOMANYREFS: 109,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EHOSTDOWN: 112,
  EHOSTUNREACH: 113,
  EALREADY: 114,
  EINPROGRESS: 115,
  ESTALE: 116,
  EUCLEAN: 117,
  ENOTNAM: 118,
  ENAVAIL: 119,
  EISNAM: 120,
  EREMOTEIO: 121,
  EDQUOT: 122,
  ENOMEDIUM: 123,
  EMEDIUMTYPE: 124,
  ECANCELED: 125,
  ENOKEY: 126,
  EKEYEXPIRED: 127,
  EKEYREVOKED: 128,
  EKEYREJECTED: 129,
  EOWNERDEAD: 130,
  ENOTRECOVERABLE: 131,
  ERFKILL: 132,
  EHWPOISON: 133,
  ERESTARTSYS: 512,
  ERESTARTNOINTR: 513,
  ERESTARTNOHAND: 514,
  ENOIOCTLCMD: 515,
  ERESTART_RESTARTBLOCK: 516,
  EPROBE_DEFER: 517,
  EOPENSTALE: 518,
  ENOPARAM: 519,
  EBADHANDLE: 521,
  ENOTSYNC: 522,
  EBADCOOKIE: 523,
  ENOTSUPP: 524,
  ETOOSMALL: 525,
  ESERVERFAULT: 526,
  EBADTYPE: 527,
  EJUKEBOX: 528,
  EIOCBQUEUED: 529,
  ERECALLCONFLICT: 530,
  ENOGRACE: 531,
} as const;

/** An errno name such as `'EINVAL'`: a key of {@link ERRNO}. */
export type ErrnoCode = keyof typeof ERRNO;

/** Largest errno value the kernel encodes in a pointer (include/linux/err.h `MAX_ERRNO`). */
export const MAX_ERRNO = 4095;

const namesByNumber = new Map<number, ErrnoCode>();
for (const [name, value] of Object.entries(ERRNO) as [ErrnoCode, number][]) {
  // The first name listed wins, so 11 reads back as EAGAIN and 35 as EDEADLK, as strerror does.
  if (!namesByNumber.has(value)) namesByNumber.set(value, name);
}

/**
 * Name of an errno number.
 *
 * @param errno - a positive errno number (a negative kernel return value is accepted and negated)
 * @returns the canonical name (`EAGAIN` rather than `EWOULDBLOCK`), or `undefined` if Linux has none
 */
export function errnoName(errno: number): ErrnoCode | undefined {
  return namesByNumber.get(errno < 0 ? -errno : errno);
}

/**
 * An error carrying a Linux errno, thrown or returned wherever the kernel would return `-E...`.
 *
 * @remarks
 * `errno` is the positive Linux number, `code` its name. Construct it from a name:
 * `new ErrnoError('EINVAL', 'iova is not aligned')`.
 */
export class ErrnoError extends Error {
  /** The errno name, for example `'EBUSY'`. */
  readonly code: ErrnoCode;
  /** The positive Linux errno number, for example 16 for `EBUSY`. */
  readonly errno: number;

  /**
   * @param code - the errno name
   * @param message - what went wrong; defaults to the errno name alone
   */
  constructor(code: ErrnoCode, message?: string) {
    super(message === undefined ? code : `${code}: ${message}`);
    this.name = 'ErrnoError';
    this.code = code;
    this.errno = ERRNO[code];
  }

  /**
   * The kernel-style negative return value (`-errno`).
   * @returns for example -22 for `EINVAL`
   */
  toReturnValue(): number {
    return -this.errno;
  }
}

/**
 * Whether a value is an {@link ErrnoError}, optionally with a given code.
 *
 * @param value - anything caught or returned
 * @param code - if given, the errno name the error must have
 */
export function isErrnoError(value: unknown, code?: ErrnoCode): value is ErrnoError {
  return value instanceof ErrnoError && (code === undefined || value.code === code);
}
