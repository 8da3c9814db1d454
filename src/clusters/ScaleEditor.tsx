import { Button } from '@jupyterlab/ui-components';
import React, { useEffect, useRef, useState } from 'react';

import { ClusterErrorNotice } from './ErrorNotice';
import { IOperation, IOperationError } from './model';
import { ICluster, IProfile } from './types';
import { plural } from '../common/units';

export interface IScaleEditorProps {
  cluster: ICluster;
  profile?: IProfile;
  busy: boolean;
  operation?: IOperation;
  error?: IOperationError;
  onScale(workers: number): Promise<unknown>;
  onAdapt(
    bounds: { minimum: number; maximum: number } | null
  ): Promise<unknown>;
  onClose(): void;
}

/**
 * The limit on workers of the cluster's profile (undefined: none).
 */
function maxWorkers(profile?: IProfile): number | undefined {
  const limit = profile?.limits?.max_workers;
  return typeof limit === 'number' ? limit : undefined;
}

/**
 * `"3"` → 3; an error text for anything that is not a whole number in
 * [0, max].
 */
export function checkWorkers(
  text: string,
  max: number | undefined,
  label = 'Workers'
): { value?: number; error?: string } {
  const t = text.trim();
  if (!/^\d+$/.test(t)) {
    return { error: `${label}: enter a whole number (0 or more).` };
  }
  const value = parseInt(t, 10);
  if (max !== undefined && value > max) {
    return {
      error: `${label}: at most ${max} with this cluster's profile.`
    };
  }
  return { value };
}

/**
 * Scale a cluster to N workers, or let Dask adapt between a minimum and a
 * maximum. Shown inside the cluster card.
 */
export function ScaleEditor(props: IScaleEditorProps): JSX.Element {
  const {
    cluster,
    profile,
    busy,
    operation,
    error,
    onScale,
    onAdapt,
    onClose
  } = props;
  const max = maxWorkers(profile);
  const [mode, setMode] = useState<'fixed' | 'adapt'>(
    cluster.adapt ? 'adapt' : 'fixed'
  );
  const [workers, setWorkers] = useState(
    String(cluster.adapt ? cluster.workers : cluster.requested_workers)
  );
  const [minimum, setMinimum] = useState(String(cluster.adapt?.minimum ?? 0));
  const [maximum, setMaximum] = useState(
    String(cluster.adapt?.maximum ?? max ?? Math.max(cluster.workers, 1))
  );
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [submitted, setSubmitted] = useState(false);
  const firstInput = useRef<HTMLInputElement>(null);

  useEffect(() => {
    firstInput.current?.focus();
    firstInput.current?.select();
  }, []);

  const validate = (): Record<string, string> => {
    const out: Record<string, string> = {};
    if (mode === 'fixed') {
      const r = checkWorkers(workers, max);
      if (r.error) {
        out.workers = r.error;
      }
    } else {
      const lo = checkWorkers(minimum, max, 'Minimum');
      const hi = checkWorkers(maximum, max, 'Maximum');
      if (lo.error) {
        out.minimum = lo.error;
      }
      if (hi.error) {
        out.maximum = hi.error;
      }
      if (
        lo.value !== undefined &&
        hi.value !== undefined &&
        lo.value > hi.value
      ) {
        out.maximum = `Maximum: ${hi.value} is below the minimum ${lo.value}.`;
      }
    }
    return out;
  };

  useEffect(() => {
    if (submitted) {
      setErrors(validate());
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [mode, workers, minimum, maximum, submitted]);

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setSubmitted(true);
    const found = validate();
    setErrors(found);
    if (Object.keys(found).length > 0) {
      return;
    }
    try {
      if (mode === 'fixed') {
        await onScale(parseInt(workers, 10));
      } else {
        await onAdapt({
          minimum: parseInt(minimum, 10),
          maximum: parseInt(maximum, 10)
        });
      }
      onClose();
    } catch {
      // The error is shown below (from the model).
    }
  };

  const stopAdapting = async () => {
    try {
      await onAdapt(null);
      onClose();
    } catch {
      // shown below
    }
  };

  const idBase = `jp-AFLab-scale-${cluster.id}`;
  const running =
    operation && (operation.kind === 'scale' || operation.kind === 'adapt');

  return (
    <form
      className="jp-AFLab-ScaleEditor"
      onSubmit={e => void submit(e)}
      onKeyDown={e => {
        if (e.key === 'Escape' && !busy) {
          e.stopPropagation();
          onClose();
        }
      }}
      aria-label={`Scale ${cluster.name}`}
      noValidate
    >
      <fieldset disabled={busy}>
        <div className="jp-AFLab-ScaleEditor-row">
          <ModeChoice
            name={`${idBase}-mode`}
            label="Fixed"
            checked={mode === 'fixed'}
            onChoose={() => setMode('fixed')}
          />
          <WorkerCount
            inputRef={mode === 'fixed' ? firstInput : undefined}
            id={`${idBase}-workers`}
            label="Number of workers"
            value={workers}
            max={max}
            disabled={mode !== 'fixed'}
            invalid={!!errors.workers}
            onChange={setWorkers}
          />
          <span>workers</span>
        </div>
        <div className="jp-AFLab-ScaleEditor-row">
          <ModeChoice
            name={`${idBase}-mode`}
            label="Adaptive"
            checked={mode === 'adapt'}
            onChoose={() => setMode('adapt')}
          />
          <WorkerCount
            inputRef={mode === 'adapt' ? firstInput : undefined}
            label="Minimum workers"
            value={minimum}
            max={max}
            disabled={mode !== 'adapt'}
            invalid={!!errors.minimum}
            onChange={setMinimum}
          />
          <span>to</span>
          <WorkerCount
            label="Maximum workers"
            value={maximum}
            max={max}
            disabled={mode !== 'adapt'}
            invalid={!!errors.maximum}
            onChange={setMaximum}
          />
          <span>workers</span>
        </div>
        <div className="jp-AFLab-field-help">
          {mode === 'fixed'
            ? 'Dask keeps exactly this many workers.'
            : 'Dask adds workers when tasks queue up and removes idle ones.'}
          {max !== undefined && ` At most ${plural(max, 'worker')}.`}
        </div>
        {Object.values(errors).map(text => (
          <div key={text} className="jp-AFLab-field-error" role="alert">
            {text}
          </div>
        ))}
        {error && !running && (
          <ClusterErrorNotice title={error.title} error={error.error} />
        )}
        <div className="jp-AFLab-ScaleEditor-buttons">
          <Button
            className="jp-AFLab-button jp-mod-accept jp-AFLab-ScaleEditor-apply"
            small
            type="submit"
          >
            {running && (
              <span className="jp-AFLab-spinner" aria-hidden="true" />
            )}
            <span>
              {running ? 'Applying…' : mode === 'fixed' ? 'Scale' : 'Adapt'}
            </span>
          </Button>
          {cluster.adapt && (
            <Button
              className="jp-AFLab-button"
              small
              type="button"
              onClick={() => void stopAdapting()}
              title="Keep the current workers and stop adding or removing them"
            >
              <span>Stop adapting</span>
            </Button>
          )}
          <Button
            className="jp-AFLab-button"
            small
            minimal
            type="button"
            onClick={onClose}
          >
            <span>Cancel</span>
          </Button>
        </div>
      </fieldset>
    </form>
  );
}

/**
 * A radio button of the editor: fixed or adaptive.
 */
function ModeChoice(props: {
  name: string;
  label: string;
  checked: boolean;
  onChoose: () => void;
}): JSX.Element {
  return (
    <label className="jp-AFLab-ScaleEditor-mode">
      <input
        type="radio"
        name={props.name}
        checked={props.checked}
        onChange={props.onChoose}
      />
      <span>{props.label}</span>
    </label>
  );
}

/**
 * A number of workers, 0 up to the profile's limit; `label` is what a screen
 * reader says, since the words around it are not its label.
 */
function WorkerCount(props: {
  label: string;
  value: string;
  max: number | undefined;
  disabled: boolean;
  invalid: boolean;
  onChange: (value: string) => void;
  id?: string;
  inputRef?: React.Ref<HTMLInputElement>;
}): JSX.Element {
  return (
    <input
      ref={props.inputRef}
      id={props.id}
      className="jp-mod-styled jp-AFLab-ScaleEditor-number"
      type="number"
      min={0}
      max={props.max}
      step={1}
      value={props.value}
      disabled={props.disabled}
      onChange={e => props.onChange(e.target.value)}
      aria-label={props.label}
      aria-invalid={props.invalid}
    />
  );
}
