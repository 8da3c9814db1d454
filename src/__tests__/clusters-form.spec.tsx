import { fireEvent, render, screen } from '@testing-library/react';
import React from 'react';

import {
  HTCONDOR_PROFILE,
  LOCAL_PROFILE,
  PROFILES
} from '../clusters/__tests__/fixtures';
import { ClusterForm, IClusterFormProps } from '../clusters/ClusterForm';
import {
  carryOver,
  describeLimits,
  formatBytes,
  formFields,
  FormValues,
  initialValues,
  parseBytes,
  validateForm,
  validateName
} from '../clusters/schema';
import { AFLabRequestError } from '../request';

describe('byte sizes (as dask parses them)', () => {
  it.each([
    ['4 GiB', 4 * 2 ** 30],
    ['4GiB', 4 * 2 ** 30],
    ['2 GB', 2e9],
    ['512 M', 512e6],
    ['1.5 Gi', 1.5 * 2 ** 30],
    ['2.00 GiB', 2 * 2 ** 30],
    ['100', 100],
    ['10 kB', 10000]
  ])('%s is %d bytes', (text, bytes) => {
    expect(parseBytes(text)).toBe(Math.floor(bytes));
  });

  it.each(['', 'lots', '4 parsecs', '-1 GiB', '4 GiB extra'])(
    '%j is not a size',
    text => {
      expect(parseBytes(text)).toBeNull();
    }
  );

  it('formats like dask', () => {
    expect(formatBytes(2 * 2 ** 30)).toBe('2.00 GiB');
    expect(formatBytes(25275882536)).toBe('23.54 GiB');
    expect(formatBytes(300 * 2 ** 20)).toBe('300.00 MiB');
    expect(formatBytes(12)).toBe('12 B');
  });
});

describe('the form from a profile schema', () => {
  it('has one field per schema property, in order, with kinds and limits', () => {
    const fields = formFields(HTCONDOR_PROFILE.schema);
    expect(fields.map(f => [f.key, f.kind])).toEqual([
      ['cores', 'integer'],
      ['memory', 'bytes'],
      ['disk', 'bytes'],
      ['image', 'choice'],
      ['workers', 'integer'],
      ['adapt', 'adapt']
    ]);
    const byKey = Object.fromEntries(fields.map(f => [f.key, f]));
    expect(byKey.cores).toMatchObject({ minimum: 1, maximum: 2 });
    expect(byKey.disk).toMatchObject({
      required: true,
      maxBytes: 10737418240
    });
    expect(byKey.memory.required).toBe(false);
    expect(byKey.image.choices).toEqual(HTCONDOR_PROFILE.limits.images);
    expect(byKey.adapt.children?.map(c => [c.key, c.maximum])).toEqual([
      ['minimum', undefined],
      ['maximum', 4]
    ]);
  });

  it('starts from the schema defaults', () => {
    expect(initialValues(LOCAL_PROFILE.schema)).toEqual({
      cores: '1',
      memory: '2.00 GiB',
      workers: '2',
      adapt: { enabled: false, minimum: '0', maximum: '2' }
    });
  });

  it('starts with some workers, never 0, within the profile', () => {
    const withWorkers = (workers: Record<string, unknown>) => {
      const schema = {
        ...LOCAL_PROFILE.schema,
        properties: {
          ...LOCAL_PROFILE.schema.properties,
          workers: { ...LOCAL_PROFILE.schema.properties.workers, ...workers }
        }
      };
      return initialValues(schema).workers;
    };
    expect(withWorkers({ default: 0 })).toBe('2');
    expect(withWorkers({ default: undefined })).toBe('2');
    expect(withWorkers({ default: 3, maximum: 8 })).toBe('3');
    expect(withWorkers({ default: 0, maximum: 1 })).toBe('1');
    expect(withWorkers({ default: 0, minimum: 4, maximum: 8 })).toBe('4');
  });

  it('turns valid input into the POST body', () => {
    const values: FormValues = {
      ...initialValues(LOCAL_PROFILE.schema),
      cores: '2',
      memory: ' 4 GiB ',
      workers: '2'
    };
    expect(validateForm(LOCAL_PROFILE.schema, values)).toEqual({
      errors: {},
      body: { cores: 2, memory: '4 GiB', workers: 2, adapt: null }
    });
  });

  it('sends adapt bounds instead of workers when adaptive scaling is on', () => {
    const values: FormValues = {
      ...initialValues(LOCAL_PROFILE.schema),
      workers: '99', // ignored (and not validated) while adapting
      adapt: { enabled: true, minimum: '0', maximum: '2' }
    };
    const { errors, body } = validateForm(LOCAL_PROFILE.schema, values);
    expect(errors).toEqual({});
    expect(body).toEqual({
      cores: 1,
      memory: '2.00 GiB',
      adapt: { minimum: 0, maximum: 2 }
    });
  });

  it('names every field that breaks the schema', () => {
    const values: FormValues = {
      cores: '3',
      memory: '30 GiB',
      disk: '',
      image: 'not-allowed:1',
      workers: '1.5',
      adapt: { enabled: true, minimum: '3', maximum: '5' }
    };
    const { errors, body } = validateForm(HTCONDOR_PROFILE.schema, values);
    expect(body).toBeNull();
    expect(errors.cores).toBe(
      'Cores per worker can be at most 2 with this profile.'
    );
    expect(errors.memory).toBe(
      '30.00 GiB is more than the 2.00 GiB this profile allows.'
    );
    expect(errors.disk).toMatch(/^Disk per worker is required/);
    expect(errors.image).toMatch(/^Container image must be one of:/);
    expect(errors.workers).toBeUndefined(); // adapting: not used
    expect(errors['adapt.maximum']).toBe(
      'Maximum workers can be at most 4 with this profile.'
    );
  });

  it.each([
    ['cores', '0', 'Cores per worker must be at least 1.'],
    ['cores', 'two', 'Cores per worker must be a number.'],
    ['workers', '1.5', 'Workers to start must be a whole number.'],
    ['workers', '', 'Workers to start is required.'],
    [
      'memory',
      'lots',
      '"lots" is not a size: write a number and a unit, e.g. "4 GiB" or "500 MB".'
    ]
  ])('%s = %j: %s', (key, raw, message) => {
    const values = { ...initialValues(LOCAL_PROFILE.schema), [key]: raw };
    // An empty integer field is required unless the schema says otherwise:
    // the form always sends workers.
    const schema = {
      ...LOCAL_PROFILE.schema,
      required: key === 'workers' ? ['workers'] : []
    };
    expect(validateForm(schema, values).errors[key]).toBe(message);
  });

  it('rejects adapt bounds in the wrong order', () => {
    const values: FormValues = {
      ...initialValues(LOCAL_PROFILE.schema),
      adapt: { enabled: true, minimum: '2', maximum: '1' }
    };
    expect(validateForm(LOCAL_PROFILE.schema, values).errors).toEqual({
      'adapt.maximum': 'The maximum (1) is below the minimum (2).'
    });
  });

  it('keeps what fits when switching profiles', () => {
    const typed: FormValues = {
      ...initialValues(LOCAL_PROFILE.schema),
      cores: '2',
      memory: '8 GiB' // over the htcondor profile's 2 GiB
    };
    const next = carryOver(typed, HTCONDOR_PROFILE.schema);
    expect(next.cores).toBe('2');
    expect(next.memory).toBe('256 MiB');
    expect(next.disk).toBe('');
  });

  it('checks cluster names like the server', () => {
    expect(validateName('')).toBeNull();
    expect(validateName('my analysis: run-2')).toBeNull();
    expect(validateName('bad/name')).toMatch(/letters, digits/);
    expect(validateName('x'.repeat(65))).toMatch(/1 to 64/);
  });

  it('summarises the limits', () => {
    expect(describeLimits(HTCONDOR_PROFILE.limits as any)).toBe(
      'Up to 4 workers · at most 2 cores, 2 GiB memory, 10 GiB disk per worker · 2 clusters at a time'
    );
  });
});

describe('ClusterForm', () => {
  function field(container: HTMLElement, key: string): HTMLElement {
    return container.querySelector(`[data-field="${key}"]`) as HTMLElement;
  }

  /**
   * The form with PROFILES (and `props`); `onSubmit` records the submits.
   */
  function renderForm(props: Partial<IClusterFormProps> = {}) {
    const onSubmit = jest.fn();
    const { container } = render(
      <ClusterForm
        profiles={PROFILES}
        onSubmit={onSubmit}
        onCancel={jest.fn()}
        {...props}
      />
    );
    return { container, onSubmit };
  }

  it('renders the fields of the chosen profile and switches profiles', () => {
    const { container } = renderForm();
    expect((screen.getByLabelText('Profile') as HTMLSelectElement).value).toBe(
      'local'
    );
    expect(field(container, 'disk')).toBeNull();
    expect(
      (screen.getByLabelText('Memory per worker') as HTMLInputElement).value
    ).toBe('2.00 GiB');
    expect(screen.getByText(/Up to 2 workers/)).toBeTruthy();

    fireEvent.change(screen.getByLabelText('Profile'), {
      target: { value: 'htcondor' }
    });
    expect(field(container, 'disk')).not.toBeNull();
    expect(field(container, 'image').querySelector('select')).not.toBeNull();
    expect(screen.getByText('Workers as HTCondor jobs.')).toBeTruthy();
  });

  it('shows errors on the fields and does not submit invalid options', () => {
    const { container, onSubmit } = renderForm();
    fireEvent.change(screen.getByLabelText('Cores per worker'), {
      target: { value: '5' }
    });
    // Shown as soon as the field was changed.
    expect(field(container, 'cores').textContent).toContain(
      'Cores per worker can be at most 2 with this profile.'
    );
    expect(
      screen.getByLabelText('Cores per worker').getAttribute('aria-invalid')
    ).toBe('true');
    fireEvent.click(screen.getByRole('button', { name: 'Create cluster' }));
    expect(onSubmit).not.toHaveBeenCalled();
    expect(screen.getByText('Correct the marked field first.')).toBeTruthy();
  });

  it('submits the validated body', () => {
    const { onSubmit } = renderForm();
    fireEvent.change(screen.getByLabelText('Workers to start'), {
      target: { value: '1' }
    });
    fireEvent.change(screen.getByLabelText(/^Name/), {
      target: { value: 'my analysis' }
    });
    fireEvent.click(screen.getByRole('button', { name: 'Create cluster' }));
    expect(onSubmit).toHaveBeenCalledTimes(1);
    const [profile, body, name] = onSubmit.mock.calls[0];
    expect(profile).toBe('local');
    expect(body).toEqual({
      cores: 1,
      memory: '2.00 GiB',
      workers: 1,
      adapt: null
    });
    expect(name).toBe('my analysis');
  });

  it('disables "workers" and asks for bounds with adaptive scaling', () => {
    const { onSubmit } = renderForm();
    fireEvent.click(screen.getByLabelText('Adaptive scaling'));
    expect(
      (screen.getByLabelText('Workers to start') as HTMLInputElement).disabled
    ).toBe(true);
    fireEvent.change(screen.getByLabelText('Minimum workers'), {
      target: { value: '1' }
    });
    fireEvent.click(screen.getByRole('button', { name: 'Create cluster' }));
    expect(onSubmit.mock.calls[0][1].adapt).toEqual({ minimum: 1, maximum: 2 });
  });

  it("shows the server's over_limit error on its field", () => {
    const error = new AFLabRequestError({
      status: 400,
      type: 'over_limit',
      message:
        "profile 'local' allows 1 cluster(s) at a time (limit max_clusters); shut one down first",
      details: {
        field: 'profile',
        limit: 'max_clusters',
        value: 2,
        maximum: 1
      }
    });
    const { container } = renderForm({
      serverError: error,
      draft: {
        profile: 'local',
        name: '',
        values: initialValues(LOCAL_PROFILE.schema)
      }
    });
    expect(field(container, 'profile').textContent).toContain(
      'allows 1 cluster(s) at a time'
    );
    expect(screen.getByLabelText('Profile').getAttribute('aria-invalid')).toBe(
      'true'
    );
  });

  it('shows a server error on a nested field group', () => {
    const error = new AFLabRequestError({
      status: 400,
      type: 'over_limit',
      message: "workers 5 is over profile 'local''s limit max_workers = 2",
      details: { field: 'workers', limit: 'max_workers', maximum: 2 }
    });
    const { container } = renderForm({ serverError: error });
    expect(field(container, 'workers').textContent).toContain(
      'limit max_workers = 2'
    );
    // Changing the field clears the server's message.
    fireEvent.change(screen.getByLabelText('Workers to start'), {
      target: { value: '1' }
    });
    expect(field(container, 'workers').textContent).not.toContain(
      'limit max_workers'
    );
  });
});
