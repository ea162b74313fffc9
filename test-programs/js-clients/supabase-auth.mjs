// Drives Updraft's auth API with Supabase's own client (@supabase/auth-js), as an app would:
// sign up, sign out, sign in with a password, read the user, refresh, update metadata, and
// read the JWKS-verifiable claims. Prints one JSON line of what it saw; exits 1 on an error.
//
//   node supabase-auth.mjs http://127.0.0.1:3000/_updraft/auth/v1 ada@example.com 'password'
import { GoTrueClient } from "@supabase/auth-js";

const [url, email, password] = process.argv.slice(2);
const auth = new GoTrueClient({ url, autoRefreshToken: false, persistSession: false });
const must = (what, { data, error }) => {
  if (error) {
    console.error(`${what}: ${error.status} ${error.code ?? ""} ${error.message}`);
    process.exit(1);
  }
  return data;
};

const up = must("signUp", await auth.signUp({ email, password, options: { data: { plan: "free" } } }));
must("signOut", await auth.signOut());
const wrong = await auth.signInWithPassword({ email, password: password + "x" });
const signedIn = must("signInWithPassword", await auth.signInWithPassword({ email, password }));
const user = must("getUser", await auth.getUser());
const refreshed = must("refreshSession", await auth.refreshSession());
const updated = must("updateUser", await auth.updateUser({ data: { plan: "pro" } }));
const claims = must("getClaims", await auth.getClaims());
must("signOut", await auth.signOut({ scope: "global" }));
console.log(JSON.stringify({
  signed_up: up.user?.email,
  wrong_password: { status: wrong.error?.status, code: wrong.error?.code },
  user_id: user.user.id,
  same_user: signedIn.user.id === user.user.id,
  rotated: refreshed.session.refresh_token !== signedIn.session.refresh_token,
  plan: updated.user.user_metadata.plan,
  claims_sub: claims?.claims?.sub,
  access_token: refreshed.session.access_token,
}));
