import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { loadConfig, ConfigError } from '../../src/config/load.ts';
import { schema } from '../../src/config/schema.ts';
import { REPO_ROOT } from '../helpers/service.ts';

const dir = (files: Record<string, string> = {}): string => {
  const d = mkdtempSync(join(tmpdir(), 'cfg-'));
  for (const [name, body] of Object.entries(files)) writeFileSync(join(d, name), body);
  return d;
};

test('embedded defaults apply with no file and no environment', () => {
  const { config, files } = loadConfig({ env: {}, cwd: dir() });
  assert.equal(config.grpc.port, 13031);
  assert.equal(config.http.port, 13032);
  assert.equal(config.rtp.port_min, 10000);
  assert.equal(config.events.exchange, 'sentiric_events');
  assert.deepEqual(files, { toml: null, dotenv: null });
});

test('a TOML file alone configures the service', () => {
  const cwd = dir({ 'config.toml': '[grpc]\nport = 15000\n[rtp]\nport_min = 30000\nport_max = 30100\n' });
  const { config, files } = loadConfig({ env: {}, cwd });
  assert.equal(config.grpc.port, 15000);
  assert.equal(config.rtp.port_min, 30000);
  assert.equal(files.toml, join(cwd, 'config.toml'));
});

test('a .env file alone configures the service', () => {
  const cwd = dir({ '.env': 'MEDIA_SERVICE_GRPC_PORT=16000\nRTP_SERVICE_PORT_MIN=30000\nRTP_SERVICE_PORT_MAX=30100\n' });
  const { config, files } = loadConfig({ env: {}, cwd });
  assert.equal(config.grpc.port, 16000);
  assert.equal(config.rtp.port_max, 30100);
  assert.equal(files.dotenv, join(cwd, '.env'));
});

test('layers override in order: TOML < .env < process environment', () => {
  const cwd = dir({
    'config.toml': '[grpc]\nport = 15000\n[http]\nport = 15001\n[log]\nlevel = "warn"\n',
    '.env': 'MEDIA_SERVICE_GRPC_PORT=16000\nMEDIA_SERVICE_METRICS_PORT=16001\n',
  });
  const { config } = loadConfig({ env: { MEDIA_SERVICE_GRPC_PORT: '17000' }, cwd });
  assert.equal(config.grpc.port, 17000, 'environment beats .env');
  assert.equal(config.http.port, 16001, '.env beats TOML');
  assert.equal(config.log.level, 'warn', 'TOML beats defaults');
});

test('--config and CONFIG_FILE name the TOML layer; a missing one is an error', () => {
  const cwd = dir({ 'other.toml': '[grpc]\nport = 15500\n' });
  assert.equal(loadConfig({ env: {}, argv: ['--config', 'other.toml'], cwd }).config.grpc.port, 15500);
  assert.equal(loadConfig({ env: { CONFIG_FILE: join(cwd, 'other.toml') }, cwd }).config.grpc.port, 15500);
  assert.throws(() => loadConfig({ env: { CONFIG_FILE: 'nope.toml' }, cwd }), /config file not found/);
});

test('bad values stop start-up with a message naming the key', () => {
  const cases: [Record<string, string>, Record<string, string>, RegExp][] = [
    [{ MEDIA_SERVICE_GRPC_PORT: '70000' }, {}, /grpc\.port/],
    [{ ENV: 'staging' }, {}, /service\.env/],
    [{ RTP_SERVICE_PORT_MIN: '10001' }, {}, /rtp\.port_min: must be even/],
    [{ RTP_SERVICE_PORT_MIN: '20000', RTP_SERVICE_PORT_MAX: '10000' }, {}, /rtp\.port_max: must be above/],
    [{ RTP_SERVICE_LISTEN_ADDRESS: 'not-an-ip' }, {}, /rtp\.listen_address/],
    [{ MEDIA_PRIORITY: '-21' }, {}, /rtp\.priority: must be a whole number from -20 to 19/],
    [{ MEDIA_PRIORITY: 'high' }, {}, /rtp\.priority/],
    [{ MEDIA_SERVICE_CERT_PATH: '/x.pem' }, {}, /mTLS needs cert_path, key_path and ca_path together/],
    [{}, { 'config.toml': '[grpc]\nprot = 1\n' }, /grpc\.prot/],
    [{}, { 'config.toml': '[grpc\n' }, /invalid TOML/],
  ];
  for (const [env, files, pattern] of cases) {
    assert.throws(() => loadConfig({ env, cwd: dir(files) }), (err: unknown) => {
      assert.ok(err instanceof ConfigError, `ConfigError for ${JSON.stringify({ env, files })}`);
      assert.match(err.message, pattern);
      return true;
    });
  }
});

test('signaling.demo_enabled: auto by default; true, false (env or TOML boolean); anything else stops start-up', () => {
  assert.equal(loadConfig({ env: {}, cwd: dir() }).config.signaling.demo_enabled, 'auto');
  assert.equal(loadConfig({ env: { SIGNALING_DEMO_ENABLED: 'false' }, cwd: dir() }).config.signaling.demo_enabled, 'false');
  assert.equal(loadConfig({ env: {}, cwd: dir({ 'config.toml': '[signaling]\ndemo_enabled = true\n' }) }).config.signaling.demo_enabled, true);
  assert.equal(loadConfig({ env: {}, cwd: dir({ 'config.toml': '[signaling]\ndemo_enabled = "auto"\n' }) }).config.signaling.demo_enabled, 'auto');
  assert.throws(() => loadConfig({ env: { SIGNALING_DEMO_ENABLED: 'yes' }, cwd: dir() }), /signaling\.demo_enabled/);
});

test('config.default.toml documents every key with its embedded default', () => {
  const documented = parseToml(readFileSync(join(REPO_ROOT, 'config.default.toml'), 'utf8')) as Record<string, Record<string, unknown>>;
  const text = readFileSync(join(REPO_ROOT, 'config.default.toml'), 'utf8');
  let keys = 0;
  for (const [section, entries] of Object.entries(schema)) {
    for (const [key, spec] of Object.entries(entries as Record<string, { default: unknown; env?: string }>)) {
      keys++;
      assert.deepEqual(documented[section]?.[key], spec.default, `${section}.${key}`);
      if (spec.env) assert.ok(text.includes(spec.env), `${section}.${key} names its variable ${spec.env}`);
    }
  }
  const documentedKeys = Object.values(documented).reduce((n, s) => n + Object.keys(s).length, 0);
  assert.equal(documentedKeys, keys, 'no key in config.default.toml that the schema lacks');
  // Loading the documented file must give exactly the defaults.
  const cwd = dir({ 'config.toml': text });
  assert.deepEqual(loadConfig({ env: {}, cwd }).config, loadConfig({ env: {}, cwd: dir() }).config);
});
