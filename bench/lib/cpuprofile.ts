/**
 * Reads V8 .cpuprofile files (`node --cpu-prof`) and sums self time per function, so a profile can be read
 * without a browser: `node --import tsx bench/lib/cpuprofile.ts DIR_OR_FILE… [--top N]`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionCost {
  name: string;
  where: string;
  selfMs: number;
  share: number;
}

/** A profile frame's URL from its node_modules, dist or src folder on (the rest without `file://`). */
export function shortUrl(url: string): string {
  const at = url.search(/\/(node_modules|dist|src)\//);
  return at === -1 ? url.replace(/^file:\/\//, '') : url.slice(at + 1);
}

/** Self time per function (summed over every node of that function), biggest first. */
export function selfTimes(files: string[]): { total: number; functions: FunctionCost[]; byFile: FunctionCost[]; inclusive: FunctionCost[] } {
  const byFunction = new Map<string, { name: string; where: string; us: number }>();
  const inclusive = new Map<string, { name: string; where: string; us: number }>();
  const byFile = new Map<string, number>();
  let total = 0;
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
    const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
    const parents = new Map<number, number>();
    for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
    profile.samples.forEach((id, index) => {
      const us = profile.timeDeltas[index] ?? 0;
      const frame = nodes.get(id)!.callFrame;
      const where = `${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
      const key = `${frame.functionName}@${where}`;
      const entry = byFunction.get(key) ?? { name: frame.functionName || '(anonymous)', where, us: 0 };
      entry.us += us;
      byFunction.set(key, entry);
      // Inclusive: every distinct function on the sampled stack gets the sample once.
      const seen = new Set<string>();
      for (let at: number | undefined = id; at !== undefined; at = parents.get(at)) {
        const f = nodes.get(at)!.callFrame;
        const w = `${shortUrl(f.url)}:${f.lineNumber + 1}`;
        const k = `${f.functionName}@${w}`;
        if (seen.has(k)) continue;
        seen.add(k);
        const e = inclusive.get(k) ?? { name: f.functionName || '(anonymous)', where: w, us: 0 };
        e.us += us;
        inclusive.set(k, e);
      }
      const fileKey = shortUrl(frame.url) || frame.functionName;
      byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + us);
      total += us;
    });
  }
  const functions = [...byFunction.values()].sort((a, b) => b.us - a.us).map((f) => ({ name: f.name, where: f.where, selfMs: f.us / 1000, share: f.us / total }));
  const files2 = [...byFile.entries()].sort((a, b) => b[1] - a[1]).map(([where, us]) => ({ name: '', where, selfMs: us / 1000, share: us / total }));
  const inclusiveList = [...inclusive.values()].sort((a, b) => b.us - a.us).map((f) => ({ name: f.name, where: f.where, selfMs: f.us / 1000, share: f.us / total }));
  return { total: total / 1000, functions, byFile: files2, inclusive: inclusiveList };
}

function expand(paths: string[]): string[] {
  return paths.flatMap((path) => (statSync(path).isDirectory() ? readdirSync(path).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(path, f)) : [path]));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const topIndex = args.indexOf('--top');
  const top = topIndex === -1 ? 40 : Number(args.splice(topIndex, 2)[1]);
  const { total, functions, byFile, inclusive } = selfTimes(expand(args));
  console.log(`total sampled: ${total.toFixed(0)} ms`);
  for (const f of functions.slice(0, top)) console.log(`${(f.share * 100).toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.name}  ${f.where}`);
  console.log('\ninclusive (with callees):');
  for (const f of inclusive.filter((f) => f.where.startsWith('dist/') || f.where.startsWith('src/') || f.where.includes('fastify') || f.where.includes('pino')).slice(0, top)) console.log(`${(f.share * 100).toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.name}  ${f.where}`);
  console.log('\nby file:');
  for (const f of byFile.slice(0, 25)) console.log(`${(f.share * 100).toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.where}`);
}
