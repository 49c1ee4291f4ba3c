import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig } from './config/load.ts';
import { createApp } from './app.ts';
import { holdProcessWarnings } from './logging/logger.ts';

const MIN_NODE_MAJOR = 24;

async function main(): Promise<void> {
  const routeWarnings = holdProcessWarnings();
  const major = Number(process.versions.node.split('.')[0]);
  if (major < MIN_NODE_MAJOR) {
    process.stderr.write(`media service needs Node ${MIN_NODE_MAJOR} or later (this is ${process.version}); start it with \`npm start\`\n`);
    process.exit(1);
  }
  let loaded;
  try {
    loaded = loadConfig({ env: process.env, argv: process.argv.slice(2), cwd: process.cwd() });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  const app = await createApp(loaded, { version: pkg.version });
  const log = app.state.log;
  routeWarnings(log);

  process.on('unhandledRejection', (error) => {
    log.error({ event: 'UNHANDLED_REJECTION', error }, 'unhandled promise rejection');
  });
  process.on('uncaughtException', (error) => {
    log.fatal({ event: 'UNCAUGHT_EXCEPTION', error }, 'uncaught exception; exiting');
    process.exit(1);
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    app.stop(signal).then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ event: 'SHUTDOWN_FAILED', error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  await app.start();
}

main().catch((err: unknown) => {
  process.stderr.write(`media service failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
