// Command-line options of the bench tools: `--name value`, repeatable ones, and flags.

/** The value after `--name`, or `dflt`. */
export function argValue(name: string, dflt: string, argv: readonly string[] = process.argv): string {
  const i = argv.indexOf(name);
  return i >= 0 ? (argv[i + 1] ?? dflt) : dflt;
}

/** The value after `--name` as a number, or `dflt`. */
export function argNumber(name: string, dflt: number, argv: readonly string[] = process.argv): number {
  const v = Number(argValue(name, String(dflt), argv));
  return Number.isFinite(v) ? v : dflt;
}

/** Every value given after a repeatable `--name`. */
export function argValues(name: string, argv: readonly string[] = process.argv): string[] {
  return argv.flatMap((a, i) => (argv[i - 1] === name ? [a] : []));
}

/** NAME=VALUE pairs given after a repeatable `--name` (e.g. --service-env VERDICT_STORE_MAX_KEYS=100000). */
export function argEnv(name: string, argv: readonly string[] = process.argv): Record<string, string> {
  return Object.fromEntries(argValues(name, argv).map((a) => {
    const eq = a.indexOf('=');
    return eq < 0 ? [a, ''] : [a.slice(0, eq), a.slice(eq + 1)];
  }));
}
