#!/usr/bin/env node
// Builds the mediasoup worker from the sources shipped in the npm package, linked against
// Debian's libraries. mediasoup's own build fetches its C/C++ dependencies through meson
// wraps, which needs network access beyond the npm registry; the system libraries need none.
//
// usage: node scripts/build-worker.mjs <mediasoup package dir> <output binary path>
import { cpSync, mkdtempSync, readFileSync, writeFileSync, renameSync, mkdirSync, rmSync, copyFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { execFileSync } from 'node:child_process';

const [pkgDir, outBin] = process.argv.slice(2);
if (!pkgDir || !outBin) {
  console.error('usage: build-worker.mjs <mediasoup package dir> <output binary path>');
  process.exit(2);
}

const SYSTEM_DEPS = `
openssl_dep = dependency('openssl')
nlohmann_json_dep = dependency('nlohmann_json')
libuv_dep = dependency('libuv')
libsrtp2_dep = declare_dependency(
  dependencies: [dependency('libsrtp2')],
  compile_args: ['-I/usr/include/srtp2'],
)
usrsctp_dep = dependency('usrsctp')
absl_container_dep = dependency('absl_flat_hash_map')
absl_strings_dep = dependency('absl_strings')
absl_types_dep = dependency('absl_optional')
`;

function replaceBetween(text, startMarker, endMarker, replacement) {
  const start = text.indexOf(startMarker);
  const end = text.indexOf(endMarker, start);
  if (start < 0 || end < 0) throw new Error(`marker not found: ${startMarker} .. ${endMarker}`);
  return text.slice(0, start) + replacement + text.slice(end);
}

function patchTopLevel(text) {
  text = text.replace(/meson_version: '>= [0-9.]+'/, "meson_version: '>= 0.60.0'");
  text = replaceBetween(text, 'openssl_proj = subproject(', 'libwebrtc_include_directories', SYSTEM_DEPS);
  text = replaceBetween(
    text,
    'dependencies = [',
    "if host_machine.system() == 'windows'",
    `dependencies = [
  absl_container_dep,
  openssl_dep,
  nlohmann_json_dep,
  libuv_dep,
  libsrtp2_dep,
  usrsctp_dep,
  libwebrtc_dep,
]

link_whole = [
  libwebrtc,
]

`,
  );
  // Unit tests and fuzzers need catch2 and libFuzzer; the service needs only the worker.
  const cut = text.indexOf('test_sources = [');
  if (cut < 0) throw new Error('test_sources marker not found');
  return text.slice(0, cut);
}

function patchLibwebrtc(text) {
  text = replaceBetween(text, 'abseil_cpp_proj = subproject(', 'local_include_directories', '');
  return text
    .replaceAll("openssl_proj.get_variable('openssl_dep')", 'openssl_dep')
    .replaceAll("abseil_cpp_proj.get_variable('absl_strings_dep')", 'absl_strings_dep')
    .replaceAll("abseil_cpp_proj.get_variable('absl_types_dep')", 'absl_types_dep')
    .replaceAll("nlohmann_json_proj.get_variable('nlohmann_json_dep')", 'nlohmann_json_dep')
    .replaceAll("libuv_proj.get_variable('libuv_dep')", 'libuv_dep');
}

const work = mkdtempSync(join(tmpdir(), 'mediasoup-worker-'));
try {
  const src = join(work, 'worker');
  cpSync(join(pkgDir, 'worker'), src, { recursive: true });
  const top = join(src, 'meson.build');
  writeFileSync(top, patchTopLevel(readFileSync(top, 'utf8')));
  const lw = join(src, 'deps', 'libwebrtc', 'meson.build');
  writeFileSync(lw, patchLibwebrtc(readFileSync(lw, 'utf8')));

  const build = join(work, 'build');
  execFileSync('meson', ['setup', '--buildtype=release', build, src], { stdio: 'inherit' });
  execFileSync('ninja', ['-C', build, 'mediasoup-worker'], { stdio: 'inherit' });

  mkdirSync(dirname(outBin), { recursive: true });
  const tmpOut = `${outBin}.tmp-${process.pid}`;
  copyFileSync(join(build, 'mediasoup-worker'), tmpOut);
  chmodSync(tmpOut, 0o755);
  renameSync(tmpOut, outBin);
  console.log(`mediasoup worker built: ${outBin}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
