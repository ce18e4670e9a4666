/** The embedded default platform pair: one x86 machine with VT-d, one Arm machine with SMMUv3. */

import { defaultArmPlatform } from './default-arm.js';
import { defaultX86Platform } from './default-x86.js';
import type { PlatformDescription } from './platform.js';

/** @returns the default platforms, x86 first */
export function defaultPlatforms(): PlatformDescription[] {
  return [defaultX86Platform(), defaultArmPlatform()];
}
