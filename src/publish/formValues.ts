/**
 * The Publish form's values without the view: defaults, a job's values for
 * "publish again", the checks done on the client, and the request built
 * from the values.
 */
import React from 'react';
import { AFLabRequestError } from '../request';
import { formatBytes } from '../common/units';
import {
  baseName,
  checkDid,
  checkLifetime,
  checkName,
  DEFAULT_RULES,
  sanitizeName
} from './naming';
import {
  IPublishJob,
  IPublishOptions,
  IPublishPlan,
  IPublishRequest,
  IRSEOption
} from './types';

/**
 * A file or folder of the workspace to publish.
 */
export interface IPublishTarget {
  /**
   * Relative to the workspace (server) root.
   */
  path: string;
  isDir: boolean;
  /**
   * Size in bytes when known (files).
   */
  size?: number | null;
}

/**
 * Lets the dialog submit the form.
 */
export interface IPublishFormHandle {
  /**
   * Start the publish job when everything is checked; resolves with the job,
   * or null when the form is not ready or the server refused (the form then
   * shows why).
   */
  submit(): Promise<IPublishJob | null>;
}

export interface IPublishFormProps {
  targets: IPublishTarget[];
  /**
   * The notebook to record as provenance (prefilled, editable).
   */
  notebook?: string | null;
  /**
   * The Rucio instance to start with; '' or absent lets the server choose.
   */
  defaultInstance?: string;
  /**
   * Called whenever the form becomes ready to publish, or stops being.
   */
  onReadyChange?: (ready: boolean) => void;
  handleRef?: React.MutableRefObject<IPublishFormHandle | null>;
  /**
   * Values to start from (e.g. an earlier job's request, to publish it
   * again); they win over the server's defaults.
   */
  initial?: Partial<IFormValues>;
  /**
   * Milliseconds of quiet typing before asking the server (publish/validate).
   */
  validateDelayMs?: number;
}

/**
 * The editable fields.
 */
export interface IFormValues {
  instance: string;
  scope: string;
  rse: string;
  lifetime: string;
  noLifetime: boolean;
  dataset: string;
  container: string;
  name: string;
  namePrefix: string;
  notebook: string;
  allowEmpty: boolean;
}

export type FormField =
  | 'paths'
  | 'instance'
  | 'scope'
  | 'rse'
  | 'lifetime'
  | 'dataset'
  | 'container'
  | 'name'
  | 'namePrefix'
  | 'notebook';

export type FieldErrors = Partial<Record<FormField, string>>;

export interface IValidation {
  status: 'idle' | 'pending' | 'ok' | 'error';
  key: string;
  plan: IPublishPlan | null;
  error: unknown;
}

/**
 * The form phase, exposed as `data-phase` for tests: `loading` the options,
 * `options-error`, `invalid` (a field is wrong), `checking` (waiting for the
 * server's dry run), `refused` (the dry run found a problem), `ready`,
 * `submitting`.
 */
export type FormPhase =
  | 'loading'
  | 'options-error'
  | 'invalid'
  | 'checking'
  | 'refused'
  | 'ready'
  | 'submitting';

/**
 * The initial values for a selection: a single file keeps its name; one
 * folder goes into a dataset named after it.
 */
export function initialValues(
  targets: IPublishTarget[],
  notebook?: string | null
): IFormValues {
  const single = targets.length === 1 ? targets[0] : null;
  return {
    instance: '',
    scope: '',
    rse: '',
    lifetime: '',
    noLifetime: false,
    dataset: single?.isDir ? sanitizeName(baseName(single.path)) : '',
    container: '',
    name: single && !single.isDir ? baseName(single.path) : '',
    namePrefix: '',
    notebook: notebook ?? '',
    allowEmpty: false
  };
}

/**
 * The form values of an earlier job's request, to publish it again; a name
 * the server suggested (e.g. after a name conflict) replaces the old one.
 */
export function valuesFromJob(job: IPublishJob): Partial<IFormValues> {
  const r = job.request ?? { paths: [] };
  const values: Partial<IFormValues> = {};
  if (r.instance) {
    values.instance = r.instance;
  }
  if (r.scope) {
    values.scope = r.scope;
  }
  if (r.rse) {
    values.rse = r.rse;
  }
  if (r.lifetime_days === null) {
    values.noLifetime = true;
    values.lifetime = '';
  } else if (typeof r.lifetime_days === 'number') {
    values.noLifetime = false;
    values.lifetime = String(r.lifetime_days);
  }
  if (r.dataset !== undefined) {
    values.dataset = r.dataset ?? '';
  }
  if (r.container) {
    values.container = r.container;
  }
  const suggested =
    job.error?.field === 'name' && typeof job.error.suggestion === 'string'
      ? job.error.suggestion
      : null;
  if (suggested || r.name) {
    values.name = (suggested ?? r.name) as string;
  }
  if (r.name_prefix) {
    values.namePrefix = r.name_prefix;
  }
  if (r.notebook) {
    values.notebook = r.notebook;
  }
  if (r.allow_empty) {
    values.allowEmpty = true;
  }
  return values;
}

/**
 * Whether a single file is published (the DID name field applies).
 */
export function isSingleFile(targets: IPublishTarget[]): boolean {
  return targets.length === 1 && !targets[0].isDir;
}

/**
 * The problems the user can see without asking the server.
 */
export function localErrors(
  values: IFormValues,
  targets: IPublishTarget[],
  options: IPublishOptions | null
): FieldErrors {
  const rules = options?.naming ?? DEFAULT_RULES;
  const errors: FieldErrors = {};
  if (targets.length === 0) {
    errors.paths = 'Select a file or folder to publish.';
  }
  if (options) {
    const scope = options.scopes.find(s => s.scope === values.scope);
    if (!values.scope) {
      errors.scope =
        options.scopes.length === 0
          ? `Account ${options.account} owns no scope on this Rucio instance.`
          : 'Choose a scope.';
    } else if (scope && !scope.allowed) {
      errors.scope = `${scope.scope} is embargoed: ${scope.reason ?? `it requires membership of ${scope.group}`}.`;
    }
    if (!values.rse) {
      errors.rse =
        options.rses.length === 0
          ? `No RSE accepts writes from account ${options.account}: ask your facility for quota.`
          : 'Choose where to store the files.';
    }
    const lifetime = checkLifetime(
      values.lifetime,
      values.noLifetime,
      options.defaults.allow_no_lifetime
    );
    if (lifetime) {
      errors.lifetime = lifetime;
    }
  }
  const scope = values.scope || 'scope';
  if (values.dataset.trim()) {
    const problem = checkDid(values.dataset, scope, rules);
    if (problem) {
      errors.dataset = problem;
    }
  }
  if (values.container.trim()) {
    if (!values.dataset.trim()) {
      errors.container =
        'A container holds datasets, not files: give a dataset as well.';
    } else {
      const problem = checkDid(values.container, scope, rules);
      if (problem) {
        errors.container = problem;
      }
    }
  }
  if (isSingleFile(targets)) {
    const problem = checkName(values.name.trim(), rules);
    if (problem) {
      errors.name = problem;
    }
  } else if (values.namePrefix) {
    const problem = checkName(values.namePrefix + 'x', rules);
    if (problem) {
      errors.namePrefix = `Not a valid start of a Rucio name: it must start with a letter or digit and use only letters, digits, '.', '-', '_'.`;
    }
  }
  return errors;
}

/**
 * The body of `publish/validate` and `publish/jobs` for the form's values.
 */
export function buildRequest(
  values: IFormValues,
  targets: IPublishTarget[]
): IPublishRequest {
  const request: IPublishRequest = {
    paths: targets.map(t => t.path),
    lifetime_days: values.noLifetime ? null : Number(values.lifetime),
    dataset: values.dataset.trim() || null
  };
  if (values.instance) {
    request.instance = values.instance;
  }
  if (values.scope) {
    request.scope = values.scope;
  }
  if (values.rse) {
    request.rse = values.rse;
  }
  if (values.container.trim()) {
    request.container = values.container.trim();
  }
  if (isSingleFile(targets)) {
    request.name = values.name.trim();
  } else if (values.namePrefix) {
    request.name_prefix = values.namePrefix;
  }
  if (values.notebook.trim()) {
    request.notebook = values.notebook.trim();
  }
  if (values.allowEmpty) {
    request.allow_empty = true;
  }
  return request;
}

/**
 * The form field a server error points at (its `field`).
 */
export function errorField(
  error: unknown,
  targets: IPublishTarget[]
): FormField | null {
  if (!(error instanceof AFLabRequestError)) {
    return null;
  }
  const field = error.details.field;
  switch (field) {
    case 'paths':
    case 'scope':
    case 'rse':
    case 'dataset':
    case 'container':
    case 'notebook':
    case 'instance':
      return field;
    case 'lifetime_days':
      return 'lifetime';
    case 'name_prefix':
      return 'namePrefix';
    case 'name':
      return isSingleFile(targets) ? 'name' : 'paths';
    default:
      return null;
  }
}

export function rseLabel(rse: IRSEOption): string {
  const space =
    rse.free_bytes === null || rse.quota_bytes === null
      ? 'no quota limit'
      : `${formatBytes(rse.free_bytes)} free of ${formatBytes(rse.quota_bytes)}`;
  return `${rse.rse}${rse.default ? ' (default)' : ''} — ${space}`;
}

/**
 * The values the options suggest, for the fields the user has not set.
 */
export function applyDefaults(
  values: IFormValues,
  options: IPublishOptions,
  touched: Set<keyof IFormValues>
): IFormValues {
  const next = { ...values, instance: options.instance };
  const allowed = options.scopes.filter(s => s.allowed);
  const keepScope =
    touched.has('scope') && allowed.some(s => s.scope === values.scope);
  if (!keepScope) {
    const preferred = allowed.find(s => s.scope === options.defaults.scope);
    next.scope = (preferred ?? allowed[0])?.scope ?? '';
  }
  const keepRse =
    touched.has('rse') && options.rses.some(r => r.rse === values.rse);
  if (!keepRse) {
    const preferred =
      options.rses.find(r => r.rse === options.defaults.rse) ??
      options.rses.find(r => r.default);
    next.rse = (preferred ?? options.rses[0])?.rse ?? '';
  }
  if (!touched.has('lifetime')) {
    const days = options.defaults.lifetime_days;
    if (days === null || days === undefined) {
      next.lifetime = options.defaults.allow_no_lifetime ? '' : '30';
      next.noLifetime = options.defaults.allow_no_lifetime;
    } else {
      next.lifetime = String(days);
      next.noLifetime = false;
    }
  }
  if (!options.defaults.allow_no_lifetime) {
    next.noLifetime = false;
  }
  return next;
}
