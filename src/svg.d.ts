// SVG files are bundled as raw strings (webpack asset/source in the JupyterLab
// builder, the raw loader in Jest): icons never come from the network.
declare module '*.svg' {
  const value: string;
  export default value;
}
