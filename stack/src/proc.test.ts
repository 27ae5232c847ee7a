import { describe, expect, it } from 'vitest';
import { groupCpuSeconds, processCpuSeconds, processGroups } from './proc';

describe('CPU accounting from /proc', () => {
  it("counts this process's CPU time as it burns some, and its group includes it", () => {
    const before = processCpuSeconds(process.pid);
    const groups = processGroups();
    const pgid = groups.get(process.pid) ?? -1;
    // Busy until the kernel has charged 0.2 s more (bounded, so a stalled clock fails instead of hanging).
    const giveUpAt = Date.now() + 20_000;
    let spins = 0;
    while (processCpuSeconds(process.pid) < before + 0.2 && Date.now() < giveUpAt) spins += 1;
    expect(spins).toBeGreaterThan(0);
    const after = processCpuSeconds(process.pid);
    expect(after).toBeGreaterThanOrEqual(before + 0.2);
    // The group's sum includes this process (other members come and go, so only this is certain).
    expect(groupCpuSeconds(pgid)).toBeGreaterThanOrEqual(after);
  });

  it('is 0 for a process that does not exist', () => {
    expect(processCpuSeconds(2 ** 22 + 1)).toBe(0);
  });
});
