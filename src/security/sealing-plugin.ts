// The one place where sealed columns (sealed-columns.ts) are encrypted and decrypted: a Kysely
// plugin on the platform's database handles. Everything above storage reads and writes plain
// values; what reaches the database file is ciphertext.
//
//   write — an INSERT's values and an UPDATE's (or ON CONFLICT's) SET values for a sealed column
//           are sealed, whatever they look like. A string that already looks sealed is sealed
//           again: otherwise a client could send a stolen ciphertext as a message body and read
//           it back decrypted.
//   read  — a SELECT's (or RETURNING's) result columns that name a sealed column — directly,
//           through a table alias, `select *` or `t.*`, or renamed with `as` — are opened with
//           the context of the column they came from. A result column that is not a sealed
//           column is never opened, however it looks.
//   fail  — a value that does not open (sealed with a key this process lacks, or damaged) is
//           returned as it is and logged, never thrown: a read must not fail on one bad row,
//           and the log says which key is missing. A plain value (written before encryption was
//           turned on) is returned as it is; a rotation seals it.
//
//   bytes — a blob column's value (a Buffer: media files) is sealed and opened in the binary
//           form (crypto.ts sealBytes), by the same rules.
//
// Queries written as raw `sql` are not seen: they get ciphertext. Write sealed columns through
// the query builder.
import type { KyselyPlugin, OperationNode, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import type { Keyring } from './crypto.ts';
import { sealedColumnIndex, SEALED_TABLES, type SealedTable } from './sealed-columns.ts';

type Node = OperationNode & Record<string, any>;
/** result column → the contexts it may have come from (more than one when a name is ambiguous). */
type Plan = Map<string, string[]>;

const nameOf = (n: Node | undefined): string | undefined => n?.kind === 'IdentifierNode' ? n.name : undefined;
const tableNameOf = (n: Node | undefined): string | undefined => (n?.kind === 'TableNode' ? nameOf(n.table?.identifier) : undefined);
const columnNameOf = (n: Node | undefined): string | undefined => (n?.kind === 'ColumnNode' ? nameOf(n.column) : undefined);

export interface SealingStats {
  sealed: number;
  opened: number;
  failures: number;
}

export class SealingPlugin implements KyselyPlugin {
  private index: Map<string, Map<string, string>>;
  private plans = new WeakMap<object, Plan>();
  private lastWarned = new Map<string, number>();
  readonly stats: SealingStats = { sealed: 0, opened: 0, failures: 0 };

  constructor(
    private keyring: Keyring,
    private warn: (msg: string, detail: Record<string, unknown>) => void = () => {},
    tables: SealedTable[] = SEALED_TABLES,
  ) {
    this.index = sealedColumnIndex(tables);
  }

  transformQuery({ node, queryId }: PluginTransformQueryArgs): RootOperationNode {
    const n = node as Node;
    if (n.kind === 'SelectQueryNode') {
      this.remember(queryId, this.planSelect(n));
      return node;
    }
    if (n.kind === 'InsertQueryNode') {
      const table = tableNameOf(n.into);
      const cols = table ? this.index.get(table) : undefined;
      if (n.returning && table) this.remember(queryId, this.planSelections(n.returning.selections, new Map([[table, table]])));
      return cols ? (this.sealInsert(n, cols) as RootOperationNode) : node;
    }
    if (n.kind === 'UpdateQueryNode') {
      const t = n.table as Node | undefined;
      const table = tableNameOf(t) ?? (t?.kind === 'AliasNode' ? tableNameOf(t.node) : undefined);
      const cols = table ? this.index.get(table) : undefined;
      if (n.returning && table) this.remember(queryId, this.planSelections(n.returning.selections, this.scopeOf([t!])));
      if (!cols || !n.updates) return node;
      return { ...n, updates: this.sealUpdates(n.updates, cols) } as unknown as RootOperationNode;
    }
    return node;
  }

  async transformResult({ result, queryId }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    const plan = this.plans.get(queryId);
    if (!plan || !result.rows || result.rows.length === 0) return result;
    for (const row of result.rows) {
      for (const [column, contexts] of plan) {
        const v = row[column];
        if (typeof v === 'string' && v.length > 0) row[column] = this.open(v, contexts);
        else if (v instanceof Uint8Array && v.length > 0) row[column] = this.openBytes(v, contexts);
      }
    }
    return result;
  }

  private remember(queryId: object, plan: Plan | null): void {
    if (plan && plan.size) this.plans.set(queryId, plan);
  }

  seal(value: string, context: string): string {
    this.stats.sealed++;
    return this.keyring.seal(value, context);
  }

  open(value: string, contexts: string[]): string {
    const r = this.keyring.tryOpen(value, contexts);
    if (r.ok) {
      this.stats.opened++;
      return r.text;
    }
    if (r.reason !== 'plain') this.failed(r.reason, r.keyId, contexts);
    return value;
  }

  openBytes(value: Uint8Array, contexts: string[]): Uint8Array {
    const r = this.keyring.tryOpenBytes(value, contexts);
    if (r.ok) {
      this.stats.opened++;
      return r.bytes;
    }
    if (r.reason !== 'plain') this.failed(r.reason, r.keyId, contexts);
    return value;
  }

  /** Any value of a sealed column, sealed in its form: text, or bytes; anything else (null, a number) as it is. */
  private sealAny(v: unknown, context: string): unknown {
    if (typeof v === 'string') {
      return v === '' ? v : this.seal(v, context);
    }
    if (v instanceof Uint8Array && v.length > 0) {
      this.stats.sealed++;
      return this.keyring.sealBytes(v, context);
    }
    return v;
  }

  /** A value that does not open: counted, and logged once a minute per reason, key and column. */
  private failed(reason: 'unknown_key' | 'bad', keyId: string | undefined, contexts: string[]): void {
    const r = { reason, keyId };
    this.stats.failures++;
    // Once a minute per reason and key: a table full of unreadable rows must not flood the log.
    const k = `${r.reason}:${r.keyId}:${contexts[0]}`;
    const now = Date.now();
    if ((this.lastWarned.get(k) ?? 0) < now - 60_000) {
      this.lastWarned.set(k, now);
      this.warn(
        r.reason === 'unknown_key'
          ? `a sealed value was sealed with key ${r.keyId}, which this process does not have: add it to SWITCHBOARD_ENCRYPTION_KEYS_OLD (the value is shown sealed)`
          : 'a sealed value does not open (damaged, or copied from another column); it is shown sealed',
        { key_id: r.keyId, column: contexts[0] },
      );
    }
  }

  private sealValue(node: Node, context: string): Node {
    if (node.kind === 'ValueNode') {
      const value = this.sealAny(node.value, context);
      if (value !== node.value) return { ...node, value };
    }
    return node;
  }

  private sealInsert(n: Node, cols: Map<string, string>): Node {
    const columns: Node[] = n.columns ?? [];
    const at: Array<string | undefined> = columns.map((c) => cols.get(columnNameOf(c) ?? ''));
    let out = n;
    if (at.some(Boolean) && n.values?.kind === 'ValuesNode') {
      const values = (n.values.values as Node[]).map((item) => {
        if (item.kind === 'PrimitiveValueListNode') {
          return { ...item, values: (item.values as unknown[]).map((v, i) => (at[i] ? this.sealAny(v, at[i]!) : v)) };
        }
        if (item.kind === 'ValueListNode') return { ...item, values: (item.values as Node[]).map((v, i) => (at[i] ? this.sealValue(v, at[i]!) : v)) };
        return item;
      });
      out = { ...out, values: { ...n.values, values } };
    }
    if (n.onConflict?.updates) out = { ...out, onConflict: { ...n.onConflict, updates: this.sealUpdates(n.onConflict.updates, cols) } };
    return out;
  }

  private sealUpdates(updates: Node[], cols: Map<string, string>): Node[] {
    return updates.map((u) => {
      const context = cols.get(columnNameOf(u.column) ?? '');
      return context ? { ...u, value: this.sealValue(u.value, context) } : u;
    });
  }

  /** name or alias in the query → table. */
  private scopeOf(items: Node[]): Map<string, string> {
    const scope = new Map<string, string>();
    for (const item of items) {
      const t = tableNameOf(item);
      if (t) scope.set(t, t);
      else if (item?.kind === 'AliasNode') {
        const inner = tableNameOf(item.node);
        const alias = nameOf(item.alias);
        if (inner && alias) scope.set(alias, inner);
      }
    }
    return scope;
  }

  private planSelect(n: Node): Plan | null {
    if (!n.selections || !n.from) return null;
    const items: Node[] = [...(n.from.froms ?? []), ...((n.joins ?? []) as Node[]).map((j) => j.table)];
    return this.planSelections(n.selections, this.scopeOf(items));
  }

  private planSelections(selections: Node[], scope: Map<string, string>): Plan | null {
    // Only queries touching a table with sealed columns need a plan.
    if (![...scope.values()].some((t) => this.index.has(t))) return null;
    const plan: Plan = new Map();
    const add = (as: string, context: string) => {
      const list = plan.get(as);
      if (!list) plan.set(as, [context]);
      else if (!list.includes(context)) list.push(context);
    };
    const allOf = (table: string | undefined) => {
      for (const [col, ctx] of (table && this.index.get(table)) || []) add(col, ctx);
    };
    const column = (ref: Node, as: string | undefined) => {
      // A reference: `col`, `t.col`, `t.*`.
      const col = ref.kind === 'ReferenceNode' ? ref.column : ref;
      const qualifier = ref.kind === 'ReferenceNode' ? tableNameOf(ref.table) : undefined;
      const tables = qualifier !== undefined ? [scope.get(qualifier)] : [...new Set(scope.values())];
      if (col?.kind === 'SelectAllNode') {
        for (const t of tables) allOf(t);
        return;
      }
      const name = columnNameOf(col);
      if (!name) return;
      for (const t of tables) {
        const ctx = t ? this.index.get(t)?.get(name) : undefined;
        if (ctx) add(as ?? name, ctx);
      }
    };
    for (const s of selections) {
      const sel = s.selection as Node;
      if (sel.kind === 'SelectAllNode') for (const t of new Set(scope.values())) allOf(t);
      else if (sel.kind === 'AliasNode') column(sel.node, nameOf(sel.alias));
      else column(sel, undefined);
    }
    return plan;
  }
}
