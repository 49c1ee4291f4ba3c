import { createLogging } from '../../src/logging/logger.ts';

export type CapturedLogger = ReturnType<typeof createLogging>['process'];

/** The service's logger writing JSON lines into `lines` (or to `write`, when given), for tests to read. */
export function captureLogging(opts: { tenantId?: string; level?: string; write?: (line: string) => void } = {}): { logger: CapturedLogger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logging = createLogging({
    config: { service: { name: 'media-service', env: 'test', tenant_id: opts.tenantId ?? 'tenant-a' }, log: { level: opts.level ?? 'info', format: 'json' } },
    version: 'test',
    destination: { write: opts.write ?? ((s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>)) },
  });
  return { logger: logging.process, lines };
}
