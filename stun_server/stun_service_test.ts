import assert from "node:assert/strict";
import {
  addChangeRequest,
  addFingerprint,
  addMessageIntegrity,
  addMessageIntegritySha256,
  addUsername,
  AttributeType,
  decodeStunMessage,
  getErrorCode,
  getMappedAddress,
  getSoftware,
  getUnknownAttributes,
  getXorMappedAddress,
  shortTermKey,
  StunClass,
  type StunMessage,
  StunMessageWriter,
  StunMethod,
  verifyFingerprint,
  verifyMessageIntegrity,
  verifyMessageIntegritySha256,
} from "../shared/stun/mod.ts";
import { StunService, type StunServiceEvent, type StunUserDirectory } from "./stun_service.ts";
import {
  type DatagramSocket,
  type HostPort,
  type Runtime,
  systemRuntime,
} from "../shared/runtime/mod.ts";

/** The system runtime with UDP binding replaced (and no TCP, to keep these tests about UDP). */
function withListen(listenDatagram: (bind: HostPort) => DatagramSocket): Runtime {
  return { ...systemRuntime, net: { ...systemRuntime.net, listenDatagram } };
}

const DEADLINE_MS = 5000;

function randomId(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(12));
}

/** A Binding request built by `build` after the header. */
function request(build?: (writer: StunMessageWriter) => void, id = randomId()): Uint8Array {
  const writer = new StunMessageWriter();
  writer.start(StunMethod.Binding, StunClass.Request, id);
  build?.(writer);
  return writer.bytes().slice();
}

async function receiveWithin(client: Deno.DatagramConn, ms = DEADLINE_MS): Promise<Uint8Array> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no datagram within ${ms} ms`)), ms);
  });
  try {
    const [data] = await Promise.race([client.receive(), timeout]);
    return data.slice();
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Runs `body` with a service on 127.0.0.1 and a client socket on 127.0.0.1. */
async function withService(
  options: Parameters<typeof StunService.listen>[0],
  body: (service: StunService, client: Deno.DatagramConn, to: Deno.NetAddr) => Promise<void>,
  clientHost = "127.0.0.1",
): Promise<void> {
  const service = StunService.listen({ hostname: clientHost, port: 0, ...options });
  const client = Deno.listenDatagram({ transport: "udp", hostname: clientHost, port: 0 });
  try {
    await body(service, client, service.addresses[0]);
  } finally {
    client.close();
    await service.close();
  }
}

async function exchange(
  client: Deno.DatagramConn,
  to: Deno.NetAddr,
  bytes: Uint8Array,
): Promise<StunMessage> {
  await client.send(bytes, to);
  return decodeStunMessage(await receiveWithin(client));
}

function clientAddress(client: Deno.DatagramConn): Deno.NetAddr {
  return client.addr as Deno.NetAddr;
}

Deno.test("stun service: plain Binding gets the sender's XOR-MAPPED-ADDRESS, MAPPED-ADDRESS, SOFTWARE", async () => {
  await withService({ software: "test-server" }, async (service, client, to) => {
    const id = randomId();
    const answer = await exchange(client, to, request(undefined, id));
    assert.equal(answer.method, StunMethod.Binding);
    assert.equal(answer.messageClass, StunClass.SuccessResponse);
    assert.deepEqual(answer.transactionId, id);
    const me = clientAddress(client);
    assert.deepEqual(getXorMappedAddress(answer), {
      family: "IPv4",
      hostname: "127.0.0.1",
      port: me.port,
    });
    assert.deepEqual(getMappedAddress(answer), {
      family: "IPv4",
      hostname: "127.0.0.1",
      port: me.port,
    });
    assert.equal(getSoftware(answer), "test-server");
    assert.equal(answer.has(AttributeType.Fingerprint), false, "no FINGERPRINT unless asked");
    assert.equal(service.stats.received, 1);
    assert.equal(service.stats.answered, 1);
  });
});

Deno.test("stun service: FINGERPRINT in the request gets FINGERPRINT in the answer", async () => {
  await withService({}, async (_service, client, to) => {
    const answer = await exchange(client, to, request((w) => addFingerprint(w)));
    assert.equal(answer.messageClass, StunClass.SuccessResponse);
    assert.ok(answer.has(AttributeType.Fingerprint));
    assert.ok(verifyFingerprint(answer));
  });
});

const ipv6Available = (() => {
  try {
    Deno.listenDatagram({ transport: "udp", hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "stun service: IPv6 Binding on ::1 gets an IPv6 XOR-MAPPED-ADDRESS",
  ignore: !ipv6Available,
  fn: async () => {
    await withService({}, async (_service, client, to) => {
      const answer = await exchange(client, to, request());
      assert.deepEqual(getXorMappedAddress(answer), {
        family: "IPv6",
        hostname: "::1",
        port: clientAddress(client).port,
      });
    }, "::1");
  },
});

Deno.test("stun service: default bind serves IPv4 clients with IPv4 addresses", async () => {
  const service = StunService.listen({ port: 0 });
  const client = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    const port = service.addresses[0].port;
    for (const address of service.addresses) assert.equal(address.port, port);
    const answer = await exchange(
      client,
      { transport: "udp", hostname: "127.0.0.1", port },
      request(),
    );
    // A dual-stack `::` socket sees ::ffff:127.0.0.1; the answer must say IPv4 127.0.0.1.
    assert.deepEqual(getXorMappedAddress(answer), {
      family: "IPv4",
      hostname: "127.0.0.1",
      port: clientAddress(client).port,
    });
  } finally {
    client.close();
    await service.close();
  }
});

Deno.test("stun service: falls back to 0.0.0.0 when IPv6 cannot be bound", async () => {
  const events: StunServiceEvent[] = [];
  const service = StunService.listen({
    port: 0,
    tcp: false,
    localAddresses: () => [],
    onEvent: (event) => events.push(event),
    runtime: withListen((options) => {
      if (options.hostname === "::") throw new Deno.errors.AddrNotAvailable("no IPv6 here");
      return systemRuntime.net.listenDatagram(options);
    }),
  });
  try {
    assert.equal(service.addresses.length, 1);
    assert.equal(service.addresses[0].hostname, "0.0.0.0");
    assert.equal(events[0].type, "ipv6-unavailable");
  } finally {
    await service.close();
  }
});

Deno.test("stun service: unknown comprehension-required attribute gets 420 with UNKNOWN-ATTRIBUTES", async () => {
  await withService({}, async (service, client, to) => {
    const answer = await exchange(
      client,
      to,
      request((w) => {
        w.addAttribute(0x7777, Uint8Array.of(1, 2, 3));
        w.addAttribute(0x0002, new Uint8Array(8)); // RFC 3489 RESPONSE-ADDRESS: not honoured
        addFingerprint(w);
      }),
    );
    assert.equal(answer.messageClass, StunClass.ErrorResponse);
    assert.equal(getErrorCode(answer)?.code, 420);
    assert.deepEqual(getUnknownAttributes(answer), [0x7777, 0x0002]);
    assert.ok(verifyFingerprint(answer));
    assert.equal(service.stats.errors, 1);
  });
});

Deno.test("stun service: unknown comprehension-optional attributes are ignored", async () => {
  await withService({}, async (_service, client, to) => {
    const answer = await exchange(
      client,
      to,
      request((w) => w.addAttribute(0xc001, new Uint8Array(5))),
    );
    assert.equal(answer.messageClass, StunClass.SuccessResponse);
  });
});

Deno.test("stun service: CHANGE-REQUEST with flags gets 420, without flags a normal answer", async () => {
  await withService({}, async (_service, client, to) => {
    const refused = await exchange(
      client,
      to,
      request((w) => addChangeRequest(w, { changeIp: true, changePort: true })),
    );
    assert.equal(getErrorCode(refused)?.code, 420);
    assert.deepEqual(getUnknownAttributes(refused), [AttributeType.ChangeRequest]);
    const plain = await exchange(
      client,
      to,
      request((w) => addChangeRequest(w, { changeIp: false, changePort: false })),
    );
    assert.equal(plain.messageClass, StunClass.SuccessResponse);
  });
});

Deno.test("stun service: garbage, responses, indications, other methods and bad fingerprints are dropped unanswered", async () => {
  await withService({}, async (service, client, to) => {
    const response = request();
    response[0] = 0x01; // 0x0101: Binding success response
    const indication = request();
    indication[1] = 0x11; // 0x0011: Binding indication
    const errorResponse = request();
    errorResponse[0] = 0x01;
    errorResponse[1] = 0x11; // 0x0111: Binding error response
    const allocate = request();
    allocate[1] = 0x03; // 0x0003: TURN Allocate request
    const badFingerprint = request((w) => addFingerprint(w));
    badFingerprint[badFingerprint.length - 1] ^= 1;
    const badFraming = request((w) => w.addAttribute(0x8022, new Uint8Array(4)));
    badFraming[23] = 200; // attribute length past the end
    const rawDrops: [Uint8Array, string][] = [
      [new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"), "notStun"],
      [new Uint8Array(3), "notStun"],
      [request().subarray(0, 19), "notStun"],
      [response, "notRequest"],
      [indication, "notRequest"],
      [errorResponse, "notRequest"],
      [allocate, "unsupportedMethod"],
      [badFingerprint, "badFingerprint"],
      [badFraming, "malformed"],
    ];
    for (const [bytes] of rawDrops) await client.send(bytes, to);
    // Then a valid request: the first datagram back must be its answer (nothing else answered).
    const id = randomId();
    await client.send(request(undefined, id), to);
    const answer = decodeStunMessage(await receiveWithin(client));
    assert.deepEqual(answer.transactionId, id);
    await waitFor("all datagrams counted", () => service.stats.received === rawDrops.length + 1);
    const expected = {
      notStun: 0,
      notRequest: 0,
      unsupportedMethod: 0,
      malformed: 0,
      badFingerprint: 0,
      rateLimited: 0,
      replayed: 0,
    };
    for (const [, reason] of rawDrops) expected[reason as keyof typeof expected]++;
    assert.deepEqual(service.stats.dropped, expected);
    assert.equal(service.stats.answered, 1);
    assert.equal(service.stats.errors, 0);
  });
});

Deno.test("stun service: RFC 3489 request (no magic cookie) gets MAPPED-ADDRESS only, ID copied", async () => {
  await withService({}, async (_service, client, to) => {
    const legacy = new Uint8Array(20);
    legacy[1] = 0x01;
    crypto.getRandomValues(legacy.subarray(4));
    await client.send(legacy, to);
    const bytes = await receiveWithin(client);
    const answer = decodeStunMessage(bytes, { allowLegacy: true });
    assert.ok(answer.isLegacy);
    assert.equal(answer.messageClass, StunClass.SuccessResponse);
    assert.deepEqual(bytes.subarray(4, 20), legacy.subarray(4, 20));
    assert.deepEqual(answer.attributes.map((a) => a.type), [AttributeType.MappedAddress]);
    assert.deepEqual(getMappedAddress(answer), {
      family: "IPv4",
      hostname: "127.0.0.1",
      port: clientAddress(client).port,
    });
  });
});

/** A directory with one user, recording authenticated Bindings. */
function directory(): StunUserDirectory & { seen: [string, { hostname: string; port: number }][] } {
  const seen: [string, { hostname: string; port: number }][] = [];
  return {
    seen,
    keyFor: (username) => username === "alice" ? shortTermKey("alice-password") : undefined,
    onAuthenticatedBinding: (username, address) => {
      seen.push([username, address]);
    },
  };
}

Deno.test("stun service: authenticated Binding is signed, fingerprinted and reported", async () => {
  const users = directory();
  await withService({ users }, async (service, client, to) => {
    const key = shortTermKey("alice-password");
    const answer = await exchange(
      client,
      to,
      request((w) => {
        addUsername(w, "alice");
        addMessageIntegrity(w, key);
        addFingerprint(w);
      }),
    );
    assert.equal(answer.messageClass, StunClass.SuccessResponse);
    const me = clientAddress(client);
    assert.deepEqual(getXorMappedAddress(answer), {
      family: "IPv4",
      hostname: "127.0.0.1",
      port: me.port,
    });
    assert.ok(verifyMessageIntegrity(answer, key));
    assert.equal(verifyMessageIntegrity(answer, shortTermKey("wrong")), false);
    assert.ok(verifyFingerprint(answer));
    assert.deepEqual(users.seen, [["alice", { hostname: "127.0.0.1", port: me.port }]]);
    assert.equal(service.stats.authenticated, 1);
  });
});

Deno.test("stun service: MESSAGE-INTEGRITY-SHA256 requests get a SHA-256 signed answer", async () => {
  const users = directory();
  await withService({ users }, async (_service, client, to) => {
    const key = shortTermKey("alice-password");
    const answer = await exchange(
      client,
      to,
      request((w) => {
        addUsername(w, "alice");
        addMessageIntegritySha256(w, key);
      }),
    );
    assert.equal(answer.messageClass, StunClass.SuccessResponse);
    assert.ok(verifyMessageIntegritySha256(answer, key));
    assert.equal(users.seen.length, 1);
  });
});

Deno.test("stun service: unknown user and bad integrity get 401, missing parts 400, nobody reported", async () => {
  const users = directory();
  await withService({ users }, async (service, client, to) => {
    const cases: [string, (w: StunMessageWriter) => void, number][] = [
      ["unknown user", (w) => {
        addUsername(w, "mallory");
        addMessageIntegrity(w, shortTermKey("alice-password"));
      }, 401],
      ["wrong password", (w) => {
        addUsername(w, "alice");
        addMessageIntegrity(w, shortTermKey("guess"));
      }, 401],
      ["USERNAME without integrity", (w) => addUsername(w, "alice"), 400],
      ["integrity without USERNAME", (w) => addMessageIntegrity(w, shortTermKey("x")), 400],
    ];
    for (const [what, build, code] of cases) {
      const answer = await exchange(client, to, request(build));
      assert.equal(answer.messageClass, StunClass.ErrorResponse, what);
      assert.equal(getErrorCode(answer)?.code, code, what);
      assert.equal(answer.has(AttributeType.MessageIntegrity), false, what);
    }
    assert.deepEqual(users.seen, []);
    assert.equal(service.stats.errors, cases.length);
    assert.equal(service.stats.answered, 0);
  });
});

Deno.test("stun service: without a user directory every USERNAME is unknown (401)", async () => {
  await withService({}, async (_service, client, to) => {
    const answer = await exchange(
      client,
      to,
      request((w) => {
        addUsername(w, "alice");
        addMessageIntegrity(w, shortTermKey("alice-password"));
      }),
    );
    assert.equal(getErrorCode(answer)?.code, 401);
  });
});

Deno.test("stun service: a throwing directory or event handler does not stop the service", async () => {
  const events: string[] = [];
  const users: StunUserDirectory = {
    keyFor: () => shortTermKey("pw"),
    onAuthenticatedBinding: () => {
      throw new Error("directory bug");
    },
  };
  await withService({
    users,
    onEvent: (event) => {
      events.push(event.type);
      if (event.type === "directory-failed") throw new Error("logger bug");
    },
  }, async (_service, client, to) => {
    const answer = await exchange(
      client,
      to,
      request((w) => {
        addUsername(w, "anyone");
        addMessageIntegrity(w, shortTermKey("pw"));
      }),
    );
    assert.equal(answer.messageClass, StunClass.SuccessResponse);
    assert.ok(events.includes("directory-failed"));
    const again = await exchange(client, to, request());
    assert.equal(again.messageClass, StunClass.SuccessResponse);
  });
});

Deno.test("stun service: close is idempotent and reports closed", async () => {
  const events: string[] = [];
  const service = StunService.listen({
    hostname: "127.0.0.1",
    port: 0,
    onEvent: (e) => events.push(e.type),
  });
  await service.close();
  await service.close();
  assert.deepEqual(events, ["listening", "closed"]);
});

Deno.test("stun service: an authenticated request with an unknown attribute gets a signed 420", async () => {
  const users = directory();
  await withService({ users }, async (_service, client, to) => {
    const key = shortTermKey("alice-password");
    const answer = await exchange(
      client,
      to,
      request((w) => {
        w.addAttribute(0x7001, new Uint8Array(4));
        addUsername(w, "alice");
        addMessageIntegrity(w, key);
        addFingerprint(w);
      }),
    );
    assert.equal(getErrorCode(answer)?.code, 420);
    assert.deepEqual(getUnknownAttributes(answer), [0x7001]);
    assert.ok(verifyMessageIntegrity(answer, key));
    assert.ok(verifyFingerprint(answer));
    assert.deepEqual(users.seen, [], "a refused request is not an authenticated Binding");
  });
});

Deno.test("stun service: RFC 3489 request with a comprehension-required attribute gets a legacy 420", async () => {
  await withService({}, async (_service, client, to) => {
    const legacy = new Uint8Array(28);
    legacy.set([0x00, 0x01, 0x00, 0x08], 0);
    crypto.getRandomValues(legacy.subarray(4, 20));
    legacy.set([0x00, 0x02, 0x00, 0x04, 1, 2, 3, 4], 20); // RESPONSE-ADDRESS (cut short)
    await client.send(legacy, to);
    const bytes = await receiveWithin(client);
    const answer = decodeStunMessage(bytes, { allowLegacy: true });
    assert.equal(answer.messageClass, StunClass.ErrorResponse);
    assert.deepEqual(bytes.subarray(4, 20), legacy.subarray(4, 20));
    assert.equal(getErrorCode(answer)?.code, 420);
    assert.deepEqual(getUnknownAttributes(answer), [0x0002]);
  });
});

Deno.test("stun service: where :: is IPv6-only, a second 0.0.0.0 socket on the same port serves IPv4", async () => {
  // Simulated with real sockets: "::" becomes ::1 and "0.0.0.0" becomes 127.0.0.1.
  const service = StunService.listen({
    port: 0,
    tcp: false,
    localAddresses: () => [],
    runtime: withListen((options) =>
      systemRuntime.net.listenDatagram({
        ...options,
        hostname: options.hostname === "::" ? (ipv6Available ? "::1" : "127.0.0.2") : "127.0.0.1",
      })
    ),
  });
  const client = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    assert.equal(service.addresses.length, 2);
    const port = service.addresses[0].port;
    assert.equal(service.addresses[1].port, port);
    const answer = await exchange(
      client,
      { transport: "udp", hostname: "127.0.0.1", port },
      request(),
    );
    assert.equal(getXorMappedAddress(answer)?.port, clientAddress(client).port);
  } finally {
    client.close();
    await service.close();
  }
});

Deno.test("stun service: a datagram whose handling throws is counted and the service goes on", async () => {
  const events: StunServiceEvent[] = [];
  let first = true;
  const service = StunService.listen({
    hostname: "127.0.0.1",
    port: 0,
    onEvent: (event) => events.push(event),
    runtime: withListen((options) => {
      const inner = systemRuntime.net.listenDatagram(options);
      return {
        get addr() {
          return inner.addr;
        },
        async receive(buffer?: Uint8Array) {
          const [data, from] = await inner.receive(buffer);
          if (!first) return [data, from];
          first = false; // the first source is not an IP address: encoding the answer throws
          return [data, { ...from, hostname: "not-an-address" }];
        },
        send: (bytes, to) => inner.send(bytes, to),
        close: () => inner.close(),
      };
    }),
  });
  const client = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    const to = service.addresses[0];
    await client.send(request(), to);
    const answer = await exchange(client, to, request());
    assert.equal(answer.messageClass, StunClass.SuccessResponse);
    assert.equal(service.stats.internalErrors, 1);
    assert.ok(events.some((e) => e.type === "internal-error"));
  } finally {
    client.close();
    await service.close();
  }
});

Deno.test("stun service: an over-long SOFTWARE is refused before anything is bound", () => {
  let bound = 0;
  assert.throws(
    () =>
      StunService.listen({
        port: 0,
        software: "x".repeat(128),
        runtime: withListen((options) => {
          bound++;
          return systemRuntime.net.listenDatagram(options);
        }),
      }),
    RangeError,
  );
  assert.equal(bound, 0);
});
