import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import React from 'react';

import { AFLabRequestError } from '../request';
import { openSnippet } from '../rootfile/snippet';
import { IRootFileContents } from '../rootfile/types';
import { RootFileView } from '../rootfile/widget';

const CONTENTS: IRootFileContents = {
  path: 'cms_opendata/ZZTo4mu/ZZTo4mu_000.root',
  bytes: 2048,
  reader: 'uproot 5.7.7',
  trees: [
    {
      name: 'Events',
      kind: 'TTree',
      entries: 4000,
      truncated: false,
      branches: [
        { name: 'nMuon', type: 'uint32_t' },
        ...Array.from({ length: 14 }, (_, i) => ({
          name: `Muon_var${i}`,
          type: 'float[]'
        })),
        { name: 'MET_pt', type: 'float' }
      ]
    }
  ],
  objects: [{ name: 'run_info', class: 'TObjString' }]
};

describe('RootFileView', () => {
  it('shows the trees, entries and branches, filters them, and inserts code', async () => {
    const onInsert = jest.fn();
    const read = jest.fn().mockResolvedValue(CONTENTS);
    const { container } = render(
      <RootFileView path={CONTENTS.path} onInsert={onInsert} read={read} />
    );
    expect(read).toHaveBeenCalledWith(CONTENTS.path);
    await waitFor(() =>
      expect(container.firstElementChild?.getAttribute('data-state')).toBe(
        'ready'
      )
    );
    expect(screen.getByText(/4,000 entries/)).toBeTruthy();
    expect(container.querySelectorAll('tbody tr')).toHaveLength(16);
    fireEvent.change(screen.getByLabelText('Filter the branches of Events'), {
      target: { value: 'met' }
    });
    expect(
      [...container.querySelectorAll('tbody code')].map(c => c.textContent)
    ).toEqual(['MET_pt']);
    expect(screen.getByText('TObjString')).toBeTruthy();
    fireEvent.click(screen.getByText('Insert code to open it'));
    expect(onInsert).toHaveBeenCalledWith(CONTENTS);
  });

  it('says why when the server cannot read it, and still offers the code', async () => {
    const read = jest.fn().mockRejectedValue(
      new AFLabRequestError({
        status: 400,
        type: 'bad_request',
        message: 'x.root could not be read as a ROOT file (OSError)'
      })
    );
    const onInsert = jest.fn();
    render(<RootFileView path="x.root" onInsert={onInsert} read={read} />);
    expect((await screen.findByRole('alert')).textContent).toContain(
      'could not be read as a ROOT file'
    );
    fireEvent.click(screen.getByText('Insert code to open it'));
    expect(onInsert).toHaveBeenCalledWith(null);
  });
});

describe('openSnippet', () => {
  it('opens the first tree by the absolute path, named after the file', () => {
    expect(openSnippet(CONTENTS.path, '/home/jdoe', CONTENTS)).toBe(
      [
        'import uproot',
        '',
        'zzto4mu_000_events = uproot.open("/home/jdoe/cms_opendata/ZZTo4mu/ZZTo4mu_000.root")["Events"]',
        'zzto4mu_000_events.show()  # 4000 entries; .arrays(["branch", ...]) reads them'
      ].join('\n')
    );
    expect(openSnippet('a b.root', '', null)).toContain(
      'a_b = uproot.open("a b.root")'
    );
  });
});
