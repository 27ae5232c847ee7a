import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { EventLoopUtilization } from 'node:perf_hooks';
import type { BatchObservableResult, Meter, Observable } from '@opentelemetry/api';

const NANOSECONDS_PER_SECOND = 1e9;

/**
 * Registers Node.js process and runtime gauges on `meter`. Names and units are chosen so that the
 * Prometheus rendering matches the names dashboards already know from `prom-client`
 * (`process_resident_memory_bytes`, `nodejs_heap_size_used_bytes`, …).
 *
 * @returns a function that stops the event-loop monitor and unregisters the callbacks.
 */
export function registerRuntimeMetrics(meter: Meter): () => void {
  const residentMemory = meter.createObservableGauge('process.resident_memory', {
    description: 'Resident set size of the process.',
    unit: 'By',
  });
  const cpu = meter.createObservableCounter('process.cpu', {
    description: 'CPU time spent by the process, user and system.',
    unit: 's',
  });
  const startTime = meter.createObservableGauge('process.start_time', {
    description: 'Start time of the process since the Unix epoch.',
    unit: 's',
  });
  const heapTotal = meter.createObservableGauge('nodejs.heap.size.total', {
    description: 'V8 heap size reserved.',
    unit: 'By',
  });
  const heapUsed = meter.createObservableGauge('nodejs.heap.size.used', {
    description: 'V8 heap size in use.',
    unit: 'By',
  });
  const external = meter.createObservableGauge('nodejs.external_memory', {
    description: 'Memory of C++ objects bound to JavaScript objects managed by V8.',
    unit: 'By',
  });
  const utilization = meter.createObservableGauge('nodejs.eventloop.utilization', {
    description: 'Share of time the event loop was busy since the previous collection.',
    unit: '1',
  });
  const delays = {
    min: meter.createObservableGauge('nodejs.eventloop.delay.min', {
      description: 'Smallest event-loop delay since the previous collection.',
      unit: 's',
    }),
    max: meter.createObservableGauge('nodejs.eventloop.delay.max', {
      description: 'Largest event-loop delay since the previous collection.',
      unit: 's',
    }),
    mean: meter.createObservableGauge('nodejs.eventloop.delay.mean', {
      description: 'Mean event-loop delay since the previous collection.',
      unit: 's',
    }),
    p50: meter.createObservableGauge('nodejs.eventloop.delay.p50', {
      description: 'Median event-loop delay since the previous collection.',
      unit: 's',
    }),
    p90: meter.createObservableGauge('nodejs.eventloop.delay.p90', {
      description: '90th percentile event-loop delay since the previous collection.',
      unit: 's',
    }),
    p99: meter.createObservableGauge('nodejs.eventloop.delay.p99', {
      description: '99th percentile event-loop delay since the previous collection.',
      unit: 's',
    }),
  };

  const delayMonitor = monitorEventLoopDelay({ resolution: 10 });
  delayMonitor.enable();
  let lastUtilization: EventLoopUtilization = performance.eventLoopUtilization();
  const processStartSeconds = Date.now() / 1000 - process.uptime();

  const observables: Observable[] = [
    residentMemory,
    cpu,
    startTime,
    heapTotal,
    heapUsed,
    external,
    utilization,
    ...Object.values(delays),
  ];

  const observe = (result: BatchObservableResult): void => {
    const memory = process.memoryUsage();
    result.observe(residentMemory, memory.rss);
    result.observe(heapTotal, memory.heapTotal);
    result.observe(heapUsed, memory.heapUsed);
    result.observe(external, memory.external);
    const usage = process.cpuUsage();
    result.observe(cpu, (usage.user + usage.system) / 1e6);
    result.observe(startTime, processStartSeconds);

    const current = performance.eventLoopUtilization();
    result.observe(
      utilization,
      performance.eventLoopUtilization(current, lastUtilization).utilization,
    );
    lastUtilization = current;

    // Before the first sample the histogram reports min as 2^63; say 0 instead.
    const hasSamples = delayMonitor.count > 0;
    const seconds = (nanoseconds: number): number =>
      hasSamples ? nanoseconds / NANOSECONDS_PER_SECOND : 0;
    result.observe(delays.min, seconds(delayMonitor.min));
    result.observe(delays.max, seconds(delayMonitor.max));
    result.observe(delays.mean, seconds(delayMonitor.mean));
    result.observe(delays.p50, seconds(delayMonitor.percentile(50)));
    result.observe(delays.p90, seconds(delayMonitor.percentile(90)));
    result.observe(delays.p99, seconds(delayMonitor.percentile(99)));
    delayMonitor.reset();
  };
  meter.addBatchObservableCallback(observe, observables);

  return () => {
    meter.removeBatchObservableCallback(observe, observables);
    delayMonitor.disable();
  };
}
