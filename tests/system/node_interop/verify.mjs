// Verify one token the way a Node service would, fed only Duotoken's JWKS and with
// the library's default options:
//
//     node verify.mjs <jose|jsonwebtoken> <jwks-url> <token>
//
// Prints one JSON line: {"ok": true, "claims": {...}} or {"ok": false, "error": "..."}.
import { createPublicKey } from "node:crypto";

import { createRemoteJWKSet, jwtVerify } from "jose";
import jsonwebtoken from "jsonwebtoken";

const [library, jwksUrl, token] = process.argv.slice(2);

async function withJose() {
  // The JWKS client jose's documentation shows: picks the key by kid, refetches on a new one.
  const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(jwksUrl)));
  return payload;
}

async function withJsonwebtoken() {
  // jsonwebtoken takes a PEM: convert the JWK named by the token's kid with Node's crypto.
  const { keys } = await (await fetch(jwksUrl)).json();
  const { kid } = jsonwebtoken.decode(token, { complete: true })?.header ?? {};
  const jwk = keys.find((key) => key.kid === kid);
  if (!jwk) throw new Error(`no key ${kid} in the JWKS`);
  const pem = createPublicKey({ key: jwk, format: "jwk" }).export({ type: "spki", format: "pem" });
  return jsonwebtoken.verify(token, pem);
}

const verifiers = { jose: withJose, jsonwebtoken: withJsonwebtoken };

try {
  const claims = await verifiers[library]();
  console.log(JSON.stringify({ ok: true, claims }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: `${error.name}: ${error.message}` }));
}
