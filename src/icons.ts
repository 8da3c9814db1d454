import { LabIcon } from '@jupyterlab/ui-components';

import afLabSvgstr from '../style/icons/af-lab.svg';

/**
 * The analysis-facility glyph (a collision in a detector), bundled as SVG.
 *
 * Its shapes carry the `jp-icon3` class, so it follows the light/dark theme.
 */
export const afLabIcon = new LabIcon({
  name: 'af-lab:facility',
  svgstr: afLabSvgstr
});
