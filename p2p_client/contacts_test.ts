import assert from "node:assert/strict";
import {
  ContactBook,
  ContactsError,
  contactsPathFor,
  MAX_CONTACTS,
  resolvePeer,
  validateName,
} from "./contacts.ts";

const A = "ab".repeat(20);
const B = "ab" + "cd".repeat(19);
const C = "c0".repeat(20);

Deno.test("contacts: named peers survive a reload; the file is private and written atomically", () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/contacts.json`;
  try {
    const book = ContactBook.load(path);
    assert.equal(book.size, 0);
    assert.equal(book.setName(A, "alice"), undefined);
    assert.equal(book.setName(C, "Carol"), undefined);
    book.markSeen(C, 1_764_500_000_000);
    const again = ContactBook.load(path);
    assert.deepEqual(again.list(), [
      { id: A, name: "alice", lastSeen: undefined },
      { id: C, name: "Carol", lastSeen: 1_764_500_000_000 },
    ]);
    assert.ok(again.has(A) && !again.has(B));
    if (Deno.build.os !== "windows") {
      assert.equal((Deno.statSync(path).mode ?? 0) & 0o777, 0o600);
    }
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["contacts.json"]);
    assert.equal(again.remove(A), true);
    assert.equal(ContactBook.load(path).has(A), false);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("contacts: invalid names and IDs are refused with the reason; the book is unchanged", () => {
  const book = ContactBook.inMemory();
  assert.match(book.setName("xyz", "alice")!, /not a peer ID/);
  assert.match(book.setName(A, "")!, /1 to 32/);
  assert.match(book.setName(A, "a".repeat(33))!, /1 to 32/);
  assert.match(book.setName(A, "9lives")!, /starts with a letter/);
  assert.match(book.setName(A, "al ice")!, /starts with a letter/);
  assert.match(book.setName(A, "bad\u202ename")!, /starts with a letter/);
  assert.match(book.setName(A, "ab".repeat(20))!, /look like a peer ID/);
  assert.equal(book.setName(A, "alice"), undefined);
  assert.match(book.setName(B, "ALICE")!, /already used/);
  assert.equal(book.setName(A, "alicia"), undefined, "renaming keeps one entry");
  assert.equal(book.size, 1);
  assert.equal(validateName("Zoë_2.x-y"), undefined);
});

Deno.test("contacts: a corrupt, oversized or malformed file is reported, never overwritten", () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/contacts.json`;
  try {
    for (
      const [text, pattern] of [
        ["nope", /not valid JSON/],
        ["[]", /expected/],
        ['{"version":2,"contacts":{}}', /expected/],
        [`{"version":1,"contacts":{"xyz":{"name":"a"}}}`, /not a peer ID/],
        [`{"version":1,"contacts":{"${A}":"alice"}}`, /expected \{"name"/],
        [`{"version":1,"contacts":{"${A}":{"name":"a"},"${B}":{"name":"A"}}}`, /already used/],
        ["x".repeat(300_000), /larger than/],
      ] as const
    ) {
      Deno.writeTextFileSync(path, text);
      assert.throws(
        () => ContactBook.load(path),
        (e: unknown) => e instanceof ContactsError && pattern.test(e.message),
      );
      assert.equal(Deno.readTextFileSync(path), text);
    }
    const many: Record<string, { name: string }> = {};
    for (let i = 0; i <= MAX_CONTACTS; i++) {
      many[i.toString(16).padStart(40, "0")] = { name: `n${i}` };
    }
    Deno.writeTextFileSync(path, JSON.stringify({ version: 1, contacts: many }));
    assert.throws(() => ContactBook.load(path), /more than 1000/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("contacts: the book is bounded", () => {
  const book = ContactBook.inMemory();
  for (let i = 0; i < MAX_CONTACTS; i++) {
    assert.equal(book.setName(i.toString(16).padStart(40, "0"), `n${i}`), undefined);
  }
  assert.match(book.setName(A, "alice")!, /full/);
  assert.equal(book.size, MAX_CONTACTS);
});

Deno.test("resolvePeer: full IDs, names, unique prefixes, and ambiguity listing the candidates", () => {
  const names = new Map([[A, "alice"], [C, "abby"]]);
  const known = [A, B, C];
  assert.deepEqual(resolvePeer(B.toUpperCase(), known, names), { ok: true, id: B });
  assert.deepEqual(resolvePeer("ALICE", known, names), { ok: true, id: A });
  assert.deepEqual(resolvePeer("ali", known, names), { ok: true, id: A });
  assert.deepEqual(resolvePeer("abc", known, names), { ok: true, id: B });
  assert.deepEqual(resolvePeer("c0c0", known, names), { ok: true, id: C });
  const ambiguous = resolvePeer("ab", known, names);
  assert.equal(ambiguous.ok, false);
  if (!ambiguous.ok) {
    assert.deepEqual(ambiguous.candidates, [A, B, C].sort());
    assert.match(ambiguous.error, /"ab" is ambiguous: alice \(abababababab\), abcdcdcdcdcd, abby/);
  }
  const none = resolvePeer("zed", known, names);
  assert.ok(!none.ok && /no contact is named "zed"/.test(none.error));
  const noId = resolvePeer("ff", known, names);
  assert.ok(!noId.ok && /no known peer ID or name starts with "ff"/.test(noId.error));
  // A name that is also a hex prefix: the exact name wins.
  const hexName = new Map([[C, "abab"]]);
  assert.deepEqual(resolvePeer("abab", known, hexName), { ok: true, id: C });
});

Deno.test("contactsPathFor: beside the identity file, one list per identity", () => {
  assert.equal(contactsPathFor("/h/.config/p2p/identity.json"), "/h/.config/p2p/contacts.json");
  assert.equal(contactsPathFor("/tmp/bob.json"), "/tmp/bob.contacts.json");
  assert.equal(contactsPathFor("bob"), "bob.contacts.json");
  assert.equal(contactsPathFor("C:\\p2p\\identity.json"), "C:\\p2p\\contacts.json");
});
