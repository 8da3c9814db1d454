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
import { formatBytes } from '../common/units';
import { DEFAULT_RULES, sanitizeName } from './naming';
import { IPublishJob, IPublishOptions } from './types';
import {
  IPublishFormProps,
  IFormValues,
  initialValues,
  FormField,
  IValidation,
  FormPhase,
  isSingleFile,
  localErrors,
  buildRequest,
  errorField,
  rseLabel,
  applyDefaults
} from './formValues';
import {
  scopeHelp,
  datasetHelp,
  IFieldInputProps,
  TextFormField,
  FormRow,
  TextField,
  FieldHelp,
  SuggestionButton,
  Summary
} from './FormParts';

export { PlanSummary } from './FormParts';

export {
  IPublishTarget,
  IPublishFormHandle,
  IPublishFormProps,
  IFormValues,
  FormField,
  FormPhase,
  initialValues,
  valuesFromJob,
  isSingleFile,
  localErrors,
  buildRequest,
  errorField
} from './formValues';

import * as api from './api';

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
