import { LabIcon } from '@jupyterlab/ui-components';

/**
 * "Publish": an arrow going up into a cloud (bundled, no web font). The
 * shapes carry `jp-icon3`, so the icon follows the light/dark theme.
 */
const PUBLISH_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="none" stroke="#616161" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round" d="M7.5 18.5H6.6a4.1 4.1 0 0 1-.62-8.15A5.6 5.6 0 0 1 16.9 8.6a4.9 4.9 0 0 1-.4 9.9h-.9"/>
  <path class="jp-icon3" fill="none" stroke="#616161" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round" d="M12 21v-9M8.6 15.2 12 11.8l3.4 3.4"/>
</svg>`;

export const publishIcon = new LabIcon({
  name: 'af-lab:publish',
  svgstr: PUBLISH_SVG
});
