// Builds the dashboard (dashboard/ → dashboard/dist) with Vite when the build is missing or older
// than any of its sources, so `npm start` on a fresh clone and the browser tests serve a current
// build without an extra step, and a second run costs one directory walk. `--force` always builds.
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const DASHBOARD_DIR = join(root, 'dashboard');
export const DASHBOARD_DIST = join(DASHBOARD_DIR, 'dist');

function newestSource(dir) {
  let newest = 0;
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    if (name.name === 'dist' || name.name === 'node_modules' || name.name === '.build-lock') continue;
    const p = join(dir, name.name);
    newest = Math.max(newest, name.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

export function dashboardIsCurrent() {
  const index = join(DASHBOARD_DIST, 'index.html');
  if (!existsSync(index)) return false;
  return statSync(index).mtimeMs >= newestSource(DASHBOARD_DIR);
}

const LOCK = join(DASHBOARD_DIR, '.build-lock');

/** Test files run in parallel processes: one builds, the others wait for its build. */
async function withLock(fn) {
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      // A lock left by a build that died.
      if (Date.now() - statSync(LOCK, { throwIfNoEntry: false })?.mtimeMs > 300_000) rmSync(LOCK, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`dashboard build: ${LOCK} is still held`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

export async function buildDashboard({ force = false, quiet = false } = {}) {
  if (!force && dashboardIsCurrent()) return false;
  return withLock(async () => {
    if (!force && dashboardIsCurrent()) return false;
    await runBuild(quiet);
    return true;
  });
}

async function runBuild(quiet) {
  const { build } = await import('vite');
  await build({
    root: DASHBOARD_DIR,
    configFile: false,
    base: '/',
    logLevel: quiet ? 'warn' : 'info',
    build: {
      outDir: DASHBOARD_DIST,
      emptyOutDir: true,
      // Everything the page loads is a file served by the API process: no inline scripts or
      // data: URLs (the page's Content-Security-Policy is default-src 'self').
      assetsInlineLimit: 0,
      modulePreload: { polyfill: false },
      chunkSizeWarningLimit: 2000,
      rolldownOptions: {
        // React Query's "use client" lines mean nothing outside server components.
        onwarn(w, warn) {
          if (w.code !== 'MODULE_LEVEL_DIRECTIVE') warn(w);
        },
      },
    },
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const built = await buildDashboard({ force: process.argv.includes('--force') });
  if (!built) console.log('dashboard: the build in dashboard/dist is current');
}
