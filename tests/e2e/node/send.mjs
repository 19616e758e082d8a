// Sends one SMS through Tidings with the official Vonage Node SDK (@vonage/server-sdk).
//
// Config: a JSON object as the first argument, or in the env var TIDINGS_NODE_CONFIG:
//   {
//     "host": "https://127.0.0.1:8443",          // scheme included: the SDK uses it as given
//     "apiKey": "...", "apiSecret": "...",        // Basic auth, or
//     "applicationId": "...", "privateKey": "/path/to/private.key",  // a JWT per request
//     "to": "447700900000", "from": "Acme", "text": "Hello",
//     "clientRef": "optional", "webhookUrl": "optional"
//   }
// The TLS server's CA is trusted through NODE_EXTRA_CA_CERTS.
//
// Prints the SDK's result as JSON ({"messageUUID": "..."}) on stdout and exits 0; on an error
// prints {"error": ..., "status": ..., "body": ...} on stderr and exits 1.

import { Vonage } from "@vonage/server-sdk";
import { SMS } from "@vonage/messages";

function readConfig() {
  const raw = process.argv[2] ?? process.env.TIDINGS_NODE_CONFIG;
  if (!raw) {
    throw new Error("usage: node send.mjs '<json config>' (or set TIDINGS_NODE_CONFIG)");
  }
  return JSON.parse(raw);
}

function credentialsOf(config) {
  if (config.applicationId) {
    // `privateKey` may be the PEM itself or a path to it; @vonage/auth reads a path.
    return { applicationId: config.applicationId, privateKey: config.privateKey };
  }
  return { apiKey: config.apiKey, apiSecret: config.apiSecret };
}

async function describe(error) {
  const described = { error: String(error?.message ?? error), name: error?.name };
  const response = error?.response;
  if (response && typeof response.status === "number") {
    described.status = response.status;
    described.contentType = response.headers?.get?.("content-type") ?? null;
    try {
      described.body = await response.text();
    } catch {
      // the body was read already, or the connection is gone
    }
  }
  if (error?.cause) {
    described.cause = String(error.cause?.message ?? error.cause);
    if (error.cause?.code) described.causeCode = error.cause.code;
  }
  return described;
}

async function main() {
  const config = readConfig();
  const vonage = new Vonage(credentialsOf(config), {
    apiHost: config.host,
    restHost: config.host,
    timeout: config.timeoutMs ?? 10000,
  });
  const result = await vonage.messages.send(
    new SMS({
      to: config.to,
      from: config.from,
      text: config.text,
      clientRef: config.clientRef,
      webhookUrl: config.webhookUrl,
    }),
  );
  process.stdout.write(JSON.stringify(result) + "\n");
}

try {
  await main();
} catch (error) {
  process.stderr.write(JSON.stringify(await describe(error)) + "\n");
  process.exitCode = 1;
}
