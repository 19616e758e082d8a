// Sends one message of every class @vonage/messages exports for sending, or updates messages,
// through Tidings with the official Vonage Node SDK (driven by tests/e2e/test_node_sdk_channels.py).
//
// Config: a JSON object as the first argument:
//   {
//     "host": "https://127.0.0.1:8443",
//     "basic": {"apiKey": "...", "apiSecret": "..."},
//     "jwt": {"applicationId": "...", "privateKey": "/path/to/private.key"},
//     "action": "send-every-class" | "send" | "update",
//
//     // send-every-class: an example of each class, built below from these:
//     "jwtChannels": ["rcs"],                 // these channels with the JWT, the rest with Basic
//     "webhookBase": "http://127.0.0.1:9000/status",  // Basic sends: webhookUrl <base>/<class>
//     "parties": {"sms": {"to": "...", "from": "..."}, ...},  // per channel
//     "inboundUuid": "...",                  // the inbound WhatsApp message a reply or reaction names
//
//     // send: [{"class": "RCSText", "auth": "jwt", "params": {...}}]
//     "messages": [...],
//
//     // update: [{"uuid": "...", "status": "read", "typingIndicator": "text", "auth": "basic"}]
//     "updates": [...]
//   }
// The TLS server's CA is trusted through NODE_EXTRA_CA_CERTS.
//
// Prints {"sdk": {...versions}, "enums": {...}, "results": [...]} on stdout. A send's result names
// the class, its channel and message type, the HTTP status and the messageUUID, or the error (and
// the response's body); an update's, the uuid, ok and status, or the error. Both carry the JSON the
// SDK sent (`sent`).

import { readFileSync } from "node:fs";

import * as messages from "@vonage/messages";
import { Vonage } from "@vonage/server-sdk";

const {
  AbstractMessage,
  MessengerTags,
  RCSCategory,
  RCSCreateCalendarEventSuggestion,
  RCSDialActionSuggestion,
  RCSOpenURLSuggestion,
  RCSOpenURLWebviewSuggestion,
  RCSReplySuggestion,
  RCSShareLocationSuggestion,
  RCSViewLocationSuggestion,
  ViberCategory,
  WhatsAppLanguageCode,
} = messages;

const MEDIA = "https://media.example.com";

// --- the classes, found by looking --------------------------------------------------------------

/** Every exported class that extends AbstractMessage, but for the abstract bases themselves. */
function sendableClasses() {
  return Object.entries(messages)
    .filter(
      ([name, value]) =>
        typeof value === "function" &&
        value.prototype instanceof AbstractMessage &&
        !name.startsWith("Abstract"),
    )
    .map(([name]) => name)
    .sort();
}

// --- an example of each, with representative values ---------------------------------------------

const suggestions = () => [
  new RCSReplySuggestion({ text: "Yes please", postbackData: "reply-yes" }),
  new RCSDialActionSuggestion({
    text: "Call us",
    postbackData: "dial",
    phoneNumber: "447700900555",
    fallbackUrl: `${MEDIA}/call`,
  }),
  new RCSViewLocationSuggestion({
    text: "Find us",
    postbackData: "view-location",
    latitude: "51.5072",
    longitude: "-0.1276",
    pinLabel: "Acme HQ",
    fallbackUrl: `${MEDIA}/map`,
  }),
  new RCSShareLocationSuggestion({ text: "Share location", postbackData: "share-location" }),
  new RCSOpenURLSuggestion({
    text: "Track",
    postbackData: "open-url",
    url: `${MEDIA}/track`,
    description: "Track your parcel",
  }),
  new RCSOpenURLWebviewSuggestion({
    text: "Choose a slot",
    postbackData: "webview",
    url: `${MEDIA}/slots`,
    description: "Choose a delivery slot",
    viewMode: "TALL",
  }),
  new RCSCreateCalendarEventSuggestion({
    text: "Add to calendar",
    postbackData: "calendar",
    startTime: "2030-01-01T10:00:00Z",
    endTime: "2030-01-01T11:00:00Z",
    title: "Delivery",
    description: "Your parcel arrives",
    fallbackUrl: `${MEDIA}/calendar`,
  }),
];

const action = { url: `${MEDIA}/track`, text: "Track order" };

// class name -> params (the channel's parties, clientRef and webhookUrl are added to each)
const EXAMPLES = {
  SMS: () => ({
    text: "Your code is 6287",
    ttl: 900,
    trustedRecipient: true,
    sms: { encodingType: "text", contentId: "1107161234567890123", entityId: "1101456789" },
  }),
  MMSText: () => ({ text: "Your order has shipped", ttl: 600 }),
  MMSImage: () => ({ image: { url: `${MEDIA}/a.jpg`, caption: "Parcel" } }),
  MMSAudio: () => ({ audio: { url: `${MEDIA}/a.mp3` } }),
  MMSVideo: () => ({ video: { url: `${MEDIA}/a.mp4`, caption: "Unboxing" } }),
  MMSFile: () => ({ file: { url: `${MEDIA}/invoice.pdf` } }),
  MMSVcard: () => ({ vcard: { url: `${MEDIA}/acme.vcf` } }),
  MMSContent: () => ({
    content: [
      { type: "image", url: `${MEDIA}/a.jpg`, caption: "Front" },
      { type: "audio", url: `${MEDIA}/a.mp3` },
      { type: "video", url: `${MEDIA}/a.mp4` },
      { type: "file", url: `${MEDIA}/a.pdf`, caption: "Manual" },
      { type: "vcard", url: `${MEDIA}/acme.vcf` },
    ],
  }),
  WhatsAppText: (c) => ({ text: "Thanks, we are on it", context: { messageUuid: c.inboundUuid } }),
  WhatsAppImage: () => ({ image: { url: `${MEDIA}/a.jpg`, caption: "Your parcel" } }),
  WhatsAppAudio: () => ({ audio: { url: `${MEDIA}/a.mp3` } }),
  WhatsAppVideo: () => ({ video: { url: `${MEDIA}/a.mp4`, caption: "How to" } }),
  WhatsAppFile: () => ({ file: { url: `${MEDIA}/a.pdf`, caption: "Invoice", name: "invoice.pdf" } }),
  WhatsAppTemplate: () => ({
    template: { name: "9b6b4fcb_da19_4a26_8fe8_78074a91b584:verify", parameters: ["6287"] },
    whatsapp: { policy: "deterministic", locale: WhatsAppLanguageCode.ENGLISH_UK },
  }),
  WhatsAppSticker: () => ({ sticker: { id: "13aaecab-2485-4255-a0a7-97a2a3f55d8d" } }),
  WhatsAppCustom: () => ({
    custom: {
      type: "interactive",
      interactive: {
        type: "button",
        body: { text: "Was your delivery on time?" },
        action: {
          buttons: [
            { type: "reply", reply: { id: "yes", title: "Yes" } },
            { type: "reply", reply: { id: "no", title: "No" } },
          ],
        },
      },
    },
  }),
  WhatsAppReaction: (c) => ({
    reaction: { action: "react", emoji: "👍" },
    context: { messageUuid: c.inboundUuid },
  }),
  MessengerText: () => ({
    text: "Your booking is confirmed",
    messenger: { category: "message_tag", tag: MessengerTags.CONFIRMED_EVENT_UPDATE },
  }),
  MessengerImage: () => ({ image: { url: `${MEDIA}/a.jpg` }, messenger: { category: "response" } }),
  MessengerAudio: () => ({ audio: { url: `${MEDIA}/a.mp3` } }),
  MessengerVideo: () => ({ video: { url: `${MEDIA}/a.mp4` } }),
  MessengerFile: () => ({ file: { url: `${MEDIA}/a.pdf` }, messenger: { category: "update" } }),
  ViberText: () => ({
    text: "Your parcel is on its way",
    viberService: { category: ViberCategory.TRANSACTION, ttl: 600, type: "string", action },
  }),
  ViberImage: () => ({
    image: { url: `${MEDIA}/a.jpg`, caption: "Spring sale" },
    viberService: { category: ViberCategory.PROMOTION, action },
  }),
  ViberVideo: () => ({
    video: { url: `${MEDIA}/a.mp4`, thumbUrl: `${MEDIA}/a-thumb.jpg`, caption: "How to" },
    viberService: { category: ViberCategory.TRANSACTION, duration: "42", fileSize: "7" },
  }),
  ViberFile: () => ({ file: { url: `${MEDIA}/a.pdf`, name: "invoice.pdf" } }),
  RCSText: () => ({
    text: "Your parcel arrives tomorrow. Anything else?",
    ttl: 3600,
    suggestions: suggestions(),
    rcs: { category: RCSCategory.TRANSACTION },
  }),
  RCSImage: () => ({ image: { url: `${MEDIA}/a.jpg` }, ttl: 3600 }),
  RCSVideo: () => ({ video: { url: `${MEDIA}/a.mp4` } }),
  RCSFile: () => ({ file: { url: `${MEDIA}/a.pdf` } }),
  RCSCustom: () => ({
    custom: {
      contentMessage: {
        text: "Pick a size",
        suggestions: [{ reply: { text: "42", postbackData: "size-42" } }],
      },
    },
    rcs: { category: RCSCategory.PROMOTION },
  }),
};

// --- sending --------------------------------------------------------------------------------------

function clients(config) {
  const options = { apiHost: config.host, restHost: config.host, timeout: 10000 };
  const made = {};
  if (config.basic) made.basic = new Vonage(config.basic, options).messages;
  if (config.jwt) made.jwt = new Vonage(config.jwt, options).messages;
  for (const client of Object.values(made)) {
    // Only to see what went over the wire: the status of the last response, and the last body.
    const parse = client.parseResponse.bind(client);
    client.parseResponse = async (request, response) => {
      client.lastStatus = response.status;
      return parse(request, response);
    };
    const prepare = client.prepareBody.bind(client);
    client.prepareBody = (request) => {
      client.lastBody = prepare(request);
      return client.lastBody;
    };
  }
  return made;
}

async function describe(error) {
  const described = { error: String(error?.message ?? error) };
  const response = error?.response;
  if (response && typeof response.status === "number") {
    described.status = response.status;
    try {
      described.body = await response.text();
    } catch {
      // read already
    }
  }
  return described;
}

async function send(client, className, params) {
  const message = new messages[className](params);
  const result = { class: className, channel: message.channel, messageType: message.messageType };
  try {
    const { messageUUID } = await client.send(message);
    Object.assign(result, { status: client.lastStatus, messageUUID });
  } catch (error) {
    Object.assign(result, await describe(error));
  }
  result.sent = client.lastBody;
  return result;
}

async function sendEveryClass(config, made) {
  const results = [];
  const found = sendableClasses();
  for (const className of found) {
    const example = EXAMPLES[className];
    if (!example) {
      results.push({ class: className, error: "no example for this class in channels.mjs" });
      continue;
    }
    const channel = new messages[className]({}).channel;
    const parties = config.parties[channel];
    if (!parties) {
      results.push({ class: className, channel, error: `no parties for channel ${channel}` });
      continue;
    }
    const jwt = config.jwtChannels.includes(channel);
    const params = {
      ...parties,
      clientRef: `node-${className}`,
      ...(jwt ? {} : { webhookUrl: `${config.webhookBase}/${className}` }),
      ...example(config),
    };
    const result = await send(jwt ? made.jwt : made.basic, className, params);
    results.push({ ...result, auth: jwt ? "jwt" : "basic" });
  }
  for (const className of Object.keys(EXAMPLES).filter((name) => !found.includes(name))) {
    results.push({ class: className, error: "an example for a class the SDK does not export" });
  }
  return results;
}

async function update(made, { uuid, status, typingIndicator, auth }) {
  const client = made[auth ?? "basic"];
  try {
    const params = typingIndicator ? { typingIndicator } : undefined;
    const answer = await client.updateMessage(uuid, status, params);
    return { uuid, ok: answer === true, status: client.lastStatus, sent: client.lastBody };
  } catch (error) {
    return { uuid, ...(await describe(error)), sent: client.lastBody };
  }
}

function versions() {
  const version = (name) =>
    JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url))).version;
  return { "@vonage/server-sdk": version("@vonage/server-sdk"), "@vonage/messages": version("@vonage/messages") };
}

async function main() {
  const config = JSON.parse(process.argv[2]);
  const made = clients(config);
  let results;
  if (config.action === "send-every-class") {
    results = await sendEveryClass(config, made);
  } else if (config.action === "send") {
    results = [];
    for (const { class: className, auth, params } of config.messages) {
      results.push(await send(made[auth ?? "basic"], className, params));
    }
  } else if (config.action === "update") {
    results = [];
    for (const one of config.updates) results.push(await update(made, one));
  } else {
    throw new Error(`unknown action ${config.action}`);
  }
  const enums = { RCSCategory: messages.RCSCategory };
  process.stdout.write(JSON.stringify({ sdk: versions(), enums, results }) + "\n");
}

await main();
