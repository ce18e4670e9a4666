import { describe, expect, it } from 'vitest';
import {
  DMA_PERM_EXEC,
  DMA_PERM_PRIV,
  DMA_PERM_READ,
  DMA_PERM_WRITE,
  DmaFaultError,
  dmaRequest,
  dmaRequestPerm,
  PendingDma,
  PRG_RESPONSE,
  prgResponseCodeFromIommu,
} from './dma-request.js';

describe('DMA requests', () => {
  it('builds validated, frozen requests with default flags', () => {
    const r = dmaRequest({ requesterId: 0x10, addr: 0x1000n, size: 4, access: 'read' });
    expect(r).toEqual({
      requesterId: 0x10,
      addr: 0x1000n,
      size: 4,
      access: 'read',
      exec: false,
      privileged: false,
      atsTranslated: false,
    });
    expect(Object.isFrozen(r)).toBe(true);
    expect('pasid' in r).toBe(false);
    expect(dmaRequest({ requesterId: 1, pasid: 5, addr: 0n, size: 1, access: 'write' }).pasid).toBe(5);
    expect(() => dmaRequest({ requesterId: -1, addr: 0n, size: 1, access: 'read' })).toThrow(/requester/);
    expect(() => dmaRequest({ requesterId: 1, pasid: 1 << 20, addr: 0n, size: 1, access: 'read' })).toThrow(
      /PASID/,
    );
    expect(() => dmaRequest({ requesterId: 1, addr: 0n, size: 1.5, access: 'read' })).toThrow(/size/);
    expect(() => dmaRequest({ requesterId: 1, addr: -1n, size: 1, access: 'read' })).toThrow(/u64/);
  });

  it('derives IOMMU_FAULT_PERM bits', () => {
    expect(dmaRequestPerm({ access: 'read', exec: true, privileged: true })).toBe(
      DMA_PERM_READ | DMA_PERM_EXEC | DMA_PERM_PRIV,
    );
    expect(dmaRequestPerm({ access: 'write', exec: false, privileged: false })).toBe(DMA_PERM_WRITE);
  });

  it('maps Linux page response codes to PCIe PRG response codes', () => {
    expect([0, 1, 2].map(prgResponseCodeFromIommu)).toEqual([
      PRG_RESPONSE.SUCCESS,
      PRG_RESPONSE.INVALID_REQUEST,
      PRG_RESPONSE.RESPONSE_FAILURE,
    ]);
    expect(() => prgResponseCodeFromIommu(3)).toThrow();
  });

  it('settles a pending DMA once, to every listener', () => {
    const p = new PendingDma(dmaRequest({ requesterId: 1, addr: 0n, size: 1, access: 'read' }), undefined, 7);
    const seen: string[] = [];
    p.onSettled((o) => seen.push(`a:${o.kind}`));
    expect(p.settled).toBe(false);
    p.settle({ kind: 'fault', reason: 'terminated', addr: 0n });
    p.onSettled((o) => seen.push(`b:${o.kind}`));
    expect(seen).toEqual(['a:fault', 'b:fault']);
    expect(() => p.settle({ kind: 'completed' })).toThrow(/already/);
    expect(new DmaFaultError({ kind: 'fault', reason: 'pri-invalid', addr: 0n }).code).toBe('EIO');
  });
});
