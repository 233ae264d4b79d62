// TURN server unit tests on virtual time and an in-memory network: the real StunService and
// TurnServer, with lifetimes, nonces and permissions expiring in simulated minutes.
import assert from "node:assert/strict";
import { VirtualRuntime } from "../../testing/virtual_runtime.ts";
import type { DatagramSocket, NetAddress, StreamConn } from "../../shared/runtime/mod.ts";
import {
  addChannelNumber,
  addData,
  addFingerprint,
  addLifetime,
  addMessageIntegrity,
  addMessageIntegritySha256,
  addNonce,
  addPasswordAlgorithm,
  addPasswordAlgorithms,
  addRealm,
  addRequestedAddressFamily,
  addRequestedTransport,
  addUsername,
  addXorPeerAddress,
  decodeChannelData,
  decodeStunMessage,
  encodeChannelData,
  encodeMessageType,
  getAlternateServer,
  getData,
  getErrorCode,
  getLifetime,
  getNonce,
  getPasswordAlgorithms,
  getRealm,
  getXorMappedAddress,
  getXorPeerAddresses,
  getXorRelayedAddress,
  longTermKey,
  PasswordAlgorithm,
  StunClass,
  type StunMessage,
  StunMessageWriter,
  TurnMethod,
  verifyMessageIntegrity,
  verifyMessageIntegritySha256,
} from "../../shared/stun/mod.ts";
import { StunService } from "../stun_service.ts";
import {
  CombinedCredentials,
  PeerPolicy,
  restPassword,
  SharedSecretCredentials,
  StaticUsers,
  TurnServer,
  type TurnServerOptions,
} from "./mod.ts";

const SERVER = "203.0.113.1";
const CLIENT = "198.51.100.10";
const PEER = "192.0.2.20";
const REALM = "example.org";

interface Lab {
  runtime: VirtualRuntime;
  service: StunService;
  turn: TurnServer;
  server: NetAddress;
  close(): Promise<void>;
}

function lab(options: Partial<TurnServerOptions> = {}): Promise<Lab> {
  const runtime = new VirtualRuntime({ seed: 7 });
  const serverRuntime = runtime.forHost(SERVER);
  const turn = new TurnServer({
    runtime: serverRuntime,
    realm: REALM,
    credentials: new StaticUsers([{ name: "alice", password: "pw" }, {
      name: "bob",
      password: "b",
    }]),
    relayPorts: { min: 50000, max: 50099 },
    ...options,
  });
  const service = StunService.listen({
    runtime: serverRuntime,
    hostname: SERVER,
    port: 3478,
    turn,
  });
  return Promise.resolve({
    runtime,
    service,
    turn,
    server: { transport: "udp", hostname: SERVER, port: 3478 },
    close: async () => {
      await service.close();
      await turn.close();
    },
  });
}

/** A datagram receiver that queues everything a socket gets. */
class Inbox {
  readonly items: [Uint8Array, NetAddress][] = [];
  constructor(socket: DatagramSocket) {
    (async () => {
      for (;;) {
        try {
          const [data, from] = await socket.receive();
          this.items.push([data.slice(), from]);
        } catch {
          return;
        }
      }
    })();
  }
  async next(runtime: VirtualRuntime, ms = 2000): Promise<[Uint8Array, NetAddress]> {
    assert.ok(await runtime.runUntil(() => this.items.length > 0, ms), "nothing arrived");
    return this.items.shift()!;
  }
  async none(runtime: VirtualRuntime, ms = 500): Promise<void> {
    await runtime.advance(ms);
    assert.equal(this.items.length, 0, "something arrived");
  }
}

interface Credentials {
  username: string;
  password: string;
  sha256?: boolean;
}

/** A minimal TURN client: long-term credentials, nonce handling, over UDP or TCP. */
class Client {
  nonce: string | undefined;
  readonly inbox: Inbox | undefined;
  readonly #tcpFrames: Uint8Array[] = [];
  constructor(
    readonly runtime: VirtualRuntime,
    readonly socket: DatagramSocket | undefined,
    readonly server: NetAddress,
    readonly credentials: Credentials,
    readonly tcp?: StreamConn,
  ) {
    if (socket !== undefined) this.inbox = new Inbox(socket);
    if (tcp !== undefined) this.#readTcp(tcp);
  }

  async #readTcp(conn: StreamConn): Promise<void> {
    let pending = new Uint8Array(0);
    const buffer = new Uint8Array(70000);
    for (;;) {
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) return;
      const joined = new Uint8Array(pending.length + n);
      joined.set(pending);
      joined.set(buffer.subarray(0, n), pending.length);
      pending = joined;
      for (;;) {
        if (pending.length < 4) break;
        const length = (pending[0] & 0xc0) === 0x40
          ? 4 + ((((pending[2] << 8) | pending[3]) + 3) & ~3)
          : 20 + ((pending[2] << 8) | pending[3]);
        if (pending.length < length) break;
        this.#tcpFrames.push(pending.slice(0, length));
        pending = pending.slice(length);
      }
    }
  }

  send(bytes: Uint8Array): void {
    if (this.tcp !== undefined) this.tcp.write(bytes.slice());
    else this.socket!.send(bytes.slice(), this.server);
  }

  async receive(ms = 2000): Promise<Uint8Array> {
    if (this.tcp !== undefined) {
      assert.ok(await this.runtime.runUntil(() => this.#tcpFrames.length > 0, ms), "no frame");
      return this.#tcpFrames.shift()!;
    }
    return (await this.inbox!.next(this.runtime, ms))[0];
  }

  get key(): Uint8Array {
    return longTermKey(
      this.credentials.username,
      REALM,
      this.credentials.password,
      this.credentials.sha256 ? "SHA-256" : "MD5",
    );
  }

  build(method: number, fill: (w: StunMessageWriter) => void, sign = true): Uint8Array {
    const writer = new StunMessageWriter(2048);
    writer.start(method, StunClass.Request, crypto.getRandomValues(new Uint8Array(12)));
    fill(writer);
    if (sign && this.nonce !== undefined) {
      addUsername(writer, this.credentials.username);
      addRealm(writer, REALM);
      addNonce(writer, this.nonce);
      if (this.credentials.sha256) {
        const algorithms = [
          { algorithm: PasswordAlgorithm.Sha256, parameters: new Uint8Array(0) },
          { algorithm: PasswordAlgorithm.Md5, parameters: new Uint8Array(0) },
        ];
        addPasswordAlgorithms(writer, algorithms);
        addPasswordAlgorithm(writer, algorithms[0]);
        addMessageIntegritySha256(writer, this.key);
      } else {
        addMessageIntegrity(writer, this.key);
      }
    }
    addFingerprint(writer);
    return writer.bytes().slice();
  }

  /** Sends a request (getting a nonce first if needed); returns the final answer. */
  async request(method: number, fill: (w: StunMessageWriter) => void): Promise<StunMessage> {
    for (let attempt = 0; attempt < 3; attempt++) {
      this.send(this.build(method, fill));
      const answer = decodeStunMessage(await this.receive());
      const code = getErrorCode(answer)?.code;
      if ((code === 401 && this.nonce === undefined) || code === 438) {
        this.nonce = getNonce(answer);
        assert.equal(getRealm(answer), REALM);
        continue;
      }
      return answer;
    }
    throw new Error("no answer after nonce retries");
  }

  allocate(fill?: (w: StunMessageWriter) => void): Promise<StunMessage> {
    return this.request(TurnMethod.Allocate, (w) => {
      addRequestedTransport(w, 17);
      fill?.(w);
    });
  }
}

function udpClient(l: Lab, credentials: Credentials = { username: "alice", password: "pw" }) {
  const socket = l.runtime.forHost(CLIENT).net.listenDatagram({ hostname: CLIENT, port: 0 });
  return new Client(l.runtime, socket, l.server, credentials);
}

function peerSocket(l: Lab, host = PEER): { socket: DatagramSocket; inbox: Inbox } {
  const socket = l.runtime.forHost(host).net.listenDatagram({ hostname: host, port: 0 });
  return { socket, inbox: new Inbox(socket) };
}

function isSuccess(message: StunMessage): boolean {
  return message.messageClass === StunClass.SuccessResponse;
}

Deno.test("turn: Allocate is challenged (401 with REALM, NONCE, PASSWORD-ALGORITHMS), then granted and signed", async () => {
  const l = await lab();
  try {
    const client = udpClient(l);
    client.send(client.build(TurnMethod.Allocate, (w) => addRequestedTransport(w, 17)));
    const challenge = decodeStunMessage(await client.receive());
    assert.equal(getErrorCode(challenge)?.code, 401);
    assert.equal(getRealm(challenge), REALM);
    assert.ok(getNonce(challenge)?.startsWith("obMatJos2"));
    assert.equal(getPasswordAlgorithms(challenge)?.length, 2);
    const answer = await client.allocate();
    assert.ok(isSuccess(answer), `got ${getErrorCode(answer)?.code}`);
    assert.ok(verifyMessageIntegrity(answer, client.key));
    const relayed = getXorRelayedAddress(answer)!;
    assert.equal(relayed.hostname, SERVER);
    assert.ok(relayed.port >= 50000 && relayed.port <= 50099);
    assert.equal(getLifetime(answer), 600);
    assert.equal(getXorMappedAddress(answer)?.hostname, CLIENT);
    assert.equal(l.turn.stats.allocations, 1);
    // A second Allocate on the same five-tuple (new transaction) is a mismatch.
    const again = await client.allocate();
    assert.equal(getErrorCode(again)?.code, 437);
  } finally {
    await l.close();
  }
});

Deno.test("turn: a wrong password gets 401, an unknown user too", async () => {
  const l = await lab();
  try {
    for (
      const credentials of [{ username: "alice", password: "nope" }, {
        username: "eve",
        password: "x",
      }]
    ) {
      const client = udpClient(l, credentials);
      const answer = await client.allocate();
      assert.equal(getErrorCode(answer)?.code, 401);
    }
    assert.equal(l.turn.stats.allocations, 0);
  } finally {
    await l.close();
  }
});

Deno.test("turn: a nonce goes stale after 10 minutes (438), and a fresh one works", async () => {
  const l = await lab();
  try {
    const client = udpClient(l);
    const granted = await client.allocate((w) => addLifetime(w, 3600));
    assert.equal(getLifetime(granted), 3600);
    const old = client.nonce;
    await l.runtime.advance(601_000);
    client.send(client.build(TurnMethod.Refresh, () => {}));
    const stale = decodeStunMessage(await client.receive());
    assert.equal(getErrorCode(stale)?.code, 438);
    assert.notEqual(getNonce(stale), old);
    client.nonce = getNonce(stale);
    const refreshed = await client.request(TurnMethod.Refresh, (w) => addLifetime(w, 600));
    assert.ok(isSuccess(refreshed));
  } finally {
    await l.close();
  }
});

Deno.test("turn: SHA-256 keys with PASSWORD-ALGORITHM and MESSAGE-INTEGRITY-SHA256", async () => {
  const l = await lab();
  try {
    const client = udpClient(l, { username: "bob", password: "b", sha256: true });
    const answer = await client.allocate();
    assert.ok(isSuccess(answer), `got ${getErrorCode(answer)?.code}`);
    assert.ok(verifyMessageIntegritySha256(answer, client.key));
  } finally {
    await l.close();
  }
});

Deno.test("turn: REST API shared-secret credentials are accepted until they expire", async () => {
  const l = await lab({
    credentials: new CombinedCredentials([new SharedSecretCredentials(["s3cret"])]),
  });
  try {
    const expiry = Math.floor(l.runtime.wallClock() / 1000) + 60;
    const username = `${expiry}:carol`;
    const client = udpClient(l, { username, password: restPassword("s3cret", username) });
    assert.ok(isSuccess(await client.allocate()));
    const late = `${expiry - 120}:carol`;
    const expired = udpClient(l, { username: late, password: restPassword("s3cret", late) });
    assert.equal(getErrorCode(await expired.allocate())?.code, 401);
  } finally {
    await l.close();
  }
});

Deno.test("turn: Send/Data indications need a permission, which expires after 5 minutes", async () => {
  const l = await lab();
  try {
    const client = udpClient(l);
    const relayed = getXorRelayedAddress(await client.allocate())!;
    const peer = peerSocket(l);
    const peerAddress = { hostname: PEER, port: peer.socket.addr.port };
    const sendIndication = (text: string) => {
      const writer = new StunMessageWriter(2048);
      writer.start(
        TurnMethod.Send,
        StunClass.Indication,
        crypto.getRandomValues(new Uint8Array(12)),
      );
      addXorPeerAddress(writer, peerAddress);
      addData(writer, new TextEncoder().encode(text));
      client.send(writer.bytes().slice());
    };
    sendIndication("before");
    await peer.inbox.none(l.runtime);
    const granted = await client.request(
      TurnMethod.CreatePermission,
      (w) => addXorPeerAddress(w, peerAddress),
    );
    assert.ok(isSuccess(granted));
    sendIndication("hello");
    const [data, from] = await peer.inbox.next(l.runtime);
    assert.equal(new TextDecoder().decode(data), "hello");
    assert.deepEqual([from.hostname, from.port], [relayed.hostname, relayed.port]);
    // Peer to client: a Data indication with XOR-PEER-ADDRESS.
    await peer.socket.send(new TextEncoder().encode("back"), { transport: "udp", ...relayed });
    const indication = decodeStunMessage(await client.receive());
    assert.equal(indication.type, encodeMessageType(TurnMethod.Data, StunClass.Indication));
    assert.equal(new TextDecoder().decode(getData(indication)), "back");
    assert.deepEqual(getXorPeerAddresses(indication)[0].port, peerAddress.port);
    // Five minutes later (allocation refreshed, permission not), both directions stop.
    assert.ok(isSuccess(await client.request(TurnMethod.Refresh, (w) => addLifetime(w, 600))));
    await l.runtime.advance(300_001);
    assert.ok(isSuccess(await client.request(TurnMethod.Refresh, (w) => addLifetime(w, 600))));
    sendIndication("late");
    await peer.inbox.none(l.runtime);
    await peer.socket.send(new TextEncoder().encode("late"), { transport: "udp", ...relayed });
    await client.inbox!.none(l.runtime);
    assert.ok(l.turn.stats.dropped.noPermission >= 2);
  } finally {
    await l.close();
  }
});

Deno.test("turn: ChannelBind, then ChannelData both ways; bad channels refused", async () => {
  const l = await lab();
  try {
    const client = udpClient(l);
    const relayed = getXorRelayedAddress(await client.allocate())!;
    const peer = peerSocket(l);
    const peerAddress = { hostname: PEER, port: peer.socket.addr.port };
    const bad = await client.request(TurnMethod.ChannelBind, (w) => {
      addChannelNumber(w, 0x3fff);
      addXorPeerAddress(w, peerAddress);
    });
    assert.equal(getErrorCode(bad)?.code, 400);
    const bound = await client.request(TurnMethod.ChannelBind, (w) => {
      addChannelNumber(w, 0x4001);
      addXorPeerAddress(w, peerAddress);
    });
    assert.ok(isSuccess(bound));
    const other = await client.request(TurnMethod.ChannelBind, (w) => {
      addChannelNumber(w, 0x4001);
      addXorPeerAddress(w, { hostname: PEER, port: peerAddress.port + 1 });
    });
    assert.equal(getErrorCode(other)?.code, 400, "a channel is bound to one peer");
    const frame = new Uint8Array(16);
    const length = encodeChannelData(frame, 0, 0x4001, Uint8Array.of(1, 2, 3));
    client.send(frame.subarray(0, length));
    const [data] = await peer.inbox.next(l.runtime);
    assert.deepEqual([...data], [1, 2, 3]);
    await peer.socket.send(Uint8Array.of(9, 8), { transport: "udp", ...relayed });
    const back = decodeChannelData(await client.receive());
    assert.equal(back.channel, 0x4001);
    assert.deepEqual([...back.data], [9, 8]);
    // An unbound channel's data is dropped.
    client.send(frame.subarray(0, encodeChannelData(frame, 0, 0x4002, Uint8Array.of(7))));
    await peer.inbox.none(l.runtime);
    assert.equal(l.turn.stats.dropped.noChannel, 1);
  } finally {
    await l.close();
  }
});

Deno.test("turn: denied peers (loopback, private, link-local) get 403; allowed ranges pass", async () => {
  const l = await lab({ peerPolicy: new PeerPolicy({ allowed: [] }) });
  try {
    const client = udpClient(l);
    assert.ok(isSuccess(await client.allocate()));
    for (const hostname of ["127.0.0.1", "10.1.2.3", "192.168.1.1", "169.254.0.1", "172.16.0.1"]) {
      const answer = await client.request(
        TurnMethod.CreatePermission,
        (w) => addXorPeerAddress(w, { hostname, port: 1 }),
      );
      assert.equal(getErrorCode(answer)?.code, 403, hostname);
    }
    const v6 = await client.request(
      TurnMethod.CreatePermission,
      (w) => addXorPeerAddress(w, { hostname: "2001:db8::1", port: 1 }),
    );
    assert.equal(getErrorCode(v6)?.code, 443, "peer family must match the relayed address");
  } finally {
    await l.close();
  }
  const open = await lab({ peerPolicy: new PeerPolicy({ allowLoopback: true }) });
  try {
    const client = udpClient(open);
    assert.ok(isSuccess(await client.allocate()));
    const answer = await client.request(
      TurnMethod.CreatePermission,
      (w) => addXorPeerAddress(w, { hostname: "127.0.0.1", port: 1 }),
    );
    assert.ok(isSuccess(answer));
  } finally {
    await open.close();
  }
});

Deno.test("turn: Refresh with LIFETIME 0 frees the allocation; without refresh it expires", async () => {
  const l = await lab();
  try {
    const client = udpClient(l);
    assert.ok(isSuccess(await client.allocate()));
    const deleted = await client.request(TurnMethod.Refresh, (w) => addLifetime(w, 0));
    assert.ok(isSuccess(deleted));
    assert.equal(getLifetime(deleted), 0);
    assert.equal(l.turn.stats.allocations, 0);
    const mismatch = await client.request(TurnMethod.Refresh, (w) => addLifetime(w, 600));
    assert.equal(getErrorCode(mismatch)?.code, 437);
    const second = udpClient(l);
    assert.ok(isSuccess(await second.allocate()));
    assert.equal(l.turn.stats.allocations, 1);
    await l.runtime.advance(599_000);
    assert.equal(l.turn.stats.allocations, 1);
    await l.runtime.advance(2_000);
    assert.equal(l.turn.stats.allocations, 0, "expired after its 600 s lifetime");
  } finally {
    await l.close();
  }
});

Deno.test("turn: per-user quota gives 486; when full with an alternate server, 300 ALTERNATE-SERVER", async () => {
  const l = await lab({
    userQuota: 1,
    totalQuota: 2,
    alternateServer: { hostname: "192.0.2.99", port: 3478 },
  });
  try {
    assert.ok(isSuccess(await udpClient(l).allocate()));
    assert.equal(getErrorCode(await udpClient(l).allocate())?.code, 486);
    assert.ok(isSuccess(await udpClient(l, { username: "bob", password: "b" }).allocate()));
    const full = await udpClient(l, { username: "bob", password: "b" }).allocate();
    assert.equal(getErrorCode(full)?.code, 300);
    assert.deepEqual(getAlternateServer(full), {
      family: "IPv4",
      hostname: "192.0.2.99",
      port: 3478,
    });
  } finally {
    await l.close();
  }
  const draining = await lab({ alternateServer: { hostname: "192.0.2.99", port: 3478 } });
  try {
    draining.turn.drain();
    assert.equal(getErrorCode(await udpClient(draining).allocate())?.code, 300);
  } finally {
    await draining.close();
  }
});

Deno.test("turn: per-allocation bandwidth limit drops the excess", async () => {
  const l = await lab({ allocationBytesPerSecond: 1000 });
  try {
    const client = udpClient(l);
    assert.ok(isSuccess(await client.allocate()));
    const peer = peerSocket(l);
    const peerAddress = { hostname: PEER, port: peer.socket.addr.port };
    assert.ok(isSuccess(
      await client.request(TurnMethod.ChannelBind, (w) => {
        addChannelNumber(w, 0x4000);
        addXorPeerAddress(w, peerAddress);
      }),
    ));
    const frame = new Uint8Array(600);
    const length = encodeChannelData(frame, 0, 0x4000, new Uint8Array(400));
    for (let i = 0; i < 5; i++) client.send(frame.subarray(0, length));
    await l.runtime.advance(100);
    assert.equal(peer.inbox.items.length, 2, "1000 bytes/s of burst: two 400-byte packets");
    assert.equal(l.turn.stats.dropped.bandwidth, 3);
  } finally {
    await l.close();
  }
});

Deno.test("turn: over TCP on the STUN port, ChannelData padded; closing the connection frees the allocation", async () => {
  const l = await lab();
  try {
    const conn = await (async () => {
      const pending = l.runtime.forHost(CLIENT).net.connect({ hostname: SERVER, port: 3478 });
      let result: StreamConn | undefined;
      pending.then((c) => (result = c));
      assert.ok(await l.runtime.runUntil(() => result !== undefined, 1000));
      return result!;
    })();
    const client = new Client(
      l.runtime,
      undefined,
      l.server,
      { username: "alice", password: "pw" },
      conn,
    );
    const answer = await client.allocate();
    assert.ok(isSuccess(answer), `got ${getErrorCode(answer)?.code}`);
    const relayed = getXorRelayedAddress(answer)!;
    const peer = peerSocket(l);
    assert.ok(isSuccess(
      await client.request(TurnMethod.ChannelBind, (w) => {
        addChannelNumber(w, 0x4000);
        addXorPeerAddress(w, { hostname: PEER, port: peer.socket.addr.port });
      }),
    ));
    const frame = new Uint8Array(16);
    client.send(frame.subarray(0, encodeChannelData(frame, 0, 0x4000, Uint8Array.of(5), true)));
    assert.deepEqual([...(await peer.inbox.next(l.runtime))[0]], [5]);
    await peer.socket.send(Uint8Array.of(1, 2, 3, 4, 5), { transport: "udp", ...relayed });
    const back = await client.receive();
    assert.equal(back.length, 12, "padded to a multiple of 4 over TCP");
    assert.deepEqual([...decodeChannelData(back).data], [1, 2, 3, 4, 5]);
    assert.equal(l.turn.stats.allocations, 1);
    conn.close();
    assert.ok(await l.runtime.runUntil(() => l.turn.stats.allocations === 0, 1000));
  } finally {
    await l.close();
  }
});

Deno.test("turn: IPv6 relays on request (REQUESTED-ADDRESS-FAMILY), 440 where the family is missing", async () => {
  const runtime = new VirtualRuntime({ seed: 9 });
  const serverRuntime = runtime.forHost("2001:db8::1");
  const turn = new TurnServer({
    runtime: serverRuntime,
    realm: REALM,
    credentials: new StaticUsers([{ name: "alice", password: "pw" }]),
    relayPorts: { min: 50000, max: 50099 },
  });
  const service = StunService.listen({
    runtime: serverRuntime,
    hostname: "2001:db8::1",
    port: 3478,
    turn,
  });
  const server: NetAddress = { transport: "udp", hostname: "2001:db8::1", port: 3478 };
  try {
    const socket = runtime.forHost("2001:db8::9").net.listenDatagram({
      hostname: "2001:db8::9",
      port: 0,
    });
    const client = new Client(runtime, socket, server, { username: "alice", password: "pw" });
    // The default family is IPv4, which this IPv6-only server cannot relay.
    assert.equal(getErrorCode(await client.allocate())?.code, 440);
    const granted = await client.allocate((w) => addRequestedAddressFamily(w, "IPv6"));
    assert.ok(isSuccess(granted), `got ${getErrorCode(granted)?.code}`);
    const relayed = getXorRelayedAddress(granted)!;
    assert.equal(relayed.family, "IPv6");
    assert.equal(relayed.hostname, "2001:db8::1");
    const peer = runtime.forHost("2001:db8::20").net.listenDatagram({
      hostname: "2001:db8::20",
      port: 0,
    });
    const peerInbox = new Inbox(peer);
    const v4 = await client.request(
      TurnMethod.CreatePermission,
      (w) => addXorPeerAddress(w, { hostname: "192.0.2.1", port: 1 }),
    );
    assert.equal(getErrorCode(v4)?.code, 443);
    assert.ok(isSuccess(
      await client.request(TurnMethod.ChannelBind, (w) => {
        addChannelNumber(w, 0x4000);
        addXorPeerAddress(w, { hostname: "2001:db8::20", port: peer.addr.port });
      }),
    ));
    const frame = new Uint8Array(16);
    client.send(frame.subarray(0, encodeChannelData(frame, 0, 0x4000, Uint8Array.of(6))));
    const [data, from] = await peerInbox.next(runtime);
    assert.deepEqual([...data], [6]);
    assert.equal(from.hostname, "2001:db8::1");
    socket.close();
    peer.close();
  } finally {
    await service.close();
    await turn.close();
  }
});

Deno.test("turn: behind a 1:1 NAT the public address is advertised for the bound private one", async () => {
  const l = await lab({
    advertisedAddressFor: (bound) => bound === SERVER ? "192.0.2.200" : bound,
  });
  try {
    const relayed = getXorRelayedAddress(await udpClient(l).allocate())!;
    assert.equal(relayed.hostname, "192.0.2.200");
    assert.ok(relayed.port >= 50000 && relayed.port <= 50099);
  } finally {
    await l.close();
  }
});

Deno.test("turn: a budget shared with the signaling relay is drawn from, and refuses when spent", async () => {
  let left = 500;
  const taken: number[] = [];
  const sharedBudget = {
    take(bytes: number) {
      if (bytes > left) return false;
      left -= bytes;
      taken.push(bytes);
      return true;
    },
  };
  const l = await lab({ sharedBudget });
  try {
    const client = udpClient(l);
    assert.ok(isSuccess(await client.allocate()));
    const peer = peerSocket(l);
    assert.ok(isSuccess(
      await client.request(TurnMethod.ChannelBind, (w) => {
        addChannelNumber(w, 0x4000);
        addXorPeerAddress(w, { hostname: PEER, port: peer.socket.addr.port });
      }),
    ));
    const frame = new Uint8Array(600);
    const length = encodeChannelData(frame, 0, 0x4000, new Uint8Array(200));
    for (let i = 0; i < 3; i++) client.send(frame.subarray(0, length));
    await l.runtime.advance(100);
    assert.deepEqual(taken, [200, 200]);
    assert.equal(peer.inbox.items.length, 2);
    assert.equal(l.turn.stats.dropped.bandwidth, 1);
  } finally {
    await l.close();
  }
});
