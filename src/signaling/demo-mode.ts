import type { Config, ServiceEnv } from '../config/schema.ts';

export type DemoSetting = Config['signaling']['demo_enabled'];

/**
 * Whether the web demo and its token route are served. `auto` turns them on for
 * development and tests and off in production, where a route that hands a room token to
 * anyone who asks has no place unless the operator says so.
 */
export function demoEnabled(setting: DemoSetting, env: ServiceEnv): boolean {
  if (setting === 'auto') return env !== 'production';
  return setting === true || setting === 'true';
}
