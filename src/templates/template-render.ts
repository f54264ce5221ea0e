// Liquid rendering for templates and campaign bodies. liquidjs evaluates expressions and filters
// only (no code execution); limits bound what one template may cost. Rendering is strict in our
// own way: every variable a text uses must be declared, and every one it uses must be given a
// value (an empty string is a value), so "Hi ," is never sent. We check that ourselves rather
// than with liquidjs's strictVariables, which stops at the first missing name; ours names them all.
import { Liquid, type Template } from 'liquidjs';
import { AppError, validation } from '../errors.ts';
import { analyseText, type Encoding } from '../messages/encoding.ts';

const engine = new Liquid({ ownPropertyOnly: true, parseLimit: 20_000, renderLimit: 200, memoryLimit: 1_000_000, cache: false });

export type Variables = Record<string, unknown>;

export interface CompiledText {
  source: string;
  parsed: Template[];
  /** The top-level variable names the text uses, in order of first use. */
  uses: string[];
}

const cache = new Map<string, CompiledText>();

/** Parses Liquid text; a syntax error is a VALIDATION_ERROR on `field`. Cached by source. */
export function compile(source: string, field = 'body'): CompiledText {
  const hit = cache.get(source);
  if (hit) return hit;
  let parsed: Template[];
  let uses: string[];
  try {
    parsed = engine.parse(source);
    uses = [...new Set(engine.globalVariablesSync(parsed))];
  } catch (err) {
    throw validation(field, `${field} is not a valid Liquid template: ${(err as Error).message.split('\n')[0]}`);
  }
  const compiled = { source, parsed, uses };
  if (cache.size > 500) cache.delete(cache.keys().next().value!);
  cache.set(source, compiled);
  return compiled;
}

/** Names the text uses that are not declared. */
export function undeclared(text: CompiledText, declared: readonly string[]): string[] {
  return text.uses.filter((v) => !declared.includes(v));
}

const hasValue = (v: unknown) => v !== undefined && v !== null;

/** Renders; a variable the text uses without a value is a VALIDATION_ERROR naming it. */
export function render(text: CompiledText, values: Variables, field = 'variables'): string {
  const missing = text.uses.filter((v) => !hasValue(values[v]));
  if (missing.length) {
    throw validation(`${field}.${missing[0]}`, `Missing value for ${missing.map((m) => `"${m}"`).join(', ')}: the template uses ${missing.length > 1 ? 'them' : 'it'}.`, { missing });
  }
  try {
    return engine.renderSync(text.parsed, values) as string;
  } catch (err) {
    throw new AppError('VALIDATION_ERROR', `The template could not be rendered: ${(err as Error).message.split('\n')[0]}`, { field });
  }
}

export interface Preview {
  body: string;
  encoding: Encoding;
  segments: number;
  warnings: string[];
}

/** The rendered text, its encoding and segments, and a warning per value that forces UCS-2. */
export function preview(text: CompiledText, values: Variables): Preview {
  const body = render(text, values);
  const info = analyseText(body);
  const warnings: string[] = [];
  if (info.encoding === 'UCS-2') {
    // The template's own text, with every output tag removed: if that alone is GSM-7, the
    // values are what turned the message into UCS-2.
    const staticInfo = analyseText(text.source.replace(/\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\}/g, ''));
    if (staticInfo.encoding === 'GSM-7') {
      for (const name of text.uses) {
        const v = analyseText(String(values[name] ?? ''));
        if (v.encoding === 'UCS-2') {
          const gsmBody = analyseText(body.replace(/[^\n\r -~]/g, '?'));
          warnings.push(
            `The value of "${name}" has characters outside GSM-7 (${v.nonGsmCharacters.slice(0, 5).join(' ')}): the message becomes UCS-2, ${info.segments} segment${info.segments > 1 ? 's' : ''} instead of about ${gsmBody.segments}.`,
          );
        }
      }
    }
  }
  return { body, encoding: info.encoding, segments: info.segments, warnings };
}
