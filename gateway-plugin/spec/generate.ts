// Writes what gateway-plugin/spec/options.json generates (render.ts): lua/verdict/spec.lua and
// the marked blocks of njs/verdict.js, nginx/verdict-http.conf and nginx/verdict-njs-http.conf.
//   npx tsx gateway-plugin/spec/generate.ts          write them
//   npx tsx gateway-plugin/spec/generate.ts --check  list the stale ones, exit 1 if any
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generatedFiles, pluginDir } from './render.ts';

const root = resolve(pluginDir, '..');
const check = process.argv.includes('--check');
let stale = 0;
for (const f of generatedFiles()) {
  const path = join(root, f.path);
  let now = '';
  try { now = readFileSync(path, 'utf8'); } catch { /* not there yet */ }
  if (now === f.text) continue;
  stale++;
  if (check) console.log(`stale: ${f.path}`);
  else { writeFileSync(path, f.text); console.log(`wrote ${f.path}`); }
}
if (check && stale > 0) process.exit(1);
if (stale === 0) console.log('generated files are up to date');
