#!/usr/bin/env node
// Entry point for `npx switchboard`: runs the TypeScript sources through tsx, so there is no
// build step between a clone and a working CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
