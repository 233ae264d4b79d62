import assert from "node:assert/strict";
import { defaultAcceptFiles, offerDecision, parseAcceptFiles } from "./policy.ts";

Deno.test("accept-files policy: parsing, defaults and decisions", () => {
  assert.equal(parseAcceptFiles("contacts"), "contacts");
  assert.throws(() => parseAcceptFiles("all"), /must be one of ask, contacts, anyone, none/);
  assert.equal(defaultAcceptFiles({ json: true }), "none");
  assert.equal(defaultAcceptFiles({ json: false }), "ask");
  const friend = (p: string) => p === "friend";
  assert.equal(offerDecision("anyone", "x", friend), "accept");
  assert.equal(offerDecision("none", "friend", friend), "reject");
  assert.equal(offerDecision("contacts", "friend", friend), "accept");
  assert.equal(offerDecision("contacts", "stranger", friend), "ask");
  assert.equal(offerDecision("ask", "friend", friend), "ask");
});
