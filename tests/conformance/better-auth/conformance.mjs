// Drives Better Auth's official client (`createAuthClient` with the organization, magic-link and
// device-authorization plugins) against one target, as a platform's server-side app would: each
// user is a client with its own cookie jar. Usage: node conformance.mjs <baseURL>
//
// Output, one JSON object a line on stdout:
//   {"need": "mail", "kind": "magic_link" | "password_reset", "to": "<address>"}: the driver answers
//     with one line on stdin, the token the last such mail to that address carries;
//   {"call": "<name>", "ok": true | false, "detail": "..."}: one client call and whether it conformed;
//   {"done": true, "calls": <n>}: the end.
import http from "node:http";
import readline from "node:readline";
import { createAuthClient } from "better-auth/client";
import {
  deviceAuthorizationClient,
  magicLinkClient,
  organizationClient,
} from "better-auth/client/plugins";

const baseURL = process.argv[2];
if (!baseURL) {
  console.error("usage: node conformance.mjs <baseURL of the /api/auth surface>");
  process.exit(2);
}

const PASSWORD = "correct-horse-9";
const NEW_PASSWORD = "second-horse-22";
const RESET_PASSWORD = "third-horse-333";
const GRANT = "urn:ietf:params:oauth:grant-type:device_code";
const CLIENT_ID = "conformance-cli";

// ---- transport: a fetch on node:http with a cookie jar --------------------------------------------
// Node resolves no `*.localhost` name other than `localhost` itself (a platform's auth worker is
// `auth.svc.default.{platformId}.nno.localhost`), and its fetch overrides a Host header: so every
// request goes to the loopback on the URL's port, with the URL's host as its Host.

function storeCookies(jar, headers) {
  for (const line of headers.getSetCookie()) {
    const [pair, ...attrs] = line.split(";");
    const eq = pair.indexOf("=");
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const gone = !value || attrs.some((a) => {
      const [k, v = ""] = a.trim().split("=");
      return (k.toLowerCase() === "max-age" && Number(v) <= 0)
        || (k.toLowerCase() === "expires" && new Date(v) < new Date());
    });
    if (gone) jar.delete(name);
    else jar.set(name, value);
  }
}

function loopbackFetch(jar) {
  return async (input, init = {}) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const headers = Object.fromEntries(request.headers);
    if (jar && jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
    const body = ["GET", "HEAD"].includes(request.method) ? null : Buffer.from(await request.arrayBuffer());
    if (body) headers["content-length"] = String(body.length);
    return await new Promise((resolve, reject) => {
      const req = http.request({
        host: "127.0.0.1", port: url.port || 80, method: request.method, path: url.pathname + url.search,
        headers: { ...headers, host: url.host },
      }, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const out = new Headers();
          for (const [k, v] of Object.entries(res.headers)) for (const one of [].concat(v)) out.append(k, one);
          if (jar) storeCookies(jar, out);
          const empty = [204, 205, 304].includes(res.statusCode);
          resolve(new Response(empty ? null : Buffer.concat(chunks),
            { status: res.statusCode, statusText: res.statusMessage, headers: out }));
        });
      });
      req.on("error", reject);
      if (body && body.length) req.write(body);
      req.end();
    });
  };
}

// Each client's cookie jar (the client is a proxy: it takes no properties of its own).
const jars = new WeakMap();
const cookie = (auth, name) => jars.get(auth)?.get(name);

function client({ bearer, jar = true } = {}) {
  const cookies = jar ? new Map() : null;
  const auth = createAuthClient({
    baseURL,
    plugins: [organizationClient(), magicLinkClient(), deviceAuthorizationClient()],
    fetchOptions: {
      customFetchImpl: loopbackFetch(cookies),
      ...(bearer ? { auth: { type: "Bearer", token: bearer } } : {}),
    },
  });
  jars.set(auth, cookies);
  return auth;
}

// ---- the driver's side: mail tokens ---------------------------------------------------------------

const stdin = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function mailToken(kind, to) {
  console.log(JSON.stringify({ need: "mail", kind, to }));
  const { value, done } = await stdin.next();
  if (done || !value) throw new Error(`no ${kind} token for ${to}`);
  return value.trim();
}

// ---- checks --------------------------------------------------------------------------------------

let calls = 0;
let failed = 0;

class Mismatch extends Error {}

function expect(cond, what) {
  if (!cond) throw new Mismatch(what);
}

const isDate = (v) => v instanceof Date && !Number.isNaN(v.getTime());
const isText = (v) => typeof v === "string" && v.length > 0;

function describe(value) {
  try {
    return JSON.stringify(value)?.slice(0, 600);
  } catch {
    return String(value);
  }
}

// Runs one client call: `fn(capture)` makes it (capture: fetch options that record the response's
// headers), `check(data, error, headers)` judges the answer.
async function call(name, fn, check) {
  calls += 1;
  let headers = null;
  const capture = { onResponse: (ctx) => { headers = ctx.response.headers; } };
  let result;
  try {
    result = await fn(capture);
    await check(result?.data ?? null, result?.error ?? null, headers);
    console.log(JSON.stringify({ call: name, ok: true }));
    return result?.data ?? null;
  } catch (err) {
    failed += 1;
    const detail = err instanceof Mismatch
      ? `${err.message}; data=${describe(result?.data)} error=${describe(result?.error)}`
      : `threw ${err?.stack || err}`;
    console.log(JSON.stringify({ call: name, ok: false, detail }));
    return result?.data ?? null;
  }
}

const ok = (check) => (data, error, headers) => {
  expect(error === null, "the call failed");
  return check(data, headers);
};

const refused = (status, code) => (data, error) => {
  expect(error !== null, `expected a ${status} error`);
  expect(error.status === status, `status ${error.status}, expected ${status}`);
  if (code) expect(error.code === code, `code ${error.code}, expected ${code}`);
  expect(isText(error.message) || isText(error.error_description), "the error carries no message");
};

const oauthRefused = (status, oauthError) => (data, error) => {
  expect(error !== null && error.status === status, `expected a ${status} error`);
  expect(error.error === oauthError, `error ${error.error}, expected ${oauthError}`);
  expect(isText(error.error_description), "no error_description");
};

function checkUser(user, email) {
  expect(user && isText(user.id), "user.id");
  expect(user.email === email, `user.email ${user.email}`);
  expect(typeof user.emailVerified === "boolean", "user.emailVerified");
  expect(isDate(user.createdAt) && isDate(user.updatedAt), "user.createdAt/updatedAt are dates");
  expect(!("passwordHash" in user) && !("password" in user), "the user leaks a password");
}

function checkSession(session, userId) {
  expect(session && isText(session.id) && isText(session.token), "session.id/token");
  expect(session.userId === userId, "session.userId");
  expect(isDate(session.expiresAt) && isDate(session.createdAt), "session dates are dates");
}

function checkOrg(org, slug) {
  expect(org && isText(org.id) && isText(org.name), "organization.id/name");
  expect(org.slug === slug, `organization.slug ${org?.slug}`);
  expect(isDate(org.createdAt), "organization.createdAt is a date");
}

function checkMember(member, userId, role) {
  expect(member && isText(member.id) && isText(member.organizationId), "member.id/organizationId");
  expect(member.userId === userId, `member.userId ${member?.userId}`);
  expect(member.role === role, `member.role ${member?.role}, expected ${role}`);
  expect(isDate(member.createdAt), "member.createdAt is a date");
}

function checkInvitation(inv, email, status) {
  expect(inv && isText(inv.id) && isText(inv.organizationId), "invitation.id/organizationId");
  expect(inv.email === email, `invitation.email ${inv?.email}`);
  expect(inv.status === status, `invitation.status ${inv?.status}, expected ${status}`);
  expect(isDate(inv.expiresAt), "invitation.expiresAt is a date");
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the run -------------------------------------------------------------------------------------

const ownerEmail = "owner@example.com";
const inviteeEmail = "invitee@example.com";
const outsiderEmail = "outsider@example.com";
const anon = client();
const owner = client();
let ownerId = null;

// The device flow starts first: the device polls once at once, and again (after its interval) once
// the user has approved, at the end.
const code = await call("device.code", () => anon.device.code({ client_id: CLIENT_ID, scope: "openid profile" }),
  ok((d) => {
    expect(isText(d.device_code) && isText(d.user_code), "device_code/user_code");
    expect(isText(d.verification_uri) && isText(d.verification_uri_complete), "verification_uri(_complete)");
    expect(d.verification_uri_complete.includes(encodeURIComponent(d.user_code)) ||
      d.verification_uri_complete.includes(d.user_code), "verification_uri_complete names the user code");
    expect(Number.isInteger(d.expires_in) && d.expires_in > 0, "expires_in");
    expect(Number.isInteger(d.interval) && d.interval > 0, "interval");
  }));
const firstPoll = Date.now();
await call("device.token (pending)",
  () => anon.device.token({ grant_type: GRANT, device_code: code?.device_code, client_id: CLIENT_ID }),
  oauthRefused(400, "authorization_pending"));

// -- core -----------------------------------------------------------------------------------------
await call("getSession (no session)", () => anon.getSession(), (d, e) => {
  expect(e === null && d === null, "expected 200 null");
});
await call("signUp.email", (c) => owner.signUp.email({ email: ownerEmail, password: PASSWORD, name: "Owner" }, c),
  ok((d, h) => {
    expect(isText(d.token), "token");
    checkUser(d.user, ownerEmail);
    ownerId = d.user.id;
    expect(h.get("set-auth-token") === d.token, "set-auth-token header");
  }));
await call("signUp.email (address taken)",
  () => anon.signUp.email({ email: ownerEmail, password: PASSWORD, name: "Again" }),
  refused(422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL"));
await call("signIn.email (wrong password)", () => anon.signIn.email({ email: ownerEmail, password: "wrong-horse-1" }),
  refused(401, "INVALID_EMAIL_OR_PASSWORD"));
await call("signIn.email (unknown address)",
  () => anon.signIn.email({ email: "nobody@example.com", password: PASSWORD }),
  refused(401, "INVALID_EMAIL_OR_PASSWORD"));
const second = client();
const secondSignIn = await call("signIn.email",
  (c) => second.signIn.email({ email: ownerEmail, password: PASSWORD }, c),
  ok((d, h) => {
    expect(isText(d.token) && d.redirect === false, "token, redirect false");
    checkUser(d.user, ownerEmail);
    expect(h.get("set-auth-token") === d.token, "set-auth-token header");
  }));
await call("getSession (cookie)", () => owner.getSession(), ok((d) => {
  checkSession(d.session, ownerId);
  checkUser(d.user, ownerEmail);
}));
await call("getSession (bearer)", () => client({ bearer: secondSignIn?.token, jar: false }).getSession(),
  ok((d) => {
    checkSession(d.session, ownerId);
    expect(d.session.token === secondSignIn?.token, "session.token is the bearer");
  }));
await call("listSessions", () => owner.listSessions(), ok((d) => {
  expect(Array.isArray(d) && d.length === 2, `two sessions, got ${d?.length}`);
  for (const s of d) checkSession(s, ownerId);
  expect(d.some((s) => s.token === cookie(owner, "nno_session")), "the caller's own session carries its token");
}));
await call("listSessions (no session)", () => anon.listSessions(), refused(401, "UNAUTHORIZED"));
await call("updateUser", () => owner.updateUser({ name: "Owner Renamed", image: "https://example.com/o.png" }),
  ok(async (d) => {
    expect(d.status === true, "status true");
    const after = await owner.getSession();
    expect(after.data?.user?.name === "Owner Renamed", "the name changed");
  }));
await call("updateUser (email: refused, proof of address)", () => owner.updateUser({ email: "other@example.com" }),
  refused(400, "EMAIL_CAN_NOT_BE_UPDATED"));
await call("changePassword (wrong current password)",
  () => owner.changePassword({ currentPassword: "wrong-horse-1", newPassword: NEW_PASSWORD }),
  refused(400, "INVALID_PASSWORD"));
await call("changePassword (revokeOtherSessions)",
  () => owner.changePassword({ currentPassword: PASSWORD, newPassword: NEW_PASSWORD, revokeOtherSessions: true }),
  ok(async (d) => {
    expect(isText(d.token), "token");
    checkUser(d.user, ownerEmail);
    expect((await second.getSession()).data === null, "the other session is revoked");
    expect((await owner.getSession()).data?.user?.id === ownerId, "the caller's session goes on");
  }));
await call("revokeSession", async () => {
  const third = client();
  const signed = await third.signIn.email({ email: ownerEmail, password: NEW_PASSWORD });
  const result = await owner.revokeSession({ token: signed.data?.token });
  const gone = (await third.getSession()).data === null;
  return { data: result.data && { ...result.data, gone }, error: result.error };
}, ok((d) => {
  expect(d.status === true, "status true");
  expect(d.gone, "that session is revoked");
}));
await call("revokeOtherSessions", async () => {
  const fourth = client();
  await fourth.signIn.email({ email: ownerEmail, password: NEW_PASSWORD });
  const result = await owner.revokeOtherSessions();
  const gone = (await fourth.getSession()).data === null;
  return { data: result.data && { ...result.data, gone }, error: result.error };
}, ok((d) => {
  expect(d.status === true, "status true");
  expect(d.gone, "the other session is revoked");
}));

// -- magic link -----------------------------------------------------------------------------------
const invitee = client();
await call("signIn.magicLink", () => invitee.signIn.magicLink({ email: inviteeEmail, name: "Invitee" }),
  ok((d) => expect(d.status === true, "status true")));
const magicToken = await mailToken("magic_link", inviteeEmail);
const inviteeSignIn = await call("magicLink.verify", (c) => invitee.magicLink.verify({ query: { token: magicToken } }, c),
  ok((d) => {
    expect(isText(d.token), "token");
    checkUser(d.user, inviteeEmail);
    expect(d.user.emailVerified === true, "a magic link proves the address");
    checkSession(d.session, d.user.id);
    expect(cookie(invitee, "nno_session") === d.token, "the session cookie is set");
  }));
const inviteeId = inviteeSignIn?.user?.id;
await call("magicLink.verify (spent token)", () => anon.magicLink.verify({ query: { token: magicToken } }),
  (d, e) => expect(e !== null && e.status >= 400 && e.status < 500 && isText(e.code), "a 4xx with a code"));

// -- organization ---------------------------------------------------------------------------------
await call("organization.checkSlug", () => owner.organization.checkSlug({ slug: "acme" }),
  ok((d) => expect(d.status === true, "status true")));
const org = await call("organization.create", () => owner.organization.create({ name: "Acme", slug: "acme" }),
  ok((d) => {
    checkOrg(d, "acme");
    expect(Array.isArray(d.members) && d.members.length === 1, "its members");
    checkMember(d.members[0], ownerId, "owner");
  }));
const orgId = org?.id;
await call("organization.checkSlug (taken)", () => owner.organization.checkSlug({ slug: "acme" }),
  refused(400, "ORGANIZATION_SLUG_ALREADY_TAKEN"));
await call("organization.list", () => owner.organization.list(), ok((d) => {
  expect(Array.isArray(d) && d.length === 1, "one organization");
  checkOrg(d[0], "acme");
}));
await call("organization.setActive", () => owner.organization.setActive({ organizationId: orgId }),
  ok((d) => checkOrg(d, "acme")));
await call("organization.getFullOrganization", () => owner.organization.getFullOrganization(), ok((d) => {
  checkOrg(d, "acme");
  expect(d.members.length === 1 && Array.isArray(d.invitations), "members and invitations");
  checkMember(d.members[0], ownerId, "owner");
  expect(d.members[0].user?.email === ownerEmail, "member.user");
}));
await call("organization.getOrganization", () => owner.organization.getOrganization({ query: { organizationId: orgId } }),
  ok((d) => checkOrg(d, "acme")));
await call("organization.update", () => owner.organization.update({ organizationId: orgId, data: { name: "Acme Inc" } }),
  ok((d) => {
    checkOrg(d, "acme");
    expect(d.name === "Acme Inc", "name changed");
  }));
await call("organization.getActiveMember", () => owner.organization.getActiveMember(), ok((d) => {
  checkMember(d, ownerId, "owner");
  expect(d.user?.email === ownerEmail, "member.user");
}));
await call("organization.getActiveMemberRole", () => owner.organization.getActiveMemberRole(),
  ok((d) => expect(d.role === "owner", `role ${d.role}`)));

const invite = (email = inviteeEmail) => owner.organization.inviteMember({ organizationId: orgId, email, role: "member" });
const invitation = await call("organization.inviteMember", () => invite(),
  ok((d) => checkInvitation(d, inviteeEmail, "pending")));
await call("organization.listInvitations", () => owner.organization.listInvitations({ query: { organizationId: orgId } }),
  ok((d) => {
    expect(Array.isArray(d) && d.length === 1, "one invitation");
    checkInvitation(d[0], inviteeEmail, "pending");
  }));
await call("organization.listUserInvitations", () => invitee.organization.listUserInvitations(), ok((d) => {
  expect(Array.isArray(d) && d.some((i) => i.id === invitation?.id), "the invitation is listed");
}));
await call("organization.getInvitation", () => invitee.organization.getInvitation({ query: { id: invitation?.id } }),
  ok((d) => {
    checkInvitation(d, inviteeEmail, "pending");
    expect(d.organizationName === "Acme Inc" && d.organizationSlug === "acme", "organizationName/Slug");
  }));
await call("organization.acceptInvitation",
  () => invitee.organization.acceptInvitation({ invitationId: invitation?.id }), ok((d) => {
    checkInvitation(d.invitation, inviteeEmail, "accepted");
    checkMember(d.member, inviteeId, "member");
  }));
let inviteeMember = null;
await call("organization.listMembers", () => owner.organization.listMembers({ query: { organizationId: orgId } }),
  ok((d) => {
    expect(Array.isArray(d.members) && d.members.length === 2 && d.total === 2, "two members, total 2");
    inviteeMember = d.members.find((m) => m.userId === inviteeId);
    checkMember(inviteeMember, inviteeId, "member");
  }));
await call("organization.listMembers (limit, offset)",
  () => owner.organization.listMembers({ query: { organizationId: orgId, limit: 1, offset: 1 } }),
  ok((d) => {
    expect(d.members.length === 1 && d.total === 2, "one member of two");
    checkMember(d.members[0], inviteeId, "member");
  }));
await call("organization.updateMemberRole",
  () => owner.organization.updateMemberRole({ organizationId: orgId, memberId: inviteeMember?.id, role: "admin" }),
  ok((d) => checkMember(d, inviteeId, "admin")));
await call("organization.getActiveMemberRole (organizationId)",
  () => invitee.organization.getActiveMemberRole({ query: { organizationId: orgId } }),
  ok((d) => expect(d.role === "admin", `role ${d.role}`)));
await call("organization.leave", () => invitee.organization.leave({ organizationId: orgId }),
  ok((d) => checkMember(d, inviteeId, "admin")));
await call("organization.leave (only owner)", () => owner.organization.leave({ organizationId: orgId }),
  refused(400, "YOU_CANNOT_LEAVE_THE_ORGANIZATION_AS_THE_ONLY_OWNER"));
await call("organization.cancelInvitation", async () => {
  const again = await invite();
  return owner.organization.cancelInvitation({ invitationId: again.data?.id });
}, ok((d) => checkInvitation(d, inviteeEmail, "canceled")));
await call("organization.rejectInvitation", async () => {
  const again = await invite();
  return invitee.organization.rejectInvitation({ invitationId: again.data?.id });
}, ok((d) => {
  checkInvitation(d.invitation, inviteeEmail, "rejected");
  expect(d.member === null, "member null");
}));
await call("organization.removeMember", async () => {
  const again = await invite();
  await invitee.organization.acceptInvitation({ invitationId: again.data?.id });
  return owner.organization.removeMember({ organizationId: orgId, memberIdOrEmail: inviteeEmail });
}, ok((d) => checkMember(d.member, inviteeId, "member")));

const outsider = client();
await outsider.signUp.email({ email: outsiderEmail, password: PASSWORD, name: "Outsider" });
await call("organization.getFullOrganization (no active organization)",
  () => outsider.organization.getFullOrganization(), (d, e) => expect(e === null && d === null, "200 null"));
await call("organization.getFullOrganization (not a member)",
  () => outsider.organization.getFullOrganization({ query: { organizationId: orgId } }),
  (d, e) => expect(e !== null && [403, 404].includes(e.status) && isText(e.code), "403/404 with a code"));
await call("organization.inviteMember (not a member)",
  () => outsider.organization.inviteMember({ organizationId: orgId, email: "x@example.com", role: "member" }),
  (d, e) => expect(e !== null && [403, 404].includes(e.status) && isText(e.code), "403/404 with a code"));

// -- device authorization: approval, the token, denial --------------------------------------------
const userCode = code?.user_code;
await call("device (verify)", () => owner.device({ query: { user_code: userCode } }), ok((d) => {
  expect(d.user_code === userCode && d.status === "pending", "user_code, status pending");
  expect(d.client_id === CLIENT_ID && d.scope === "openid profile", "client_id, scope");
}));
await call("device.approve (another account)", () => outsider.device.approve({ userCode }),
  oauthRefused(403, "access_denied"));
await call("device.approve", () => owner.device.approve({ userCode }),
  ok((d) => expect(d.success === true, "success true")));
await sleep(Math.max(0, (code?.interval ?? 5) * 1000 - (Date.now() - firstPoll) + 100));
const granted = await call("device.token",
  () => anon.device.token({ grant_type: GRANT, device_code: code?.device_code, client_id: CLIENT_ID }),
  ok(async (d) => {
    expect(isText(d.access_token) && d.token_type === "Bearer", "access_token, token_type");
    expect(Number.isInteger(d.expires_in) && d.expires_in > 0, "expires_in");
    expect(d.scope === "openid profile", `scope ${d.scope}`);
    const session = await client({ bearer: d.access_token, jar: false }).getSession();
    expect(session.data?.user?.id === ownerId, "the token is a session of the approving account");
  }));
await call("device.token (spent)",
  () => anon.device.token({ grant_type: GRANT, device_code: code?.device_code, client_id: CLIENT_ID }),
  (d, e) => expect(e !== null && e.status === 400 && ["invalid_grant", "slow_down"].includes(e.error), "invalid_grant"));
await call("device.deny", async () => {
  const other = await anon.device.code({ client_id: CLIENT_ID });
  await owner.device({ query: { user_code: other.data?.user_code } });
  const denied = await owner.device.deny({ userCode: other.data?.user_code });
  const poll = await anon.device.token({ grant_type: GRANT, device_code: other.data?.device_code, client_id: CLIENT_ID });
  return { data: denied.data && { ...denied.data, poll: poll.error?.error }, error: denied.error };
}, ok((d) => {
  expect(d.success === true, "success true");
  expect(d.poll === "access_denied", `the device is told access_denied, got ${d.poll}`);
}));
await call("device.code (no client_id)", () => anon.device.code({ scope: "x" }), oauthRefused(400, "invalid_request"));
void granted;

// -- organization delete, password reset, sign-out ------------------------------------------------
await call("organization.delete", () => owner.organization.delete({ organizationId: orgId }),
  ok((d) => checkOrg(d, "acme")));
await call("requestPasswordReset (unknown address: same answer)",
  () => anon.requestPasswordReset({ email: "nobody@example.com", redirectTo: "/reset" }),
  ok((d) => expect(d.status === true, "status true")));
await call("requestPasswordReset", () => anon.requestPasswordReset({ email: ownerEmail }),
  ok((d) => expect(d.status === true, "status true")));
const resetToken = await mailToken("password_reset", ownerEmail);
await call("resetPassword", () => anon.resetPassword({ newPassword: RESET_PASSWORD, token: resetToken }),
  ok(async (d) => {
    expect(d.status === true, "status true");
    const fresh = client();
    expect((await fresh.signIn.email({ email: ownerEmail, password: RESET_PASSWORD })).data?.user?.id === ownerId,
      "the new password signs in");
  }));
await call("revokeSessions", async () => {
  const fifth = client();
  await fifth.signIn.email({ email: ownerEmail, password: RESET_PASSWORD });
  const result = await fifth.revokeSessions();
  return { data: result.data && { ...result.data, gone: (await fifth.getSession()).data === null }, error: result.error };
}, ok((d) => expect(d.status === true && d.gone, "status true, the session is gone")));
await call("signOut", async () => {
  const last = await invitee.signOut();
  return { data: last.data && { ...last.data, after: (await invitee.getSession()).data }, error: last.error };
}, ok((d) => expect(d.success === true && d.after === null, "success true, no session after")));

console.log(JSON.stringify({ done: true, calls, failed }));
process.exit(0);
