import { Button, HTMLSelect, refreshIcon } from '@jupyterlab/ui-components';
import React, {
  useCallback,
  useEffect,
  useMemo,
  useRef,
  useState
} from 'react';

import { LoadingStatus } from '../common/feedback';
import { AFLabRequestError, describeError } from '../request';
import * as api from './api';
import { formatBytes, plural } from '../common/units';
import { formatDays } from './format';
import {
  baseName,
  checkDid,
  checkLifetime,
  checkName,
  DEFAULT_RULES,
  sanitizeName,
  splitDid
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

type FieldErrors = Partial<Record<FormField, string>>;

interface IValidation {
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

function rseLabel(rse: IRSEOption): string {
  const space =
    rse.free_bytes === null || rse.quota_bytes === null
      ? 'no quota limit'
      : `${formatBytes(rse.free_bytes)} free of ${formatBytes(rse.quota_bytes)}`;
  return `${rse.rse}${rse.default ? ' (default)' : ''} — ${space}`;
}

/**
 * The values the options suggest, for the fields the user has not set.
 */
function applyDefaults(
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

/**
 * The Publish dialog's form: where (instance, scope, RSE), how long
 * (lifetime), under which names (DID name or prefix, dataset, container),
 * with the notebook as provenance. Every change is checked at once on the
 * client and, after a short pause, by the server's dry run
 * (`publish/validate`), whose answer shows what will happen.
 */
export function PublishForm(props: IPublishFormProps): JSX.Element {
  const {
    targets,
    notebook,
    defaultInstance = '',
    onReadyChange,
    handleRef,
    validateDelayMs = 350,
    initial
  } = props;

  const [values, setValues] = useState<IFormValues>(() => ({
    ...initialValues(targets, notebook),
    ...initial
  }));
  const touched = useRef(
    new Set<keyof IFormValues>(
      Object.keys(initial ?? {}) as (keyof IFormValues)[]
    )
  );
  const [options, setOptions] = useState<IPublishOptions | null>(null);
  const [optionsError, setOptionsError] = useState<unknown>(null);
  const [optionsLoading, setOptionsLoading] = useState(true);
  const [validation, setValidation] = useState<IValidation>({
    status: 'idle',
    key: '',
    plan: null,
    error: null
  });
  const [submitting, setSubmitting] = useState(false);
  const [submitError, setSubmitError] = useState<unknown>(null);
  const [showAllNames, setShowAllNames] = useState(false);
  const mounted = useRef(true);
  const optionsRequest = useRef(0);

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  const loadOptions = useCallback((instance: string) => {
    const request = ++optionsRequest.current;
    setOptionsLoading(true);
    setOptionsError(null);
    api
      .fetchOptions(instance || undefined)
      .then(answer => {
        if (!mounted.current || request !== optionsRequest.current) {
          return;
        }
        setOptions(answer);
        setValues(v => applyDefaults(v, answer, touched.current));
        setOptionsLoading(false);
      })
      .catch(error => {
        if (!mounted.current || request !== optionsRequest.current) {
          return;
        }
        setOptionsError(error);
        setOptionsLoading(false);
      });
  }, []);

  const firstInstance = initial?.instance || defaultInstance;
  useEffect(() => {
    loadOptions(firstInstance);
  }, [firstInstance, loadOptions]);

  const set = useCallback(
    <K extends keyof IFormValues>(key: K, value: IFormValues[K]) => {
      touched.current.add(key);
      setValues(v => ({ ...v, [key]: value }));
      setSubmitError(null);
    },
    []
  );

  const errors = useMemo(
    () => localErrors(values, targets, options),
    [values, targets, options]
  );
  const locallyValid = Object.keys(errors).length === 0;
  const request = useMemo(
    () => buildRequest(values, targets),
    [values, targets]
  );
  const requestKey = JSON.stringify(request);

  // The server's dry run, once the form is locally valid and typing paused.
  useEffect(() => {
    if (!options || optionsLoading || !locallyValid) {
      setValidation(v =>
        v.status === 'idle'
          ? v
          : { status: 'idle', key: '', plan: null, error: null }
      );
      return;
    }
    setValidation(v =>
      v.key === requestKey && v.status !== 'idle'
        ? v
        : { status: 'pending', key: requestKey, plan: null, error: null }
    );
    let current = true;
    const timer = window.setTimeout(() => {
      api
        .validatePublish(JSON.parse(requestKey))
        .then(plan => {
          if (current && mounted.current) {
            setValidation({ status: 'ok', key: requestKey, plan, error: null });
          }
        })
        .catch(error => {
          if (current && mounted.current) {
            setValidation({
              status: 'error',
              key: requestKey,
              plan: null,
              error
            });
          }
        });
    }, validateDelayMs);
    return () => {
      current = false;
      window.clearTimeout(timer);
    };
  }, [requestKey, locallyValid, options, optionsLoading, validateDelayMs]);

  const upToDate = validation.key === requestKey;
  const plan = upToDate && validation.status === 'ok' ? validation.plan : null;
  const serverError =
    submitError ??
    (upToDate && validation.status === 'error' ? validation.error : null);
  const serverField = errorField(serverError, targets);

  let phase: FormPhase;
  if (submitting) {
    phase = 'submitting';
  } else if (optionsLoading && !options) {
    phase = 'loading';
  } else if (!options) {
    phase = 'options-error';
  } else if (!locallyValid) {
    phase = 'invalid';
  } else if (serverError) {
    phase = 'refused';
  } else if (plan) {
    phase = 'ready';
  } else {
    phase = 'checking';
  }
  const ready = phase === 'ready';

  useEffect(() => {
    onReadyChange?.(ready);
  }, [ready, onReadyChange]);

  const submit = useCallback(async (): Promise<IPublishJob | null> => {
    if (!ready || submitting) {
      return null;
    }
    setSubmitting(true);
    setSubmitError(null);
    try {
      const job = await api.submitPublish(request);
      return job;
    } catch (error) {
      if (mounted.current) {
        setSubmitError(error);
      }
      return null;
    } finally {
      if (mounted.current) {
        setSubmitting(false);
      }
    }
  }, [ready, submitting, request]);

  useEffect(() => {
    if (handleRef) {
      handleRef.current = { submit };
    }
  }, [handleRef, submit]);

  const single = isSingleFile(targets);
  const rules = options?.naming ?? DEFAULT_RULES;
  const scopeForDids = values.scope || options?.defaults.scope || '';
  const fieldError = (field: FormField): string | null =>
    errors[field] ??
    (serverField === field && serverError ? describeError(serverError) : null);
  const suggestion =
    serverError instanceof AFLabRequestError &&
    typeof serverError.details.suggestion === 'string'
      ? serverError.details.suggestion
      : null;
  const emptyFiles =
    serverError instanceof AFLabRequestError &&
    Array.isArray(serverError.details.empty);

  const fieldProps = (field: FormField): IFieldInputProps => {
    const problem = fieldError(field);
    return {
      id: `jp-AFLab-publish-${field}`,
      'aria-invalid': problem ? true : undefined,
      'aria-describedby': `jp-AFLab-publish-${field}-help`,
      'data-invalid': problem ? 'true' : undefined
    };
  };
  const textField = (field: TextFormField) => ({
    field,
    value: values[field],
    onChange: (value: string) => set(field, value),
    inputProps: fieldProps(field),
    error: fieldError(field)
  });

  return (
    <form
      className="jp-AFLab-panel jp-AFLab-PublishForm"
      data-phase={phase}
      aria-busy={phase === 'loading' || phase === 'checking'}
      onSubmit={event => event.preventDefault()}
      noValidate
    >
      <section className="jp-AFLab-PublishForm-what" aria-label="What">
        <div className="jp-AFLab-PublishForm-label">Publish</div>
        <ul className="jp-AFLab-PublishForm-targets">
          {targets.map(t => (
            <li key={t.path} title={t.path}>
              <span className="jp-AFLab-PublishForm-kind">
                {t.isDir ? 'Folder' : 'File'}
              </span>
              <code>{t.path}</code>
              {typeof t.size === 'number' && !t.isDir && (
                <span className="jp-AFLab-PublishForm-muted">
                  {formatBytes(t.size)}
                </span>
              )}
            </li>
          ))}
        </ul>
        <FieldHelp field="paths" error={fieldError('paths')}>
          Your local files stay where they are: publishing copies them.
        </FieldHelp>
      </section>

      {phase === 'loading' && (
        <LoadingStatus className="jp-AFLab-PublishForm-loading" role="status">
          Loading your scopes and storage from Rucio…
        </LoadingStatus>
      )}

      {phase === 'options-error' && (
        <div className="jp-AFLab-notice jp-AFLab-mod-danger" role="alert">
          <div className="jp-AFLab-notice-title">
            Could not get the publishing options
          </div>
          <div>{describeError(optionsError)}</div>
          <Button
            className="jp-AFLab-button"
            small
            onClick={() => loadOptions(values.instance || defaultInstance)}
          >
            <refreshIcon.react tag="span" className="jp-AFLab-button-icon" />
            <span>Try again</span>
          </Button>
        </div>
      )}

      {options && (
        <div className="jp-AFLab-PublishForm-grid">
          {options.instances.length > 1 && (
            <FormRow
              field="instance"
              label="Rucio instance"
              error={fieldError('instance')}
              help={optionsLoading ? 'Loading…' : `Account ${options.account}`}
            >
              <HTMLSelect
                value={values.instance}
                disabled={optionsLoading}
                {...fieldProps('instance')}
                onChange={event => {
                  set('instance', event.target.value);
                  loadOptions(event.target.value);
                }}
              >
                {options.instances.map(i => (
                  <option key={i.name} value={i.name}>
                    {i.display_name}
                  </option>
                ))}
              </HTMLSelect>
            </FormRow>
          )}

          <FormRow
            field="scope"
            label="Scope"
            error={fieldError('scope')}
            help={scopeHelp(options)}
          >
            <HTMLSelect
              value={values.scope}
              {...fieldProps('scope')}
              onChange={event => set('scope', event.target.value)}
            >
              {!values.scope && <option value="">Choose a scope…</option>}
              {options.scopes.map(s => (
                <option
                  key={s.scope}
                  value={s.scope}
                  disabled={!s.allowed}
                  title={s.reason}
                >
                  {s.scope}
                  {s.embargoed
                    ? s.allowed
                      ? ' — embargoed (you may publish)'
                      : ` — embargoed, ${s.reason ?? 'not allowed'}`
                    : ''}
                </option>
              ))}
            </HTMLSelect>
          </FormRow>

          <FormRow
            field="rse"
            label="Storage (RSE)"
            error={fieldError('rse')}
            help={`The RSEs your account ${options.account} may write to, with your free quota.`}
          >
            <HTMLSelect
              value={values.rse}
              {...fieldProps('rse')}
              onChange={event => set('rse', event.target.value)}
            >
              {!values.rse && <option value="">Choose an RSE…</option>}
              {options.rses.map(r => (
                <option key={r.rse} value={r.rse}>
                  {rseLabel(r)}
                </option>
              ))}
            </HTMLSelect>
          </FormRow>

          <FormRow
            field="lifetime"
            label="Lifetime"
            error={fieldError('lifetime')}
            help={
              <>
                {values.noLifetime
                  ? 'The replication rule never expires.'
                  : 'The replication rule expires after this; Rucio may then delete the copy.'}
                {!options.defaults.allow_no_lifetime &&
                  ' This facility requires a lifetime.'}
              </>
            }
          >
            <div className="jp-AFLab-PublishForm-inline">
              <input
                className="jp-mod-styled jp-AFLab-PublishForm-days"
                type="number"
                inputMode="decimal"
                min={0}
                step="any"
                value={values.noLifetime ? '' : values.lifetime}
                disabled={values.noLifetime}
                {...fieldProps('lifetime')}
                onChange={event => set('lifetime', event.target.value)}
              />
              <span>days</span>
              {options.defaults.allow_no_lifetime && (
                <label className="jp-AFLab-PublishForm-check">
                  <input
                    type="checkbox"
                    checked={values.noLifetime}
                    onChange={event => set('noLifetime', event.target.checked)}
                  />
                  No expiry
                </label>
              )}
            </div>
          </FormRow>

          {single ? (
            <TextField
              label="DID name"
              {...textField('name')}
              action={
                suggestion && serverField === 'name' ? (
                  <SuggestionButton
                    value={suggestion}
                    onUse={() => set('name', suggestion)}
                  />
                ) : errors.name && values.name.trim() ? (
                  <SuggestionButton
                    value={sanitizeName(values.name.trim(), rules)}
                    onUse={() =>
                      set('name', sanitizeName(values.name.trim(), rules))
                    }
                  />
                ) : null
              }
              help={
                <>
                  Published as{' '}
                  <code>
                    {scopeForDids}:{values.name.trim() || '…'}
                  </code>
                  . Rucio names are permanent.
                </>
              }
            />
          ) : (
            <TextField
              label="Name prefix"
              placeholder="optional, e.g. v2."
              {...textField('namePrefix')}
              help={
                <>
                  Each file is named after its path in the folder (
                  <code>sub/x.root</code> → <code>sub.x.root</code>), after this
                  prefix.
                </>
              }
            />
          )}

          <TextField
            label="Dataset"
            placeholder={
              single ? 'optional: name or scope:name' : 'name or scope:name'
            }
            {...textField('dataset')}
            help={datasetHelp(values, plan, scopeForDids)}
          />

          <TextField
            label="Container"
            placeholder="optional"
            {...textField('container')}
            help={
              plan?.container
                ? plan.container.new
                  ? `New container ${plan.container.did}: it will be created and the dataset attached.`
                  : `The dataset will be attached to the existing container ${plan.container.did}.`
                : 'Optional: a container to attach the dataset to (created if missing).'
            }
          />

          <TextField
            label="Notebook"
            placeholder="optional: the notebook that made these files"
            {...textField('notebook')}
            help="Recorded as provenance, with its git commit, the input data it mounted and the af-lab version."
          />
        </div>
      )}

      {options && (
        <Summary
          phase={phase}
          plan={plan}
          error={serverError}
          errorShownAt={serverField}
          submitting={submitting}
          showAllNames={showAllNames}
          onShowAllNames={() => setShowAllNames(true)}
          emptyFiles={emptyFiles}
          allowEmpty={values.allowEmpty}
          onAllowEmpty={checked => set('allowEmpty', checked)}
          localProblems={Object.keys(errors).length}
        />
      )}
    </form>
  );
}

function scopeHelp(options: IPublishOptions): string {
  const blocked = options.scopes.filter(s => !s.allowed);
  const parts = ['The scopes your account owns.'];
  for (const s of blocked) {
    parts.push(`${s.scope} is embargoed: ${s.reason ?? 'not allowed'}.`);
  }
  return parts.join(' ');
}

function datasetHelp(
  values: IFormValues,
  plan: IPublishPlan | null,
  scope: string
): string {
  if (!values.dataset.trim()) {
    return 'No dataset: each file gets its own replication rule. Give a name to group the files in a dataset.';
  }
  const did = values.dataset.includes(':')
    ? values.dataset.trim()
    : `${splitDid(values.dataset, scope).scope}:${values.dataset.trim()}`;
  if (plan?.dataset) {
    return plan.dataset.new
      ? `New dataset ${plan.dataset.did}: it will be created.`
      : `Existing dataset ${plan.dataset.did}: the files will be added to it.`;
  }
  return `${did}: an existing open dataset gets the files added; otherwise it is created.`;
}

/**
 * What every input of the form carries: its id, its help line and whether
 * it is invalid.
 */
interface IFieldInputProps {
  id: string;
  'aria-invalid': true | undefined;
  'aria-describedby': string;
  'data-invalid': 'true' | undefined;
}

/**
 * The free-text fields.
 */
type TextFormField =
  'name' | 'namePrefix' | 'dataset' | 'container' | 'notebook';

/**
 * A row of the form's grid: the label, the control (`children`), and the help
 * line that an error replaces.
 */
function FormRow(props: {
  field: FormField;
  label: string;
  error: string | null;
  help: React.ReactNode;
  action?: React.ReactNode;
  children: React.ReactNode;
}): JSX.Element {
  const { field, error, action } = props;
  return (
    <>
      <label htmlFor={`jp-AFLab-publish-${field}`}>{props.label}</label>
      <div>
        {props.children}
        <FieldHelp field={field} error={error} action={action}>
          {props.help}
        </FieldHelp>
      </div>
    </>
  );
}

/**
 * A free-text row of the form's grid.
 */
function TextField(props: {
  field: TextFormField;
  label: string;
  value: string;
  onChange: (value: string) => void;
  inputProps: IFieldInputProps;
  error: string | null;
  help: React.ReactNode;
  placeholder?: string;
  action?: React.ReactNode;
}): JSX.Element {
  const { field, label, error, help, action } = props;
  return (
    <FormRow
      field={field}
      label={label}
      error={error}
      help={help}
      action={action}
    >
      <input
        className="jp-mod-styled"
        type="text"
        spellCheck={false}
        autoComplete="off"
        placeholder={props.placeholder}
        value={props.value}
        {...props.inputProps}
        onChange={event => props.onChange(event.target.value)}
      />
    </FormRow>
  );
}

function FieldHelp(props: {
  field: FormField;
  error: string | null;
  action?: React.ReactNode;
  children?: React.ReactNode;
}): JSX.Element {
  const { field, error, action, children } = props;
  return (
    <div
      id={`jp-AFLab-publish-${field}-help`}
      className={
        error
          ? 'jp-AFLab-PublishForm-help jp-AFLab-PublishForm-problem'
          : 'jp-AFLab-PublishForm-help'
      }
      role={error ? 'alert' : undefined}
      data-field={field}
    >
      {error ?? children}
      {action && <span className="jp-AFLab-PublishForm-action">{action}</span>}
    </div>
  );
}

function SuggestionButton(props: {
  value: string;
  onUse: () => void;
}): JSX.Element {
  return (
    <Button
      className="jp-AFLab-button jp-AFLab-PublishForm-suggestion"
      small
      minimal
      onClick={props.onUse}
      title={`Use the name ${props.value}`}
    >
      Use <code>{props.value}</code>
    </Button>
  );
}

function Summary(props: {
  phase: FormPhase;
  plan: IPublishPlan | null;
  error: unknown;
  errorShownAt: FormField | null;
  submitting: boolean;
  showAllNames: boolean;
  onShowAllNames: () => void;
  emptyFiles: boolean;
  allowEmpty: boolean;
  onAllowEmpty: (checked: boolean) => void;
  localProblems: number;
}): JSX.Element {
  const { phase, plan, error } = props;
  return (
    <section
      className="jp-AFLab-PublishForm-summary"
      aria-label="What will happen"
      aria-live="polite"
    >
      {phase === 'invalid' && (
        <div className="jp-AFLab-PublishForm-muted">
          Fix {props.localProblems === 1 ? 'the field' : 'the fields'} marked
          above to see what will be published.
        </div>
      )}
      {phase === 'checking' && (
        <LoadingStatus className="jp-AFLab-PublishForm-loading" role="status">
          Checking with Rucio…
        </LoadingStatus>
      )}
      {phase === 'submitting' && (
        <LoadingStatus className="jp-AFLab-PublishForm-loading" role="status">
          Starting the publish job…
        </LoadingStatus>
      )}
      {phase === 'refused' && error !== null && (
        <div className="jp-AFLab-notice jp-AFLab-mod-danger" role="alert">
          <div className="jp-AFLab-notice-title">
            {error instanceof AFLabRequestError && error.status === 0
              ? 'The server could not be reached'
              : 'This cannot be published as it is'}
          </div>
          {props.errorShownAt === null ? (
            <div>{describeError(error)}</div>
          ) : (
            <div>See the marked field above.</div>
          )}
          {error instanceof AFLabRequestError &&
            typeof error.details.suggestion === 'string' &&
            props.errorShownAt !== 'name' && (
              <div>
                Suggestion: <code>{error.details.suggestion}</code>
              </div>
            )}
          {props.emptyFiles && (
            <label className="jp-AFLab-PublishForm-check">
              <input
                type="checkbox"
                checked={props.allowEmpty}
                onChange={event => props.onAllowEmpty(event.target.checked)}
              />
              Publish the empty files anyway
            </label>
          )}
        </div>
      )}
      {plan && phase === 'ready' && (
        <PlanSummary
          plan={plan}
          showAllNames={props.showAllNames}
          onShowAllNames={props.onShowAllNames}
        />
      )}
    </section>
  );
}

/**
 * The dry run's answer: files, bytes, where, for how long, quota, warnings.
 */
export function PlanSummary(props: {
  plan: IPublishPlan;
  showAllNames?: boolean;
  onShowAllNames?: () => void;
}): JSX.Element {
  const { plan } = props;
  const shown = props.showAllNames ? plan.names : plan.names.slice(0, 5);
  const hidden = plan.files_total - shown.length;
  const quota = plan.quota ?? {};
  const limit = quota.limit_bytes;
  const left =
    typeof limit === 'number'
      ? Math.max(0, limit - (quota.used_bytes ?? 0))
      : null;
  const where = plan.dataset
    ? ` into ${plan.dataset.new ? 'the new dataset' : 'the dataset'} ${plan.dataset.did}`
    : '';
  return (
    <div className="jp-AFLab-PublishPlan" data-testid="publish-plan">
      <div className="jp-AFLab-PublishPlan-headline">
        Ready: {plural(plan.files_total, 'file')} (
        {formatBytes(plan.bytes_total)}) to {plan.rse}
        {where}.
      </div>
      <dl>
        <dt>Names</dt>
        <dd>
          <ul className="jp-AFLab-PublishPlan-names">
            {shown.map(name => (
              <li key={name}>
                <code>
                  {plan.scope}:{name}
                </code>
              </li>
            ))}
          </ul>
          {hidden > 0 &&
            (props.onShowAllNames &&
            !props.showAllNames &&
            plan.names.length > shown.length ? (
              <Button
                className="jp-AFLab-button"
                small
                minimal
                onClick={props.onShowAllNames}
              >
                Show {plural(plan.names.length - shown.length, 'more name')}
              </Button>
            ) : (
              <span className="jp-AFLab-PublishForm-muted">
                and {plural(hidden, 'more file')}
              </span>
            ))}
        </dd>
        {plan.container && (
          <>
            <dt>Container</dt>
            <dd>
              <code>{plan.container.did}</code>
              {plan.container.new ? ' (new)' : ' (existing)'}
            </dd>
          </>
        )}
        <dt>Rule</dt>
        <dd>
          1 copy on {plan.rse}, {formatDays(plan.lifetime_days)}
          {plan.lifetime_days !== null && ' (then it may be deleted)'}
        </dd>
        <dt>Quota</dt>
        <dd>
          needs {formatBytes(quota.needed_bytes ?? plan.bytes_total)};{' '}
          {left !== null && typeof limit === 'number'
            ? `${formatBytes(left)} free of ${formatBytes(limit)}`
            : quota.admin
              ? 'no limit (admin account)'
              : 'no limit'}
        </dd>
      </dl>
      {plan.files_already_named > 0 && (
        <div className="jp-AFLab-notice jp-mod-warning">
          {plural(plan.files_already_named, 'file')}{' '}
          {plan.files_already_named === 1 ? 'exists' : 'exist'} in Rucio already
          with the same name and size: if the content is the same it is skipped;
          if not, the job stops before changing anything.
        </div>
      )}
      {plan.skipped.length > 0 && (
        <div className="jp-AFLab-PublishForm-muted">
          Left out (hidden or checkpoint files):{' '}
          {plan.skipped.slice(0, 5).join(', ')}
          {plan.skipped.length > 5
            ? ` and ${plan.skipped.length - 5} more`
            : ''}
        </div>
      )}
      {plan.warnings.map((warning, i) => (
        <div key={i} className="jp-AFLab-notice jp-mod-warning">
          {warning}
        </div>
      ))}
    </div>
  );
}
