/**
 * The pieces of the Publish form: labelled rows, text fields with their
 * help and suggestions, and the summary of what the server's dry run plans.
 */
import { Button } from '@jupyterlab/ui-components';
import React from 'react';
import { LoadingStatus } from '../common/feedback';
import { AFLabRequestError, describeError } from '../request';
import { formatBytes, plural } from '../common/units';
import { formatDays } from './format';
import { splitDid } from './naming';
import { IPublishOptions, IPublishPlan } from './types';
import { IFormValues, FormField, FormPhase } from './formValues';

export function scopeHelp(options: IPublishOptions): string {
  const blocked = options.scopes.filter(s => !s.allowed);
  const parts = ['The scopes your account owns.'];
  for (const s of blocked) {
    parts.push(`${s.scope} is embargoed: ${s.reason ?? 'not allowed'}.`);
  }
  return parts.join(' ');
}

export function datasetHelp(
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
export interface IFieldInputProps {
  id: string;
  'aria-invalid': true | undefined;
  'aria-describedby': string;
  'data-invalid': 'true' | undefined;
}

/**
 * The free-text fields.
 */
export type TextFormField =
  'name' | 'namePrefix' | 'dataset' | 'container' | 'notebook';

/**
 * A row of the form's grid: the label, the control (`children`), and the help
 * line that an error replaces.
 */
export function FormRow(props: {
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
export function TextField(props: {
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

export function FieldHelp(props: {
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

export function SuggestionButton(props: {
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

export function Summary(props: {
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
