// Key files (the gateway secret, the webhook key): one key per line, blank lines and surrounding
// spaces ignored, so an editor's trailing newline or a rotation's second line reads as expected.

import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.ts';

/**
 * The non-empty lines (trimmed) of the key file `variable` names; a file that cannot be read is a
 * ConfigError saying how to write `what` there.
 */
export function readKeyLines(file: string, variable: string, what: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('invalid environment', [`${variable}=${JSON.stringify(file)}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}); write ${what} there (e.g. \`openssl rand -hex 32 > ${file}\`)`]);
  }
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
}
