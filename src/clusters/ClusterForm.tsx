import { Button } from '@jupyterlab/ui-components';
import React, { useEffect, useMemo, useRef, useState } from 'react';

import { AFLabRequestError, describeError } from '../request';
import {
  carryOver,
  describeLimits,
  FormErrors,
  formFields,
  FormValues,
  IAdaptValue,
  IFormField,
  initialValues,
  validateForm,
  validateName
} from './schema';
import { ICreateClusterBody, IProfile, IProfilesResponse } from './types';

/**
 * What the form was last submitted with (to reopen it after an error).
 */
export interface IFormDraft {
  profile: string;
  name: string;
  values: FormValues;
}

export interface IClusterFormProps {
  profiles: IProfilesResponse;
  /**
   * Start from these (e.g. after a failed creation); else the defaults of the
   * chosen profile.
   */
  draft?: IFormDraft | null;
  /**
   * Preselect this profile.
   */
  initialProfile?: string;
  /**
   * The server's answer to the last submit when it names a field (e.g.
   * `over_limit`): shown on that field.
   */
  serverError?: unknown;
  onSubmit(
    profile: string,
    body: ICreateClusterBody,
    name: string,
    draft: IFormDraft
  ): void;
  onCancel(): void;
}

/**
 * The options form of a new cluster, generated from the chosen profile's JSON
 * Schema and checked against it before it is sent.
 */
export function ClusterForm(props: IClusterFormProps): JSX.Element {
  const { profiles, draft, initialProfile, serverError, onSubmit, onCancel } =
    props;
  const firstProfile =
    draft?.profile ??
    (initialProfile && profiles.profiles.some(p => p.name === initialProfile)
      ? initialProfile
      : profiles.profiles.some(p => p.name === profiles.default)
        ? profiles.default
        : (profiles.profiles[0]?.name ?? ''));
  const [profileName, setProfileName] = useState(firstProfile);
  const profile: IProfile | undefined = profiles.profiles.find(
    p => p.name === profileName
  );
  const [values, setValues] = useState<FormValues>(
    () => draft?.values ?? (profile ? initialValues(profile.schema) : {})
  );
  const [name, setName] = useState(draft?.name ?? '');
  const [touched, setTouched] = useState<Set<string>>(new Set());
  const [submitted, setSubmitted] = useState(false);
  const [server, setServer] = useState<unknown>(serverError ?? null);
  const formRef = useRef<HTMLFormElement>(null);

  useEffect(() => setServer(serverError ?? null), [serverError]);

  const fields = useMemo(
    () => (profile ? formFields(profile.schema) : []),
    [profile]
  );
  const validation = useMemo(
    () => (profile ? validateForm(profile.schema, values) : null),
    [profile, values]
  );
  const nameError = validateName(name);

  // The server's error on a field, until that field changes.
  const serverField =
    server instanceof AFLabRequestError &&
    typeof server.details.field === 'string'
      ? server.details.field
      : null;

  const shownErrors: FormErrors = {};
  for (const [key, text] of Object.entries(validation?.errors ?? {})) {
    if (submitted || touched.has(key.split('.')[0])) {
      shownErrors[key] = text;
    }
  }
  if (nameError && (submitted || touched.has('name'))) {
    shownErrors.name = nameError;
  }
  if (serverField && server instanceof AFLabRequestError) {
    const key = serverField === 'adapt' ? 'adapt' : serverField;
    shownErrors[key] = shownErrors[key] ?? server.message;
  }

  useEffect(() => {
    // After a failed submit, bring the first wrong field into view.
    if (!submitted && !serverField) {
      return;
    }
    const node = formRef.current?.querySelector('[aria-invalid="true"]');
    if (node instanceof HTMLElement) {
      node.scrollIntoView?.({ block: 'nearest' });
    }
  }, [submitted, serverField]);

  const change = (key: string, value: FormValues[string]) => {
    setValues(v => ({ ...v, [key]: value }));
    setTouched(t => new Set(t).add(key));
    if (serverField === key || serverField === key.split('.')[0]) {
      setServer(null);
    }
  };

  const switchProfile = (next: string) => {
    const p = profiles.profiles.find(q => q.name === next);
    setProfileName(next);
    if (p) {
      setValues(v => carryOver(v, p.schema));
    }
    if (serverField === 'profile') {
      setServer(null);
    }
  };

  const submit = (event: React.FormEvent) => {
    event.preventDefault();
    setSubmitted(true);
    if (!profile || !validation?.body || nameError) {
      return;
    }
    setServer(null);
    onSubmit(profile.name, validation.body, name.trim(), {
      profile: profile.name,
      name,
      values
    });
  };

  const generalServerError =
    server !== null && !serverField ? describeError(server) : null;

  return (
    <form
      ref={formRef}
      className="jp-AFLab-ClusterForm"
      onSubmit={submit}
      onKeyDown={e => {
        if (e.key === 'Escape') {
          e.stopPropagation();
          onCancel();
        }
      }}
      aria-label="New cluster"
      noValidate
    >
      <div className="jp-AFLab-ClusterForm-title">New cluster</div>

      <div className="jp-AFLab-field" data-field="profile">
        <label htmlFor="jp-AFLab-ClusterForm-profile">Profile</label>
        <select
          id="jp-AFLab-ClusterForm-profile"
          className="jp-mod-styled"
          value={profileName}
          onChange={e => switchProfile(e.target.value)}
          aria-invalid={!!shownErrors.profile}
        >
          {profiles.profiles.map(p => (
            <option key={p.name} value={p.name}>
              {p.display_name || p.name}
            </option>
          ))}
        </select>
        {profile?.description && (
          <div className="jp-AFLab-field-help">{profile.description}</div>
        )}
        {profile &&
          describeLimits(profile.limits as Record<string, unknown>) && (
            <div className="jp-AFLab-field-help jp-AFLab-ClusterForm-limits">
              {describeLimits(profile.limits as Record<string, unknown>)}
            </div>
          )}
        {shownErrors.profile && (
          <div className="jp-AFLab-field-error" role="alert">
            {shownErrors.profile}
          </div>
        )}
      </div>

      <div className="jp-AFLab-field" data-field="name">
        <label htmlFor="jp-AFLab-ClusterForm-name">
          Name <span className="jp-AFLab-ClusterCard-muted">(optional)</span>
        </label>
        <input
          id="jp-AFLab-ClusterForm-name"
          className="jp-mod-styled"
          type="text"
          value={name}
          placeholder={profile ? `${profile.display_name} …` : ''}
          onChange={e => {
            setName(e.target.value);
            setTouched(t => new Set(t).add('name'));
            if (serverField === 'name') {
              setServer(null);
            }
          }}
          aria-invalid={!!shownErrors.name}
        />
        {shownErrors.name && (
          <div className="jp-AFLab-field-error" role="alert">
            {shownErrors.name}
          </div>
        )}
      </div>

      {fields.map(field => (
        <FormField
          key={`${profileName}:${field.key}`}
          field={field}
          value={values[field.key]}
          errors={shownErrors}
          adapting={
            !!values.adapt &&
            typeof values.adapt === 'object' &&
            (values.adapt as IAdaptValue).enabled
          }
          onChange={value => change(field.key, value)}
        />
      ))}

      {generalServerError && (
        <div className="jp-AFLab-notice jp-mod-error" role="alert">
          {generalServerError}
        </div>
      )}
      {submitted && Object.keys(shownErrors).length > 0 && (
        <div className="jp-AFLab-field-error" role="alert">
          Correct the marked field
          {Object.keys(shownErrors).length > 1 ? 's' : ''} first.
        </div>
      )}

      <div className="jp-AFLab-ClusterForm-buttons">
        <Button
          className="jp-AFLab-button jp-mod-accept jp-AFLab-ClusterForm-create"
          type="submit"
          disabled={!profile}
        >
          <span>Create cluster</span>
        </Button>
        <Button
          className="jp-AFLab-button"
          type="button"
          minimal
          onClick={onCancel}
        >
          <span>Cancel</span>
        </Button>
      </div>
    </form>
  );
}

function FormField(props: {
  field: IFormField;
  value: FormValues[string] | undefined;
  errors: FormErrors;
  adapting: boolean;
  onChange(value: FormValues[string]): void;
}): JSX.Element {
  const { field, value, errors, adapting, onChange } = props;
  const id = `jp-AFLab-ClusterForm-${field.key}`;
  const error = errors[field.key];

  if (field.kind === 'adapt') {
    const v: IAdaptValue =
      value && typeof value === 'object'
        ? value
        : { enabled: false, minimum: '0', maximum: '1' };
    const childError = (k: string) => errors[`${field.key}.${k}`];
    return (
      <fieldset
        className="jp-AFLab-field jp-AFLab-field-adapt"
        data-field={field.key}
      >
        <label className="jp-AFLab-field-check">
          <input
            type="checkbox"
            checked={v.enabled}
            onChange={e => onChange({ ...v, enabled: e.target.checked })}
          />
          <span>{field.title}</span>
        </label>
        {field.description && (
          <div className="jp-AFLab-field-help">{field.description}</div>
        )}
        {v.enabled && (
          <div className="jp-AFLab-field-pair">
            {(field.children ?? []).map(child => (
              <label key={child.key} className="jp-AFLab-field-inline">
                <span>{child.title}</span>
                <input
                  className="jp-mod-styled"
                  type="number"
                  min={child.minimum}
                  max={child.maximum}
                  step={1}
                  value={
                    (v as unknown as Record<string, string>)[child.key] ?? ''
                  }
                  onChange={e =>
                    onChange({ ...v, [child.key]: e.target.value })
                  }
                  aria-invalid={!!childError(child.key) || !!error}
                  data-field={`${field.key}.${child.key}`}
                />
              </label>
            ))}
          </div>
        )}
        {(field.children ?? []).map(
          child =>
            childError(child.key) && (
              <div
                key={child.key}
                className="jp-AFLab-field-error"
                role="alert"
              >
                {childError(child.key)}
              </div>
            )
        )}
        {error && (
          <div className="jp-AFLab-field-error" role="alert">
            {error}
          </div>
        )}
      </fieldset>
    );
  }

  const disabled = field.key === 'workers' && adapting;
  const text = typeof value === 'string' ? value : '';
  let input: JSX.Element;
  if (field.kind === 'choice') {
    input = (
      <select
        id={id}
        className="jp-mod-styled"
        value={text}
        onChange={e => onChange(e.target.value)}
        aria-invalid={!!error}
      >
        {!field.required && <option value="">(site default)</option>}
        {(field.choices ?? []).map(c => (
          <option key={c} value={c}>
            {c}
          </option>
        ))}
      </select>
    );
  } else if (field.kind === 'boolean') {
    input = (
      <input
        id={id}
        type="checkbox"
        checked={value === true}
        onChange={e => onChange(e.target.checked)}
      />
    );
  } else {
    const numeric = field.kind === 'integer' || field.kind === 'number';
    input = (
      <input
        id={id}
        className="jp-mod-styled"
        type={numeric ? 'number' : 'text'}
        inputMode={numeric ? 'numeric' : undefined}
        min={field.minimum}
        max={field.maximum}
        step={field.kind === 'integer' ? 1 : undefined}
        value={text}
        disabled={disabled}
        placeholder={field.kind === 'bytes' ? 'e.g. 4 GiB' : undefined}
        onChange={e => onChange(e.target.value)}
        aria-invalid={!!error}
        aria-describedby={`${id}-help`}
      />
    );
  }
  const help = disabled
    ? 'Adaptive scaling decides the number of workers.'
    : field.description;
  return (
    <div className="jp-AFLab-field" data-field={field.key}>
      <label htmlFor={id}>
        {field.title}
        {field.required && (
          <span className="jp-AFLab-field-required" aria-label="required">
            {' '}
            *
          </span>
        )}
      </label>
      {input}
      {help && (
        <div id={`${id}-help`} className="jp-AFLab-field-help">
          {help}
        </div>
      )}
      {error && !disabled && (
        <div className="jp-AFLab-field-error" role="alert">
          {error}
        </div>
      )}
    </div>
  );
}
