/**
 * Test helper: the device trees of `fixtures/*.dts`, node for node, for {@link writeDtb}.
 * Not exported from the package.
 */

import type { DtNodeSpec } from './test-dtb-writer.js';

const c = (...cells: number[]): { cells: number[] } => ({ cells });
const SPI = 0;
const EDGE = 1;

/** fixtures/fvp-base-revc-smmu.dts. */
export const FVP_BASE_REVC: DtNodeSpec = {
  name: '',
  props: [
    ['model', 'FVP Base RevC'],
    ['compatible', ['arm,fvp-base-revc', 'arm,vexpress']],
    ['interrupt-parent', c(1)],
    ['#address-cells', c(2)],
    ['#size-cells', c(2)],
  ],
  children: [
    {
      name: 'interrupt-controller@2f000000',
      props: [
        ['compatible', 'arm,gic-v3'],
        ['#interrupt-cells', c(3)],
        ['#address-cells', c(2)],
        ['#size-cells', c(2)],
        ['ranges', true],
        ['interrupt-controller', true],
        ['reg', c(0, 0x2f000000, 0, 0x10000, 0, 0x2f100000, 0, 0x200000)],
        ['phandle', c(1)],
      ],
      children: [
        {
          name: 'msi-controller@2f020000',
          props: [
            ['#msi-cells', c(1)],
            ['compatible', 'arm,gic-v3-its'],
            ['reg', c(0, 0x2f020000, 0, 0x20000)],
            ['msi-controller', true],
            ['phandle', c(2)],
          ],
        },
      ],
    },
    {
      name: 'pci@40000000',
      props: [
        ['#address-cells', c(3)],
        ['#size-cells', c(2)],
        ['compatible', 'pci-host-ecam-generic'],
        ['device_type', 'pci'],
        ['bus-range', c(0, 1)],
        ['reg', c(0, 0x40000000, 0, 0x10000000)],
        ['msi-map', c(0, 2, 0, 0x10000)],
        ['iommu-map', c(0, 3, 0, 0x10000)],
        ['dma-coherent', true],
        ['ats-supported', true],
      ],
    },
    {
      name: 'iommu@2b400000',
      props: [
        ['compatible', 'arm,smmu-v3'],
        ['reg', c(0, 0x2b400000, 0, 0x100000)],
        ['interrupts', c(SPI, 74, EDGE, SPI, 79, EDGE, SPI, 75, EDGE, SPI, 77, EDGE)],
        ['interrupt-names', ['eventq', 'gerror', 'priq', 'cmdq-sync']],
        ['dma-coherent', true],
        ['#iommu-cells', c(1)],
        ['msi-parent', c(2, 0x10000)],
        ['phandle', c(3)],
      ],
    },
  ],
};

const rkPcie = (unit: string, domain: number, base: number): DtNodeSpec => ({
  name: `pcie@${unit}`,
  props: [
    ['compatible', ['rockchip,rk3588-pcie', 'rockchip,rk3568-pcie']],
    ['device_type', 'pci'],
    ['linux,pci-domain', c(domain)],
    ['iommu-map', c(base, 2, base, 0x1000)],
    ['#address-cells', c(3)],
    ['#size-cells', c(2)],
  ],
});

const rkSmmu = (
  unit: string,
  base: number,
  irqs: number[],
  phandle: number,
  disabled: boolean,
): DtNodeSpec => ({
  name: `iommu@${unit}`,
  props: [
    ['compatible', 'arm,smmu-v3'],
    ['reg', c(0, base, 0, 0x200000)],
    ['interrupts', c(...irqs.flatMap((n) => [SPI, n, EDGE, 0]))],
    ['interrupt-names', ['eventq', 'gerror', 'priq', 'cmdq-sync']],
    ['#iommu-cells', c(1)],
    ...(disabled ? [['status', 'disabled'] as const] : []),
    ['phandle', c(phandle)],
  ],
});

/** fixtures/rk3588-smmu.dts. */
export const RK3588: DtNodeSpec = {
  name: '',
  props: [
    ['compatible', 'rockchip,rk3588'],
    ['interrupt-parent', c(1)],
    ['#address-cells', c(2)],
    ['#size-cells', c(2)],
  ],
  children: [
    {
      name: 'interrupt-controller@fe600000',
      props: [
        ['compatible', 'arm,gic-v3'],
        ['reg', c(0, 0xfe600000, 0, 0x10000, 0, 0xfe680000, 0, 0x100000)],
        ['#interrupt-cells', c(4)],
        ['interrupt-controller', true],
        ['phandle', c(1)],
      ],
    },
    rkSmmu('fc900000', 0xfc900000, [369, 371, 374, 367], 2, false),
    rkSmmu('fcb00000', 0xfcb00000, [381, 383, 386, 379], 3, true),
    rkPcie('fe150000', 0, 0x0000),
    rkPcie('fe160000', 1, 0x1000),
    rkPcie('fe180000', 3, 0x3000),
    {
      name: 'pcie-ep@fe150000',
      props: [
        ['compatible', 'rockchip,rk3588-pcie-ep'],
        ['iommus', c(2, 0)],
        ['status', 'disabled'],
      ],
    },
  ],
};

/** fixtures/ascend310-sdma-smmu.dts. */
export const ASCEND310_SDMA: DtNodeSpec = {
  name: '',
  props: [
    ['#address-cells', c(1)],
    ['#size-cells', c(1)],
    ['interrupt-parent', c(1)],
  ],
  children: [
    {
      name: 'interrupt-controller@2f000000',
      props: [
        ['compatible', 'arm,gic-v3'],
        ['reg', c(0x2f000000, 0x10000)],
        ['#interrupt-cells', c(3)],
        ['interrupt-controller', true],
        ['phandle', c(1)],
      ],
      children: [
        {
          name: 'msi-controller@2f020000',
          props: [
            ['compatible', 'arm,gic-v3-its'],
            ['reg', c(0x2f020000, 0x20000)],
            ['msi-controller', true],
            ['#msi-cells', c(1)],
            ['phandle', c(2)],
          ],
        },
      ],
    },
    {
      name: 'iommu@2b400000',
      props: [
        ['compatible', 'arm,smmu-v3'],
        ['reg', c(0x2b400000, 0x20000)],
        ['interrupts', c(SPI, 74, EDGE, SPI, 75, EDGE, SPI, 77, EDGE, SPI, 79, EDGE)],
        ['interrupt-names', ['eventq', 'gerror', 'priq', 'cmdq-sync']],
        ['dma-coherent', true],
        ['#iommu-cells', c(1)],
        ['msi-parent', c(2, 0xff0000)],
        ['phandle', c(3)],
      ],
    },
    {
      name: 'dma-controller@880e0000',
      props: [
        ['compatible', 'hisilicon,ascend310-sdma'],
        ['reg', c(0x880e0000, 0x10000)],
        ['dma-channel-mask', c(0xff00)],
        ['iommus', c(3, 0x7f46)],
        ['pasid-num-bits', c(0x10)],
        ['dma-coherent', true],
        ['dma-can-stall', true],
        ['#dma-cells', c(1)],
      ],
    },
  ],
};

/** Fixture file stem to tree. */
export const DT_FIXTURES: Readonly<Record<string, DtNodeSpec>> = {
  'fvp-base-revc-smmu': FVP_BASE_REVC,
  'rk3588-smmu': RK3588,
  'ascend310-sdma-smmu': ASCEND310_SDMA,
};
