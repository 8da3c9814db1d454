import { Button, LabIcon } from '@jupyterlab/ui-components';
import React from 'react';

/**
 * A small button of a card (a mount, a publish job): an icon and a word,
 * which reads `busyLabel` (e.g. "Cancelling…") while its action runs.
 */
export function ActionButton(props: {
  label: React.ReactNode;
  onClick: () => void;
  icon?: LabIcon;
  busyLabel?: string;
  /**
   * This button's action is running.
   */
  busy?: boolean;
  disabled?: boolean;
  title?: string;
  minimal?: boolean;
  className?: string;
}): JSX.Element {
  const { icon, busy, busyLabel, className } = props;
  return (
    <Button
      className={className ? `jp-AFLab-button ${className}` : 'jp-AFLab-button'}
      small
      minimal={props.minimal}
      disabled={props.disabled}
      title={props.title}
      onClick={props.onClick}
    >
      {icon && <icon.react tag="span" className="jp-AFLab-button-icon" />}
      <span>{busy && busyLabel ? busyLabel : props.label}</span>
    </Button>
  );
}
