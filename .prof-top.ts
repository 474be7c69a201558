import { readFileSync, readdirSync, statSync } from 'node:fs';
const dir = process.argv[2];
const f = readdirSync(dir).map((n) => dir + '/' + n).sort((a, b) => statSync(b).size - statSync(a).size)[0];
const p = JSON.parse(readFileSync(f, 'utf8'));
const self = new Map<number, number>();
const dt = p.timeDeltas as number[];
p.samples.forEach((id: number, i: number) => self.set(id, (self.get(id) ?? 0) + (dt[i] ?? 0)));
const byName = new Map<string, number>();
let total = 0;
for (const n of p.nodes) { const t = self.get(n.id) ?? 0; total += t; const k = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber}`; byName.set(k, (byName.get(k) ?? 0) + t); }
console.log('total ms', (total / 1000).toFixed(0));
[...byName].sort((a, b) => b[1] - a[1]).slice(0, Number(process.argv[3] ?? 30)).forEach(([k, v]) => console.log((v / 1000).toFixed(1).padStart(8), k));
