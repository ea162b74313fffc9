// A real OpenID Connect provider (node-oidc-provider) for the tests: one client, `updraft`,
// whose secret is `test-secret` and whose one redirect URI is given; any login and password
// sign in as that login, with the email `<login>@example.com` (verified). PKCE is required.
// Prints "ready" once listening.
//
//   node oidc-provider.mjs 4000 http://127.0.0.1:3000/_updraft/auth/v1/callback
import Provider from "oidc-provider";

const [port, redirectUri] = process.argv.slice(2);
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: "updraft",
    client_secret: "test-secret",
    redirect_uris: [redirectUri],
    grant_types: ["authorization_code"],
    response_types: ["code"],
  }],
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub, email: `${sub}@example.com`, email_verified: true }),
  }),
  claims: { openid: ["sub"], email: ["email", "email_verified"] },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  cookies: { keys: ["test-cookie-key"] },
});
provider.listen(Number(port), () => console.log("ready"));
