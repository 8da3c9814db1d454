"""REST resource for the user's Rucio credentials: status out, secrets in (write-only).

``GET  /af-lab/credentials``
    ``{"vault": {"reachable", "logged_in", "user", "auth", "expires_at", "message"} | null,
    "instances": [{"instance", "display_name", "auth_type", "account", "logged_in",
    "expires_at" (epoch s | null), "vault_reachable" (bool | null: no Vault), "source", "message"}]}``.
    Never a password or token.

``PUT  /af-lab/credentials/<instance>``
    Body ``{"auth_type": "userpass", "username", "password", "account"?}`` or
    ``{"auth_type": "oidc", "token"}``. The credentials are tried against Rucio first and
    stored in Vault only if Rucio accepts them. 200 with the instance's status;
    401 when Rucio refuses them; 400 malformed; 503 Rucio or Vault unreachable.

``DELETE /af-lab/credentials/<instance>``
    Forget the stored credentials and tokens (log out). 204.
"""

import tornado.web

from ..handlers import AFLabHandler


class CredentialsHandler(AFLabHandler):
    @tornado.web.authenticated
    async def get(self):
        creds = self.services.credentials
        vault = await creds.status() if creds is not None else None
        if vault is not None:
            vault = {k: vault[k] for k in ("reachable", "logged_in", "user", "auth", "expires_at", "message") if k in vault}
        self.write_json({"vault": vault, "instances": await self.services.rucio_auth.status()})


class InstanceCredentialsHandler(AFLabHandler):
    @tornado.web.authenticated
    async def put(self, instance: str):
        self.write_json(await self.services.rucio_auth.put_credentials(instance, self.json_body()))

    @tornado.web.authenticated
    async def delete(self, instance: str):
        await self.services.rucio_auth.forget(instance)
        self.set_status(204)
        self.finish()


handlers = [
    ("credentials", CredentialsHandler),
    (r"credentials/(?P<instance>[^/]+)", InstanceCredentialsHandler),
]
