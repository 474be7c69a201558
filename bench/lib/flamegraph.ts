// A flame graph as one self-contained SVG from folded stacks ("root;caller;callee count" lines,
// as bench/profile.ts writes them): each frame a box as wide as its share of the samples, callers
// below callees, a tooltip with the frame's name and share. No script, no external resource.

interface Node { name: string; value: number; children: Map<string, Node> }

const ROW = 16;
const WIDTH = 1200;
const MIN_PX = 0.5;

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A warm colour per frame name, stable across graphs (so two graphs compare at a glance). */
function colour(name: string): string {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  const x = (h >>> 0) / 4294967296;
  return `rgb(${Math.round(205 + 50 * x)},${Math.round(80 + 150 * ((x * 7) % 1))},${Math.round(40 + 40 * ((x * 13) % 1))})`;
}

export function flameGraphSvg(folded: string, title: string): string {
  const root: Node = { name: 'all', value: 0, children: new Map() };
  for (const line of folded.split('\n')) {
    const m = /^(.*) (\d+(?:\.\d+)?)$/.exec(line.trim());
    if (!m) continue;
    const v = Number(m[2]);
    root.value += v;
    let node = root;
    for (const f of (m[1] as string).split(';')) {
      let c = node.children.get(f);
      if (!c) {
        c = { name: f, value: 0, children: new Map() };
        node.children.set(f, c);
      }
      c.value += v;
      node = c;
    }
  }
  const boxes: string[] = [];
  let depth = 0;
  const walk = (n: Node, x: number, d: number) => {
    const w = (n.value / Math.max(1, root.value)) * WIDTH;
    if (w < MIN_PX) return;
    depth = Math.max(depth, d);
    const share = ((100 * n.value) / Math.max(1, root.value)).toFixed(2);
    const label = w > 40 ? `<text x="${(x + 3).toFixed(1)}" y="${-d * ROW - 4}" font-size="11">${escapeXml(n.name.slice(0, Math.floor(w / 6.5)))}</text>` : '';
    boxes.push(`<g><title>${escapeXml(n.name)} (${share}%)</title><rect x="${x.toFixed(1)}" y="${-(d + 1) * ROW}" width="${w.toFixed(1)}" height="${ROW - 1}" fill="${colour(n.name)}"/>${label}</g>`);
    let cx = x;
    for (const c of [...n.children.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      walk(c, cx, d + 1);
      cx += (c.value / Math.max(1, root.value)) * WIDTH;
    }
  };
  walk(root, 0, 0);
  const height = (depth + 2) * ROW + 24;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 ${-(depth + 1) * ROW - 24} ${WIDTH} ${height}" font-family="monospace">
<text x="4" y="${-(depth + 1) * ROW - 8}" font-size="13">${escapeXml(title)}</text>
${boxes.join('\n')}
</svg>
`;
}
