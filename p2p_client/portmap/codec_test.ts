import assert from "node:assert/strict";
import fc from "fast-check";
import { PortMapDecodeError } from "./errors.ts";
import {
  decodeNatPmpResponse,
  encodeNatPmpExternalAddressRequest,
  encodeNatPmpMapRequest,
} from "./natpmp_codec.ts";
import {
  decodePcpResponse,
  encodePcpAnnounceRequest,
  encodePcpMapRequest,
  pcpAddressBytes,
} from "./pcp_codec.ts";
import {
  addPortMappingArgs,
  decodeSoapResponse,
  decodeSsdpAnswer,
  encodeSoapRequest,
  encodeSsdpSearch,
  findWanService,
} from "./upnp_codec.ts";
import { guessGateway, localAddressToward, parseDefaultRoute } from "./gateway.ts";

Deno.test("NAT-PMP requests follow RFC 6886 figures (sections 3.2, 3.3)", () => {
  // Section 3.2: version 0, opcode 0.
  assert.equal(encodeNatPmpExternalAddressRequest().toHex(), "0000");
  // Section 3.3: vers, op=1 (UDP), reserved 0, internal port, suggested external port, lifetime.
  assert.equal(
    encodeNatPmpMapRequest({
      protocol: "udp",
      internalPort: 40000,
      suggestedExternalPort: 40000,
      lifetimeSeconds: 7200,
    }).toHex(),
    "000100009c409c4000001c20",
  );
  // Section 3.4: delete all UDP mappings of a port = lifetime 0, suggested port 0.
  assert.equal(
    encodeNatPmpMapRequest({
      protocol: "tcp",
      internalPort: 80,
      suggestedExternalPort: 0,
      lifetimeSeconds: 0,
    }).toHex(),
    "000200000050000000000000",
  );
  assert.throws(
    () =>
      encodeNatPmpMapRequest({
        protocol: "udp",
        internalPort: 0,
        suggestedExternalPort: 1,
        lifetimeSeconds: 1,
      }),
    RangeError,
  );
});

Deno.test("NAT-PMP answers decode (external address, mapping, short error)", () => {
  // vers 0, op 128, result 0, epoch 3600, 198.18.0.2
  assert.deepEqual(decodeNatPmpResponse(Uint8Array.fromHex("0080000000000e10c6120002")), {
    kind: "external-address",
    resultCode: 0,
    epochSeconds: 3600,
    externalAddress: "198.18.0.2",
  });
  // vers 0, op 129, result 0, epoch 5, internal 40000, external 50000, lifetime 7200
  assert.deepEqual(decodeNatPmpResponse(Uint8Array.fromHex("00810000000000059c40c35000001c20")), {
    kind: "map",
    protocol: "udp",
    resultCode: 0,
    epochSeconds: 5,
    internalPort: 40000,
    externalPort: 50000,
    lifetimeSeconds: 7200,
  });
  // 8-byte error answer (result 2, refused).
  assert.deepEqual(decodeNatPmpResponse(Uint8Array.fromHex("0081000200000005")), {
    kind: "error",
    opcode: 129,
    resultCode: 2,
    epochSeconds: 5,
  });
  for (const hex of ["00", "0100000000000000", "0001000000000000", "0085000000000000"]) {
    assert.throws(() => decodeNatPmpResponse(Uint8Array.fromHex(hex)), PortMapDecodeError);
  }
  assert.throws(() => decodeNatPmpResponse(Uint8Array.fromHex("0081000000000005")), {
    name: "PortMapDecodeError",
    reason: "truncated",
  });
});

Deno.test("PCP requests follow RFC 6887 figures 2 and 9", () => {
  assert.equal(pcpAddressBytes("10.0.1.2").toHex(), "00000000000000000000ffff0a000102");
  assert.equal(pcpAddressBytes("2001:db8::1").toHex(), "20010db8000000000000000000000001");
  const announce = encodePcpAnnounceRequest("10.0.1.2");
  assert.equal(announce.toHex(), "02000000" + "00000000" + "00000000000000000000ffff0a000102");
  const nonce = Uint8Array.fromHex("0102030405060708090a0b0c");
  const map = encodePcpMapRequest({
    clientAddress: "10.0.1.2",
    nonce,
    protocol: "udp",
    internalPort: 40000,
    suggestedExternalPort: 40001,
    lifetimeSeconds: 7200,
  });
  assert.equal(
    map.toHex(),
    "02010000" + "00001c20" + "00000000000000000000ffff0a000102" + // header
      "0102030405060708090a0b0c" + "11000000" + "9c40" + "9c41" + // nonce, UDP, ports
      "00000000000000000000ffff00000000", // suggested external address: any
  );
  assert.throws(
    () =>
      encodePcpMapRequest({
        ...{ clientAddress: "x" },
        nonce,
        protocol: "udp",
        internalPort: 1,
        suggestedExternalPort: 0,
        lifetimeSeconds: 1,
      }),
    RangeError,
  );
});

Deno.test("PCP answers decode: MAP, ANNOUNCE, NAT-PMP-only, errors", () => {
  const nonce = Uint8Array.fromHex("0102030405060708090a0b0c");
  const answer = Uint8Array.fromHex(
    "02810000" + "00000e10" + "0000002a" + "000000000000000000000000" +
      "0102030405060708090a0b0c" + "11000000" + "9c40" + "c350" +
      "00000000000000000000ffffc6120002",
  );
  assert.deepEqual(decodePcpResponse(answer), {
    kind: "map",
    resultCode: 0,
    lifetimeSeconds: 3600,
    epochSeconds: 42,
    nonce,
    protocol: "udp",
    internalPort: 40000,
    externalPort: 50000,
    externalAddress: "198.18.0.2",
  });
  const announce = answer.slice(0, 24);
  announce[1] = 0x80;
  assert.equal(decodePcpResponse(announce).kind, "announce");
  assert.deepEqual(decodePcpResponse(Uint8Array.fromHex("0081000100000000")), {
    kind: "natpmp-only",
    resultCode: 1,
  });
  // An error MAP answer without payload is reported, not thrown.
  const refused = answer.slice(0, 24);
  refused[3] = 2;
  assert.equal(decodePcpResponse(refused).kind, "other");
  assert.throws(() => decodePcpResponse(answer.slice(0, 3)), PortMapDecodeError);
  assert.throws(() => decodePcpResponse(encodePcpAnnounceRequest("10.0.1.2")), {
    reason: "bad-opcode",
  });
  assert.throws(() => decodePcpResponse(answer.slice(0, 26)), { reason: "bad-length" });
  assert.throws(() => decodePcpResponse(new Uint8Array(1200).fill(2)), { reason: "too-large" });
});

const DESCRIPTION = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<URLBase>http://10.0.1.1:5000</URLBase>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType>
<controlURL>/ctl/L3F</controlURL></service></serviceList>
<deviceList><device><deviceList><device><serviceList>
<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
<controlURL>/ctl/IPConn1</controlURL></service>
<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL></service>
</serviceList></device></deviceList></device></deviceList></device></root>`;

Deno.test("UPnP: SSDP search and answer, description, SOAP request and answers", () => {
  const search = new TextDecoder().decode(encodeSsdpSearch());
  assert.match(search, /^M-SEARCH \* HTTP\/1\.1\r\nHOST: 239\.255\.255\.250:1900\r\n/);
  assert.match(search, /\r\nMAN: "ssdp:discover"\r\n/);
  assert.match(search, /\r\n\r\n$/);
  const answer = decodeSsdpAnswer(new TextEncoder().encode(
    "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:" +
      "InternetGatewayDevice:1\r\nUSN: uuid:x::y\r\nEXT:\r\nSERVER: Debian/12 UPnP/1.1 " +
      "MiniUPnPd/2.3.1\r\nlocation: http://10.0.1.1:5000/rootDesc.xml\r\n\r\n",
  ));
  assert.equal(answer.location, "http://10.0.1.1:5000/rootDesc.xml");
  assert.equal(answer.usn, "uuid:x::y");
  for (
    const bad of [
      "NOTIFY * HTTP/1.1\r\nLOCATION: http://a/\r\n\r\n",
      "HTTP/1.1 200 OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nLOCATION: file:///etc/passwd\r\n\r\n",
      "HTTP/1.1 200 OK\r\nLOCATION: ::::\r\n\r\n",
    ]
  ) {
    assert.throws(() => decodeSsdpAnswer(new TextEncoder().encode(bad)), PortMapDecodeError);
  }
  assert.deepEqual(findWanService(DESCRIPTION, "http://10.0.1.1:5000/rootDesc.xml"), {
    serviceType: "urn:schemas-upnp-org:service:WANIPConnection:2",
    controlUrl: "http://10.0.1.1:5000/ctl/IPConn",
  });
  assert.throws(() => findWanService("<root/>", "http://a/"), { reason: "not-found" });

  const request = encodeSoapRequest(
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "AddPortMapping",
    addPortMappingArgs({
      externalPort: 40000,
      protocol: "UDP",
      internalPort: 40000,
      internalClient: "10.0.1.2",
      description: "p2p <&>",
      leaseSeconds: 3600,
    }),
  );
  assert.equal(
    request.soapAction,
    '"urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping"',
  );
  assert.match(request.body, /<NewExternalPort>40000<\/NewExternalPort>/);
  assert.match(
    request.body,
    /<NewPortMappingDescription>p2p &lt;&amp;&gt;<\/NewPortMappingDescription>/,
  );
  assert.match(request.body, /<NewLeaseDuration>3600<\/NewLeaseDuration>/);

  assert.deepEqual(
    decodeSoapResponse(
      '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">' +
        '<s:Body><u:GetExternalIPAddressResponse xmlns:u="urn:x"><NewExternalIPAddress>' +
        "198.18.0.2</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>",
      "GetExternalIPAddress",
    ),
    { ok: true, values: { NewExternalIPAddress: "198.18.0.2" } },
  );
  assert.deepEqual(
    decodeSoapResponse(
      "<s:Envelope><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError" +
        '</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0">' +
        "<errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription>" +
        "</UPnPError></detail></s:Fault></s:Body></s:Envelope>",
      "AddPortMapping",
    ),
    { ok: false, errorCode: 718, description: "ConflictInMappingEntry" },
  );
  // miniupnpd answers AddPortMapping with an empty element.
  assert.deepEqual(
    decodeSoapResponse(
      '<s:Envelope><s:Body><u:AddPortMappingResponse xmlns:u="urn:schemas-upnp-org:service:' +
        'WANIPConnection:2"/></s:Body></s:Envelope>',
      "AddPortMapping",
    ),
    { ok: true, values: {} },
  );
  assert.throws(() => decodeSoapResponse("<html/>", "AddPortMapping"), { reason: "not-found" });
});

Deno.test("default route from /proc/net/route and the local address toward it", () => {
  const table =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
    "eth1\t00000000\t0100A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n" +
    "eth0\t00000000\t0101000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n" +
    "eth0\t0001000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
  assert.deepEqual(parseDefaultRoute(table), { iface: "eth0", gateway: "10.0.1.1" });
  assert.equal(parseDefaultRoute(table.split("\n").slice(0, 1).join("\n")), undefined);
  assert.equal(parseDefaultRoute("garbage"), undefined);
  assert.equal(
    localAddressToward("10.0.1.1", [
      { name: "eth9", family: "IPv4", address: "192.168.0.5", netmask: "255.255.255.0" },
      { name: "eth0", family: "IPv6", address: "fe80::1", netmask: "ffff:ffff:ffff:ffff::" },
      { name: "eth0", family: "IPv4", address: "10.0.1.2", netmask: "255.255.255.0" },
    ]),
    "10.0.1.2",
  );
  assert.equal(localAddressToward("172.16.0.1", []), undefined);
  assert.deepEqual(
    guessGateway([
      { name: "lo", family: "IPv4", address: "127.0.0.1", netmask: "255.0.0.0" },
      { name: "pub", family: "IPv4", address: "198.18.0.5", netmask: "255.254.0.0" },
      { name: "wlan0", family: "IPv4", address: "192.168.178.23", netmask: "255.255.255.0" },
    ]),
    { iface: "wlan0", gateway: "192.168.178.1" },
  );
  assert.equal(
    guessGateway([{ name: "e", family: "IPv4", address: "10.0.0.1", netmask: "255.255.255.0" }]),
    undefined,
    "this host is the .1 itself",
  );
});

/** Runs `decode` and asserts it either returns or throws PortMapDecodeError, nothing else. */
function neverThrowsUntyped(decode: () => unknown): void {
  try {
    decode();
  } catch (error) {
    assert.ok(error instanceof PortMapDecodeError, `untyped error: ${String(error)}`);
  }
}

Deno.test("malformed answers never throw anything but PortMapDecodeError (fuzz)", () => {
  const valid = [
    Uint8Array.fromHex("0080000000000e10c6120002"),
    Uint8Array.fromHex("00810000000000059c40c35000001c20"),
    Uint8Array.fromHex(
      "02810000" + "00000e10" + "0000002a" + "000000000000000000000000" +
        "0102030405060708090a0b0c" + "11000000" + "9c40c350" +
        "00000000000000000000ffffc6120002",
    ),
  ];
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 1200 }),
        fc.tuple(fc.constantFrom(...valid), fc.nat(70), fc.nat(255), fc.nat(70)).map(
          ([bytes, at, value, cut]) => {
            const copy = bytes.slice(0, Math.max(0, bytes.length - (cut % 8 === 0 ? cut : 0)));
            if (at < copy.length) copy[at] = value;
            return copy;
          },
        ),
      ),
      (bytes) => {
        neverThrowsUntyped(() => decodeNatPmpResponse(bytes));
        neverThrowsUntyped(() => decodePcpResponse(bytes));
        neverThrowsUntyped(() => decodeSsdpAnswer(bytes));
      },
    ),
    { numRuns: 3000, seed: 13 },
  );
  const texts = fc.oneof(
    fc.string({ maxLength: 400 }),
    fc.constantFrom(DESCRIPTION, "<s:Fault><errorCode>x</errorCode>", "<service><serviceType>")
      .chain(
        (base) =>
          fc.tuple(fc.nat(base.length), fc.nat(base.length)).map(([a, b]) =>
            base.slice(Math.min(a, b), Math.max(a, b))
          ),
      ),
  );
  fc.assert(
    fc.property(texts, (text) => {
      neverThrowsUntyped(() => findWanService(text, "http://10.0.1.1/"));
      neverThrowsUntyped(() => decodeSoapResponse(text, "AddPortMapping"));
      neverThrowsUntyped(() =>
        decodeSsdpAnswer(new TextEncoder().encode(`HTTP/1.1 200 OK\r\n${text}`))
      );
    }),
    { numRuns: 2000, seed: 13 },
  );
});
