// Copies non-TypeScript files the server reads at run time (SQL migrations, page assets) from src/ to dist/.
import { cpSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ASSET = /\.(sql|html|css|js|svg|png|ico|json|txt)$/;
const root = new URL('..', import.meta.url).pathname;

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (ASSET.test(name) && !name.endsWith('.d.ts')) cpSync(path, join(root, 'dist', relative(join(root, 'src'), path)));
  }
}
walk(join(root, 'src'));
