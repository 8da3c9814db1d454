/**
 * What the server reads from a ROOT file's header (`POST rootfile/contents`).
 */
export interface IBranch {
  name: string;
  type: string;
}

export interface ITree {
  name: string;
  kind: 'TTree' | 'RNTuple';
  entries: number;
  branches: IBranch[];
  truncated: boolean;
}

export interface IRootFileContents {
  path: string;
  bytes: number;
  /**
   * The library that read it (`uproot 5.x`); null when the server cannot
   * read ROOT files (`message` says why).
   */
  reader: string | null;
  message?: string;
  trees: ITree[];
  objects: { name: string; class: string }[];
  truncated?: boolean;
}
