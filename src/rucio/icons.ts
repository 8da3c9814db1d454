import { LabIcon } from '@jupyterlab/ui-components';

/**
 * DID type glyphs, bundled as SVG (nothing is loaded from the network). They
 * use the theme's icon colour class, and a DID row always writes its type
 * out as a word next to them.
 */

/**
 * A 16×16 icon whose `shapes` are filled in the theme's icon colour.
 */
function glyph(name: string, shapes: string): LabIcon {
  return new LabIcon({
    name,
    svgstr: `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">
  <g class="jp-icon3" fill="#616161">
    ${shapes}
  </g>
</svg>`
  });
}

export const containerIcon = glyph(
  'af-lab:did-container',
  `<path d="M2 2.5h5l1 1.5h6a1 1 0 0 1 1 1V13a1 1 0 0 1-1 1H2a1 1 0 0 1-1-1V3.5a1 1 0 0 1 1-1zm0 3V13h12V5.5z"/>
    <rect x="3.5" y="7" width="4" height="2.5" rx="0.5"/>
    <rect x="8.5" y="7" width="4" height="2.5" rx="0.5"/>
    <rect x="3.5" y="10.3" width="4" height="2.2" rx="0.5"/>
    <rect x="8.5" y="10.3" width="4" height="2.2" rx="0.5"/>`
);

export const datasetIcon = glyph(
  'af-lab:did-dataset',
  '<path d="M8 1.5c3 0 5.5.9 5.5 2.2v8.6c0 1.3-2.5 2.2-5.5 2.2s-5.5-.9-5.5-2.2V3.7C2.5 2.4 5 1.5 8 1.5zm0 1.2c-2.6 0-4.3.7-4.3 1s1.7 1 4.3 1 4.3-.7 4.3-1-1.7-1-4.3-1zM3.7 5.6v2.1c0 .3 1.7 1 4.3 1s4.3-.7 4.3-1V5.6C11.3 6 9.8 6.3 8 6.3S4.7 6 3.7 5.6zm0 3.7v2.9c0 .3 1.7 1 4.3 1s4.3-.7 4.3-1V9.3c-1 .4-2.5.7-4.3.7s-3.3-.3-4.3-.7z"/>'
);

export const didFileIcon = glyph(
  'af-lab:did-file',
  `<path d="M3.5 1h6L13 4.5V14a1 1 0 0 1-1 1H3.5a1 1 0 0 1-1-1V2a1 1 0 0 1 1-1zm0 1.2V13.8h8.3V5.2H9V2.2z"/>
    <path d="M5 8h6v1H5zm0 2.2h6v1H5z"/>`
);

export const mountIcon = glyph(
  'af-lab:mount',
  `<path d="M7.4 1.5h1.2v7.1l2.3-2.3.9.8L8 10.9 4.2 7.1l.9-.8 2.3 2.3z"/>
    <path d="M1.5 9.5h1.2v3.3h10.6V9.5h1.2V14h-13z"/>`
);

export function didIcon(type: string): LabIcon {
  return type === 'container'
    ? containerIcon
    : type === 'dataset'
      ? datasetIcon
      : didFileIcon;
}
