import { Button } from '@jupyterlab/ui-components';
import React, { useRef, useState } from 'react';

import { ErrorNotice } from '../common/feedback';
import { describeError } from '../request';
import { CredentialsBody, ICredentialStatus } from './types';

/**
 * Props of {@link CredentialsForm}.
 */
export interface ICredentialsFormProps {
  status: ICredentialStatus;
  /**
   * Send the credentials; reject with the server's error when refused.
   */
  onSubmit: (body: CredentialsBody) => Promise<void>;
  /**
   * Close the form without sending (only offered when already logged in).
   */
  onCancel?: () => void;
}

/**
 * A write-only login form for one Rucio instance: username and password, or
 * an OIDC access token, as the instance's `auth_type` says. Secrets live in
 * the inputs only until they are sent (then the inputs are emptied); nothing
 * secret is ever shown or read back from the server.
 */
export function CredentialsForm(props: ICredentialsFormProps): JSX.Element {
  const { status, onSubmit, onCancel } = props;
  const authType = status.auth_type;
  const [username, setUsername] = useState(status.account ?? '');
  const [account, setAccount] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const secretRef = useRef<HTMLInputElement>(null);
  const idPrefix = `af-lab-credentials-${status.instance}`;

  const supported = authType === 'userpass' || authType === 'oidc';

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    const secret = secretRef.current?.value ?? '';
    if (!secret) {
      setError(
        new Error(
          authType === 'oidc'
            ? 'Paste your access token first.'
            : 'Enter your password first.'
        )
      );
      secretRef.current?.focus();
      return;
    }
    const body: CredentialsBody =
      authType === 'oidc'
        ? { auth_type: 'oidc', token: secret.trim() }
        : {
            auth_type: 'userpass',
            username: username.trim(),
            password: secret,
            ...(account.trim() ? { account: account.trim() } : {})
          };
    setBusy(true);
    setError(null);
    try {
      await onSubmit(body);
    } catch (reason) {
      setError(reason);
    } finally {
      // The secret never stays in the page longer than the request.
      if (secretRef.current) {
        secretRef.current.value = '';
      }
      setBusy(false);
    }
  };

  return (
    <form
      className="jp-AFLab-Credentials"
      onSubmit={e => void submit(e)}
      aria-label={`Log in to Rucio ${status.display_name}`}
      autoComplete="off"
    >
      <div className="jp-AFLab-Credentials-title">
        Log in to Rucio <strong>{status.display_name}</strong>
      </div>
      {status.message && (
        <div className="jp-AFLab-Credentials-why">{status.message}</div>
      )}
      {!supported && (
        <div className="jp-AFLab-notice jp-mod-warning" role="alert">
          This instance uses {authType} authentication, which the facility
          configures for you (e.g. an X.509 proxy file). Ask your facility
          administrators if it does not work.
        </div>
      )}
      {supported && authType === 'userpass' && (
        <>
          <label htmlFor={`${idPrefix}-username`}>Username</label>
          <input
            id={`${idPrefix}-username`}
            className="jp-mod-styled"
            type="text"
            value={username}
            onChange={e => setUsername(e.target.value)}
            autoComplete="username"
            spellCheck={false}
            required
            disabled={busy}
          />
          <label htmlFor={`${idPrefix}-secret`}>Password</label>
          <input
            id={`${idPrefix}-secret`}
            ref={secretRef}
            className="jp-mod-styled"
            type="password"
            autoComplete="current-password"
            required
            disabled={busy}
          />
          <label htmlFor={`${idPrefix}-account`}>
            Rucio account <span className="jp-AFLab-optional">(optional)</span>
          </label>
          <input
            id={`${idPrefix}-account`}
            className="jp-mod-styled"
            type="text"
            value={account}
            placeholder={status.account ?? 'same as username'}
            onChange={e => setAccount(e.target.value)}
            spellCheck={false}
            disabled={busy}
          />
        </>
      )}
      {supported && authType === 'oidc' && (
        <>
          <label htmlFor={`${idPrefix}-secret`}>Access token (JWT)</label>
          <input
            id={`${idPrefix}-secret`}
            ref={secretRef}
            className="jp-mod-styled"
            type="password"
            autoComplete="off"
            spellCheck={false}
            required
            disabled={busy}
          />
        </>
      )}
      {error !== null && (
        <ErrorNotice title="Not logged in" message={describeError(error)} />
      )}
      {supported && (
        <div className="jp-AFLab-Credentials-actions">
          <Button
            type="submit"
            className="jp-AFLab-button jp-mod-accept"
            small
            disabled={busy}
          >
            {busy && <span className="jp-AFLab-spinner" aria-hidden="true" />}
            <span>{busy ? 'Checking with Rucio…' : 'Log in'}</span>
          </Button>
          {onCancel && (
            <Button
              className="jp-AFLab-button"
              small
              minimal
              onClick={onCancel}
              disabled={busy}
            >
              Cancel
            </Button>
          )}
        </div>
      )}
      {supported && (
        <div className="jp-AFLab-Credentials-note">
          Rucio checks {authType === 'oidc' ? 'the token' : 'them'} first; then
          af-lab keeps {authType === 'oidc' ? 'it' : 'them'} in your Vault
          space. {authType === 'oidc' ? 'It is' : 'They are'} never shown again,
          never written to your home directory and never sent to a notebook.
        </div>
      )}
    </form>
  );
}
