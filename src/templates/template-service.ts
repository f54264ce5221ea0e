// Templates (CONTRACT §11): named Liquid texts with declared variables, versioned. Creating a
// template makes version 1; every change of its body or variables makes a new version, and the
// old ones stay readable, because messages and campaigns record the version they were rendered
// from. This module owns the `templates` and `template_versions` tables, and the hook that turns
// a message's `template` into its body.
import type { Principal } from '../auth/scopes.ts';
import type { Clock } from '../clock.ts';
import { AppError, validation } from '../errors.ts';
import { newId } from '../ids.ts';
import { normaliseNumber } from '../messages/phone.ts';
import type { Storage } from '../storage/database.ts';
import type { TemplatesTable, TemplateVersionsTable } from '../storage/schema.ts';
import { compile, preview, render, undeclared, type Preview, type Variables } from './template-render.ts';

const NAME = /^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,99}$/;
const VARIABLE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const MAX_BODY = 1600;

export interface TemplateView {
  id: string;
  object: 'template';
  name: string;
  version: number;
  body: string;
  variables: string[];
  created_at: string;
  updated_at: string;
}

export interface TemplateVersion {
  id: string;
  name: string;
  version: number;
  body: string;
  variables: string[];
}

function toView(t: TemplatesTable, v: TemplateVersionsTable): TemplateView {
  return {
    id: t.id,
    object: 'template',
    name: t.name,
    version: v.version,
    body: v.body,
    variables: JSON.parse(v.variables),
    created_at: new Date(t.created_at).toISOString(),
    updated_at: new Date(t.updated_at).toISOString(),
  };
}

/** Checks a body against its declared variables: undeclared names are refused by name. */
export function checkBody(body: unknown, variables: unknown, field = 'body'): { body: string; variables: string[] } {
  if (typeof body !== 'string' || body.trim() === '') throw validation(field, `${field} must be a non-empty string.`);
  if (body.length > MAX_BODY) throw validation(field, `${field} is longer than ${MAX_BODY} characters.`, { length: body.length, max: MAX_BODY });
  if (!Array.isArray(variables) || variables.length > 100) throw validation('variables', 'variables must be an array of at most 100 names.');
  variables.forEach((v, i) => {
    if (typeof v !== 'string' || !VARIABLE.test(v)) throw validation(`variables[${i}]`, 'A variable name is a letter or _ then letters, digits or _ (at most 64).');
  });
  const declared = [...new Set(variables as string[])];
  const unknown = undeclared(compile(body, field), declared);
  if (unknown.length) {
    throw validation(`variables`, `The body uses ${unknown.map((u) => `"${u}"`).join(', ')} without declaring ${unknown.length > 1 ? 'them' : 'it'} in variables.`, { undeclared: unknown, missing: unknown });
  }
  return { body, variables: declared };
}

export class TemplateService {
  constructor(
    private storage: Storage,
    private clock: Clock,
  ) {}

  async create(pr: Principal, input: unknown): Promise<TemplateView> {
    const b = (input ?? {}) as Record<string, unknown>;
    if (typeof b.name !== 'string' || !NAME.test(b.name)) throw validation('name', 'name must be 1 to 100 letters, digits, spaces or _ . : - (starting with a letter or digit).');
    const checked = checkBody(b.body, b.variables ?? []);
    const now = this.clock.now();
    const clash = await this.storage.db.selectFrom('templates').select('id').where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).where('name', '=', b.name).where('deleted_at', 'is', null).executeTakeFirst();
    if (clash) throw validation('name', `A template named "${b.name}" already exists: change it with PATCH /v1/templates/${clash.id}.`, { template_id: clash.id });
    const t: TemplatesTable = { id: newId('tpl', now), account_id: pr.accountId, mode: pr.mode, name: b.name, version: 1, created_at: now, updated_at: now, deleted_at: null };
    const v: TemplateVersionsTable = { template_id: t.id, version: 1, body: checked.body, variables: JSON.stringify(checked.variables), created_at: now };
    await this.storage.db.transaction().execute(async (tx) => {
      await tx.insertInto('templates').values(t).execute();
      await tx.insertInto('template_versions').values(v).execute();
    });
    return toView(t, v);
  }

  private async row(pr: Principal, id: string): Promise<TemplatesTable> {
    const t = await this.storage.db.selectFrom('templates').selectAll().where('id', '=', id).where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).where('deleted_at', 'is', null).executeTakeFirst();
    if (!t) throw new AppError('NOT_FOUND', `No template ${id} in this account.`, { id });
    return t;
  }

  private async versionRow(t: TemplatesTable, version = t.version): Promise<TemplateVersionsTable> {
    const v = await this.storage.db.selectFrom('template_versions').selectAll().where('template_id', '=', t.id).where('version', '=', version).executeTakeFirst();
    if (!v) throw new AppError('NOT_FOUND', `Template ${t.id} has no version ${version}.`, { id: t.id, version });
    return v;
  }

  async get(pr: Principal, id: string, version?: number): Promise<TemplateView> {
    const t = await this.row(pr, id);
    return toView(t, await this.versionRow(t, version));
  }

  /** A template by id or name, at its current version (what a send renders). */
  async resolve(pr: Principal, ref: { id?: unknown; name?: unknown }, field = 'template'): Promise<TemplateVersion> {
    let t: TemplatesTable | undefined;
    if (typeof ref.id === 'string') t = await this.row(pr, ref.id);
    else if (typeof ref.name === 'string') {
      t = await this.storage.db.selectFrom('templates').selectAll().where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).where('name', '=', ref.name).where('deleted_at', 'is', null).executeTakeFirst();
      if (!t) throw new AppError('NOT_FOUND', `No template named "${ref.name}" in this account.`, { name: ref.name });
    } else throw validation(field, `${field} needs an id or a name.`);
    const v = await this.versionRow(t);
    return { id: t.id, name: t.name, version: v.version, body: v.body, variables: JSON.parse(v.variables) };
  }

  async list(pr: Principal): Promise<{ data: TemplateView[] }> {
    const rows = await this.storage.db
      .selectFrom('templates')
      .innerJoin('template_versions', (j) => j.onRef('template_versions.template_id', '=', 'templates.id').onRef('template_versions.version', '=', 'templates.version'))
      .selectAll()
      .where('account_id', '=', pr.accountId)
      .where('mode', '=', pr.mode)
      .where('deleted_at', 'is', null)
      .orderBy('id', 'desc')
      .limit(1000)
      .execute();
    return { data: rows.map((r) => toView(r, r)) };
  }

  /** A change of body or variables makes a new version; a new name alone does not. */
  async update(pr: Principal, id: string, input: unknown): Promise<TemplateView> {
    const b = (input ?? {}) as Record<string, unknown>;
    const t = await this.row(pr, id);
    const current = await this.versionRow(t);
    if (b.name !== undefined && (typeof b.name !== 'string' || !NAME.test(b.name))) throw validation('name', 'name must be 1 to 100 letters, digits, spaces or _ . : -.');
    const now = this.clock.now();
    const changesText = b.body !== undefined || b.variables !== undefined;
    const checked = changesText ? checkBody(b.body ?? current.body, b.variables ?? JSON.parse(current.variables)) : null;
    const next: TemplatesTable = { ...t, name: (b.name as string | undefined) ?? t.name, version: checked ? t.version + 1 : t.version, updated_at: now };
    const v: TemplateVersionsTable = checked ? { template_id: id, version: next.version, body: checked.body, variables: JSON.stringify(checked.variables), created_at: now } : current;
    await this.storage.db.transaction().execute(async (tx) => {
      if (checked) await tx.insertInto('template_versions').values(v).execute();
      // Guarded on the version read: two concurrent changes cannot both become version N+1.
      const res = await tx.updateTable('templates').set({ name: next.name, version: next.version, updated_at: now }).where('id', '=', id).where('version', '=', t.version).executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) throw validation('body', 'The template changed at the same time; read it again and retry.');
    });
    return toView(next, v);
  }

  async remove(pr: Principal, id: string): Promise<{ id: string; deleted: true }> {
    await this.row(pr, id);
    await this.storage.db.updateTable('templates').set({ deleted_at: this.clock.now() }).where('id', '=', id).execute();
    return { id, deleted: true };
  }

  async preview(pr: Principal, id: string, input: unknown): Promise<Preview> {
    const b = (input ?? {}) as Record<string, unknown>;
    const values = b.variables ?? {};
    if (typeof values !== 'object' || values === null || Array.isArray(values)) throw validation('variables', 'variables must be an object of values.');
    const t = await this.resolve(pr, { id });
    return preview(compile(t.body), values as Variables);
  }

  /**
   * The hook MessageService.prepare calls for a message that names a template: returns the
   * message input with the rendered `body` in place of `template`, and the template's id and
   * version in its metadata. Values come from `template.variables`, then from the recipient's
   * contact (name, phone, time_zone and custom fields) when the number is a known contact.
   */
  async resolveMessage(pr: Principal, input: Record<string, unknown>): Promise<Record<string, unknown>> {
    const ref = input.template;
    if (typeof ref !== 'object' || ref === null || Array.isArray(ref)) throw validation('template', 'template must be {"id"|"name", "variables": {…}}.');
    for (const f of ['body', 'message', 'text', 'content']) if (input[f] !== undefined && input[f] !== null) throw validation(f, `Give either template or ${f}, not both.`);
    const { variables = {}, ...which } = ref as Record<string, unknown>;
    if (typeof variables !== 'object' || variables === null || Array.isArray(variables)) throw validation('template.variables', 'template.variables must be an object.');
    const t = await this.resolve(pr, which);
    const compiled = compile(t.body);
    let values = variables as Variables;
    if (compiled.uses.some((u) => values[u] === undefined || values[u] === null) && typeof input.to === 'string') {
      const phone = (() => {
        try {
          return normaliseNumber(input.to, 'to').e164;
        } catch {
          return null;
        }
      })();
      const contact = phone ? await this.storage.db.selectFrom('contacts').selectAll().where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).where('phone', '=', phone).executeTakeFirst() : undefined;
      if (contact) values = { ...contactVariables(contact), ...values };
    }
    const body = render(compiled, values, 'template.variables');
    const { template: _t, ...rest } = input;
    const metadata = { ...((input.metadata as Record<string, string> | undefined) ?? {}), template_id: t.id, template_version: String(t.version) };
    return { ...rest, body, metadata };
  }
}

/** The values a contact brings to a template: its custom fields, then name, phone and zone. */
export function contactVariables(c: { phone: string; name: string | null; time_zone: string | null; custom_fields: string }): Variables {
  const fields = JSON.parse(c.custom_fields) as Variables;
  const out: Variables = { ...fields, phone: c.phone };
  if (c.name !== null) {
    out.name = c.name;
    out.first_name ??= c.name.split(/\s+/)[0];
  }
  if (c.time_zone !== null) out.time_zone = c.time_zone;
  return out;
}
