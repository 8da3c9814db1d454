/**
 * The options form of a cluster profile, rendered from the profile's JSON
 * Schema (draft 7 subset: integer, string with pattern/enum, byte sizes with
 * `x-maximum-bytes`, and the nullable `adapt` object), and validated in the
 * browser against the same schema before anything is sent.
 *
 * Pure functions, no DOM: unit-tested in `__tests__/clusters-form.spec.ts`.
 */
import { ICreateClusterBody, IFormSchema, ISchemaProperty } from './types';

/**
 * How a field is edited.
 */
export type FieldKind =
  'integer' | 'number' | 'bytes' | 'choice' | 'text' | 'boolean' | 'adapt';

/**
 * One input of the form, derived from one schema property.
 */
export interface IFormField {
  key: string;
  kind: FieldKind;
  /**
   * The label (the schema's `title`, else the key).
   */
  title: string;
  description: string;
  required: boolean;
  minimum?: number;
  maximum?: number;
  maxBytes?: number;
  choices?: string[];
  pattern?: string;
  /**
   * For `adapt`: the minimum and maximum inputs.
   */
  children?: IFormField[];
}

/**
 * The state of the adaptive-scaling group.
 */
export interface IAdaptValue {
  enabled: boolean;
  minimum: string;
  maximum: string;
}

/**
 * What the user typed: strings for inputs (so a half-typed number is kept as
 * typed), booleans for checkboxes, {@link IAdaptValue} for `adapt`.
 */
export type FormValue = string | boolean | IAdaptValue;
export type FormValues = Record<string, FormValue>;

/**
 * Error messages keyed by field (`adapt.minimum` for a part of a group).
 */
export type FormErrors = Record<string, string>;

/**
 * The form fields in the order the server lists them.
 */
export function formFields(schema: IFormSchema): IFormField[] {
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties ?? {}).map(([key, prop]) =>
    fieldFromProperty(key, prop, required.has(key))
  );
}

function typesOf(prop: ISchemaProperty): string[] {
  if (Array.isArray(prop.type)) {
    return prop.type;
  }
  return prop.type ? [prop.type] : [];
}

function fieldFromProperty(
  key: string,
  prop: ISchemaProperty,
  required: boolean
): IFormField {
  const types = typesOf(prop);
  const base = {
    key,
    title: prop.title || key,
    description: prop.description ?? '',
    required
  };
  if (types.includes('object') && prop.properties) {
    const inner = new Set(prop.required ?? []);
    return {
      ...base,
      kind: 'adapt',
      children: Object.entries(prop.properties).map(([k, p]) =>
        fieldFromProperty(k, p, inner.has(k))
      )
    };
  }
  if (Array.isArray(prop.enum)) {
    return { ...base, kind: 'choice', choices: prop.enum.map(String) };
  }
  if (types.includes('integer') || types.includes('number')) {
    return {
      ...base,
      kind: types.includes('integer') ? 'integer' : 'number',
      minimum: prop.minimum,
      maximum: prop.maximum
    };
  }
  if (types.includes('boolean')) {
    return { ...base, kind: 'boolean' };
  }
  if (prop['x-maximum-bytes'] !== undefined || /memory|disk/i.test(key)) {
    return {
      ...base,
      kind: 'bytes',
      maxBytes: prop['x-maximum-bytes'],
      pattern: prop.pattern
    };
  }
  return { ...base, kind: 'text', pattern: prop.pattern };
}

/**
 * The form as a blank profile offers it: every schema default.
 */
export function initialValues(schema: IFormSchema): FormValues {
  const values: FormValues = {};
  for (const field of formFields(schema)) {
    const dflt = schema.properties[field.key]?.default;
    if (field.kind === 'adapt') {
      const bounds = isRecord(dflt) ? dflt : null;
      const maxField = field.children?.find(c => c.key === 'maximum');
      values[field.key] = {
        enabled: bounds !== null,
        minimum: String(bounds?.minimum ?? 0),
        maximum: String(bounds?.maximum ?? maxField?.maximum ?? 1)
      };
    } else if (field.kind === 'boolean') {
      values[field.key] = dflt === true;
    } else if (field.key === 'workers') {
      values[field.key] = String(startingWorkers(field, dflt));
    } else {
      values[field.key] =
        dflt === undefined || dflt === null ? '' : String(dflt);
    }
  }
  return values;
}

/**
 * How many workers the form starts with: the profile's default when it names
 * some, else two (a cluster of none is an empty form to fill, not a default),
 * within the profile's bounds.
 */
export const DEFAULT_WORKERS = 2;

function startingWorkers(field: IFormField, dflt: unknown): number {
  const wanted = typeof dflt === 'number' && dflt > 0 ? dflt : DEFAULT_WORKERS;
  const upper = field.maximum ?? wanted;
  return Math.max(field.minimum ?? 0, Math.min(wanted, upper));
}

/**
 * Carry over what the user typed when they switch to another profile: a value
 * is kept where the new profile has the same field and accepts the value;
 * otherwise the new profile's default applies.
 */
export function carryOver(
  previous: FormValues,
  schema: IFormSchema
): FormValues {
  const next = initialValues(schema);
  for (const field of formFields(schema)) {
    const old = previous[field.key];
    if (old === undefined) {
      continue;
    }
    const probe = { ...next, [field.key]: old };
    const errors = validateForm(schema, probe).errors;
    if (!Object.keys(errors).some(k => k.split('.')[0] === field.key)) {
      next[field.key] = old;
    }
  }
  return next;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------- byte sizes

const BYTE_UNITS: Record<string, number> = (() => {
  // The same table as dask.utils.parse_bytes (the server parses with it).
  const base: Record<string, number> = {
    kb: 1e3,
    mb: 1e6,
    gb: 1e9,
    tb: 1e12,
    pb: 1e15,
    kib: 2 ** 10,
    mib: 2 ** 20,
    gib: 2 ** 30,
    tib: 2 ** 40,
    pib: 2 ** 50,
    b: 1,
    '': 1
  };
  const out = { ...base };
  for (const [k, v] of Object.entries(base)) {
    if (k && !k.includes('i')) {
      out[k[0]] = v;
    }
  }
  for (const [k, v] of Object.entries(base)) {
    if (k && k.includes('i')) {
      out[k.slice(0, -1)] = v;
    }
  }
  return out;
})();

/**
 * `"4 GiB"` → 4294967296, `"2GB"` → 2e9, `"512 M"` → 512e6, like dask's
 * `parse_bytes`; null when it is not a byte size.
 */
export function parseBytes(text: string): number | null {
  const s = text.replace(/\s+/g, '');
  const match = /^(\d+(?:\.\d+)?|\.\d+)([a-zA-Z]*)$/.exec(s);
  if (!match) {
    return null;
  }
  const unit = BYTE_UNITS[match[2].toLowerCase()];
  if (unit === undefined) {
    return null;
  }
  return Math.floor(parseFloat(match[1]) * unit);
}

/**
 * 4294967296 → `"4.00 GiB"`, like dask's `format_bytes`.
 */
export function formatBytes(n: number): string {
  const prefixes: [string, number][] = [
    ['Pi', 2 ** 50],
    ['Ti', 2 ** 40],
    ['Gi', 2 ** 30],
    ['Mi', 2 ** 20],
    ['ki', 2 ** 10]
  ];
  for (const [prefix, k] of prefixes) {
    if (n >= k * 0.9) {
      return `${(n / k).toFixed(2)} ${prefix}B`;
    }
  }
  return `${n} B`;
}

// ---------------------------------------------------------------- validation

/**
 * The result of {@link validateForm}: the errors to show, and the request
 * body when there are none.
 */
export interface IValidation {
  errors: FormErrors;
  body: ICreateClusterBody | null;
}

function checkNumber(
  field: IFormField,
  raw: string,
  label = field.title
): { value?: number; error?: string } {
  const text = raw.trim();
  if (text === '') {
    return field.required ? { error: `${label} is required.` } : {};
  }
  const value = Number(text);
  if (!Number.isFinite(value) || !/^[-+]?(\d+\.?\d*|\.\d+)$/.test(text)) {
    return { error: `${label} must be a number.` };
  }
  if (field.kind === 'integer' && !Number.isInteger(value)) {
    return { error: `${label} must be a whole number.` };
  }
  if (field.minimum !== undefined && value < field.minimum) {
    return { error: `${label} must be at least ${field.minimum}.` };
  }
  if (field.maximum !== undefined && value > field.maximum) {
    return {
      error: `${label} can be at most ${field.maximum} with this profile.`
    };
  }
  return { value };
}

function checkBytes(
  field: IFormField,
  raw: string
): { value?: string; error?: string } {
  const text = raw.trim();
  if (text === '') {
    return field.required
      ? { error: `${field.title} is required (e.g. "4 GiB").` }
      : {};
  }
  let patternOk = true;
  if (field.pattern) {
    try {
      patternOk = new RegExp(field.pattern).test(text);
    } catch {
      patternOk = true; // a pattern this browser cannot compile: the server checks
    }
  }
  const n = parseBytes(text);
  if (!patternOk || n === null) {
    return {
      error: `"${text}" is not a size: write a number and a unit, e.g. "4 GiB" or "500 MB".`
    };
  }
  if (n <= 0) {
    return { error: `${field.title} must be more than 0 bytes.` };
  }
  if (field.maxBytes !== undefined && n > field.maxBytes) {
    return {
      error: `${formatBytes(n)} is more than the ${formatBytes(field.maxBytes)} this profile allows.`
    };
  }
  return { value: text };
}

function checkText(
  field: IFormField,
  raw: string
): { value?: string; error?: string } {
  const text = raw.trim();
  if (text === '') {
    return field.required ? { error: `${field.title} is required.` } : {};
  }
  if (field.choices && !field.choices.includes(text)) {
    return {
      error: `${field.title} must be one of: ${field.choices.join(', ')}.`
    };
  }
  if (field.pattern) {
    try {
      if (!new RegExp(field.pattern).test(text)) {
        return { error: `${field.title} "${text}" has the wrong format.` };
      }
    } catch {
      // the server checks
    }
  }
  return { value: text };
}

/**
 * Validate what the user typed against the profile's schema.
 *
 * With adaptive scaling on, `workers` is not sent (adapt decides the size).
 */
export function validateForm(
  schema: IFormSchema,
  values: FormValues
): IValidation {
  const errors: FormErrors = {};
  const body: ICreateClusterBody = {};
  const adapt = values.adapt as IAdaptValue | undefined;
  const adapting = !!(adapt && typeof adapt === 'object' && adapt.enabled);

  for (const field of formFields(schema)) {
    const raw = values[field.key];
    switch (field.kind) {
      case 'integer':
      case 'number': {
        if (field.key === 'workers' && adapting) {
          break;
        }
        const r = checkNumber(field, typeof raw === 'string' ? raw : '');
        if (r.error) {
          errors[field.key] = r.error;
        } else if (r.value !== undefined) {
          body[field.key] = r.value;
        }
        break;
      }
      case 'bytes': {
        const r = checkBytes(field, typeof raw === 'string' ? raw : '');
        if (r.error) {
          errors[field.key] = r.error;
        } else if (r.value !== undefined) {
          body[field.key] = r.value;
        }
        break;
      }
      case 'choice':
      case 'text': {
        const r = checkText(field, typeof raw === 'string' ? raw : '');
        if (r.error) {
          errors[field.key] = r.error;
        } else if (r.value !== undefined) {
          body[field.key] = r.value;
        }
        break;
      }
      case 'boolean':
        body[field.key] = raw === true;
        break;
      case 'adapt': {
        const value =
          raw && typeof raw === 'object'
            ? raw
            : { enabled: false, minimum: '', maximum: '' };
        if (!value.enabled) {
          body[field.key] = null;
          break;
        }
        const bounds: Record<string, number> = {};
        for (const child of field.children ?? []) {
          const text = (value as unknown as Record<string, string>)[child.key];
          const r = checkNumber(
            { ...child, required: true },
            typeof text === 'string' ? text : '',
            child.title
          );
          if (r.error) {
            errors[`${field.key}.${child.key}`] = r.error;
          } else if (r.value !== undefined) {
            bounds[child.key] = r.value;
          }
        }
        if (
          bounds.minimum !== undefined &&
          bounds.maximum !== undefined &&
          bounds.minimum > bounds.maximum
        ) {
          errors[`${field.key}.maximum`] =
            `The maximum (${bounds.maximum}) is below the minimum (${bounds.minimum}).`;
        }
        body[field.key] = bounds as unknown as ICreateClusterBody['adapt'];
        break;
      }
    }
  }
  return {
    errors,
    body: Object.keys(errors).length === 0 ? body : null
  };
}

/**
 * The cluster names the server accepts (`NAME_RE` in profiles.py).
 */
const NAME_RE = /^[\w .:@+-]{1,64}$/;

/**
 * An error for an optional cluster name, or null when it is fine (or empty).
 */
export function validateName(name: string): string | null {
  const text = name.trim();
  if (text === '' || NAME_RE.test(text)) {
    return null;
  }
  return 'A name has 1 to 64 letters, digits, spaces or . : @ + - _';
}

/**
 * A one-line summary of a profile's limits, e.g. "Up to 4 workers · 2 cores
 * and 8.00 GiB memory per worker".
 */
export function describeLimits(limits: Record<string, unknown>): string {
  const parts: string[] = [];
  if (typeof limits.max_workers === 'number') {
    parts.push(
      `up to ${limits.max_workers} worker${limits.max_workers === 1 ? '' : 's'}`
    );
  }
  const per: string[] = [];
  if (typeof limits.max_cores === 'number') {
    per.push(`${limits.max_cores} core${limits.max_cores === 1 ? '' : 's'}`);
  }
  if (typeof limits.max_memory === 'string') {
    per.push(`${limits.max_memory} memory`);
  }
  if (typeof limits.max_disk === 'string') {
    per.push(`${limits.max_disk} disk`);
  }
  if (typeof limits.max_gpus === 'number' && limits.max_gpus > 0) {
    per.push(`${limits.max_gpus} GPU${limits.max_gpus === 1 ? '' : 's'}`);
  }
  if (per.length > 0) {
    parts.push(`at most ${per.join(', ')} per worker`);
  }
  if (typeof limits.max_clusters === 'number') {
    parts.push(
      `${limits.max_clusters} cluster${limits.max_clusters === 1 ? '' : 's'} at a time`
    );
  }
  if (parts.length === 0) {
    return '';
  }
  const text = parts.join(' · ');
  return text[0].toUpperCase() + text.slice(1);
}
