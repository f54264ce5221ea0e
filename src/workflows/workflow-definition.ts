// Workflow definitions: their shape, and the validation that runs in full when one is created or
// changed, so that a run never meets a step it cannot execute. Everything a run evaluates is
// checked here up front: step types and fields, gotos, durations, Liquid texts and CEL
// expressions (compiled with @marcbachmann/cel-js; nothing is ever eval'd). Each error is a
// VALIDATION_ERROR whose details name the step (`details.step`) and the field.
import { Environment } from '@marcbachmann/cel-js';
import { AppError } from '../errors.ts';
import { compile } from '../templates/template-render.ts';
import { CHANNELS, PURPOSES } from '../messages/message-service.ts';

export const STEP_TYPES = ['send', 'wait', 'wait_for', 'branch', 'webhook', 'update_contact', 'stop'] as const;
export type StepType = (typeof STEP_TYPES)[number];
/** The goto that finishes the run (completed). */
export const END = 'end';
export const DELIVERY_OUTCOMES = ['delivered', 'undelivered', 'failed', 'expired'] as const;

export type Condition =
  | { kind: 'reply'; keywords: string[] | null; goto: string | null }
  | { kind: 'event'; event: string; correlate: string | null; goto: string | null }
  | { kind: 'delivery'; step: string; outcomes: string[]; goto: string | null };

interface StepBase {
  id: string;
  type: StepType;
  /** The step after this one; default the next in the list, and after the last one `end`. */
  next?: string;
}
export interface SendStep extends StepBase {
  type: 'send';
  channel: string;
  body?: string;
  template_id?: string;
  purpose: string;
  from?: string;
  media_urls?: string[];
  on_failure?: string;
}
export interface WaitStep extends StepBase {
  type: 'wait';
  duration?: string;
  until?: string;
  offset?: string;
}
export interface WaitForStep extends StepBase {
  type: 'wait_for';
  on: Condition[];
  timeout: string;
  on_timeout?: string;
}
export interface BranchStep extends StepBase {
  type: 'branch';
  conditions: Array<{ if: string; goto: string }>;
  else?: string;
}
export interface WebhookStep extends StepBase {
  type: 'webhook';
  url: string;
  retries: number;
  backoff: string;
  on_failure?: string;
}
export interface UpdateContactStep extends StepBase {
  type: 'update_contact';
  name?: string;
  time_zone?: string;
  custom_fields?: Record<string, string | number | boolean | null>;
  add_tags?: string[];
  remove_tags?: string[];
}
export interface StopStep extends StepBase {
  type: 'stop';
  status: 'completed' | 'canceled';
}
export type Step = SendStep | WaitStep | WaitForStep | BranchStep | WebhookStep | UpdateContactStep | StopStep;

export interface Definition {
  name: string;
  trigger: { event: string };
  steps: Step[];
}

// ---- durations ----------------------------------------------------------------------------

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86400_000, w: 7 * 86400_000 };

/** "90s", "10m", "1h30m", "2d", "-24h", or ISO 8601 ("PT24H", "P1D"); null when it is none of those. */
export function parseDuration(text: unknown): number | null {
  if (typeof text !== 'string' || text.length === 0 || text.length > 40) return null;
  let s = text.trim();
  let sign = 1;
  if (s.startsWith('-')) {
    sign = -1;
    s = s.slice(1);
  }
  const iso = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i.exec(s);
  if (iso && s.length > 1 && !/T$/i.test(s)) {
    const [, w, d, h, m, sec] = iso;
    return sign * ((Number(w ?? 0) * 7 + Number(d ?? 0)) * 86400_000 + Number(h ?? 0) * 3600_000 + Number(m ?? 0) * 60_000 + Math.round(Number(sec ?? 0) * 1000));
  }
  const parts = [...s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== s) return null;
  return sign * Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * UNITS[p[2]], 0));
}

const MAX_WAIT_MS = 366 * 86400_000;

// ---- expressions --------------------------------------------------------------------------

/** The variables an expression sees: the event's data, the contact, earlier steps' results, the event. */
const cel = new Environment({ limits: { maxAstNodes: 500, maxDepth: 40, maxListElements: 200, maxMapEntries: 200, maxCallArguments: 8 } })
  .registerVariable('data', 'map')
  .registerVariable('contact', 'map')
  .registerVariable('steps', 'map')
  .registerVariable('event', 'map');

type Compiled = (ctx: Record<string, unknown>) => unknown;
const compiledExpressions = new Map<string, Compiled>();

/** Compiles a CEL expression (cached); throws the library's error on a bad one. */
export function compileExpression(source: string): Compiled {
  const hit = compiledExpressions.get(source);
  if (hit) return hit;
  const parsed = cel.parse(source);
  // Type-checked against the declared variables: an unknown name is refused up front.
  const checked = parsed.check();
  if (!checked.valid) throw checked.error ?? new Error('the expression does not type-check');
  const fn = parsed as unknown as Compiled;
  if (compiledExpressions.size > 1000) compiledExpressions.delete(compiledExpressions.keys().next().value!);
  compiledExpressions.set(source, fn);
  return fn;
}

/** CEL values back to plain JSON-able ones (ints are BigInt in CEL). */
export function plainValue(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(plainValue);
  if (v instanceof Map) return Object.fromEntries([...v.entries()].map(([k, x]) => [String(k), plainValue(x)]));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plainValue(x)]));
  return v;
}

// ---- validation ---------------------------------------------------------------------------

const ID = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
export const EVENT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/;
const MAX_STEPS = 100;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

class Checker {
  constructor(
    readonly step: string | null,
    readonly index: number | null,
  ) {}

  fail(field: string, message: string): never {
    const where = this.step !== null ? `steps[${this.index}] (${this.step})` : null;
    throw new AppError('VALIDATION_ERROR', where ? `${where}: ${message}` : message, { field: where ? `steps[${this.index}].${field}` : field, ...(this.step !== null ? { step: this.step, index: this.index } : {}) });
  }

  string(o: Record<string, unknown>, field: string, opts: { required?: boolean; max?: number } = {}): string | undefined {
    const v = o[field];
    if (v === undefined || v === null) {
      if (opts.required) this.fail(field, `${field} is required.`);
      return undefined;
    }
    if (typeof v !== 'string' || v.length === 0 || v.length > (opts.max ?? 2000)) this.fail(field, `${field} must be a non-empty string of at most ${opts.max ?? 2000} characters.`);
    return v;
  }

  duration(o: Record<string, unknown>, field: string, opts: { required?: boolean; negative?: boolean } = {}): string | undefined {
    const v = this.string(o, field, { required: opts.required, max: 40 });
    if (v === undefined) return undefined;
    const ms = parseDuration(v);
    if (ms === null || (!opts.negative && ms <= 0) || Math.abs(ms) > MAX_WAIT_MS) {
      this.fail(field, `${field} must be a ${opts.negative ? '' : 'positive '}duration such as "30s", "10m", "24h", "2d" or ISO 8601 "PT24H", at most 366 days; got ${JSON.stringify(v)}.`);
    }
    return v;
  }

  liquid(o: Record<string, unknown>, field: string, required = false): string | undefined {
    const v = this.string(o, field, { required, max: 4000 });
    if (v === undefined) return undefined;
    try {
      compile(v, field);
    } catch (err) {
      this.fail(field, (err as Error).message);
    }
    return v;
  }

  expression(o: Record<string, unknown>, field: string): string {
    const v = this.string(o, field, { required: true, max: 2000 })!;
    try {
      compileExpression(v);
    } catch (err) {
      this.fail(field, `${field} is not a valid CEL expression: ${(err as Error).message.split('\n')[0]}`);
    }
    return v;
  }

  goto(o: Record<string, unknown>, field: string, ids: Set<string>): string | undefined {
    const v = this.string(o, field, { max: 64 });
    if (v === undefined) return undefined;
    if (v !== END && !ids.has(v)) this.fail(field, `${field} goes to "${v}", which is not a step of this workflow (or "${END}").`);
    return v;
  }

  known(o: Record<string, unknown>, fields: string[]): void {
    for (const k of Object.keys(o)) if (!fields.includes(k)) this.fail(k, `Unknown field "${k}" for a ${String(o.type)} step; allowed: ${fields.join(', ')}.`);
  }
}

const COMMON = ['id', 'type', 'next', 'description'];

/** Validates a definition completely; returns it normalised (defaults filled in, shorthands expanded). */
export function parseDefinition(input: unknown): Definition {
  const top: Checker = new Checker(null, null);
  if (!isObject(input)) top.fail('body', 'The body must be a JSON object with name, trigger and steps.');
  const name = top.string(input, 'name', { required: true, max: 200 })!;
  if (!isObject(input.trigger)) top.fail('trigger', 'trigger must be an object: {"event": "order.placed"}.');
  const event = input.trigger.event;
  if (typeof event !== 'string' || !EVENT_NAME.test(event)) top.fail('trigger.event', 'trigger.event must be an event name (letters, digits, _ . : -; at most 100).');
  if (!Array.isArray(input.steps) || input.steps.length === 0) top.fail('steps', 'steps must be a non-empty array.');
  if (input.steps.length > MAX_STEPS) top.fail('steps', `A workflow has at most ${MAX_STEPS} steps.`);
  const raw = input.steps as unknown[];
  const ids = new Set<string>();
  raw.forEach((s, i) => {
    const c: Checker = new Checker(isObject(s) && typeof s.id === 'string' ? s.id : `#${i}`, i);
    if (!isObject(s)) c.fail('', 'A step must be an object.');
    if (typeof s.id !== 'string' || !ID.test(s.id) || s.id === END) c.fail('id', `id must be 1 to 64 letters, digits, _ or -, starting with a letter (and not "${END}").`);
    if (ids.has(s.id)) c.fail('id', `Two steps have the id "${s.id}".`);
    ids.add(s.id);
  });
  const types = new Map<string, string>();
  raw.forEach((s) => types.set((s as { id: string }).id, String((s as { type: unknown }).type)));
  const steps = raw.map((s, i) => parseStep(s as Record<string, unknown>, new Checker((s as { id: string }).id, i), ids, types));
  return { name, trigger: { event }, steps };
}

function parseStep(s: Record<string, unknown>, c: Checker, ids: Set<string>, types: Map<string, string>): Step {
  const type = s.type;
  if (typeof type !== 'string' || !(STEP_TYPES as readonly string[]).includes(type)) c.fail('type', `Unknown step type ${JSON.stringify(type)}; one of ${STEP_TYPES.join(', ')}.`);
  const base = { id: s.id as string, type: type as StepType, ...(c.goto(s, 'next', ids) !== undefined ? { next: s.next as string } : {}) };
  switch (type as StepType) {
    case 'send': {
      c.known(s, [...COMMON, 'channel', 'body', 'template_id', 'purpose', 'from', 'media_urls', 'on_failure']);
      const channel = (c.string(s, 'channel', { max: 10 }) ?? 'sms') as string;
      if (!(CHANNELS as readonly string[]).includes(channel)) c.fail('channel', `channel must be one of ${CHANNELS.join(', ')}.`);
      const purpose = c.string(s, 'purpose', { max: 20 }) ?? 'transactional';
      if (!(PURPOSES as readonly string[]).includes(purpose)) c.fail('purpose', `purpose must be one of ${PURPOSES.join(', ')}.`);
      const body = c.liquid(s, 'body');
      const template_id = c.string(s, 'template_id', { max: 100 });
      let media_urls: string[] | undefined;
      if (s.media_urls !== undefined) {
        if (!Array.isArray(s.media_urls) || s.media_urls.length > 10) c.fail('media_urls', 'media_urls must be an array of at most 10 URLs (Liquid allowed).');
        media_urls = s.media_urls.map((_u, j) => c.liquid(s.media_urls as unknown as Record<string, unknown>, String(j), true)!);
      }
      if ((body === undefined) === (template_id === undefined) && !media_urls) c.fail('body', 'A send step gives exactly one of body or template_id.');
      const from = c.string(s, 'from', { max: 40 });
      const on_failure = c.goto(s, 'on_failure', ids);
      return { ...base, type: 'send', channel, purpose, ...(body !== undefined && { body }), ...(template_id && { template_id }), ...(from && { from }), ...(media_urls && { media_urls }), ...(on_failure && { on_failure }) };
    }
    case 'wait': {
      c.known(s, [...COMMON, 'duration', 'until', 'offset']);
      const duration = c.duration(s, 'duration');
      const until = s.until === undefined ? undefined : c.expression(s, 'until');
      const offset = c.duration(s, 'offset', { negative: true });
      if ((duration === undefined) === (until === undefined)) c.fail('duration', 'A wait step gives exactly one of duration (e.g. "10m") or until (a CEL expression giving a time, e.g. "data.starts_at").');
      if (offset !== undefined && until === undefined) c.fail('offset', 'offset goes with until.');
      return { ...base, type: 'wait', ...(duration && { duration }), ...(until && { until }), ...(offset && { offset }) };
    }
    case 'wait_for': {
      c.known(s, [...COMMON, 'on', 'reply', 'event', 'correlate', 'delivery', 'outcomes', 'timeout', 'on_timeout']);
      let list: unknown[];
      if (s.on !== undefined) {
        if (!Array.isArray(s.on) || s.on.length === 0 || s.on.length > 10) c.fail('on', 'on must be a non-empty array (at most 10) of conditions: {"reply": {…}}, {"event": "…"}, {"delivery": "step"}.');
        if (s.reply !== undefined || s.event !== undefined || s.delivery !== undefined) c.fail('on', 'Give the conditions either in on or as reply/event/delivery, not both.');
        list = s.on;
      } else {
        const one: Record<string, unknown> = {};
        for (const k of ['reply', 'event', 'correlate', 'delivery', 'outcomes']) if (s[k] !== undefined) one[k] = s[k];
        if (Object.keys(one).length === 0) c.fail('on', 'A wait_for step waits for something: reply, event, delivery, or a list of them in on.');
        list = [one];
      }
      const on = list.map((x, j) => parseCondition(x, c, `on[${j}]`, ids, types));
      const timeout = c.duration(s, 'timeout', { required: true })!;
      const on_timeout = c.goto(s, 'on_timeout', ids);
      return { ...base, type: 'wait_for', on, timeout, ...(on_timeout && { on_timeout }) };
    }
    case 'branch': {
      c.known(s, [...COMMON, 'conditions', 'else']);
      if (!Array.isArray(s.conditions) || s.conditions.length === 0 || s.conditions.length > 20) c.fail('conditions', 'conditions must be a non-empty array (at most 20) of {"if": "<CEL>", "goto": "step"}.');
      const conditions = s.conditions.map((x, j) => {
        if (!isObject(x)) c.fail(`conditions[${j}]`, 'A condition is {"if": "<CEL>", "goto": "step"}.');
        const expr = (() => {
          try {
            return c.expression(x, 'if');
          } catch (err) {
            if (err instanceof AppError) throw new AppError('VALIDATION_ERROR', err.message, { ...err.details, field: `steps[${c.index}].conditions[${j}].if` });
            throw err;
          }
        })();
        const goto = c.goto(x, 'goto', ids);
        if (goto === undefined) c.fail(`conditions[${j}].goto`, 'Each condition names a goto.');
        return { if: expr, goto };
      });
      const otherwise = c.goto(s, 'else', ids);
      return { ...base, type: 'branch', conditions, ...(otherwise && { else: otherwise }) };
    }
    case 'webhook': {
      c.known(s, [...COMMON, 'url', 'retries', 'backoff', 'on_failure']);
      const url = c.string(s, 'url', { required: true, max: 2000 })!;
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        c.fail('url', 'url must be an absolute http(s) URL.');
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') c.fail('url', 'url must be an http(s) URL.');
      const retries = s.retries === undefined ? 5 : s.retries;
      if (typeof retries !== 'number' || !Number.isInteger(retries) || retries < 0 || retries > 20) c.fail('retries', 'retries must be an integer from 0 to 20.');
      const backoff = c.duration(s, 'backoff') ?? '10s';
      const on_failure = c.goto(s, 'on_failure', ids);
      return { ...base, type: 'webhook', url, retries, backoff, ...(on_failure && { on_failure }) };
    }
    case 'update_contact': {
      c.known(s, [...COMMON, 'name', 'time_zone', 'custom_fields', 'add_tags', 'remove_tags']);
      const name = c.liquid(s, 'name');
      const time_zone = c.string(s, 'time_zone', { max: 64 });
      let custom_fields: Record<string, string | number | boolean | null> | undefined;
      if (s.custom_fields !== undefined) {
        if (!isObject(s.custom_fields) || Object.keys(s.custom_fields).length > 50) c.fail('custom_fields', 'custom_fields must be an object (at most 50 keys); string values are Liquid.');
        custom_fields = {};
        for (const [k, v] of Object.entries(s.custom_fields)) {
          if (typeof v === 'string') c.liquid(s.custom_fields, k);
          else if (v !== null && typeof v !== 'number' && typeof v !== 'boolean') c.fail(`custom_fields.${k}`, 'custom field values are strings, numbers, booleans or null.');
          custom_fields[k] = v as string | number | boolean | null;
        }
      }
      const tags = (field: 'add_tags' | 'remove_tags') => {
        const v = s[field];
        if (v === undefined) return undefined;
        if (!Array.isArray(v) || v.length > 50 || v.some((t) => typeof t !== 'string' || t.length === 0 || t.length > 64)) c.fail(field, `${field} must be an array of tags (1 to 64 characters).`);
        return v as string[];
      };
      const add_tags = tags('add_tags');
      const remove_tags = tags('remove_tags');
      if (name === undefined && time_zone === undefined && !custom_fields && !add_tags && !remove_tags) c.fail('custom_fields', 'An update_contact step changes something: name, time_zone, custom_fields, add_tags or remove_tags.');
      return { ...base, type: 'update_contact', ...(name !== undefined && { name }), ...(time_zone && { time_zone }), ...(custom_fields && { custom_fields }), ...(add_tags && { add_tags }), ...(remove_tags && { remove_tags }) };
    }
    case 'stop': {
      c.known(s, [...COMMON, 'status']);
      const status = s.status ?? 'completed';
      if (status !== 'completed' && status !== 'canceled') c.fail('status', 'status is completed (default) or canceled.');
      return { ...base, type: 'stop', status };
    }
  }
}

function parseCondition(x: unknown, c: Checker, field: string, ids: Set<string>, types: Map<string, string>): Condition {
  if (!isObject(x)) c.fail(field, 'A condition is an object: {"reply": {…}}, {"event": "…"} or {"delivery": "step"}.');
  const goto = c.goto(x, 'goto', ids) ?? null;
  const kinds = ['reply', 'event', 'delivery'].filter((k) => x[k] !== undefined);
  if (kinds.length !== 1) c.fail(field, 'A condition is exactly one of reply, event or delivery.');
  for (const k of Object.keys(x)) if (!['reply', 'event', 'correlate', 'delivery', 'outcomes', 'goto'].includes(k)) c.fail(`${field}.${k}`, `Unknown field "${k}" in a wait_for condition.`);
  if (x.reply !== undefined) {
    const r = x.reply === true ? {} : x.reply;
    if (!isObject(r)) c.fail(`${field}.reply`, 'reply is an object: {} for any reply, or {"keywords": ["C", "CONFIRM"]}.');
    let keywords: string[] | null = null;
    if (r.keywords !== undefined) {
      if (!Array.isArray(r.keywords) || r.keywords.length === 0 || r.keywords.some((k) => typeof k !== 'string' || k.trim() === '' || k.length > 40)) c.fail(`${field}.reply.keywords`, 'keywords must be a non-empty array of words.');
      keywords = r.keywords.map((k: string) => k.replace(/\s+/g, '').toUpperCase());
    }
    return { kind: 'reply', keywords, goto };
  }
  if (x.event !== undefined) {
    if (typeof x.event !== 'string' || !EVENT_NAME.test(x.event)) c.fail(`${field}.event`, 'event must be an event name such as "order.shipped".');
    let correlate: string | null = null;
    if (x.correlate !== undefined) {
      if (typeof x.correlate !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(x.correlate)) c.fail(`${field}.correlate`, 'correlate names a field of data (e.g. "order_id") whose value must be the same in both events.');
      correlate = x.correlate;
    }
    return { kind: 'event', event: x.event, correlate, goto };
  }
  const step = x.delivery;
  if (typeof step !== 'string' || !ids.has(step)) c.fail(`${field}.delivery`, 'delivery names an earlier send step of this workflow.');
  if (types.get(step) !== 'send') c.fail(`${field}.delivery`, `delivery names "${step}", which is not a send step.`);
  let outcomes: string[] = [...DELIVERY_OUTCOMES];
  if (x.outcomes !== undefined) {
    if (!Array.isArray(x.outcomes) || x.outcomes.length === 0 || x.outcomes.some((o) => !(DELIVERY_OUTCOMES as readonly string[]).includes(o as string))) c.fail(`${field}.outcomes`, `outcomes is a non-empty list of ${DELIVERY_OUTCOMES.join(', ')}.`);
    outcomes = x.outcomes as string[];
  }
  return { kind: 'delivery', step, outcomes, goto };
}

/** A definition as the API shows it (and takes it back): conditions in their written form. */
export function definitionView(def: Definition): Definition {
  const cond = (c: Condition) => {
    const goto = c.goto ? { goto: c.goto } : {};
    if (c.kind === 'reply') return { reply: c.keywords ? { keywords: c.keywords } : {}, ...goto };
    if (c.kind === 'event') return { event: c.event, ...(c.correlate && { correlate: c.correlate }), ...goto };
    return { delivery: c.step, outcomes: c.outcomes, ...goto };
  };
  return { ...def, steps: def.steps.map((s) => (s.type === 'wait_for' ? ({ ...s, on: s.on.map(cond) } as unknown as Step) : s)) };
}

/** The step after `step` when it names none: the next in the list, or `end`. */
export function following(def: Definition, step: Step): string {
  if (step.next) return step.next;
  const i = def.steps.findIndex((s) => s.id === step.id);
  return i + 1 < def.steps.length ? def.steps[i + 1].id : END;
}
